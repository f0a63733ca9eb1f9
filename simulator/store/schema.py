"""The one schema of the simulator's SQLite file, and the columns added to it since a release (migrations)."""

from __future__ import annotations

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
CREATE INDEX IF NOT EXISTS jobs_due ON jobs(state, next_attempt_at);
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
