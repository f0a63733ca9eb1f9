"""The queue worker: delivers due jobs from the jobs table; retries are due times in that table, not sleeps.

Each claim carries this worker's owner id and a lease, renewed while the attempt runs. Jobs left `delivering` by
a crash are claimed again once their lease has run out (Store.claim_due), so X-JobAttempt continues from the
attempts actually recorded. Stop is graceful: no new claims, in-flight attempts finish.
A database that cannot record an attempt (full disk) never ends a job: it is due again a little later.

Threads: one store thread claims due jobs in batches (one transaction per batch, a few more than there are
delivery threads) and records finished attempts in batches (`Store.finish_attempts`, one transaction for all
that finished meanwhile); `threads` delivery threads each take a claimed job, sign it and POST it over their own
keep-alive connections (load mode's Poster: `_Connections`) and hand the attempt back; RSA jobs go to them through
the signing stage (sign_process.SigningStage), signed in a process of their own. Only the store thread writes,
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
import ssl
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Mapping
from contextlib import contextmanager

from . import delivery, sign_process
from .delivery import Deliverer, Response, Sent
from .models import EXHAUSTED, Attempt, Job
from .sign_process import SigningProcess, SigningStage
from .store import LEASE_SECONDS, storage_error

STORAGE_RETRY = 5.0  # seconds before a job whose attempt could not be recorded is due again
PREFETCH = 2  # claimed jobs waiting per delivery thread, at most (so a thread never waits for a claim)
RECORD_BATCH = 256  # attempts recorded in one transaction, at most
CONNECTIONS_PER_THREAD = 32  # keep-alive connections a delivery thread keeps (one per target URL), at most
CLIENTS = ("raw", "requests")  # the delivery threads' HTTP client: load mode's Poster, or delivery.post (requests)

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
        signers: int | None = None,
        client: str = "raw",
    ):
        if client not in CLIENTS:
            raise ValueError(f"client must be one of {', '.join(CLIENTS)}, got {client!r}")
        self.client = client
        self.store = store
        self.keys = keys
        self.threads = max(1, threads)
        self.poll = poll
        self.on_attempt = on_attempt
        self.wall = wall
        self.lease = lease
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        if signers is None:  # a process only helps when it has a core of its own to sign on
            signers = 1 if keys is not None and sign_process.SUPPORTED and (os.cpu_count() or 1) >= 2 else 0
        self.signers = 1 if signers and keys is not None and sign_process.SUPPORTED else 0
        self.capacity = self.threads * (1 + PREFETCH)  # jobs claimed and not yet recorded, at most
        self._stopping = threading.Event()
        self._ready: queues.SimpleQueue = queues.SimpleQueue()  # claimed jobs (and signatures) for the delivery threads
        self.signing = (  # RSA jobs go through it to the delivery threads, signed in a process
            SigningStage(keys, lambda job, signature: self._ready.put((job, signature)), self._stopping)
            if self.signers
            else None
        )
        if self.signing:
            self.capacity += SigningStage.CAPACITY
        self._in_flight: set[str] = set()  # claimed by this worker, attempt not yet recorded (leases renewed)
        self._in_flight_lock = threading.Lock()
        self._done: queues.SimpleQueue = queues.SimpleQueue()  # (job, Sent | exception) back to the store thread
        self._renewer: threading.Thread | None = None
        self._senders: list[threading.Thread] = []
        self._stopped = threading.Event()
        self._wake = threading.Event()
        self._holding = 0  # holding_wakes() blocks open; a wake asked for meanwhile waits for the last to close
        self._held_wake = False
        self._hold_lock = threading.Lock()
        self._idle = threading.Event()  # set by the store thread when nothing is in flight after a stop
        self._thread: threading.Thread | None = None
        self._storage_logged_at = float("-inf")  # when _storage_problem last logged
        self.recovered: list[str] = []

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def signing_process(self) -> SigningProcess | None:
        """The signing process in use (None: none, none yet, or none now)."""
        return self.signing.process if self.signing else None

    @property
    def signer_failures(self) -> list[str]:
        """Why signing processes stopped (newest last)."""
        return self.signing.failures if self.signing else []

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
        if self.client == "raw":
            from . import load  # noqa: F401  (Poster's module, loaded now rather than at the first delivery)
        self._senders = [
            threading.Thread(target=self._send_loop, name=f"accessrc-sim-delivery-{i}", daemon=True)
            for i in range(self.threads)
        ]
        for sender in self._senders:
            sender.start()
        if self.signing:
            self.signing.start()
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
            except Exception as exc:
                if storage_error(exc):
                    self._storage_problem(f"renewing the leases of {len(ids)} job(s) failed: %s", exc)
                else:
                    log.exception("renewing the leases of %d job(s) failed", len(ids))

    def wake(self) -> None:
        """A job was added: look now rather than at the next poll (inside holding_wakes(): when it ends)."""
        if self._holding:
            with self._hold_lock:
                if self._holding:
                    self._held_wake = True
                    return
        self._wake.set()
        self._done.put(None)  # the store thread may be waiting for finished attempts

    @contextmanager
    def holding_wakes(self):
        """Jobs added inside are looked at once, when the block ends. Firings due together are all stored first,
        so the delivery threads do not start on the first ones (and take the GIL and the database) while the next
        ones are still being made: what keeps a schedule's firings on time."""
        with self._hold_lock:
            self._holding += 1
        try:
            yield
        finally:
            with self._hold_lock:
                self._holding -= 1
                release = self._holding == 0 and self._held_wake
                if release:
                    self._held_wake = False
            if release:
                self._wake.set()
                self._done.put(None)

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
            if self.signing:
                self.signing.stop()
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
            except Exception as exc:  # a locked, full or vanished database must not kill the worker
                if storage_error(exc):
                    self._storage_problem("claiming due jobs failed: %s", exc)
                else:
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
            with self._in_flight_lock:
                holding = list(self._in_flight)
            # `holding`: this worker's own jobs whose lease ran out while it no longer holds them (their attempt
            # could not be recorded nor the job given back: a full disk) are claimed again too
            jobs = self.store.claim_due(self.wall(), limit=room, owner=self.owner, lease=self.lease, holding=holding)
            with self._in_flight_lock:
                self._in_flight.update(job.id for job in jobs)
            for job in jobs:
                if self.signing and job.auth.kind == "rsa":
                    self.signing.put(job)
                else:
                    self._ready.put((job, None))
            if len(jobs) < room:
                return

    def _give_back(self) -> None:
        """At a stop: jobs claimed but not taken by a delivery thread go back to the queue, due now."""
        stops = 0
        while True:
            try:
                item = self._ready.get_nowait()
            except queues.Empty:
                break
            if item is _STOP:  # stop() gave up waiting: the delivery threads still need theirs
                stops += 1
                continue
            job = item[0]
            self._release([job], job.next_attempt_at or self.wall())
            self._forget(job)
        for _ in range(stops):
            self._ready.put(_STOP)

    def _release(self, jobs: list[Job], due: float) -> None:
        """Give claimed jobs back to the queue, due at `due`. Those that cannot be (the database cannot write) stay
        `delivering` under this worker's lease, which is no longer renewed once they are forgotten: claimed again
        (by this worker too: claim_due's `holding`) once it has run out. One log line, no traceback."""
        failed, error = [], None
        for job in jobs:
            try:
                self.store.release(job, due, self.owner)
            except Exception as exc:
                failed.append(job.id)
                error = exc
        if failed:
            log.error(
                "could not give %d job(s) back to the queue (%s): they stay delivering and are claimed again once "
                "their lease (%g s) has run out: %s",
                len(failed),
                error,
                self.lease,
                ", ".join(failed[:10]) + (" …" if len(failed) > 10 else ""),
            )

    def _storage_problem(self, message: str, exc: BaseException) -> None:
        """A failure of the database itself (full disk, I/O, locked too long): one line, at most every 10 s."""
        now = time.monotonic()
        if now - self._storage_logged_at >= 10.0:
            self._storage_logged_at = now
            log.error(message, exc)

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
                self._release([job for job, _ in sent], self.wall() + STORAGE_RETRY)
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
        connections = _Connections() if self.client == "raw" else None
        deliverer = Deliverer(self.store, self.keys, owner=self.owner, sender=connections)
        try:
            while True:
                item = self._ready.get()
                if item is _STOP:
                    return
                job, signature = item
                try:
                    result: object = deliverer.send(job, credential=signature)
                except Exception as exc:
                    result = exc
                self._done.put((job, result))
        finally:
            if connections is not None:
                connections.close()


class _Connections:
    """A delivery thread's `Sender`: one keep-alive connection per (target URL, timeout), load mode's `Poster`
    (a socket and llhttp; its docstring lists the rules it keeps, the same as delivery.post's: the guard at every
    request and the connection to the addresses it checked, exactly these bytes, no redirect, no proxy, the answer
    capped). Its whole exchange is bounded by `timeout` by delivery's watchdog, as post's is.
    Why not requests: CPU per POST ~480 us with requests, ~40 us with Poster (load mode's measurement); the queue's
    rate is bounded by the posting process's CPU (bench/serve_queue.py: HMAC and RSA rates with each client)."""

    def __init__(self) -> None:
        self._poster = None  # load mode's Poster (QueueWorker.start imports it: ~90 ms, never mid-firing)
        self._open: OrderedDict[tuple[str, float], object] = OrderedDict()  # least recently used first
        self._tls: ssl.SSLContext | None = None

    def __call__(self, url: str, body: bytes, headers: Mapping[str, str], timeout: float) -> Response:
        key = (url, timeout)
        poster = self._open.pop(key, None)
        if poster is None:
            if self._poster is None:
                from .load import Poster

                self._poster = Poster
            try:
                poster = self._poster(url, timeout, tls=self._tls_context() if url[:8].lower() == "https://" else None)
            except (ValueError, ssl.SSLError, OSError) as exc:
                return Response(None, {}, b"", 0.0, f"request error: {exc}")
            while len(self._open) >= CONNECTIONS_PER_THREAD:
                self._open.popitem(last=False)[1].close()
        self._open[key] = poster
        token = delivery.watch(time.monotonic() + timeout, poster)
        try:
            resp = poster.post(body, headers)
        finally:
            cut = not delivery.unwatch(token)
        if cut and resp.error is not None and not resp.error.startswith("timeout"):  # in post's words
            reading = " while reading the answer" if resp.status is not None else ""
            resp.error = f"timeout after {timeout:g} s{reading}"
        return resp

    def _tls_context(self) -> ssl.SSLContext:
        """Certificates checked as requests checks them: certifi's bundle when installed, else the system's."""
        if self._tls is None:
            try:
                import certifi
            except ImportError:
                self._tls = ssl.create_default_context()
            else:
                self._tls = ssl.create_default_context(cafile=certifi.where())
        return self._tls

    def close(self) -> None:
        while self._open:
            self._open.popitem()[1].close()
