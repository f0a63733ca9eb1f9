"""The queue worker: delivers due jobs from the jobs table; retries are due times in that table, not sleeps.

Each claim carries this worker's owner id and a lease, renewed while the attempt runs. Jobs left `delivering` by
a crash are claimed again once their lease has run out (Store.claim_due), so X-JobAttempt continues from the
attempts actually recorded. Stop is graceful: no new claims, in-flight attempts finish.
A database that cannot record an attempt (full disk) never ends a job: it is due again a little later.

Threads: one store thread claims due jobs in batches (one transaction per batch, a few more than there are
delivery threads) and records finished attempts in batches (`Store.finish_attempts`, one transaction for all
that finished meanwhile); `threads` delivery threads each take a claimed job, sign it and POST it over their own
keep-alive connection (one requests.Session per thread) and hand the attempt back. Only the store thread writes,
so the queue's own writes never wait on each other for SQLite's lock, and a delivery thread never waits on the
database. A job is handed to exactly one delivery thread; its attempt is recorded once, by the store thread.
(Measured with bench/serve_queue.py: one claim and one record transaction per job, in every delivery thread,
spent a fifth of the time waiting for SQLite's write lock.)
"""

from __future__ import annotations

import logging
import os
import queue as queues
import socket
import threading
import time
import uuid
from collections.abc import Callable

from .delivery import Deliverer, Sent
from .models import EXHAUSTED, Attempt, Job
from .store import LEASE_SECONDS, storage_error

STORAGE_RETRY = 5.0  # seconds before a job whose attempt could not be recorded is due again
PREFETCH = 2  # claimed jobs waiting per delivery thread, at most (so a thread never waits for a claim)
RECORD_BATCH = 256  # attempts recorded in one transaction, at most

log = logging.getLogger("accessrc_sim.queue")

_STOP = object()  # tells a delivery thread to end


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
        self.capacity = self.threads * (1 + PREFETCH)  # jobs claimed and not yet recorded, at most
        self._in_flight: set[str] = set()  # claimed by this worker, attempt not yet recorded (leases renewed)
        self._in_flight_lock = threading.Lock()
        self._ready: queues.SimpleQueue = queues.SimpleQueue()  # claimed jobs for the delivery threads
        self._done: queues.SimpleQueue = queues.SimpleQueue()  # (job, Sent | exception) back to the store thread
        self._renewer: threading.Thread | None = None
        self._senders: list[threading.Thread] = []
        self._stopped = threading.Event()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._idle = threading.Event()  # set by the store thread when nothing is in flight after a stop
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
        self._senders = [
            threading.Thread(target=self._send_loop, name=f"accessrc-sim-delivery-{i}", daemon=True)
            for i in range(self.threads)
        ]
        for sender in self._senders:
            sender.start()
        self._thread = threading.Thread(target=self._loop, name="accessrc-sim-queue", daemon=True)
        self._thread.start()
        self._renewer = threading.Thread(target=self._renew_loop, name="accessrc-sim-lease", daemon=True)
        self._renewer.start()
        return self

    def _renew_loop(self) -> None:
        """Every third of a lease, extend the lease of each job claimed here whose attempt is not yet recorded."""
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
        self._done.put(None)  # the store thread may be waiting for finished attempts

    def stop(self, timeout: float = 30.0) -> None:
        """Claim nothing more; wait up to `timeout` for in-flight attempts (their attempts are recorded). Jobs
        claimed but not yet sent go back to the queue at once; unfinished ones stay `delivering` and are claimed
        again (by the next start) once their lease has run out."""
        self._stopping.set()
        self.wake()
        if self._thread is not None:
            self._idle.wait(timeout)
            for _ in self._senders:
                self._ready.put(_STOP)
        self._stopped.set()

    # -- the store thread ------------------------------------------------------------------------
    def _loop(self) -> None:
        while True:
            self._record(self._collect(self._wait_for()))
            if self._stopping.is_set():
                self._give_back()
                with self._in_flight_lock:
                    idle = not self._in_flight
                if idle:
                    self._idle.set()
                    return
                continue
            self._wake.clear()
            try:
                self._claim()
            except Exception:  # a locked or vanished database must not kill the worker
                log.exception("claiming due jobs failed")

    def _outstanding(self) -> int:
        with self._in_flight_lock:
            return len(self._in_flight)

    def _wait_for(self) -> float:
        """How long the store thread may wait for finished attempts before it looks for due jobs again."""
        if self._stopping.is_set():
            return self.poll
        if self._wake.is_set():
            return 0.0
        room = self.capacity - self._outstanding()
        if room <= 0:
            return self.poll  # full: the next finished attempt wakes it
        try:
            due = self.store.next_due_at()
        except Exception:
            log.exception("reading the next due time failed")
            return self.poll
        if due is None:
            return self.poll
        return min(self.poll, max(0.0, due - self.wall()))

    def _collect(self, wait: float) -> list[tuple[Job, object]]:
        """Finished attempts: wait up to `wait` for the first, then take every one already there."""
        done = []
        try:
            item = self._done.get(timeout=wait) if wait > 0 else self._done.get_nowait()
        except queues.Empty:
            return done
        while True:
            if item is not None:
                done.append(item)
            if len(done) >= RECORD_BATCH:
                return done
            try:
                item = self._done.get_nowait()
            except queues.Empty:
                return done

    def _claim(self) -> None:
        """Claim due jobs while there is room, in one transaction per batch, and hand them to the senders."""
        while not self._stopping.is_set():
            room = self.capacity - self._outstanding()
            if room <= 0:
                return
            jobs = self.store.claim_due(self.wall(), limit=room, owner=self.owner, lease=self.lease)
            with self._in_flight_lock:
                self._in_flight.update(job.id for job in jobs)
            for job in jobs:
                self._ready.put(job)
            if len(jobs) < room:
                return

    def _give_back(self) -> None:
        """At a stop: jobs claimed but not taken by a delivery thread go back to the queue, due now."""
        stops = 0
        while True:
            try:
                job = self._ready.get_nowait()
            except queues.Empty:
                break
            if job is _STOP:  # stop() gave up waiting: the delivery threads still need theirs
                stops += 1
                continue
            try:
                self.store.release(job, job.next_attempt_at or self.wall(), self.owner)
            except Exception:  # still delivering: claimed again when its lease runs out
                log.exception("could not give job %s back to the queue", job.id)
            self._forget(job)
        for _ in range(stops):
            self._ready.put(_STOP)

    def _forget(self, job: Job) -> None:
        with self._in_flight_lock:
            self._in_flight.discard(job.id)

    def _record(self, done: list[tuple[Job, object]]) -> None:
        """Record finished attempts in one transaction; jobs whose attempt could not be built end exhausted."""
        sent = [(job, result.attempt) for job, result in done if isinstance(result, Sent)]
        try:
            if sent:
                self._record_sent(sent)
            for job, result in done:
                if not isinstance(result, Sent):
                    self._failed(job, result)
        finally:
            for job, _ in done:
                self._forget(job)

    def _record_sent(self, sent: list[tuple[Job, Attempt]]) -> None:
        try:
            lost = {job.id for job in self.store.finish_attempts(sent, owner=self.owner)}
        except Exception as exc:
            if storage_error(exc):  # the attempts may have reached the receiver: never end a job for it
                log.error(
                    "%d attempt(s) could not be recorded (%s); their jobs are due again in %g s",
                    len(sent),
                    exc,
                    STORAGE_RETRY,
                )
                for job, _ in sent:
                    try:
                        self.store.release(job, self.wall() + STORAGE_RETRY, self.owner)
                    except Exception:  # still delivering: claimed again when its lease runs out
                        log.exception("could not give job %s back to the queue", job.id)
                return
            log.exception("recording %d attempt(s) failed", len(sent))
            for job, _ in sent:
                self._failed(job, exc)
            return
        for job, attempt in sent:
            if job.id in lost:  # another server has it now: its attempt is the one recorded
                log.warning(
                    "job %s is no longer claimed by this server (its lease ran out and another server claimed "
                    "it); attempt %d was not recorded here",
                    job.id,
                    attempt.number,
                )
            elif self.on_attempt:
                try:
                    self.on_attempt(job, attempt)
                except Exception:
                    log.exception("on_attempt failed for job %s", job.id)

    def _failed(self, job: Job, exc: BaseException) -> None:
        """A bug or a missing key: end the job visibly rather than leave it stuck."""
        log.error("delivering job %s failed: %s", job.id, exc, exc_info=exc)
        job.state, job.next_attempt_at = EXHAUSTED, None
        job.last_error = f"simulator error: {exc}"[:500]
        job.updated_at = self.wall()
        try:
            self.store.update_job(job)
        except Exception:
            log.exception("could not record the failure of job %s", job.id)

    # -- the delivery threads ------------------------------------------------------------------------
    def _send_loop(self) -> None:
        deliverer = Deliverer(self.store, self.keys, owner=self.owner)  # its own requests.Session
        while True:
            job = self._ready.get()
            if job is _STOP:
                return
            try:
                result: object = deliverer.send(job)
            except Exception as exc:
                result = exc
            self._done.put((job, result))
