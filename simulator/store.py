"""SQLite persistence: jobs (the delivery queue) and attempts (the delivery log).

One connection per thread, WAL, a busy timeout; every write is a short transaction so a crash leaves
either the old or the new row, never half of one.
"""
from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any, Iterator

from .auth import Auth
from .models import DELIVERING, PENDING, Attempt, Job

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
    profile TEXT NOT NULL DEFAULT 'documented'
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
    UNIQUE(job_id, number)
);
CREATE INDEX IF NOT EXISTS attempts_job ON attempts(job_id, number);
"""

# Jobs that the process which created them delivers itself (`accessrc-sim send`, scenario runs): a server's
# queue worker sharing the database never claims or recovers them, or both would send every attempt.
SELF_DRIVEN = ("cli", "scenario")
_QUEUED = f"source NOT IN ({', '.join('?' * len(SELF_DRIVEN))})"

JOB_COLUMNS = ("id", "event", "platform", "url", "body", "auth_json", "headers_json", "retry_delays_json", "timeout",
               "state", "attempts_made", "next_attempt_at", "created_at", "updated_at", "last_status", "last_error",
               "subscription_id", "source", "profile")

# Columns added after a release: (table, column, definition, backfill SQL run once when the column is added).
# Jobs written before `profile` existed were delivered with X-JobId/X-JobAttempt on every platform but ReachFive:
# their AccessRC rows become accredit-like, so a job resumed after the upgrade (or redelivered) keeps its headers.
MIGRATIONS = (
    ("jobs", "profile", "TEXT NOT NULL DEFAULT 'documented'",
     "UPDATE jobs SET profile = 'accredit-like' WHERE platform = 'accessrc'"),
)


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


class Store:
    """The SQLite file behind the queue and the log. Safe to share across threads."""

    def __init__(self, path: str | Path):
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            try:  # it keeps delivery credentials and the admin key: owner-only, as the private key (SQLite
                os.close(os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))  # gives -wal/-shm the same)
            except FileExistsError:
                pass
        self._local = threading.local()
        self.connection().executescript(SCHEMA)
        self.migrated = migrate(self.connection())

    # -- connections -----------------------------------------------------------------------------
    def connection(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
            db.row_factory = sqlite3.Row
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute("PRAGMA foreign_keys=ON")
            db.execute("PRAGMA busy_timeout=30000")
            self._local.db = db
        return db

    class _Tx:
        def __init__(self, db: sqlite3.Connection):
            self.db = db

        def __enter__(self) -> sqlite3.Connection:
            self.db.execute("BEGIN IMMEDIATE")
            return self.db

        def __exit__(self, exc_type, exc, tb) -> None:
            self.db.execute("ROLLBACK" if exc_type else "COMMIT")

    def transaction(self) -> "_Tx":
        return Store._Tx(self.connection())

    def close(self) -> None:
        db = getattr(self._local, "db", None)
        if db is not None:
            db.close()
            self._local.db = None

    # -- jobs ------------------------------------------------------------------------------------
    def add_job(self, job: Job, now: float | None = None) -> Job:
        now = time.time() if now is None else now
        job.created_at = job.updated_at = now
        if job.next_attempt_at is None and job.state == PENDING:
            job.next_attempt_at = now
        row = _job_row(job)
        with self.transaction() as db:
            db.execute(f"INSERT INTO jobs ({', '.join(JOB_COLUMNS)}) VALUES ({', '.join('?' * len(JOB_COLUMNS))})",
                       [row[c] for c in JOB_COLUMNS])
        return job

    def get_job(self, job_id: str) -> Job | None:
        row = self.connection().execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return _job_from_row(row) if row else None

    def list_jobs(self, event: str | None = None, subscription_id: str | None = None, state: str | None = None,
                  platform: str | None = None, limit: int = 100, offset: int = 0) -> list[Job]:
        where, args = [], []
        for column, value in (("event", event), ("subscription_id", subscription_id), ("state", state),
                              ("platform", platform)):
            if value is not None:
                where.append(f"{column} = ?")
                args.append(value)
        sql = "SELECT * FROM jobs" + (" WHERE " + " AND ".join(where) if where else "") + \
              " ORDER BY seq DESC LIMIT ? OFFSET ?"
        return [_job_from_row(r) for r in self.connection().execute(sql, [*args, limit, offset])]

    def count_jobs(self, state: str | None = None) -> int:
        if state is None:
            return self.connection().execute("SELECT COUNT(*) FROM jobs").fetchone()[0]
        return self.connection().execute("SELECT COUNT(*) FROM jobs WHERE state = ?", (state,)).fetchone()[0]

    def claim_due(self, now: float, limit: int = 10) -> list[Job]:
        """Mark up to `limit` due pending jobs as delivering and return them (one writer wins each job).
        Jobs of SELF_DRIVEN sources are never claimed: the process that created them is delivering them."""
        with self.transaction() as db:
            rows = db.execute(f"SELECT * FROM jobs WHERE state = ? AND next_attempt_at <= ? AND {_QUEUED} "
                              "ORDER BY next_attempt_at, seq LIMIT ?", (PENDING, now, *SELF_DRIVEN, limit)).fetchall()
            jobs = [_job_from_row(r) for r in rows]
            for job in jobs:
                db.execute("UPDATE jobs SET state = ?, updated_at = ? WHERE id = ?", (DELIVERING, now, job.id))
                job.state = DELIVERING
        return jobs

    def mark_delivering(self, job: Job, now: float) -> None:
        with self.transaction() as db:
            db.execute("UPDATE jobs SET state = ?, updated_at = ? WHERE id = ?", (DELIVERING, now, job.id))
        job.state = DELIVERING

    def finish_attempt(self, job: Job, attempt: Attempt) -> None:
        """Record `attempt` and the job's new state in one transaction."""
        with self.transaction() as db:
            attempt.id = db.execute(
                "INSERT INTO attempts (job_id, number, started_at, duration_ms, url, request_headers_json, "
                "request_body, status, response_headers_json, response_body, error) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (attempt.job_id, attempt.number, attempt.started_at, attempt.duration_ms, attempt.url,
                 json.dumps(attempt.request_headers), attempt.request_body, attempt.status,
                 json.dumps(attempt.response_headers), attempt.response_body, attempt.error)).lastrowid
            db.execute("UPDATE jobs SET state = ?, attempts_made = ?, next_attempt_at = ?, updated_at = ?, "
                       "last_status = ?, last_error = ? WHERE id = ?",
                       (job.state, job.attempts_made, job.next_attempt_at, job.updated_at, job.last_status,
                        job.last_error, job.id))

    def update_job(self, job: Job) -> None:
        row = _job_row(job)
        cols = [c for c in JOB_COLUMNS if c != "id"]
        with self.transaction() as db:
            db.execute(f"UPDATE jobs SET {', '.join(c + ' = ?' for c in cols)} WHERE id = ?",
                       [row[c] for c in cols] + [job.id])

    def recover_interrupted(self, now: float | None = None) -> list[str]:
        """After a crash: jobs left `delivering` go back to pending, due now. Their attempt number continues
        from the attempts actually recorded, so only the attempt in flight at the crash can be sent again."""
        now = time.time() if now is None else now
        with self.transaction() as db:
            ids = [r[0] for r in db.execute(f"SELECT id FROM jobs WHERE state = ? AND {_QUEUED}",
                                            (DELIVERING, *SELF_DRIVEN))]
            db.execute(f"UPDATE jobs SET state = ?, next_attempt_at = ?, updated_at = ? WHERE state = ? AND {_QUEUED}",
                       (PENDING, now, now, DELIVERING, *SELF_DRIVEN))
        return ids

    def next_due_at(self) -> float | None:
        row = self.connection().execute(f"SELECT MIN(next_attempt_at) FROM jobs WHERE state = ? AND {_QUEUED}",
                                        (PENDING, *SELF_DRIVEN)).fetchone()
        return row[0]

    # -- attempts --------------------------------------------------------------------------------
    def attempts(self, job_id: str) -> list[Attempt]:
        rows = self.connection().execute("SELECT * FROM attempts WHERE job_id = ? ORDER BY number", (job_id,))
        return [_attempt_from_row(r) for r in rows]

    def recent_attempts(self, since_id: int = 0, limit: int = 200) -> list[Attempt]:
        rows = self.connection().execute("SELECT * FROM attempts WHERE id > ? ORDER BY id LIMIT ?", (since_id, limit))
        return [_attempt_from_row(r) for r in rows]

    def execute(self, sql: str, args: Any = ()) -> Iterator[sqlite3.Row]:
        return self.connection().execute(sql, args)


def _job_row(job: Job) -> dict:
    return {"id": job.id, "event": job.event, "platform": job.platform, "url": job.url, "body": job.body,
            "auth_json": json.dumps(job.auth.to_dict()), "headers_json": json.dumps(job.headers),
            "retry_delays_json": json.dumps(list(job.retry_delays)), "timeout": job.timeout, "state": job.state,
            "attempts_made": job.attempts_made, "next_attempt_at": job.next_attempt_at,
            "created_at": job.created_at, "updated_at": job.updated_at, "last_status": job.last_status,
            "last_error": job.last_error, "subscription_id": job.subscription_id, "source": job.source,
            "profile": job.profile}


def _job_from_row(row: sqlite3.Row) -> Job:
    return Job(id=row["id"], event=row["event"], platform=row["platform"], url=row["url"], body=bytes(row["body"]),
               auth=Auth.from_dict(json.loads(row["auth_json"])), headers=json.loads(row["headers_json"]),
               retry_delays=tuple(json.loads(row["retry_delays_json"])), timeout=row["timeout"], state=row["state"],
               attempts_made=row["attempts_made"], next_attempt_at=row["next_attempt_at"],
               created_at=row["created_at"], updated_at=row["updated_at"], last_status=row["last_status"],
               last_error=row["last_error"], subscription_id=row["subscription_id"], source=row["source"],
               profile=row["profile"])


def _attempt_from_row(row: sqlite3.Row) -> Attempt:
    return Attempt(id=row["id"], job_id=row["job_id"], number=row["number"], started_at=row["started_at"],
                   duration_ms=row["duration_ms"], url=row["url"],
                   request_headers=json.loads(row["request_headers_json"]), request_body=bytes(row["request_body"]),
                   status=row["status"], response_headers=json.loads(row["response_headers_json"]),
                   response_body=bytes(row["response_body"]), error=row["error"])


