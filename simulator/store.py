"""SQLite persistence: jobs (the delivery queue) and attempts (the delivery log).

One connection per thread, WAL, a busy timeout; every write is a short transaction so a crash leaves
either the old or the new row, never half of one.
"""
from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any, Iterator

from .auth import Auth
from .models import DELIVERING, FINAL_STATES, PENDING, Attempt, Job

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
    body_sha256 TEXT
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
"""

# Jobs that the process which created them delivers itself (`accessrc-sim send`, scenario runs): a server's
# queue worker sharing the database never claims or recovers them, or both would send every attempt.
SELF_DRIVEN = ("cli", "scenario")
_QUEUED = f"source NOT IN ({', '.join('?' * len(SELF_DRIVEN))})"

# Bytes of a request body kept in an attempt row (with the whole body's length and SHA-256). A job row keeps the
# body it sends, whole, so retries and redelivery send the same bytes; only a scenario step's job (sent once, from
# the run's memory, e.g. the oversized_body fault) is kept like an attempt, and so cannot be redelivered.
STORED_BODY_CAP = 64 * 1024
CAPPED_JOB_SOURCES = ("scenario",)
# A server's claim on a job it is delivering lasts this long and is renewed while the attempt runs; a job left
# `delivering` by a server that died is claimed again only once its lease has run out.
LEASE_SECONDS = 15.0
MAX_PAGE_COUNT = 4294967294  # SQLite's own ceiling (it lowers it to what the library allows)

JOB_COLUMNS = ("id", "event", "platform", "url", "body", "auth_json", "headers_json", "retry_delays_json", "timeout",
               "state", "attempts_made", "next_attempt_at", "created_at", "updated_at", "last_status", "last_error",
               "subscription_id", "source", "profile", "body_length", "body_sha256")

# Columns added after a release: (table, column, definition, backfill SQL run once when the column is added).
# Jobs written before `profile` existed were delivered with X-JobId/X-JobAttempt on every platform but ReachFive:
# their AccessRC rows become accredit-like, so a job resumed after the upgrade (or redelivered) keeps its headers.
# Jobs finished before credentials were dropped at the end of a job lose theirs when `owner` is added (once).
# NULL body lengths and hashes mean "the stored body is whole": computed when read.
MIGRATIONS = (
    ("jobs", "profile", "TEXT NOT NULL DEFAULT 'documented'",
     "UPDATE jobs SET profile = 'accredit-like' WHERE platform = 'accessrc'"),
    ("jobs", "owner", "TEXT",
     "UPDATE jobs SET auth_json = json_remove(auth_json, '$.header_value', '$.password', '$.secret', "
     "'$.authorization') WHERE state IN ('succeeded', 'exhausted')"),
    ("jobs", "lease_until", "REAL", None),
    ("jobs", "body_length", "INTEGER", None),
    ("jobs", "body_sha256", "TEXT", None),
    ("attempts", "request_body_length", "INTEGER", None),
    ("attempts", "request_body_sha256", "TEXT", None),
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


class DatabaseInUse(RuntimeError):
    """Another server holds the database file."""


_HELD: dict[str, int] = {}  # lock file -> descriptor, kept open (and locked) until this process ends


def lock_for_serving(path: str | Path) -> Path | None:
    """Hold an exclusive OS lock (flock) on `<database>.lock`, beside the database, for the rest of this process's
    life: one server per database file. The kernel drops it when the process ends, however it ends (kill -9
    included), so no stale lock survives a crash. DatabaseInUse when another process holds it.
    Commands that only read or append to the file (send, run, admin-key) take no lock. Returns the lock file."""
    if str(path) == ":memory:":
        return None
    try:
        import fcntl
    except ImportError:  # no flock on this system: one server per file is then up to you
        return None
    lock = Path(os.path.realpath(path) + ".lock")
    if str(lock) in _HELD:
        return lock
    lock.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
        os.close(fd)
        raise DatabaseInUse(f"another accessrc-sim serve{f' (pid {holder})' if holder.isdigit() else ''} is using "
                            f"{path} (it holds {lock}); one server per database file: stop it, or give this one "
                            "its own --db. send, run and admin-key work beside a running server.") from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)  # for the message above; the lock, not this, is what counts
    _HELD[str(lock)] = fd
    return lock


class Store:
    """The SQLite file behind the queue and the log. Safe to share across threads."""

    def __init__(self, path: str | Path, max_pages: int | None = None):
        self.path = str(path)
        self.max_pages = max_pages  # SQLite max_page_count on every connection: how tests make the disk full
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
        if getattr(self._local, "max_pages", None) != self.max_pages:  # set or lifted since this thread connected
            db.execute(f"PRAGMA max_page_count = {int(self.max_pages or MAX_PAGE_COUNT)}")
            self._local.max_pages = self.max_pages
        return db

    class _Tx:
        def __init__(self, db: sqlite3.Connection):
            self.db = db

        def __enter__(self) -> sqlite3.Connection:
            self.db.execute("BEGIN IMMEDIATE")
            return self.db

        def __exit__(self, exc_type, exc, tb) -> None:
            if exc_type is None:
                try:
                    self.db.execute("COMMIT")
                    return
                except BaseException:
                    if self.db.in_transaction:
                        self.db.execute("ROLLBACK")
                    raise
            if self.db.in_transaction:  # SQLite may have rolled back already (a full disk, an I/O error)
                self.db.execute("ROLLBACK")

    def transaction(self) -> "_Tx":
        return Store._Tx(self.connection())

    def close(self) -> None:
        db = getattr(self._local, "db", None)
        if db is not None:
            db.close()
            self._local.db = self._local.max_pages = None

    # -- jobs ------------------------------------------------------------------------------------
    def add_job(self, job: Job, now: float | None = None) -> Job:
        now = time.time() if now is None else now
        job.created_at = job.updated_at = now
        if job.next_attempt_at is None and job.state == PENDING:
            job.next_attempt_at = now
        row = _job_row(job)
        job.body_length, job.body_sha256 = row["body_length"], row["body_sha256"]
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

    def claim_due(self, now: float, limit: int = 10, owner: str | None = None,
                  lease: float = LEASE_SECONDS) -> list[Job]:
        """Mark up to `limit` due jobs as delivering by `owner` until `now + lease` and return them (one writer
        wins each job). Due: pending and due, or delivering under another owner's lease that has run out (a
        server that died mid-attempt; the attempt number continues from the attempts recorded).
        Jobs of SELF_DRIVEN sources are never claimed: the process that created them is delivering them."""
        with self.transaction() as db:
            rows = db.execute(
                f"SELECT * FROM jobs WHERE state = ? AND next_attempt_at <= ? AND {_QUEUED} "
                "ORDER BY next_attempt_at, seq LIMIT ?", (PENDING, now, *SELF_DRIVEN, limit)).fetchall()
            if len(rows) < limit:
                rows += db.execute(
                    f"SELECT * FROM jobs WHERE state = ? AND (lease_until IS NULL OR lease_until <= ?) "
                    f"AND (owner IS NULL OR owner IS NOT ?) AND {_QUEUED} ORDER BY seq LIMIT ?",
                    (DELIVERING, now, owner, *SELF_DRIVEN, limit - len(rows))).fetchall()
            jobs = [_job_from_row(r) for r in rows]
            for job in jobs:
                db.execute("UPDATE jobs SET state = ?, updated_at = ?, owner = ?, lease_until = ? WHERE id = ?",
                           (DELIVERING, now, owner, now + lease, job.id))
                job.state = DELIVERING
        return jobs

    def renew_leases(self, owner: str, job_ids, until: float) -> int:
        """Extend `owner`'s lease on the jobs it is still delivering; the number renewed."""
        ids = list(job_ids)
        if not ids:
            return 0
        with self.transaction() as db:
            return db.execute(f"UPDATE jobs SET lease_until = ? WHERE owner = ? AND state = ? AND id IN "
                              f"({', '.join('?' * len(ids))})", (until, owner, DELIVERING, *ids)).rowcount

    def release(self, job: Job, due: float, owner: str | None = None) -> bool:
        """Give a claimed job back, due at `due`, its attempt count unchanged (nothing was recorded)."""
        with self.transaction() as db:
            return db.execute("UPDATE jobs SET state = ?, next_attempt_at = ?, owner = NULL, lease_until = NULL "
                              "WHERE id = ? AND state = ? AND owner IS ?",
                              (PENDING, due, job.id, DELIVERING, owner)).rowcount > 0

    def mark_delivering(self, job: Job, now: float) -> None:
        with self.transaction() as db:
            db.execute("UPDATE jobs SET state = ?, updated_at = ? WHERE id = ?", (DELIVERING, now, job.id))
        job.state = DELIVERING

    def finish_attempt(self, job: Job, attempt: Attempt, owner: str | None = None) -> None:
        """Record `attempt` and the job's new state in one transaction. With `owner`, only while the job is still
        claimed by it (LeaseLost otherwise: another server took it over; nothing is recorded).
        At most STORED_BODY_CAP bytes of the request body are kept, with its length and SHA-256 (set on
        `attempt` too); a job that ends drops its credentials (redelivery takes its subscription's)."""
        body, length, sha256 = _capped(attempt.request_body, STORED_BODY_CAP)
        with self.transaction() as db:
            fence = " AND owner = ? AND state = ?" if owner is not None else ""
            changed = db.execute(
                "UPDATE jobs SET state = ?, attempts_made = ?, next_attempt_at = ?, updated_at = ?, last_status = ?, "
                f"last_error = ?, auth_json = ?, owner = NULL, lease_until = NULL WHERE id = ?{fence}",
                (job.state, job.attempts_made, job.next_attempt_at, job.updated_at, job.last_status, job.last_error,
                 _auth_json(job), job.id, *((owner, DELIVERING) if owner is not None else ()))).rowcount
            if owner is not None and changed == 0:
                raise LeaseLost(f"job {job.id} is no longer claimed by this server (its lease ran out and another "
                                f"server claimed it); attempt {attempt.number} was not recorded here")
            attempt.id = db.execute(
                "INSERT INTO attempts (job_id, number, started_at, duration_ms, url, request_headers_json, "
                "request_body, status, response_headers_json, response_body, error, request_body_length, "
                "request_body_sha256) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (attempt.job_id, attempt.number, attempt.started_at, attempt.duration_ms, attempt.url,
                 json.dumps(attempt.request_headers), body, attempt.status,
                 json.dumps(attempt.response_headers), attempt.response_body, attempt.error, length,
                 sha256)).lastrowid
        attempt.request_body, attempt.request_body_length, attempt.request_body_sha256 = body, length, sha256

    def update_job(self, job: Job) -> None:
        """Write every column of `job` (its claim, if any, ends)."""
        row = _job_row(job)
        cols = [c for c in JOB_COLUMNS if c != "id"]
        with self.transaction() as db:
            db.execute(f"UPDATE jobs SET {', '.join(c + ' = ?' for c in cols)}, owner = NULL, lease_until = NULL "
                       "WHERE id = ?", [row[c] for c in cols] + [job.id])

    def recover_interrupted(self, now: float | None = None) -> list[str]:
        """At a start: the jobs left `delivering` by a stop or a crash. Those whose lease has run out go back to
        pending, due now; the others are claimed when their lease runs out (claim_due). Their attempt number
        continues from the attempts actually recorded, so only the attempt in flight at the crash is sent again."""
        now = time.time() if now is None else now
        expired = "(lease_until IS NULL OR lease_until <= ?)"
        with self.transaction() as db:
            ids = [r[0] for r in db.execute(f"SELECT id FROM jobs WHERE state = ? AND {_QUEUED} ORDER BY seq",
                                            (DELIVERING, *SELF_DRIVEN))]
            db.execute(f"UPDATE jobs SET state = ?, next_attempt_at = ?, updated_at = ?, owner = NULL, "
                       f"lease_until = NULL WHERE state = ? AND {expired} AND {_QUEUED}",
                       (PENDING, now, now, DELIVERING, now, *SELF_DRIVEN))
        return ids

    def purge_finished(self, before: float, batch: int = 500) -> int:
        """Delete finished jobs last changed before `before`, with their attempts (retention); the number deleted.
        Short transactions of `batch` jobs, so deliveries never wait long for the write lock."""
        deleted = 0
        finals = ", ".join("?" * len(FINAL_STATES))
        while True:
            with self.transaction() as db:
                ids = [r[0] for r in db.execute(f"SELECT id FROM jobs WHERE state IN ({finals}) AND updated_at < ? "
                                                "LIMIT ?", (*FINAL_STATES, before, batch))]
                if not ids:
                    return deleted
                marks = ", ".join("?" * len(ids))
                db.execute(f"DELETE FROM attempts WHERE job_id IN ({marks})", ids)
                if db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'redeliveries'").fetchone():
                    db.execute(f"DELETE FROM redeliveries WHERE job_id IN ({marks})", ids)
                db.execute(f"DELETE FROM jobs WHERE id IN ({marks})", ids)
            deleted += len(ids)

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


class LeaseLost(RuntimeError):
    """The job was claimed by another server after this one's lease ran out."""


def storage_error(exc: BaseException) -> bool:
    """True for a failure of the database itself (full disk, I/O, locked too long), not of the caller's input."""
    return isinstance(exc, sqlite3.Error) and not isinstance(exc, (sqlite3.ProgrammingError, sqlite3.InterfaceError))


def storage_full(exc: BaseException) -> bool:
    """True when SQLite could not write because the disk (or the database's page limit) is full."""
    return isinstance(exc, sqlite3.Error) and (getattr(exc, "sqlite_errorname", "") == "SQLITE_FULL"
                                                or "database or disk is full" in str(exc))


def _capped(body: bytes, cap: int) -> tuple[bytes, int | None, str | None]:
    """(the bytes to store, the whole length, its SHA-256): length and hash always set for new rows."""
    return body[:cap], len(body), hashlib.sha256(body).hexdigest()


def _auth_json(job: Job) -> str:
    """A job keeps its credentials only while it can still be sent; a finished one keeps the kind alone."""
    return json.dumps((job.auth.without_secrets() if job.finished else job.auth).to_dict())


def _job_row(job: Job) -> dict:
    if job.body_length is not None and job.body_length > len(job.body):  # read back already cut: keep as stored
        body, length, sha256 = job.body, job.body_length, job.body_sha256
    else:
        body, length, sha256 = _capped(job.body, STORED_BODY_CAP if job.source in CAPPED_JOB_SOURCES
                                       else len(job.body))
    return {"id": job.id, "event": job.event, "platform": job.platform, "url": job.url, "body": body,
            "body_length": length, "body_sha256": sha256,
            "auth_json": _auth_json(job), "headers_json": json.dumps(job.headers),
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
               profile=row["profile"], body_length=row["body_length"], body_sha256=row["body_sha256"])


def _attempt_from_row(row: sqlite3.Row) -> Attempt:
    return Attempt(id=row["id"], job_id=row["job_id"], number=row["number"], started_at=row["started_at"],
                   duration_ms=row["duration_ms"], url=row["url"],
                   request_headers=json.loads(row["request_headers_json"]), request_body=bytes(row["request_body"]),
                   status=row["status"], response_headers=json.loads(row["response_headers_json"]),
                   response_body=bytes(row["response_body"]), error=row["error"],
                   request_body_length=row["request_body_length"], request_body_sha256=row["request_body_sha256"])


