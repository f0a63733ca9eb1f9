"""The queue worker: delivers due jobs from the jobs table; retries are due times in that table, not sleeps.

At start, jobs left `delivering` by a crash go back to pending (Store.recover_interrupted), so X-JobAttempt
continues from the attempts actually recorded. Stop is graceful: no new claims, in-flight attempts finish.
"""
from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Callable

from .delivery import Deliverer
from .models import EXHAUSTED, Attempt, Job

log = logging.getLogger("accessrc_sim.queue")


class QueueWorker:
    def __init__(self, store, keys, threads: int = 4, poll: float = 0.25,
                 on_attempt: Callable[[Job, Attempt], None] | None = None, wall: Callable[[], float] = time.time):
        self.store = store
        self.keys = keys
        self.threads = max(1, threads)
        self.poll = poll
        self.on_attempt = on_attempt
        self.wall = wall
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._slots = threading.Semaphore(self.threads)
        self._local = threading.local()
        self._pool: ThreadPoolExecutor | None = None
        self._thread: threading.Thread | None = None
        self.recovered: list[str] = []

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> "QueueWorker":
        if self._thread is not None:
            return self
        self.recovered = self.store.recover_interrupted(self.wall())
        if self.recovered:
            log.info("recovered %d job(s) interrupted by a crash", len(self.recovered))
        self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="accessrc-sim-delivery")
        self._thread = threading.Thread(target=self._loop, name="accessrc-sim-queue", daemon=True)
        self._thread.start()
        return self

    def wake(self) -> None:
        """A job was added: look now rather than at the next poll."""
        self._wake.set()

    def stop(self, timeout: float = 30.0) -> None:
        """Claim nothing more; wait up to `timeout` for in-flight attempts. Unfinished ones stay `delivering`
        and are recovered at the next start."""
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
        if self._pool is not None:
            deadline = time.monotonic() + timeout
            acquired = 0
            for _ in range(self.threads):  # all slots free = nothing in flight
                if self._slots.acquire(timeout=max(0.0, deadline - time.monotonic())):
                    acquired += 1
            self._pool.shutdown(wait=acquired == self.threads, cancel_futures=True)

    def _deliverer(self) -> Deliverer:
        deliverer = getattr(self._local, "deliverer", None)
        if deliverer is None:  # one requests.Session per delivery thread
            deliverer = self._local.deliverer = Deliverer(self.store, self.keys, on_attempt=self.on_attempt)
        return deliverer

    def _loop(self) -> None:
        while not self._stopping.is_set():
            self._wake.clear()
            try:
                claimed = self._claim()
            except Exception:  # a locked or vanished database must not kill the worker
                log.exception("claiming due jobs failed")
                claimed = 0
            if claimed:
                continue
            due = None
            try:
                due = self.store.next_due_at()
            except Exception:
                log.exception("reading the next due time failed")
            wait = self.poll if due is None else min(self.poll, max(0.0, due - self.wall()))
            if wait > 0:
                self._wake.wait(wait)

    def _claim(self) -> int:
        free = 0
        while self._slots.acquire(blocking=False):
            free += 1
        if free == 0:
            self._wake.wait(0.02)
            return 0
        jobs = self.store.claim_due(self.wall(), limit=free)
        for _ in range(free - len(jobs)):
            self._slots.release()
        for job in jobs:
            self._pool.submit(self._run, job)
        return len(jobs)

    def _run(self, job: Job | None) -> None:
        """Deliver `job`, then keep claiming due jobs in this thread while there are any (no hand-off)."""
        try:
            while job is not None:
                self._deliver(job)
                job = None
                if not self._stopping.is_set():
                    try:
                        claimed = self.store.claim_due(self.wall(), limit=1)
                    except Exception:
                        log.exception("claiming due jobs failed")
                        claimed = []
                    job = claimed[0] if claimed else None
        finally:
            self._slots.release()
            self._wake.set()

    def _deliver(self, job: Job) -> None:
        try:
            self._deliverer().run_once(job)
        except Exception as exc:  # a bug or a missing key: end the job visibly rather than leave it stuck
            log.exception("delivering job %s failed", job.id)
            job.state, job.next_attempt_at = EXHAUSTED, None
            job.last_error = f"simulator error: {exc}"[:500]
            job.updated_at = self.wall()
            try:
                self.store.update_job(job)
            except Exception:
                log.exception("could not record the failure of job %s", job.id)
