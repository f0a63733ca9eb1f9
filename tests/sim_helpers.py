"""Plain helpers for the serve tests (the fixtures `make_app`, `app`, `client`, `receiver` are in conftest.py):
the admin key and its headers, polling, a job's state, a look at the database file."""

from __future__ import annotations

import sqlite3
import time
from contextlib import closing

API_KEY = "test-admin-key"
BEARER = {"Authorization": f"Bearer {API_KEY}"}
XKEY = {"x-api-key": API_KEY}


def wait_until(predicate, timeout: float = 10.0, interval: float = 0.05, what: str = "condition"):
    """Poll `predicate` until it returns something truthy (returned), or fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not met within {timeout} s")
        time.sleep(interval)


def job_of(client, job_id, headers=XKEY):
    return client.get(f"/api/jobs/{job_id}", headers=headers).get_json()["data"]


def wait_job_final(client, job_id, timeout=10.0):
    return wait_until(
        lambda: (lambda j: j if j["state"] in ("succeeded", "exhausted") else None)(job_of(client, job_id)), timeout
    )


def sql(db_path, query: str, args=()) -> list[tuple]:
    """Run one statement on the database file as another client would: tests look under the Store's interface."""
    with closing(sqlite3.connect(db_path, timeout=30, isolation_level=None)) as db:
        return db.execute(query, args).fetchall()


def count_rows(app, table):
    return sql(app.extensions["accessrc_sim"].store.path, f"SELECT COUNT(*) FROM {table}")[0][0]
