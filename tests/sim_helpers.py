"""Helpers for the serve tests: an app on a temp SQLite file with its queue running, a receiver, polling."""
from __future__ import annotations

import sqlite3
import time
from contextlib import closing

import pytest

from simulator.app import create_app

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


@pytest.fixture
def make_app(tmp_path, keys_dir):
    """make_app(**config) -> Flask app on tmp_path/sim.db with the session keys; stopped after the test."""
    apps = []

    def make(**config):
        settings = {"DB_PATH": str(tmp_path / "sim.db"), "KEYS_DIR": str(keys_dir), "API_KEY": API_KEY,
                    "RETRY_DELAYS": (0.1, 0.1, 0.1, 0.1, 0.1), "TIMEOUT": 5}
        settings.update(config)
        app = create_app(settings)
        apps.append(app)
        return app

    yield make
    for app in apps:
        app.extensions["accessrc_sim"].stop(5)


@pytest.fixture
def app(make_app):
    return make_app()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def receiver(start_receiver):
    """receiver(platform, auth=None, public_key_pem=None, fail_first=0): conftest's start_receiver, AccessRC first."""
    def start(platform="accessrc", auth=None, public_key_pem=None, fail_first=0):
        return start_receiver(platform, auth, fail_first, public_key_pem=public_key_pem)

    return start


def job_of(client, job_id, headers=XKEY):
    return client.get(f"/api/jobs/{job_id}", headers=headers).get_json()


def wait_job_final(client, job_id, timeout=10.0):
    return wait_until(lambda: (lambda j: j if j["state"] in ("succeeded", "exhausted") else None)(
        job_of(client, job_id)), timeout)


def sql(db_path, query: str, args=()) -> list[tuple]:
    """Run one statement on the database file as another client would: tests look under the Store's interface."""
    with closing(sqlite3.connect(db_path, timeout=30, isolation_level=None)) as db:
        return db.execute(query, args).fetchall()


def count_rows(app, table):
    return sql(app.extensions["accessrc_sim"].store.path, f"SELECT COUNT(*) FROM {table}")[0][0]
