"""Schedules on time (issue 17 item 2): interval schedules run on one grid (whole intervals since the Unix epoch,
the same on every server), the firings due together are made in one burst, and the queue holds the jobs of a burst
until its last one is stored, so deliveries do not compete with the firings still being made."""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager

from sim_helpers import wait_until

from simulator import catalogue, delivery
from simulator.auth import Auth
from simulator.models import PENDING, SUCCEEDED
from simulator.queue import QueueWorker
from simulator.scheduler import Scheduler, due_time
from simulator.subscriptions import Schedule, Subscription


def test_due_times_are_on_the_epoch_grid_whatever_the_moment_a_firing_runs():
    every = Schedule("interval", seconds=0.3)
    assert due_time(every, 1_800_000_000.31) == 1_800_000_000.3  # late by 10 ms
    assert due_time(every, 1_800_000_000.59) == 1_800_000_000.6  # early by 10 ms (the clock of another server)
    assert due_time(Schedule("cron", cron="*/5 * * * *"), 1_800_000_012.0) == 1_800_000_000.0


def test_firings_due_together_are_made_in_one_burst_on_the_grid():
    bursts: list[list[tuple[str, float]]] = []
    current: list[tuple[str, float]] = []
    lock = threading.Lock()

    @contextmanager
    def together():
        with lock:
            current.clear()
        yield
        with lock:
            bursts.append(list(current))

    def fire(sub_id: str, due_at: float) -> None:
        time.sleep(0.005)  # a firing takes time: the others due with it are handed over meanwhile
        with lock:
            current.append((sub_id, due_at))

    subs = [
        Subscription(
            "accessrc",
            "DELIVERY_REFUND_REQUESTED",
            f"http://127.0.0.1:9/{i}",
            Auth("none"),
            id=f"sub-{i}",
            schedule=Schedule("interval", seconds=0.25),
        )
        for i in range(5)
    ]
    scheduler = Scheduler(fire, together=together)
    scheduler.start(subs)
    try:
        wait_until(lambda: len(bursts) >= 4, 10, what="four bursts")
    finally:
        scheduler.shutdown()
    for burst in bursts[1:]:  # the first may straddle the start
        assert sorted(sub for sub, _ in burst) == [f"sub-{i}" for i in range(5)], bursts
        (due_at,) = {d for _, d in burst}
        assert round(due_at / 0.25, 6) % 1 == 0  # on the epoch grid
    assert len({d for burst in bursts[1:] for _, d in burst}) == len(bursts) - 1  # one due time per burst


def test_the_queue_holds_a_bursts_jobs_until_it_ends(store, keys, receiver):
    target = receiver("accessrc")
    worker = QueueWorker(store, keys, poll=30.0).start()  # only a wake makes it look before 30 s
    spec = catalogue.get_event("DELIVERY_REFUND_REQUESTED")
    body = catalogue.body_bytes(catalogue.generate(spec.name, seed=1))
    try:
        time.sleep(0.2)  # past its first look at the (empty) queue
        with worker.holding_wakes():
            jobs = []
            for _ in range(3):
                jobs.append(
                    store.add_job(
                        delivery.new_job(spec.name, spec.platform, target.url + "/h", body, Auth("none"), source="api")
                    )
                )
                worker.wake()
            time.sleep(0.5)
            assert {store.get_job(j.id).state for j in jobs} == {PENDING}  # held: nothing delivered yet
        wait_until(lambda: all(store.get_job(j.id).state == SUCCEEDED for j in jobs), 10, what="the burst delivered")
    finally:
        worker.stop(5)
    assert len(target.received) == 3
