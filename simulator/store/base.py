"""What the query modules (jobs, subscriptions, loop) ask of a database backend, and the few places where SQLite's
SQL and PostgreSQL's differ. The backends are sqlite.py (one file, the embedded default) and postgres.py (a shared
server, several instances); the query modules write `?` placeholders and SQL both understand."""

from __future__ import annotations


class StoreError(Exception):
    """A failure of a backend whose own exception types the callers do not import (PostgreSQL's): the original is
    its `__cause__`; `storage` tells a failure of the database itself from a mistake in the request."""

    def __init__(self, message: str, storage: bool = True, full: bool = False):
        super().__init__(message)
        self.storage = storage
        self.full = full


class Database:
    """The backend hooks the query mixins call; a backend class provides them all."""

    # Appended to a claim's SELECT so that concurrent claimers skip each other's rows instead of waiting on them
    # (PostgreSQL); SQLite needs none: its write transaction already lets one writer in at a time.
    SKIP_LOCKED = ""
    shared = False  # several servers use this database at once (PostgreSQL)

    def _connection(self):
        """This thread's connection: `.execute(sql, params)` returns a cursor (fetchone/fetchall/iteration/rowcount);
        rows read both by column name and by position."""
        raise NotImplementedError

    def _transaction(self):
        """A write transaction (a context manager giving the connection): committed on success, rolled back on
        error."""
        raise NotImplementedError

    def _feed_lock(self, db) -> None:
        """Called in a transaction right before it adds rows to the change feed (jobs, attempts, calls), whose ids
        readers follow: from here to its commit, no other transaction takes feed ids, so ids become visible in the
        order they were taken and a reader that has seen id N never later finds a smaller one appear. Take it as
        late as possible: it is held until the commit."""

    def _insert_id(self, db, sql: str, params, column: str = "id") -> int:
        """Run an INSERT of one row and return the id the database gave it (`column`)."""
        raise NotImplementedError

    def _insert_ids(self, db, sql: str, rows: list, column: str = "id") -> list[int]:
        """Run an INSERT once per row of `rows` and return the ids given, in order."""
        return [self._insert_id(db, sql, row, column) for row in rows]

    def _json_text(self, key_param: str = "?") -> str:
        """SQL of the text at top-level key `key_param` of a job's JSON `body` (NULL when the body is not JSON or
        has no such key, or the value there is not a string)."""
        raise NotImplementedError

    def _json_list_has(self) -> str:
        """SQL true when the job's JSON body has, under top-level key (1st parameter), a list holding an object
        whose key (2nd parameter) is the text (3rd parameter)."""
        raise NotImplementedError

    def scrub_wal(self) -> None:
        """Called after a commit that cleared credentials: a backend that keeps old page images in a log (SQLite's
        WAL) has them removed soon. None by default (PostgreSQL's server owns its files)."""

    def close(self) -> None:
        raise NotImplementedError

    def ping(self) -> None:
        raise NotImplementedError
