"""The simulator's database, and the only place with SQL: one schema (schema.py), jobs, attempts and the change
feed (jobs.py), subscriptions, redelivery links and settings (subscriptions.py), the loop (loop.py), over one
SQLite file (sqlite.py, the embedded default) or a PostgreSQL database shared by several instances (postgres.py).

`Store(path_or_url)` opens either: a `postgresql://` URL gives a PostgresStore, anything else a SQLite file. Both
provide these, with the contracts in their docstrings, and nothing else is called from outside:

    open/close    Store(path), close(), ping(), migrated, shared (several servers may use it)
    jobs          add_job, update_job, get_job, job_seq, query_jobs, count_jobs, count_by_state
    queue         claim_due, renew_leases, release, mark_delivering, finish_attempt, finish_attempts (a batch in
                  one transaction), recover_interrupted, next_due_at, purge_finished
    attempts      attempts, recent_attempts
    change feed   feed_position, then query_jobs(after_seq=...), query_jobs(state=...), recent_attempts(since_id)
    subscriptions add_subscription, save_subscription, get_subscription, list_subscriptions, delete_subscription,
                  count_fired, claim_firing, link_redelivery, redelivery_of
    settings      setting, set_setting_once, put_setting
    the loop      add_call, query_calls, calls_after, last_call_id (the change feed's calls); add_provider_object,
                  save_provider_object, get_provider_object, list_provider_objects; find_sent_job, sent_values
                  (ids found in sent job bodies)
    errors        LeaseLost; DATABASE_ERRORS (the backends' exception types, for `except`); storage_error(exc) and
                  storage_full(exc) tell the backend's own failures apart
"""

from __future__ import annotations

import sqlite3

from .base import StoreError
from .jobs import LEASE_SECONDS, JobQueries, LeaseLost
from .loop import Call, LoopQueries, ProviderObject
from .postgres import PostgresDatabase, display, is_postgres_url
from .sqlite import DatabaseInUse, SQLiteFile, is_sqlite_uri, lock_for_serving, uri_refused
from .subscriptions import SubscriptionQueries

__all__ = [
    "Store",
    "Call",
    "ProviderObject",
    "LeaseLost",
    "LEASE_SECONDS",
    "DATABASE_ERRORS",
    "StoreError",
    "is_postgres_url",
    "display",
    "DatabaseInUse",
    "lock_for_serving",
    "is_sqlite_uri",
    "uri_refused",
    "storage_error",
    "storage_full",
]


DATABASE_ERRORS: tuple[type[BaseException], ...] = (sqlite3.Error, StoreError)  # what `except` catches around a store


def storage_error(exc: BaseException) -> bool:
    """True for a failure of the database itself (full disk, I/O, locked too long, connection lost), not of the
    caller's input."""
    if isinstance(exc, StoreError):
        return exc.storage
    return isinstance(exc, sqlite3.Error) and not isinstance(exc, (sqlite3.ProgrammingError, sqlite3.InterfaceError))


def storage_full(exc: BaseException) -> bool:
    """True when the database could not write because its disk (or SQLite's page limit) is full."""
    if isinstance(exc, StoreError):
        return exc.full
    return isinstance(exc, sqlite3.Error) and (
        getattr(exc, "sqlite_errorname", "") == "SQLITE_FULL" or "database or disk is full" in str(exc)
    )


class Store(JobQueries, SubscriptionQueries, LoopQueries):
    """The database behind the queue, the log and the subscriptions. Safe to share across threads.
    `Store(path)` is a SQLiteStore; `Store("postgresql://…")` a PostgresStore."""

    def __new__(cls, path=None, *args, **kwargs):
        if cls is Store:
            cls = PostgresStore if is_postgres_url(path) else SQLiteStore
        return super().__new__(cls)


class SQLiteStore(SQLiteFile, Store):
    """The embedded default: one file, one server (lock_for_serving)."""


class PostgresStore(PostgresDatabase, Store):
    """A PostgreSQL database that any number of servers share."""

    shared = True
