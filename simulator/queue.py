"""The queue worker: delivers due jobs from the jobs table; retries are due times in that table, not sleeps.

Each claim carries this worker's owner id and a lease, renewed while the attempt runs. Jobs left `delivering` by
a crash are claimed again once their lease has run out (Store.claim_due), so X-JobAttempt continues from the
attempts actually recorded. Stop is graceful: no new claims, in-flight attempts finish.
A database that cannot record an attempt (full disk) never ends a job: it is due again a little later.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from .delivery import Deliverer
from .models import EXHAUSTED, Attempt, Job
from .store import LEASE_SECONDS, LeaseLost, storage_error

STORAGE_RETRY = 5.0  # seconds before a job whose attempt could not be recorded is due again

log = logging.getLogger("accessrc_sim.queue")


class QueueWorker:
    def __init__(
        self,
        store,
        keys,
        threads: int = 4,
        poll: float = 0.25,
        on_attempt: Callable[[Job, Attempt], None] | None = None,
        wall: Callable[[], float] = time.time,
        lease: float = LEASE_SECONDS,
    ):
        self.store = store
        self.keys = keys
        self.threads = max(1, threads)
        self.poll = poll
        self.on_attempt = on_attempt
        self.wall = wall
        self.lease = lease
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._in_flight: set[str] = set()
        self._in_flight_lock = threading.Lock()
        self._renewer: threading.Thread | None = None
        self._stopped = threading.Event()
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

    def start(self) -> QueueWorker:
        if self._thread is not None:
            return self
        self.recovered = self.store.recover_interrupted(self.wall())
        if self.recovered:
            log.info(
                "%d job(s) interrupted by the last stop: sent again once their lease (%g s) has run out",
                len(self.recovered),
                self.lease,
            )
        self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="accessrc-sim-delivery")
        self._thread = threading.Thread(target=self._loop, name="accessrc-sim-queue", daemon=True)
        self._thread.start()
        self._renewer = threading.Thread(target=self._renew_loop, name="accessrc-sim-lease", daemon=True)
        self._renewer.start()
        return self

    def _renew_loop(self) -> None:
        """Every third of a lease, extend the lease of each job whose attempt is still running here."""
        while not self._stopped.wait(self.lease / 3):  # until stop() has waited for the attempts in flight
            self._renew()

    def _renew(self) -> None:
        with self._in_flight_lock:
            ids = list(self._in_flight)
        if ids:
            try:
                self.store.renew_leases(self.owner, ids, self.wall() + self.lease)
            except Exception:
                log.exception("renewing the leases of %d job(s) failed", len(ids))

    def wake(self) -> None:
        """A job was added: look now rather than at the next poll."""
        self._wake.set()

    def stop(self, timeout: float = 30.0) -> None:
        """Claim nothing more; wait up to `timeout` for in-flight attempts. Unfinished ones stay `delivering`
        and are claimed again (by the next start) once their lease has run out."""
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
        self._stopped.set()

    def _deliverer(self) -> Deliverer:
        deliverer = getattr(self._local, "deliverer", None)
        if deliverer is None:  # one requests.Session per delivery thread
            deliverer = self._local.deliverer = Deliverer(
                self.store, self.keys, on_attempt=self.on_attempt, owner=self.owner
            )
        return deliverer

    def _claim_due(self, limit: int) -> list[Job]:
        jobs = self.store.claim_due(self.wall(), limit=limit, owner=self.owner, lease=self.lease)
        with self._in_flight_lock:
            self._in_flight.update(job.id for job in jobs)
        return jobs

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
        jobs = self._claim_due(free)
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
                        claimed = self._claim_due(1)
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
        except LeaseLost as exc:  # another server has it now: its attempt is the one recorded
            log.warning("%s", exc)
        except Exception as exc:
            if storage_error(exc):  # the attempt may have reached the receiver: never end the job for it
                log.error(
                    "job %s: the database could not record its attempt (%s); due again in %g s",
                    job.id,
                    exc,
                    STORAGE_RETRY,
                )
                try:
                    self.store.release(job, self.wall() + STORAGE_RETRY, self.owner)
                except Exception:  # still delivering: claimed again when its lease runs out
                    log.exception("could not give job %s back to the queue", job.id)
                return
            # a bug or a missing key: end the job visibly rather than leave it stuck
            log.exception("delivering job %s failed", job.id)
            job.state, job.next_attempt_at = EXHAUSTED, None
            job.last_error = f"simulator error: {exc}"[:500]
            job.updated_at = self.wall()
            try:
                self.store.update_job(job)
            except Exception:
                log.exception("could not record the failure of job %s", job.id)
        finally:
            with self._in_flight_lock:
                self._in_flight.discard(job.id)
