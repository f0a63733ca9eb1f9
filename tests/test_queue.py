"""The persisted queue worker: due times in SQLite, crash recovery, graceful stop, no stuck jobs."""

from __future__ import annotations

import threading
import time

import pytest
from sim_helpers import wait_until

from simulator import catalogue, delivery
from simulator.auth import Auth
from simulator.models import DELIVERING, EXHAUSTED, PENDING, SUCCEEDED
from simulator.queue import QueueWorker

BODY_EVENT = "DELIVERY_REFUND_REQUESTED"


def make_job(url, delays=(0.0,) * 5, platform_event=BODY_EVENT, auth=None, profile=None):
    spec = catalogue.get_event(platform_event)
    body = catalogue.body_bytes(catalogue.generate(spec.name, seed=1))
    return delivery.new_job(
        spec.name,
        spec.platform,
        url,
        body,
        auth or Auth("none"),
        delays=delays,
        timeout=5,
        source="test",
        profile=profile,
    )


@pytest.fixture
def store(backend_store):
    """The queue's tests run on a SQLite file and on a PostgreSQL database (issue 16)."""
    return backend_store


def test_due_jobs_are_delivered_and_retries_wait_for_their_due_time(store, keys, receiver):
    target = receiver("accessrc", fail_first=1)
    worker = QueueWorker(store, keys, threads=2, poll=0.05).start()
    try:
        job = store.add_job(make_job(target.url + "/h", delays=(0.8,)))
        worker.wake()
        wait_until(lambda: store.get_job(job.id).attempts_made == 1)
        after_first = store.get_job(job.id)
        assert after_first.state == PENDING and after_first.next_attempt_at > time.time() + 0.4
        time.sleep(0.3)
        assert len(store.attempts(job.id)) == 1  # the retry is a due time, not sent early
        wait_until(lambda: store.get_job(job.id).state == SUCCEEDED, timeout=5)
        attempts = store.attempts(job.id)
        assert [a.number for a in attempts] == [0, 1]
        assert attempts[1].started_at - attempts[0].started_at >= 0.75
    finally:
        worker.stop(5)


def test_start_recovers_jobs_left_delivering_and_continues_x_job_attempt(store, keys, receiver):
    target = receiver("accessrc")
    job = store.add_job(make_job(target.url + "/h", profile="accredit-like"))  # X-JobAttempt shows the number
    job.attempts_made, job.state = 2, DELIVERING  # as a kill -9 during attempt 2 leaves it
    store.update_job(job)
    worker = QueueWorker(store, keys, poll=0.05).start()
    try:
        assert worker.recovered == [job.id]
        wait_until(lambda: store.get_job(job.id).state == SUCCEEDED)
        assert [r.attempt for r in target.received] == ["2"]
    finally:
        worker.stop(5)


def test_many_jobs_each_delivered_exactly_once(store, keys, receiver):
    target = receiver("accessrc")
    worker = QueueWorker(store, keys, threads=4, poll=0.05).start()
    try:
        ids = [store.add_job(make_job(target.url + "/h", profile="accredit-like")).id for _ in range(40)]
        worker.wake()
        wait_until(lambda: store.count_jobs(SUCCEEDED) == 40, timeout=20)
        assert sorted(r.job_id for r in target.received) == sorted(ids)
    finally:
        worker.stop(5)


def test_stop_waits_for_the_attempt_in_flight(store, keys):
    from flask import Flask

    from simulator.receiver import ServerThread

    slow = Flask("slow")
    started = threading.Event()

    @slow.post("/h")
    def answer():
        started.set()
        time.sleep(1.0)
        return "", 200

    server = ServerThread(slow).start()
    worker = QueueWorker(store, keys, poll=0.05).start()
    try:
        job = store.add_job(make_job(server.url + "/h"))
        worker.wake()
        assert started.wait(5)
        worker.stop(10)
        assert store.get_job(job.id).state == SUCCEEDED
        later = store.add_job(make_job(server.url + "/h"))
        time.sleep(0.3)
        assert store.get_job(later.id).state == PENDING  # nothing claimed after stop
    finally:
        server.stop()


def test_a_job_that_cannot_be_built_ends_exhausted_with_the_reason(store, receiver):
    target = receiver("accredit")
    worker = QueueWorker(store, keys=None, poll=0.05).start()  # no key pair: RSA signing cannot happen
    try:
        job = store.add_job(make_job(target.url + "/h", platform_event="BadgeExportZipFile.Created", auth=Auth("rsa")))
        worker.wake()
        wait_until(lambda: store.get_job(job.id).state == EXHAUSTED)
        assert "simulator error" in store.get_job(job.id).last_error and target.received == []
    finally:
        worker.stop(5)
