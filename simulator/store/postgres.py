"""PostgreSQL: one database shared by any number of `serve` instances (`--db postgresql://user:pass@host/db`).

psycopg 3 is imported only when such a URL is opened (`pip install 'accessrc-sim[postgresql]'`). The query modules
write `?` placeholders and SQL both backends understand; this module turns them into psycopg's `%s` (and SQLite's
`IS ?` / `IS NOT ?` into `IS [NOT] DISTINCT FROM`), gives rows that read by name and by position as sqlite3.Row does,
and turns psycopg's errors into StoreError so callers need not import psycopg.

How instances share the work (docs/architecture.md, "Several instances"):
- a claim reads due jobs `FOR UPDATE SKIP LOCKED`: two instances never claim the same job, nor wait on each other;
- the lease (owner, lease_until) is what moves a job to another instance: only once it has run out;
- a transaction that adds rows to the change feed (jobs, attempts, calls) takes one advisory lock right before
  those inserts and holds it to its commit, so ids become visible in order and a stream that has shown id N never
  misses a smaller one committed later;
- the schema is installed under an advisory lock, once, however many instances start together.
"""

from __future__ import annotations

import re
import threading
import weakref
from contextlib import contextmanager

from .base import Database, StoreError
from .schema import install_postgres

FEED_LOCK = 0x61636366  # "accf": held by a transaction that adds to the change feed, until it commits
URL_PREFIXES = ("postgresql://", "postgres://")


def is_postgres_url(path) -> bool:
    return isinstance(path, str) and path.startswith(URL_PREFIXES)


def display(path) -> str:
    """`path` as it may be printed: a URL's password replaced by ***."""
    text = str(path)
    if not is_postgres_url(text):
        return text
    return re.sub(r"^(postgres(?:ql)?://[^:/@]*:)[^@]*@", r"\1***@", text)


def _import_psycopg():
    try:
        import psycopg
    except ImportError:
        raise StoreError(
            "--db postgresql://… needs psycopg 3: pip install 'accessrc-sim[postgresql]' (or psycopg[binary])",
            storage=False,
        ) from None
    return psycopg


_IS_NOT = re.compile(r"\bIS NOT \?")
_IS = re.compile(r"\bIS \?")


def translate(sql: str) -> str:
    """The query modules' SQL in psycopg's placeholder style."""
    sql = sql.replace("%", "%%")
    sql = _IS_NOT.sub("IS DISTINCT FROM ?", sql)
    sql = _IS.sub("IS NOT DISTINCT FROM ?", sql)
    return sql.replace("?", "%s")


class Row:
    """A row by column name (`row["seq"]`) or position (`row[0]`), iterable like a tuple."""

    __slots__ = ("_values", "_names")

    def __init__(self, values, names: dict[str, int]):
        self._values = values
        self._names = names

    def __getitem__(self, key):
        return self._values[self._names[key] if isinstance(key, str) else key]

    def __iter__(self):
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def keys(self) -> list[str]:
        return list(self._names)


def _row_factory(cursor):
    names = {column.name: i for i, column in enumerate(cursor.description or ())}
    return lambda values: Row(values, names)


def _store_error(exc: BaseException) -> StoreError:
    state = getattr(exc, "sqlstate", None) or ""
    # 08 connection, 53 insufficient resources (53100 disk full), 57 operator intervention, 58 system error,
    # 40 serialization/deadlock, 55 lock not available, XX internal: the database's trouble, not the request's
    storage = state[:2] in {"08", "53", "57", "58", "40", "55", "XX", "23"} or not state
    return StoreError(f"PostgreSQL: {exc}".strip(), storage=storage, full=state == "53100")


class _Connection:
    """psycopg's connection with the query modules' placeholders; errors raised as StoreError."""

    def __init__(self, raw):
        self.raw = raw
        self._sql: dict[str, str] = {}
        self.feed_locked = False  # this transaction holds FEED_LOCK

    def _text(self, sql: str) -> str:
        text = self._sql.get(sql)
        if text is None:
            text = self._sql[sql] = translate(sql)
        return text

    def insert_many(self, sql: str, rows: list) -> list:
        """One INSERT … RETURNING per row, pipelined (one round trip for all); the first column of each result."""
        with _as_store_errors(), self.raw.cursor() as cur:
            cur.executemany(self._text(sql), [tuple(r) for r in rows], returning=True)
            out = []
            while True:
                out.append(cur.fetchone()[0])
                if not cur.nextset():
                    return out

    def execute(self, sql: str, params=()):
        text = self._text(sql)
        with _as_store_errors():
            return self.raw.execute(text, tuple(params) if params else None)


@contextmanager
def _as_store_errors():
    """psycopg's errors raised as StoreError (the original as its cause); any other exception as it is."""
    try:
        yield
    except StoreError:
        raise
    except Exception as exc:
        if type(exc).__module__.startswith("psycopg"):
            raise _store_error(exc) from exc
        raise


class _Tx:
    def __init__(self, conn: _Connection):
        self.conn = conn

    def __enter__(self) -> _Connection:
        self.conn.feed_locked = False
        self._run("BEGIN")
        return self.conn

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self._run("COMMIT")
        else:
            self._rollback()

    def _run(self, statement: str) -> None:
        """BEGIN or COMMIT; when it fails, the transaction is rolled back and the error raised as StoreError."""
        with _as_store_errors():
            try:
                self.conn.raw.execute(statement)
            except Exception:
                self._rollback()
                raise

    def _rollback(self) -> None:
        try:
            self.conn.raw.execute("ROLLBACK")
        except Exception:  # the connection is gone: the server rolls back itself
            pass


class PostgresDatabase(Database):
    """Connections (one per thread, autocommit with explicit transactions) to one PostgreSQL database."""

    SKIP_LOCKED = " FOR UPDATE SKIP LOCKED"

    def __init__(self, url: str, max_pages: int | None = None):
        self.path = url  # what was asked for, as SQLiteFile keeps its file's path
        self.max_pages = None  # a SQLite-only test knob
        self._psycopg = _import_psycopg()
        self._local = threading.local()
        self._all: weakref.WeakSet = weakref.WeakSet()  # every thread's connection, for close_all
        self._lock = threading.Lock()
        conn = self._connection()
        with _as_store_errors():
            self.migrated = install_postgres(conn.raw)

    def _connection(self) -> _Connection:
        conn = getattr(self._local, "db", None)
        if conn is None or conn.raw.closed:
            with _as_store_errors():
                raw = self._psycopg.connect(self.path, autocommit=True, row_factory=_row_factory, connect_timeout=10)
            conn = self._local.db = _Connection(raw)
            with self._lock:
                self._all.add(raw)
        return conn

    def _transaction(self) -> _Tx:
        return _Tx(self._connection())

    def _feed_lock(self, db) -> None:
        if not db.feed_locked:
            db.execute("SELECT pg_advisory_xact_lock(?)", (FEED_LOCK,)).fetchone()
            db.feed_locked = True

    def _insert_id(self, db, sql: str, params, column: str = "id") -> int:
        return db.execute(f"{sql} RETURNING {column}", params).fetchone()[0]

    def _insert_ids(self, db, sql: str, rows: list, column: str = "id") -> list[int]:
        return db.insert_many(f"{sql} RETURNING {column}", rows) if rows else []

    def _json_text(self, key_param: str = "?") -> str:
        return f"sim_json_text(body, {key_param})"

    def _json_list_has(self) -> str:
        return "sim_json_list_has(body, ?, ?, ?)"

    def close(self) -> None:
        """Close this thread's connection (another call reopens it)."""
        conn = getattr(self._local, "db", None)
        if conn is not None:
            conn.raw.close()
            self._local.db = None

    def close_all(self) -> None:
        """Close every thread's connection (a stopping server)."""
        with self._lock:
            for raw in list(self._all):
                try:
                    raw.close()
                except Exception:
                    pass
            self._all.clear()

    def ping(self) -> None:
        self._connection().execute("SELECT 1").fetchone()
