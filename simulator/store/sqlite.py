"""The SQLite file: one connection per thread (WAL, a busy timeout), short write transactions, one server per file.

Every write is a short transaction so a crash leaves either the old or the new row, never half of one.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from pathlib import Path

from .base import Database
from .postgres import is_postgres_url
from .schema import install

MAX_PAGE_COUNT = 4294967294  # SQLite's own ceiling (it lowers it to what the library allows)


class SQLiteFile(Database):
    """Connections and transactions over one database file; the query modules build on it. Safe to share across
    threads."""

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
        self._write_lock = threading.RLock()  # this process's writers, one at a time (see _transaction)
        self.write_lock = True  # False: leave the waiting to SQLite's busy handler (to measure the difference)
        self.migrated = install(self._connection())  # the `table.column`s this open added to an older file

    def _connection(self) -> sqlite3.Connection:
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
        def __init__(self, db: sqlite3.Connection, lock: threading.RLock | None):
            self.db, self.lock = db, lock

        def __enter__(self) -> sqlite3.Connection:
            if self.lock is not None:
                self.lock.acquire()
            try:
                self.db.execute("BEGIN IMMEDIATE")
            except BaseException:
                if self.lock is not None:
                    self.lock.release()
                raise
            return self.db

        def __exit__(self, exc_type, exc, tb) -> None:
            try:
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
            finally:
                if self.lock is not None:
                    self.lock.release()

    def _transaction(self) -> SQLiteFile._Tx:
        """A write transaction taken at once (BEGIN IMMEDIATE): committed on success, rolled back on error. One
        writer at a time: feed ids are visible in order already (no _feed_lock needed). This process's threads
        first queue for `_write_lock` (woken as soon as the writer before them commits) rather than in SQLite's
        busy handler, which sleeps 1, 2, 5, 10… ms between tries; other processes (send, run) still meet SQLite's
        own lock."""
        return SQLiteFile._Tx(self._connection(), self._write_lock if self.write_lock else None)

    def _insert_id(self, db, sql: str, params, column: str = "id") -> int:
        return db.execute(sql, params).lastrowid

    def _json_text(self, key_param: str = "?") -> str:
        body = "CAST(body AS TEXT)"
        return (
            f"(SELECT CASE WHEN typeof(v) = 'text' THEN v END FROM (SELECT CASE WHEN json_valid({body}) "
            f"THEN json_extract({body}, '$.' || {key_param}) END AS v))"
        )

    def _json_list_has(self) -> str:
        body = "CAST(body AS TEXT)"
        return (
            f"EXISTS (SELECT 1 FROM json_each(CASE WHEN json_valid({body}) THEN {body} ELSE '[]' END, '$.' || ?) "
            "AS item WHERE CASE WHEN item.type = 'object' THEN json_extract(item.value, '$.' || ?) END = ?)"
        )

    def close(self) -> None:
        """Close this thread's connection (another call reopens it)."""
        db = getattr(self._local, "db", None)
        if db is not None:
            db.close()
            self._local.db = self._local.max_pages = None

    def ping(self) -> None:
        """Raise when the database cannot answer (the health check)."""
        self._connection().execute("SELECT 1").fetchone()


class DatabaseInUse(RuntimeError):
    """Another server holds the database file."""


_HELD: dict[str, int] = {}  # lock file -> descriptor, kept open (and locked) until this process ends


def lock_for_serving(path: str | Path) -> Path | None:
    """Hold an exclusive OS lock (flock) on `<database>.lock`, beside the database, for the rest of this process's
    life: one server per database file. The kernel drops it when the process ends, however it ends (kill -9
    included), so no stale lock survives a crash. DatabaseInUse when another process holds it.
    Commands that only read or append to the file (send, run, admin-key) take no lock. Returns the lock file."""
    if str(path) == ":memory:" or is_postgres_url(str(path)):
        return None  # a PostgreSQL database is shared by design: any number of servers
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
        raise DatabaseInUse(
            f"another accessrc-sim serve{f' (pid {holder})' if holder.isdigit() else ''} is using "
            f"{path} (it holds {lock}); one server per database file: stop it, or give this one "
            "its own --db. send, run and admin-key work beside a running server."
        ) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)  # for the message above; the lock, not this, is what counts
    _HELD[str(lock)] = fd
    return lock
