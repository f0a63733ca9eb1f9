"""The one schema of the simulator's database, the columns added to it since a release (migrations, SQLite), and
the same schema spelled for PostgreSQL (versioned; installed once however many instances start together)."""

from __future__ import annotations

import re
import sqlite3

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    event TEXT NOT NULL,
    platform TEXT NOT NULL,
    url TEXT NOT NULL,
    body BLOB NOT NULL,
    auth_json TEXT NOT NULL,
    headers_json TEXT NOT NULL DEFAULT '{}',
    retry_delays_json TEXT NOT NULL,
    timeout REAL NOT NULL,
    state TEXT NOT NULL,
    attempts_made INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    last_status INTEGER,
    last_error TEXT,
    subscription_id TEXT,
    source TEXT NOT NULL DEFAULT 'cli',
    profile TEXT NOT NULL DEFAULT 'documented',
    owner TEXT,
    lease_until REAL,
    body_length INTEGER,
    body_sha256 TEXT,
    fault TEXT
);
DROP INDEX IF EXISTS jobs_due;
CREATE INDEX IF NOT EXISTS jobs_claim ON jobs(state, next_attempt_at, seq);  -- claim_due's order, read off the index
CREATE TABLE IF NOT EXISTS attempts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    number INTEGER NOT NULL,
    started_at REAL NOT NULL,
    duration_ms REAL NOT NULL,
    url TEXT NOT NULL,
    request_headers_json TEXT NOT NULL,
    request_body BLOB NOT NULL,
    status INTEGER,
    response_headers_json TEXT NOT NULL DEFAULT '{}',
    response_body BLOB NOT NULL DEFAULT x'',
    error TEXT,
    request_body_length INTEGER,
    request_body_sha256 TEXT,
    UNIQUE(job_id, number)
);
CREATE INDEX IF NOT EXISTS attempts_job ON attempts(job_id, number);
CREATE TABLE IF NOT EXISTS subscriptions (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    platform TEXT NOT NULL,
    event TEXT NOT NULL,
    url TEXT NOT NULL,
    auth_json TEXT NOT NULL,
    seed INTEGER,
    overrides_json TEXT NOT NULL DEFAULT '{}',
    schedule_json TEXT,
    paused INTEGER NOT NULL DEFAULT 0,
    retry_delays_json TEXT,
    timeout REAL,
    meta_json TEXT NOT NULL DEFAULT '{}',
    profile TEXT NOT NULL DEFAULT 'documented',
    fired_count INTEGER NOT NULL DEFAULT 0,
    last_fired_at REAL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS subscriptions_event ON subscriptions(platform, event);
CREATE TABLE IF NOT EXISTS redeliveries (
    job_id TEXT PRIMARY KEY,
    original_id TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS sim_settings (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS calls (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    started_at REAL NOT NULL,
    duration_ms REAL NOT NULL,
    platform TEXT,
    method TEXT NOT NULL,
    path TEXT NOT NULL,
    query TEXT NOT NULL DEFAULT '',
    headers_json TEXT NOT NULL DEFAULT '{}',
    body BLOB NOT NULL DEFAULT x'',
    body_length INTEGER NOT NULL DEFAULT 0,
    status INTEGER NOT NULL,
    response_body BLOB NOT NULL DEFAULT x'',
    response_length INTEGER NOT NULL DEFAULT 0,
    job_id TEXT
);
CREATE INDEX IF NOT EXISTS calls_job ON calls(job_id);
CREATE TABLE IF NOT EXISTS provider_objects (
    platform TEXT NOT NULL,
    kind TEXT NOT NULL,
    id TEXT NOT NULL,
    status TEXT NOT NULL,
    data_json TEXT NOT NULL DEFAULT '{}',
    job_id TEXT,
    due_at REAL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    PRIMARY KEY (platform, kind, id)
);
CREATE TABLE IF NOT EXISTS firings (
    subscription_id TEXT NOT NULL,
    due_at REAL NOT NULL,
    fired_at REAL NOT NULL,
    PRIMARY KEY (subscription_id, due_at)
);
"""

# Tables added after a release (calls, provider_objects: issue 18) need no entry here: `install` runs SCHEMA,
# whose CREATE TABLE IF NOT EXISTS adds a missing table to an older file.
# Columns added after a release: (table, column, definition, backfill SQL run once when the column is added).
# Jobs written before `profile` existed were delivered with X-JobId/X-JobAttempt on every platform but ReachFive:
# their AccessRC rows become accredit-like, so a job resumed after the upgrade (or redelivered) keeps its headers.
# Jobs finished before credentials were dropped at the end of a job lose theirs when `owner` is added (once).
# NULL body lengths and hashes mean "the stored body is whole": computed when read.
# A subscription stored before profiles existed fires with its platform's documented profile from now on.
# Jobs stored before `fault` existed carry none (NULL): no request of theirs is marked as a scenario fault.
MIGRATIONS = (
    (
        "jobs",
        "profile",
        "TEXT NOT NULL DEFAULT 'documented'",
        "UPDATE jobs SET profile = 'accredit-like' WHERE platform = 'accessrc'",
    ),
    (
        "jobs",
        "owner",
        "TEXT",
        "UPDATE jobs SET auth_json = json_remove(auth_json, '$.header_value', '$.password', '$.secret', "
        "'$.authorization') WHERE state IN ('succeeded', 'exhausted')",
    ),
    ("jobs", "lease_until", "REAL", None),
    ("jobs", "body_length", "INTEGER", None),
    ("jobs", "body_sha256", "TEXT", None),
    ("attempts", "request_body_length", "INTEGER", None),
    ("attempts", "request_body_sha256", "TEXT", None),
    ("subscriptions", "profile", "TEXT NOT NULL DEFAULT 'documented'", None),
    ("jobs", "fault", "TEXT", None),
)


def install(db: sqlite3.Connection) -> list[str]:
    """Create what a file lacks (a new file gets every table), then migrate it; the `table.column`s added."""
    db.executescript(SCHEMA)
    return migrate(db)


def migrate(db: sqlite3.Connection, migrations=MIGRATIONS) -> list[str]:
    """Add the columns an existing database file lacks (one transaction; a second process finds them added).
    Returns the `table.column`s added. An up-to-date file is only read (no write lock taken)."""

    def missing(table: str, column: str) -> bool:
        return column not in {row[1] for row in db.execute(f"PRAGMA table_info({table})")}

    if not any(missing(table, column) for table, column, _, _ in migrations):
        return []
    added = []
    db.execute("BEGIN IMMEDIATE")
    try:
        for table, column, definition, backfill in migrations:
            if not missing(table, column):  # another process may have added it meanwhile
                continue
            db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {definition}")
            if backfill:
                db.execute(backfill)
            added.append(f"{table}.{column}")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")
    return added


# -- PostgreSQL ------------------------------------------------------------------------------------------------------
# Version 1 is SCHEMA above with PostgreSQL's types, plus three functions for the loop's look into sent bodies (a body
# that is not JSON reads as NULL, as SQLite's json_valid makes it). A later change adds a numbered step here.
POSTGRES_SCHEMA_VERSION = 1
_POSTGRES_FUNCTIONS = r"""
CREATE OR REPLACE FUNCTION sim_jsonb(b BYTEA) RETURNS JSONB LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    RETURN convert_from(b, 'UTF8')::jsonb;
EXCEPTION WHEN others THEN
    RETURN NULL;
END $$;
CREATE OR REPLACE FUNCTION sim_json_text(b BYTEA, k TEXT) RETURNS TEXT LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN jsonb_typeof(j -> k) = 'string' THEN j ->> k END FROM (SELECT sim_jsonb(b) AS j) AS s
$$;
CREATE OR REPLACE FUNCTION sim_json_list_has(b BYTEA, l TEXT, k TEXT, v TEXT) RETURNS BOOLEAN LANGUAGE sql
IMMUTABLE AS $$
    SELECT EXISTS (
        SELECT 1 FROM (SELECT sim_jsonb(b) -> l AS a) AS s,
        jsonb_array_elements(CASE WHEN jsonb_typeof(s.a) = 'array' THEN s.a ELSE '[]'::jsonb END) AS item
        WHERE jsonb_typeof(item) = 'object' AND jsonb_typeof(item -> k) = 'string' AND item ->> k = v)
$$;
"""
# Every instance takes this lock (transaction-scoped) before it looks at the schema, so instances starting together
# install it once; the first one creates, the others find it done.
SCHEMA_LOCK = 0x61636373  # "accs"


def postgres_schema() -> str:
    """SCHEMA in PostgreSQL's words: identity keys, BYTEA for bytes, DOUBLE PRECISION for times, BIGINT for numbers."""
    ddl = SCHEMA.replace("INTEGER PRIMARY KEY AUTOINCREMENT", "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY")
    ddl = ddl.replace("BLOB NOT NULL DEFAULT x''", "BYTEA NOT NULL DEFAULT ''::bytea").replace(" BLOB", " BYTEA")
    ddl = re.sub(r"\bREAL\b", "DOUBLE PRECISION", ddl)
    ddl = re.sub(r"\bINTEGER\b(?! PRIMARY)", "BIGINT", ddl)
    return ddl + _POSTGRES_FUNCTIONS


def install_postgres(db) -> list[str]:
    """Bring a PostgreSQL database to POSTGRES_SCHEMA_VERSION in one transaction, under SCHEMA_LOCK; the steps
    applied (["postgresql schema v1"] on a new database, [] on an up-to-date one)."""
    with db.transaction():
        db.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
        db.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        row = db.execute("SELECT MAX(version) FROM schema_version").fetchone()
        current = row[0] or 0
        if current >= POSTGRES_SCHEMA_VERSION:
            return []
        db.execute(postgres_schema())
        db.execute("INSERT INTO schema_version (version) VALUES (%s)", (POSTGRES_SCHEMA_VERSION,))
        return [f"postgresql schema v{POSTGRES_SCHEMA_VERSION}"]
