"""The queue worker's batches: claims and attempt records in one transaction each, several delivery threads.

Every (job, attempt) is sent once and recorded once, a batch record skips (and reports) the jobs another server
took over, and a stop gives back the jobs claimed but not yet sent."""

from __future__ import annotations

import threading
import time
from collections import Counter

from sim_helpers import wait_until
from test_queue import make_job

from simulator import catalogue, delivery
from simulator.models import DELIVERING, PENDING, SUCCEEDED
from simulator.queue import PREFETCH, QueueWorker


def test_several_delivery_threads_never_send_the_same_attempt_twice(store, keys, receiver):
    target = receiver("accessrc", fail_first=1)  # every job's first attempt fails: each job is sent twice
    worker = QueueWorker(store, keys, threads=8, poll=0.05).start()
    try:
        ids = []
        for seed in range(120):  # each its own body: the receiver counts attempts per body (AccessRC has no X-JobId)
            job = make_job(target.url + "/h", delays=(0.0,), profile="accredit-like")
            job.body = catalogue.body_bytes(catalogue.generate(job.event, seed=seed))
            ids.append(store.add_job(job).id)
        worker.wake()
        wait_until(lambda: store.count_jobs(SUCCEEDED) == 120, timeout=30)
        sent = Counter((r.job_id, r.attempt) for r in target.received)
        assert sorted(sent) == sorted((job_id, n) for job_id in ids for n in ("0", "1"))
        assert set(sent.values()) == {1}
        for job_id in ids:  # what the store recorded is what the receiver got, once per attempt
            assert [a.number for a in store.attempts(job_id)] == [0, 1]
            assert [a.ok for a in store.attempts(job_id)] == [False, True]
    finally:
        worker.stop(5)


def test_a_batch_record_skips_the_jobs_another_server_took_over(store, keys, receiver):
    target = receiver("accessrc")
    for _ in range(2):
        store.add_job(make_job(target.url + "/h"))
    first, second = store.claim_due(time.time(), limit=2, owner="a", lease=0.01)
    time.sleep(0.05)
    [again] = store.claim_due(time.time(), limit=1, owner="b")  # a's leases ran out: b claims the oldest
    assert again.id == first.id
    session = delivery.Deliverer(store, keys).session
    finished = []
    for job in (first, second):
        sent = delivery.exchange(job, delivery.prepare(job, job.attempts_made, keys), session)
        finished.append((delivery.advance(job, sent.attempt, time.time()), sent.attempt))
    lost = store.finish_attempts(finished, owner="a")
    assert [job.id for job in lost] == [first.id]
    assert [a.number for a in store.attempts(second.id)] == [0] and store.get_job(second.id).state == SUCCEEDED
    assert store.attempts(first.id) == []  # b's attempt will be the one recorded
    assert store.get_job(first.id).state == DELIVERING


def test_stop_gives_back_the_jobs_claimed_but_not_sent(store, keys):
    from flask import Flask

    from simulator.receiver import ServerThread

    slow = Flask("slow")
    started = threading.Event()

    @slow.post("/h")
    def answer():
        started.set()
        time.sleep(0.5)
        return "", 200

    server = ServerThread(slow).start()
    worker = QueueWorker(store, keys, threads=1, poll=0.05)
    try:
        ids = [store.add_job(make_job(server.url + "/h")).id for _ in range(1 + PREFETCH)]
        worker.start()
        assert started.wait(5)
        worker.stop(10)
        jobs = [store.get_job(job_id) for job_id in ids]
        assert [job.state for job in jobs] == [SUCCEEDED] + [PENDING] * PREFETCH  # claimed in order, one sent
        for job in jobs[1:]:
            assert job.attempts_made == 0 and store.attempts(job.id) == []
        assert not worker.running
    finally:
        server.stop()
