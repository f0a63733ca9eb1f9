"""The simulator's database, and the only place with SQL: one schema (schema.py), jobs, attempts and the change
feed (jobs.py), subscriptions, redelivery links and settings (subscriptions.py), over one SQLite file (sqlite.py).

`Store` is the seam a second backend (PostgreSQL) plugs into; it provides these, with the contracts in their
docstrings, and nothing else is called from outside:

    open/close    Store(path), close(), ping(), migrated
    jobs          add_job, update_job, get_job, job_seq, query_jobs, count_jobs, count_by_state
    queue         claim_due, renew_leases, release, mark_delivering, finish_attempt, recover_interrupted,
                  next_due_at, purge_finished
    attempts      attempts, recent_attempts
    change feed   feed_position, then query_jobs(after_seq=...), query_jobs(state=...), recent_attempts(since_id)
    subscriptions add_subscription, save_subscription, get_subscription, list_subscriptions, delete_subscription,
                  count_fired, link_redelivery, redelivery_of
    settings      setting, set_setting_once, put_setting
    the loop      add_call, query_calls; add_provider_object, save_provider_object, get_provider_object,
                  list_provider_objects; find_sent_job, sent_values (ids found in sent job bodies)
    errors        LeaseLost; DATABASE_ERRORS (the backend's exception types, for `except`); storage_error(exc) and
                  storage_full(exc) tell the backend's own failures apart
"""

from __future__ import annotations

from .jobs import LEASE_SECONDS, JobQueries, LeaseLost
from .loop import Call, LoopQueries, ProviderObject
from .sqlite import DATABASE_ERRORS, DatabaseInUse, lock_for_serving, storage_error, storage_full
from .subscriptions import SubscriptionQueries

__all__ = [
    "Store",
    "Call",
    "ProviderObject",
    "LeaseLost",
    "LEASE_SECONDS",
    "DATABASE_ERRORS",
    "DatabaseInUse",
    "lock_for_serving",
    "storage_error",
    "storage_full",
]


class Store(JobQueries, SubscriptionQueries, LoopQueries):
    """The SQLite file behind the queue, the log and the subscriptions. Safe to share across threads."""
