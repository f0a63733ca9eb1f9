"""Load mode: fresh signed events at a steady rate to one receiver, with latency percentiles and a failure tally.

Open loop: request i is due at start + i/rate, whatever happened to the ones before it, so a slow receiver shows
up as latency and failures instead of quietly lowering the rate. `concurrency` worker threads share the slots
and send each event with the core's `post()` (exact bytes, no redirects, outbound guard). The event of a slot
is generated and signed just before it: by the worker itself, or, for RSA-signed events at higher rates, by
signing processes (`simulator.load.signers`) that keep ~0.7 ms of RSA per event off the posting process.
Generation draws Faker's slow fields from pools made once (`simulator.load.events`), so a payload costs tens of
microseconds instead of ~1 ms. Bounded: at most `max_requests`
requests, no new request after `duration` (+1 s grace for a late slot); each one ends within `timeout`.
Load mode does not write to the SQLite delivery log (see the README); failures are tallied and sampled.
"""

from __future__ import annotations

import math
import os
import random
import sys
import threading
import time
from array import array
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import requests

from .. import catalogue, delivery, platforms, transport
from ..auth import Auth
from ..signing import KeyPair
from .events import Built, FakerPools, LoadError, PayloadSource, build_event
from .signers import MAX_SIGNERS, SignerPool, default_signers

MAX_RATE = 10_000.0  # requests per second
MAX_DURATION = 3600.0  # seconds
MAX_REQUESTS = 1_000_000
MAX_CONCURRENCY = 64
GRACE = 1.0  # seconds after the end during which a late slot may still start
LEAD = 0.005  # seconds before its slot a worker generates and signs the event
SWITCH_INTERVAL = 0.0005  # seconds: sys.setswitchinterval during a run (see LoadRun.run)


@dataclass
class LoadPlan:
    event: str
    url: str
    rate: float
    duration: float
    concurrency: int = 4
    max_requests: int | None = None
    timeout: float = delivery.DEFAULT_TIMEOUT
    auth: Auth = field(default_factory=Auth)
    overrides: dict = field(default_factory=dict)
    count: int | None = None
    force: bool = False
    seed: int | None = None
    signers: int | None = None  # processes that build and sign the events; None: default_signers()
    profile: str | None = None  # delivery profile (None: the platform's documented one); accredit-like: AccessRC

    @property
    def total(self) -> int:
        """Requests the plan sends at most: rate × duration, capped by max_requests."""
        planned = math.floor(self.rate * self.duration + 1e-9)
        return min(planned, self.max_requests) if self.max_requests is not None else planned

    def check(self) -> LoadPlan:
        if not (0 < self.rate <= MAX_RATE):
            raise LoadError(f"rate must be more than 0 and at most {MAX_RATE:g} requests per second")
        if not (0 < self.duration <= MAX_DURATION):
            raise LoadError(f"duration must be more than 0 and at most {MAX_DURATION:g} seconds")
        if not (1 <= self.concurrency <= MAX_CONCURRENCY):
            raise LoadError(f"concurrency must be between 1 and {MAX_CONCURRENCY}")
        if self.signers is not None and not (0 <= self.signers <= MAX_SIGNERS):
            raise LoadError(f"signing processes must be between 0 and {MAX_SIGNERS}")
        if self.max_requests is not None and not (1 <= self.max_requests <= MAX_REQUESTS):
            raise LoadError(f"max requests must be between 1 and {MAX_REQUESTS:,}")
        if self.total < 1:
            raise LoadError(f"rate × duration = {self.rate * self.duration:g}: nothing to send")
        if self.total > MAX_REQUESTS:
            raise LoadError(f"rate × duration = {self.total:,} requests; at most {MAX_REQUESTS:,} per run")
        return self


def percentile(sorted_values: list[float], p: float) -> float | None:
    """Nearest-rank percentile of an ascending list (None when empty)."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(p / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


@dataclass
class LoadResult:
    """What a run did. `failed` counts by reason: `HTTP 500`, `timeout`, `connection error`, `not sent`…"""

    planned: int
    requested_rate: float
    sent: int = 0
    accepted: int = 0
    failed: Counter = field(default_factory=Counter)
    unsent: int = 0  # slots that could not start before the end (+ grace): the sender fell behind
    latencies_ms: array = field(default_factory=lambda: array("d"))  # 8 bytes a request
    lag_ms: array = field(default_factory=lambda: array("d"))  # how late each request started after its slot
    first_start: float | None = None
    last_start: float | None = None
    elapsed: float = 0.0
    signers: int = 0  # signing processes the run used (0: the worker threads signed)
    cpu_s: float = 0.0  # CPU seconds the sending process used during the run (signing processes not included)
    samples: list[dict] = field(default_factory=list)  # the first few failures, for debugging

    @property
    def failures(self) -> int:
        return sum(self.failed.values())

    @property
    def achieved_rate(self) -> float:
        """Requests started per second between the first and the last start (the rate the sender held)."""
        if self.sent < 2 or self.first_start is None or self.last_start in (None, self.first_start):
            return 0.0
        return (self.sent - 1) / (self.last_start - self.first_start)

    def summary(self) -> dict:
        lat, lag = sorted(self.latencies_ms), sorted(self.lag_ms)
        r = lambda v: None if v is None else round(v, 3)  # noqa: E731
        return {
            "planned": self.planned,
            "sent": self.sent,
            "accepted": self.accepted,
            "failed": self.failures,
            "failed_by_status": dict(sorted(self.failed.items())),
            "unsent": self.unsent,
            "latency_ms": {
                "p50": r(percentile(lat, 50)),
                "p95": r(percentile(lat, 95)),
                "p99": r(percentile(lat, 99)),
                "max": r(lat[-1] if lat else None),
            },
            "start_lag_ms": {"p50": r(percentile(lag, 50)), "p99": r(percentile(lag, 99))},
            "requested_rate": self.requested_rate,
            "achieved_rate": round(self.achieved_rate, 2),
            "elapsed_s": round(self.elapsed, 3),
            "sender_cpu_s": round(self.cpu_s, 3),
            "signing_processes": self.signers,
            "failure_samples": self.samples,
        }


def failure_reason(status: int | None, error: str | None) -> str:
    if status is not None and not 200 <= status < 300:
        return f"HTTP {status}"
    text = error or "unknown"
    for prefix in ("timeout", "connection error", "answer cut off", "not sent", "request error"):
        if text.startswith(prefix):
            return prefix
    return text.split(":", 1)[0]


class LoadRun:
    """One bounded run. `run()` blocks until done; `snapshot()` may be called from another thread meanwhile.

    With signing processes, they start in the constructor (a fraction of a second, before the clock starts) and
    stop when `run()` ends; a LoadRun that is never run must be `close()`d."""

    def __init__(
        self,
        plan: LoadPlan,
        keys: KeyPair | None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        session_factory: Callable[[], requests.Session] | None = None,
    ):
        self.plan = plan.check()
        self.spec = catalogue.get_event(plan.event)
        try:
            self.template = delivery.new_job(
                self.spec.name,
                self.spec.platform,
                plan.url,
                b"",
                plan.auth,
                delays=(),
                timeout=plan.timeout,
                source="load",
                profile=plan.profile,
            )
        except delivery.DeliveryError as exc:  # bad URL, refused by the outbound guard, bad timeout
            raise LoadError(str(exc)) from exc
        if platforms.get(self.spec.platform).signs_with_keys and keys is None:
            raise LoadError("Accredit events are RSA-signed: the key pair is needed")
        self.keys = keys
        self.clock, self.sleep = clock, sleep
        self.session_factory = session_factory or _session
        source_args = {"event": self.spec.name, "overrides": plan.overrides, "count": plan.count, "force": plan.force}
        self.source = PayloadSource(**source_args, pools=FakerPools(plan.seed), rng=random.Random(plan.seed))
        try:
            self.source.check()
        except catalogue.CatalogueError as exc:
            raise LoadError(str(exc)) from exc
        self.result = LoadResult(planned=plan.total, requested_rate=plan.rate)
        self.lock = threading.Lock()
        self.next_slot = 0
        self.start = 0.0
        self.done = threading.Event()
        signers = (
            plan.signers
            if plan.signers is not None
            else default_signers(plan.auth.kind == "rsa", plan.rate, os.cpu_count())
        )
        self.pool = (
            SignerPool(signers, self.template, keys, source_args, plan.seed, plan.concurrency, clock)
            if signers
            else None
        )  # None: the worker threads build and sign
        self.result.signers = signers

    # -- the run -----------------------------------------------------------------------------------
    def run(self) -> LoadResult:
        self.start = self.clock() + 0.05  # a moment for the workers to reach their first slot
        workers = [
            threading.Thread(target=self._worker, args=(i,), name=f"load-{i}", daemon=True)
            for i in range(self.plan.concurrency)
        ]
        previous = sys.getswitchinterval()
        cpu_before = time.process_time()
        # RSA signing releases the GIL, but taking it back waits for the next switch (5 ms by default) while
        # another worker runs Python: a convoy that halves the signed rate. A shorter interval ends it.
        sys.setswitchinterval(min(previous, SWITCH_INTERVAL))
        try:
            if self.pool is not None:
                self.pool.start(self.start, self.plan.rate, self.plan.total)
            for w in workers:
                w.start()
            for w in workers:
                w.join()
        finally:
            sys.setswitchinterval(previous)
            self.close()
        self.result.elapsed = self.clock() - self.start
        self.result.cpu_s = time.process_time() - cpu_before
        self.done.set()
        return self.result

    def close(self) -> None:
        """Stop the signing processes, if any (run() does it when it ends)."""
        if self.pool is not None:
            self.pool.close()

    def _take_slot(self) -> int | None:
        with self.lock:
            if self.next_slot >= self.plan.total:
                return None
            slot, self.next_slot = self.next_slot, self.next_slot + 1
            return slot

    def _worker(self, index: int) -> None:
        source = self.source.worker(index, self.plan.seed)
        session = self.session_factory()
        rate, end = self.plan.rate, self.plan.duration + GRACE
        try:
            while (slot := self._take_slot()) is not None:
                due = slot / rate
                if self.pool is None:
                    early = self.start + due - LEAD - self.clock()
                    if early > 0:  # wake just before the slot, so the event's timestamps are of its sending time
                        self.sleep(early)
                    event = build_event(source, self.template, self.keys)
                else:
                    try:
                        event = self.pool.get(slot)  # built by a signing process just before the slot
                    except LoadError as exc:  # the processes stopped: this slot and every one not taken fail
                        with self.lock:
                            self.result.failed[f"not sent: {exc}"] += self._give_up()
                        return
                if event.error is not None:
                    self._record_unbuilt(event)
                    continue
                wait = self.start + due - self.clock()
                if wait > 0:
                    self.sleep(wait)
                started = self.clock()
                if started - self.start > end:
                    with self.lock:
                        self.result.unsent += self._give_up()
                    return
                resp = delivery.post(
                    session, self.template.url, event.body, event.headers, self.plan.timeout, self.clock
                )
                self._record(event.job_id, started, started - self.start - due, resp)
        finally:
            session.close()

    def _give_up(self) -> int:
        """Under the lock: take every slot not yet taken; how many they are, with the caller's own slot."""
        rest = 1 + self.plan.total - self.next_slot
        self.next_slot = self.plan.total
        return rest

    def _record_unbuilt(self, event: Built) -> None:
        with self.lock:
            self.result.failed["not sent: could not build the event"] += 1
            if len(self.result.samples) < 5:
                self.result.samples.append(
                    {"job_id": event.job_id, "status": None, "response_body": "", "error": event.error}
                )

    def _record(self, job_id: str, started: float, lag: float, resp: delivery.Response) -> None:
        ok = resp.error is None and resp.status is not None and 200 <= resp.status < 300
        with self.lock:
            r = self.result
            r.sent += 1
            r.latencies_ms.append(resp.duration_ms)
            r.lag_ms.append(max(0.0, lag) * 1000)
            r.first_start = started if r.first_start is None else min(r.first_start, started)
            r.last_start = started if r.last_start is None else max(r.last_start, started)
            if ok:
                r.accepted += 1
                return
            reason = failure_reason(resp.status, resp.error)
            r.failed[reason] += 1
            if len(r.samples) < 5:
                r.samples.append(
                    {
                        "job_id": job_id,
                        "status": resp.status,
                        "error": resp.error,
                        "response_body": resp.body[:300].decode("utf-8", "replace"),
                    }
                )

    def snapshot(self) -> dict:
        with self.lock:
            r = self.result
            now = self.clock() - self.start
            lat = sorted(r.latencies_ms[-2000:])
            return {
                "t": max(0.0, now),
                "sent": r.sent,
                "accepted": r.accepted,
                "failed": r.failures,
                "rate": r.sent / now if now > 0 else 0.0,
                "p50_ms": percentile(lat, 50),
            }


def _session() -> requests.Session:
    return transport.new_session()  # pinned to the guard-checked addresses, no proxies from the environment


def run_load(run: LoadRun, progress: Callable[[dict], None] | None = None, interval: float = 1.0) -> LoadResult:
    """`run.run()`, calling `progress(snapshot)` every `interval` seconds from a reporter thread."""
    reporter = None
    if progress is not None:

        def report() -> None:
            while not run.done.wait(interval):
                progress(run.snapshot())

        reporter = threading.Thread(target=report, name="load-progress", daemon=True)
        reporter.start()
    result = run.run()
    if reporter is not None:
        reporter.join()
    return result
