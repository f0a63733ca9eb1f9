"""Load mode: fresh signed events at a steady rate to one receiver, with latency percentiles and a failure tally.

Open loop: request i is due at start + i/rate, whatever happened to the ones before it, so a slow receiver shows
up as latency and failures instead of quietly lowering the rate. `concurrency` worker threads share the slots
and send each event on a keep-alive connection of their own (`Poster`: a socket and the llhttp parser, exact
bytes, no redirects, the outbound guard checked at each request and the connection made to the addresses it
checked, the whole exchange bounded by `timeout`). The event of a slot
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
import select
import socket
import ssl
import sys
import threading
import time
from array import array
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import httptools

from .. import catalogue, delivery, guard, platforms
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
        self.posters: list[Poster] = []  # one per worker thread; the reaper cuts any past its deadline
        self.tls = _tls_context() if urlsplit(plan.url).scheme.lower() == "https" else None
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
        finished = threading.Event()
        reaper = threading.Thread(target=self._reap, args=(finished,), name="load-reaper", daemon=True)
        try:
            if self.pool is not None:
                self.pool.start(self.start, self.plan.rate, self.plan.total)
            reaper.start()
            for w in workers:
                w.start()
            for w in workers:
                w.join()
        finally:
            finished.set()
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

    def _reap(self, finished: threading.Event) -> None:
        """Every REAP_EVERY s: cut the connection of any request past its deadline (a receiver that answers
        byte by byte cannot hold a worker past `timeout`). One thread for the run, no lock on the hot path."""
        while not finished.wait(REAP_EVERY):
            now = time.monotonic()
            for poster in list(self.posters):
                deadline = poster.deadline
                if deadline is not None and now > deadline:
                    poster.cut()

    def _take_slot(self) -> int | None:
        with self.lock:
            if self.next_slot >= self.plan.total:
                return None
            slot, self.next_slot = self.next_slot, self.next_slot + 1
            return slot

    def _worker(self, index: int) -> None:
        source = self.source.worker(index, self.plan.seed)
        poster = Poster(self.template.url, self.plan.timeout, self.clock, self.tls)
        with self.lock:
            self.posters.append(poster)
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
                resp = poster.post(event.body, event.headers)
                self._record(event.job_id, started, started - self.start - due, resp)
        finally:
            poster.close()

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


REAP_EVERY = 0.05  # seconds between two looks of the reaper: how far past `timeout` a stuck request may go


class Poster:
    """One worker's keep-alive HTTP/1.1 connection to the run's URL: a socket, and llhttp (httptools) to read answers.

    Why not the core's `delivery.post` (requests): in load mode the sender's own cost is the ceiling of what it
    measures. Measured on the project's 2-core machine (bench/bench.py, CPU per POST): requests ~480 us, the
    standard library's http.client ~120 us, this ~40 us; an asyncio sender (aiohttp) ~100 us. With requests, load
    mode's RSA rate was ~0.8 of a bare aiohttp sender's. The request is written in one piece, the answer parsed by
    llhttp (Node's parser: chunked, lengths, keep-alive), so the sending Python does little more than two syscalls.
    The rules are the core's: the outbound guard checks the URL at every request and the connection goes to the
    addresses it checked (never a second DNS answer; a change of answer opens a new connection); the Host header and
    TLS server name are the URL's; no redirect followed, no proxy; exactly these body bytes and headers (Host,
    Content-Length and Accept-Encoding: identity added unless given); at most RESPONSE_BODY_CAP bytes of an answer
    kept (a longer one is not read to its end: the connection is closed); the whole exchange bounded by `timeout`
    (socket timeouts, and the run's reaper cuts a connection past it). A kept-alive connection the receiver has
    closed is noticed before it is reused, as urllib3 does. Never raises for network errors: they come back in
    `Response.error` in delivery.post's words (timeout, connection error, answer cut off, not sent, request error).
    """

    def __init__(
        self,
        url: str,
        timeout: float,
        clock: Callable[[], float] = time.monotonic,
        tls: ssl.SSLContext | None = None,
    ):
        parts = urlsplit(url)
        self.url, self.timeout, self.clock, self.tls = url, timeout, clock, tls
        https = parts.scheme.lower() == "https"
        self.host = _ascii_host(parts.hostname or "")
        self.port = parts.port or (443 if https else 80)
        shown = f"[{self.host}]" if ":" in self.host else self.host
        self.host_header = shown if parts.port in (None, 443 if https else 80) else f"{shown}:{self.port}"
        self.target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self.sock: socket.socket | None = None
        self.addresses: tuple[str, ...] = ()
        self.deadline: float | None = None  # time.monotonic() by which the request under way must end

    def post(self, body: bytes, headers: Mapping[str, str]) -> delivery.Response:
        start = self.clock()
        elapsed = lambda: (self.clock() - start) * 1000  # noqa: E731
        try:
            checked = tuple(guard.check_target(self.url))  # at each request, as delivery.post does
        except guard.TargetNotAllowed as exc:
            return delivery.Response(None, {}, b"", elapsed(), f"not sent: {exc}")
        try:
            request = self._request(body, headers)
        except ValueError as exc:
            return delivery.Response(None, {}, b"", elapsed(), f"request error: {exc}")
        if self.sock is not None and (checked != self.addresses or _dropped(self.sock)):
            self.close()
        self.deadline = time.monotonic() + self.timeout
        answer = _Answer()
        try:
            try:
                if self.sock is None:
                    self.sock = self._connect(checked)
                self.sock.sendall(request)
                complete = self._read(answer, headers_only=True)
            except (OSError, httptools.HttpParserError, _Cut) as exc:
                self.close()
                if isinstance(exc, TimeoutError) or time.monotonic() >= self.deadline:
                    return delivery.Response(None, {}, b"", elapsed(), f"timeout after {self.timeout:g} s")
                return delivery.Response(None, {}, b"", elapsed(), f"connection error: {_reason(exc)}")
            error = None
            try:
                if not complete:
                    complete = self._read(answer, headers_only=False)
            except (OSError, httptools.HttpParserError, _Cut) as exc:
                error = f"answer cut off: {_reason(exc)}"
            if time.monotonic() >= self.deadline:
                error = f"timeout after {self.timeout:g} s while reading the answer"
            if error is not None or not complete or not answer.keep_alive:
                self.close()  # broken, unread past the cap, or the receiver closes it
            return delivery.Response(answer.status, answer.headers, b"".join(answer.chunks), elapsed(), error)
        finally:
            self.deadline = None

    def _request(self, body: bytes, headers: Mapping[str, str]) -> bytes:
        lines = [f"POST {self.target} HTTP/1.1"]
        given = {name.lower() for name in headers}
        if "host" not in given:
            lines.append(f"Host: {self.host_header}")
        lines.extend(f"{name}: {value}" for name, value in headers.items())
        if "content-length" not in given:
            lines.append(f"Content-Length: {len(body)}")
        if "accept-encoding" not in given:  # no header would mean any coding is acceptable (RFC 9110)
            lines.append("Accept-Encoding: identity")
        for line in lines:
            if "\r" in line or "\n" in line or "\0" in line:
                raise ValueError(f"a header holds a line break: {line.split(':', 1)[0]!r}")
        try:
            return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
        except UnicodeEncodeError as exc:
            raise ValueError(f"a header is not Latin-1 text: {exc}") from None

    def _read(self, answer: _Answer, headers_only: bool) -> bool:
        """Feed the parser until the answer's head (`headers_only`) or its end; True once the whole answer is in,
        False when more than RESPONSE_BODY_CAP bytes of body came (the rest is left unread)."""
        sock = self.sock
        while True:
            if answer.complete:
                return True
            if answer.headers_done and (headers_only or answer.size > delivery.RESPONSE_BODY_CAP):
                return False
            data = sock.recv(65536)
            if not data:
                if answer.headers_done and answer.until_close():  # a body that ends with the connection
                    answer.complete, answer.keep_alive = True, False
                    return True
                raise _Cut(
                    "Remote end closed connection without response"
                    if answer.parser is None
                    else "the connection closed before the answer's end"
                )
            answer.feed(data)

    def _connect(self, addresses: tuple[str, ...]) -> socket.socket:
        """Connect to the checked addresses in order (never resolving the name again)."""
        failure: OSError = OSError("no address checked by the outbound guard")
        for address in addresses:
            try:
                sock = socket.create_connection((address, self.port), self.timeout)
            except OSError as exc:
                failure = exc
                continue
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self.tls is not None:
                try:
                    sock = self.tls.wrap_socket(sock, server_hostname=self.host)
                except OSError:
                    sock.close()
                    raise
            self.addresses = addresses
            return sock
        raise failure

    def cut(self) -> None:
        """From the reaper: shut the socket under a request past its deadline (its reader then sees the end)."""
        sock = self.sock
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self) -> None:
        sock, self.sock = self.sock, None
        if sock is not None:
            sock.close()


class _Cut(OSError):
    """The receiver closed the connection before its answer was whole."""


class _Answer:
    """An answer as llhttp parses it (httptools calls these methods); a 1xx interim answer is skipped."""

    def __init__(self) -> None:
        self.parser: httptools.HttpResponseParser | None = None
        self.status: int | None = None
        self.headers: dict[str, str] = {}
        self.chunks: list[bytes] = []
        self.size = 0
        self.headers_done = self.complete = False
        self.keep_alive = True

    def feed(self, data: bytes) -> None:
        if self.parser is None:
            self.parser = httptools.HttpResponseParser(self)
        self.parser.feed_data(data)

    def on_header(self, name: bytes, value: bytes) -> None:
        key = name.decode("latin-1")
        text = value.decode("latin-1")
        self.headers[key] = f"{self.headers[key]}, {text}" if key in self.headers else text

    def on_headers_complete(self) -> None:
        self.status = self.parser.get_status_code()
        self.keep_alive = self.parser.should_keep_alive()
        self.headers_done = self.status >= 200 or self.status == 101

    def on_body(self, data: bytes) -> None:
        room = delivery.RESPONSE_BODY_CAP - self.size
        if room > 0:
            self.chunks.append(data[:room])
        self.size += len(data)

    def on_message_complete(self) -> None:
        if self.status is not None and 100 <= self.status < 200 and self.status != 101:
            self.headers, self.status = {}, None  # an interim answer (100 Continue…): the real one follows
            return
        self.complete = True

    def until_close(self) -> bool:
        """Whether the body is delimited by the end of the connection (no length, not chunked)."""
        names = {name.lower() for name in self.headers}
        return "content-length" not in names and "transfer-encoding" not in names


def _dropped(sock: socket.socket | None) -> bool:
    """A kept-alive socket the receiver closed (or wrote to unasked) is readable while idle: not to be reused."""
    if sock is None:
        return True
    try:
        if hasattr(select, "poll"):
            poller = select.poll()
            poller.register(sock, select.POLLIN)
            return bool(poller.poll(0))
        return bool(select.select([sock], [], [], 0)[0])
    except (OSError, ValueError):
        return True


def _ascii_host(host: str) -> str:
    try:
        return host.encode("idna").decode("ascii") if not host.isascii() else host
    except UnicodeError:
        return host


def _reason(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    for marker in ("Connection refused", "Connection reset", "Name or service not known", "timed out"):
        if marker in text:
            return marker
    return text[:300]


def _tls_context() -> ssl.SSLContext:
    """Certificates checked as requests checks them: certifi's bundle when it is installed, else the system's."""
    try:
        import certifi
    except ImportError:
        return ssl.create_default_context()
    return ssl.create_default_context(cafile=certifi.where())


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
