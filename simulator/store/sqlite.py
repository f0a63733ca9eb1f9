"""The SQLite file: one connection per thread (WAL, a busy timeout), short write transactions, one server per file.

Every write is a short transaction so a crash leaves either the old or the new row, never half of one.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from pathlib import Path

from .base import Database, StoreError
from .postgres import is_postgres_url
from .schema import install

MAX_PAGE_COUNT = 4294967294  # SQLite's own ceiling (it lowers it to what the library allows)
SCRUB_DELAY = 1.0  # seconds: cleared credentials leave the -wal file this soon (one checkpoint per this, at most)
SCRUB_TRIES = 5  # checkpoints tried while the file is busy

log = logging.getLogger("accessrc_sim.store")


class SQLiteFile(Database):
    """Connections and transactions over one database file; the query modules build on it. Safe to share across
    threads."""

    def __init__(self, path: str | Path, max_pages: int | None = None):
        self.path = str(path)
        if is_sqlite_uri(self.path):
            raise StoreError(uri_refused(self.path), storage=False)
        self.max_pages = max_pages  # SQLite max_page_count on every connection: how tests make the disk full
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            try:  # it keeps delivery credentials and the admin key: owner-only, as the private key (SQLite
                os.close(os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))  # gives -wal/-shm the same)
            except FileExistsError:
                pass
            _lock_when_made(self.path)
        self._local = threading.local()
        self._scrub_lock = threading.Lock()
        self._scrub_timer: threading.Timer | None = None  # a checkpoint to come (scrub_wal)
        self._scrubbed_at = float("-inf")  # time.monotonic() of the last one
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
            db.execute("PRAGMA secure_delete=ON")  # what a write removes (cleared credentials) is zeroed, not left
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

    def scrub_wal(self) -> None:
        """Credentials were just cleared from jobs: their old page images stay in the `-wal` file until a
        checkpoint copies the pages back and the log is cut. Within SCRUB_DELAY (at most one checkpoint per
        SCRUB_DELAY, on a thread of its own: the queue never waits for it), a `wal_checkpoint(TRUNCATE)` empties
        it; secure_delete has zeroed what the update freed in the main file. A checkpoint that finds the file busy
        (a reader in another process, say) is tried again SCRUB_DELAY later, up to SCRUB_TRIES times."""
        if self.path == ":memory:":
            return
        with self._scrub_lock:
            if self._scrub_timer is not None:
                return  # one is coming: it copies these pages too
            wait = max(0.0, self._scrubbed_at + SCRUB_DELAY - time.monotonic())
            self._scrub_timer = threading.Timer(wait, self._checkpoint, args=(SCRUB_TRIES,))
            self._scrub_timer.daemon = True
            self._scrub_timer.start()

    def _checkpoint(self, tries: int) -> None:
        busy = True
        try:
            db = sqlite3.connect(self.path, timeout=0.2, isolation_level=None, check_same_thread=False)
            try:
                db.execute("PRAGMA busy_timeout=200")
                with self._write_lock:  # this process's writers wait a moment (a few ms); the others meet SQLITE_BUSY
                    busy = db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0] != 0
            finally:
                db.close()
        except sqlite3.Error as exc:  # gone, full, locked: the next clearing (or the retry) tries again
            log.debug("checkpoint of %s failed: %s", self.path, exc)
        with self._scrub_lock:
            self._scrubbed_at = time.monotonic()
            self._scrub_timer = None
            if busy and tries > 1:
                self._scrub_timer = threading.Timer(SCRUB_DELAY, self._checkpoint, args=(tries - 1,))
                self._scrub_timer.daemon = True
                self._scrub_timer.start()

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


def is_sqlite_uri(path: str) -> bool:
    """A `file:` name, which this SQLite (built with SQLITE_USE_URI) reads as a URI whatever the open flags say."""
    return path[:5].lower() == "file:"


def uri_refused(path: str) -> str:
    return (
        f"{path[:200]}: a SQLite `file:` URI is not taken as the database (SQLite would read it as a URI, the "
        "one-server lock as a file name: two servers could share one file); give the database file's path"
    )


class DatabaseInUse(RuntimeError):
    """Another server holds the database file."""


_HELD: dict[tuple[int, int], tuple[int, int]] = {}  # (st_dev, st_ino) -> descriptors kept open and locked
_PENDING: dict[str, int] = {}  # real path -> its held `.lock`: a file to lock once SQLiteFile has made it
_NEVER_CLOSED: list[int] = []  # descriptors of database files another server holds (see lock_for_serving)


def lock_for_serving(path: str | Path) -> Path | None:
    """Hold, for the rest of this process's life, an exclusive OS lock (flock) on the database file itself: one
    server per database file, by the file's identity, so every path to it (a symbolic link, a hard link, another
    spelling) meets the same lock. SQLite locks byte ranges of the file with POSIX (fcntl) locks, which on Linux are
    independent of flock, so `send`, `run` and `admin-key` still work beside a server; the descriptor is never
    closed while the process lives (closing any descriptor of the file would drop SQLite's POSIX locks). Also held:
    `<database>.lock` beside the real path (what servers before this one locked; it keeps the holder's pid for the
    message). The kernel drops both when the process ends, however it ends (kill -9 included), so no stale lock
    survives a crash. DatabaseInUse when another process holds either. Returns the lock file."""
    path = str(path)
    if path == ":memory:" or is_postgres_url(path):
        return None  # a PostgreSQL database is shared by design: any number of servers
    if is_sqlite_uri(path):
        raise StoreError(uri_refused(path), storage=False)
    try:
        import fcntl
    except ImportError:  # no flock on this system: one server per file is then up to you
        return None
    real = os.path.realpath(path)
    Path(real).parent.mkdir(parents=True, exist_ok=True)
    lock = Path(real + ".lock")
    if real in _PENDING:
        return lock
    try:
        st = os.stat(real)
        if (st.st_dev, st.st_ino) in _HELD:
            return lock  # this process holds it already
    except FileNotFoundError:  # not made yet: no other path can lead to it, its own path's lock is enough until
        st = None  # SQLiteFile makes it (_lock_when_made); a failed start then leaves no empty database behind
    lock_fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        holder = os.pread(lock_fd, 32, 0).decode("ascii", "replace").strip()
        os.close(lock_fd)
        raise DatabaseInUse(_in_use(path, real, holder)) from None
    os.ftruncate(lock_fd, 0)
    os.pwrite(lock_fd, f"{os.getpid()}\n".encode(), 0)  # for the message above; the locks are what count
    if st is None:
        _PENDING[real] = lock_fd
    else:
        _lock_file(real, lock_fd, path)
    return lock


def _lock_file(real: str, lock_fd: int, named: str) -> None:
    """The flock on the database file itself (DatabaseInUse when another process holds it)."""
    import fcntl

    db_fd = os.open(real, os.O_RDONLY)
    st = os.fstat(db_fd)
    identity = (st.st_dev, st.st_ino)
    try:
        fcntl.flock(db_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(lock_fd)
        _NEVER_CLOSED.append(db_fd)  # closing it would drop this process's SQLite locks on the file, if any
        holder = _flock_holder(identity)
        # the path the running server opened: through a hard link, `real` is this link, not the server's file name
        opened = _opened_by(holder, identity) if holder else ""
        raise DatabaseInUse(_in_use(named, opened or real, holder)) from None
    _HELD[identity] = (db_fd, lock_fd)


def _lock_when_made(path: str) -> None:
    """SQLiteFile has made (or found) the file lock_for_serving was asked to hold before it existed: lock it."""
    if not _PENDING:
        return
    real = os.path.realpath(path)
    lock_fd = _PENDING.pop(real, None)
    if lock_fd is not None:
        try:
            _lock_file(real, lock_fd, path)
        except DatabaseInUse as exc:
            raise StoreError(str(exc), storage=False) from None


def _in_use(named: str, real: str, holder: str) -> str:
    return (
        f"another accessrc-sim serve{f' (pid {holder})' if holder.isdigit() else ''} is using "
        f"{named} (the same file as {real}, however it is named); one server per database file: stop it, "
        "or give this one its own --db. send, run and admin-key work beside a running server."
    )


def _opened_by(pid: str, identity: tuple[int, int]) -> str:
    """The path by which process `pid` opened the file `identity` (st_dev, st_ino), from Linux's /proc/<pid>/fd (a
    process of the same user); "" if unknown."""
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            link = f"/proc/{pid}/fd/{fd}"
            try:
                st = os.stat(link)
                if (st.st_dev, st.st_ino) == identity:
                    return os.readlink(link)
            except OSError:
                continue
    except OSError:
        pass
    return ""


def _flock_holder(identity: tuple[int, int]) -> str:
    """The pid holding a flock on the file `identity` (st_dev, st_ino), from Linux's /proc/locks; "" if unknown."""
    try:
        with open("/proc/locks", encoding="ascii", errors="replace") as fh:
            for line in fh:
                parts = line.split()
                if len(parts) >= 6 and parts[1] == "FLOCK":
                    major, minor, inode = parts[5].split(":")
                    if int(inode) == identity[1] and os.makedev(int(major, 16), int(minor, 16)) == identity[0]:
                        return parts[4]
    except (OSError, ValueError):
        pass
    return ""
