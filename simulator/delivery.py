"""One attempt = one HTTP POST; the retry policy per platform profile; the job state machine.

No Flask here. The HTTP session, the clock and `sleep` are passed in so tests and the server drive time.
"""

from __future__ import annotations

import heapq
import itertools
import socket
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from . import __version__, guard, platforms
from .auth import Auth, mask_headers, scrub, scrub_headers
from .models import DELIVERING, EXHAUSTED, PENDING, SUCCEEDED, Attempt, Job
from .platforms import Profile
from .signing import KeyPair

if TYPE_CHECKING:  # requests, urllib3 and simulator.transport are imported where a request is sent: building one
    import requests  # (simulator.testing) needs none of them

MAX_RETRIES = 5  # Accredit: "up to 5 retry attempts" (documented); AccessRC: our choice, its docs say nothing
DEFAULT_RETRY_DELAYS = (1.0, 2.0, 4.0, 8.0, 16.0)  # seconds before retry 1..5: inferred for every platform
DEFAULT_TIMEOUT = 10.0  # inferred: no platform documents a timeout (ReachFive's is a console setting)
RESPONSE_BODY_CAP = 64 * 1024  # bytes of a receiver's answer kept; the rest is not read
USER_AGENT = f"accessrc-sim/{__version__}"


class DeliveryError(ValueError):
    """A delivery setting that cannot be used (bad retry schedule, bad timeout, a profile of another platform)."""


def get_profile(platform: str, name: str | None = None) -> Profile:
    """The profile `name` of `platform` (None: its documented default), or DeliveryError naming the choices."""
    try:
        return platforms.profile(platform, name)
    except platforms.ProfileError as exc:
        raise DeliveryError(str(exc)) from exc


def profile_of(job: Job) -> Profile:
    return get_profile(job.platform, job.profile)


def parse_delays(text: str | None) -> tuple[float, ...] | None:
    """`1,2,4` → (1.0, 2.0, 4.0). At most 5 retries; each delay 0 or more seconds."""
    if text is None:
        return None
    text = text.strip()
    if text == "":
        return ()
    try:
        delays = tuple(float(part) for part in text.split(","))
    except ValueError as exc:
        raise DeliveryError(f"retry delays must be numbers separated by commas, got {text!r}") from exc
    return check_delays(delays)


def check_delays(delays) -> tuple[float, ...]:
    delays = tuple(float(d) for d in delays)
    if len(delays) > MAX_RETRIES:
        raise DeliveryError(f"at most {MAX_RETRIES} retries (the platforms' limit), got {len(delays)} delays")
    if any(d < 0 or d != d or d == float("inf") for d in delays):
        raise DeliveryError("retry delays must be finite and 0 or more seconds")
    return delays


def delays_for(platform: str, delays: tuple[float, ...] | None = None, profile: str | None = None) -> tuple[float, ...]:
    if not get_profile(platform, profile).retries:
        return ()
    return DEFAULT_RETRY_DELAYS if delays is None else check_delays(delays)


def check_timeout(timeout: float) -> float:
    timeout = float(timeout)
    if not 0 < timeout <= 600:
        raise DeliveryError("timeout must be more than 0 and at most 600 seconds")
    return timeout


def new_job(
    event: str,
    platform: str,
    url: str,
    body: bytes,
    auth: Auth,
    *,
    delays=None,
    timeout: float | None = None,
    source: str = "cli",
    subscription_id: str | None = None,
    headers: Mapping[str, str | None] | None = None,
    profile: str | None = None,
) -> Job:
    chosen = get_profile(platform, profile)
    if not url.lower().startswith(("http://", "https://")):
        raise DeliveryError(f"target URL must be http:// or https://, got {url!r}")
    try:
        guard.check_target(url)  # loopback or ACCESSRC_SIM_ALLOW_HOSTS only, checked after DNS resolution
    except guard.TargetNotAllowed as exc:
        raise DeliveryError(str(exc)) from exc
    return Job(
        event=event,
        platform=platform,
        url=url,
        body=body,
        auth=platforms.get(platform).check_auth(auth),
        retry_delays=delays_for(platform, delays, chosen.name),
        timeout=check_timeout(DEFAULT_TIMEOUT if timeout is None else timeout),
        source=source,
        subscription_id=subscription_id,
        headers=dict(headers or {}),
        profile=chosen.name,
    )


def request_headers(job: Job, number: int, keys: KeyPair | None, credential: str | None = None) -> dict[str, str]:
    """The headers of attempt `number` of `job`: content type, auth/signature, then the job headers when the
    job's profile sends them (Accredit; AccessRC only with accredit-like). `credential`: the auth header's value
    made already (Auth.headers), e.g. an RSA signature from the queue's signing process."""
    headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT}
    headers.update(job.auth.headers(job.body, keys, credential))
    if profile_of(job).job_headers:
        headers["X-JobId"] = job.id
        headers["X-JobAttempt"] = str(number)
    for name, value in job.headers.items():
        for existing in [h for h in headers if h.lower() == name.lower()]:
            del headers[existing]
        if value is not None:
            headers[name] = value
    return headers


@dataclass(frozen=True)
class Request:
    """Exactly what one attempt sends. Headers unmasked: kept in memory only, the store gets them masked."""

    url: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Response:
    status: int | None
    headers: dict
    body: bytes
    duration_ms: float
    error: str | None


def post(
    session: requests.Session,
    url: str,
    body: bytes,
    headers: Mapping[str, str],
    timeout: float,
    clock: Callable[[], float] = time.monotonic,
) -> Response:
    """Send exactly these bytes and headers once. Never follows redirects; never raises for network errors.

    The whole exchange, reading the answer included, is bounded by `timeout`; at most RESPONSE_BODY_CAP bytes
    of the answer are read. The connection goes to the addresses the guard checked for this attempt, never to a
    second DNS answer (simulator/transport.py); `session` gets the pinned adapter if it lacks it.
    """
    import requests
    import urllib3

    from . import transport

    start = clock()
    try:
        checked = guard.check_target(url)  # again at each attempt: DNS or the allow-list may have changed
    except guard.TargetNotAllowed as exc:
        return Response(None, {}, b"", (clock() - start) * 1000, f"not sent: {exc}")
    try:
        transport.pin(session, url)
        request = session.prepare_request(requests.Request("POST", url, data=body, headers=dict(headers)))
        request.checked_addresses = tuple(checked)
        settings = session.merge_environment_settings(request.url, {}, True, None, None)
        resp = session.send(request, timeout=timeout, allow_redirects=False, **settings)
    except requests.Timeout:
        return Response(None, {}, b"", (clock() - start) * 1000, f"timeout after {timeout:g} s")
    except requests.ConnectionError as exc:
        return Response(None, {}, b"", (clock() - start) * 1000, f"connection error: {_reason(exc)}")
    except requests.RequestException as exc:
        return Response(None, {}, b"", (clock() - start) * 1000, f"request error: {_reason(exc)}")
    chunks, size, error = [], 0, None
    token = _WATCHDOG.watch(time.monotonic() + max(0.0, timeout - (clock() - start)), resp)
    try:
        read = getattr(resp.raw, "read1", None) or resp.raw.read
        while size < RESPONSE_BODY_CAP:
            chunk = read(min(8192, RESPONSE_BODY_CAP - size), decode_content=True)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
            if clock() - start > timeout:
                break
    except (requests.RequestException, OSError, urllib3.exceptions.HTTPError) as exc:
        error = f"answer cut off: {_reason(exc)}"
    finally:
        _WATCHDOG.cancel(token)  # after this returns the watchdog never touches resp (its socket goes back to the pool)
        resp.close()
    if clock() - start > timeout:
        error = f"timeout after {timeout:g} s while reading the answer"
    body_read = b"".join(chunks)[:RESPONSE_BODY_CAP]
    return Response(resp.status_code, dict(resp.headers), body_read, (clock() - start) * 1000, error)


def _cut(resp) -> None:
    """Watchdog: shut the socket under a response that is still dripping when the time is up (a requests
    Response, or a connection with its own `cut()`: the queue's keep-alive connections)."""
    cut = getattr(resp, "cut", None)
    if callable(cut):
        cut()
        return
    sock = getattr(getattr(resp.raw, "_connection", None), "sock", None)
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


class _Watchdog:
    """One thread for every answer being read: cuts the socket of any still reading at its deadline.

    (A threading.Timer per request cost a thread start per POST: ~30% of the POST rate.) Entries are removed on
    cancel; the heap keeps only (deadline, token) until the deadline passes, never the response.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int]] = []
        self._live: dict[int, requests.Response] = {}
        self._tokens = itertools.count()
        self._thread: threading.Thread | None = None

    def watch(self, deadline: float, resp: requests.Response) -> int:
        with self._cond:
            token = next(self._tokens)
            self._live[token] = resp
            heapq.heappush(self._heap, (deadline, token))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="delivery-watchdog", daemon=True)
                self._thread.start()
            if self._heap[0][1] == token:
                self._cond.notify()
            return token

    def cancel(self, token: int) -> bool:
        """Forget `token`; False when its deadline came first (the watchdog cut it)."""
        with self._cond:
            return self._live.pop(token, None) is not None

    def _run(self) -> None:
        with self._cond:
            while True:
                while self._heap and self._heap[0][1] not in self._live:
                    heapq.heappop(self._heap)
                if not self._heap:
                    self._cond.wait()
                    continue
                deadline, token = self._heap[0]
                wait = deadline - time.monotonic()
                if wait > 0:
                    self._cond.wait(wait)
                    continue
                heapq.heappop(self._heap)
                _cut(self._live.pop(token))  # under the lock: cancel() cannot return while a cut is under way


_WATCHDOG = _Watchdog()


def watch(deadline: float, connection) -> int:
    """Have the watchdog call `connection.cut()` at `deadline` (time.monotonic()) unless `unwatch`ed before:
    how a `Sender` other than `post` bounds a whole exchange by its timeout. Returns the token for `unwatch`."""
    return _WATCHDOG.watch(deadline, connection)


def unwatch(token: int) -> bool:
    """After this returns the watchdog never touches the connection for this token. False when it cut it (the
    deadline passed first): the exchange's error is then a timeout, whatever the cut looked like to the reader."""
    return _WATCHDOG.cancel(token)


def _reason(exc: Exception) -> str:
    text = str(exc)
    for marker in ("Connection refused", "Connection reset", "Name or service not known", "timed out"):
        if marker in text:
            return marker
    return text[:300]


def prepare(job: Job, number: int, keys: KeyPair | None, credential: str | None = None) -> Request:
    """The request attempt `number` of `job` sends when nothing alters it (a fault may: see Deliverer.deliver)."""
    return Request(job.url, request_headers(job, number, keys, credential), job.body)


# (url, body, headers, timeout) -> Response: sends exactly these bytes once, as `post` does (its contract: never
# raises for network errors, no redirects, the guard's addresses, the whole exchange within timeout, the answer capped)
Sender = Callable[[str, bytes, Mapping[str, str], float], Response]


@dataclass
class Sent:
    """One attempt as it happened: the request exactly as sent, the receiver's answer as read (neither masked;
    in memory only), and `attempt`, the record the store keeps (credentials masked, echoes scrubbed)."""

    request: Request
    response: Response
    attempt: Attempt


def exchange(
    job: Job,
    request: Request,
    session: requests.Session,
    wall: Callable[[], float] = time.time,
    clock: Callable[[], float] = time.monotonic,
    fakes: tuple[str, ...] = (),
    sender: Sender | None = None,
) -> Sent:
    """POST `request` once as attempt `job.attempts_made` of `job` (does not touch the store). `fakes` are forged
    credentials a fault put in the request: masked in the record like real ones. `sender`: another client with
    `post`'s contract (the queue's keep-alive connections); None: `post` over `session`."""
    started = wall()
    if sender is None:
        resp = post(session, request.url, request.body, request.headers, job.timeout, clock)
    else:
        resp = sender(request.url, request.body, request.headers, job.timeout)
    error = resp.error
    if error is None and resp.status is not None and not 200 <= resp.status < 300:
        error = f"HTTP {resp.status}" + (" (redirect not followed)" if 300 <= resp.status < 400 else "")
    secrets = job.auth.secrets() + list(fakes)
    record = Attempt(
        job_id=job.id,
        number=job.attempts_made,
        started_at=started,
        duration_ms=round(resp.duration_ms, 3),
        url=request.url,
        request_headers=mask_headers(request.headers, secrets),
        request_body=request.body,
        status=resp.status,
        response_headers=scrub_headers(resp.headers, secrets),
        response_body=scrub(resp.body, secrets),
        error=error,
    )
    return Sent(request, resp, record)


def attempt(
    job: Job,
    session: requests.Session,
    keys: KeyPair | None,
    wall: Callable[[], float] = time.time,
    clock: Callable[[], float] = time.monotonic,
) -> Attempt:
    """Make attempt number `job.attempts_made` of `job` over HTTP (does not touch the store)."""
    return exchange(job, prepare(job, job.attempts_made, keys), session, wall, clock).attempt


def advance(job: Job, result: Attempt, now: float) -> Job:
    """The retry decision: a 2xx succeeds; anything else retries while the schedule has delays left."""
    job.attempts_made = result.number + 1
    job.last_status = result.status
    job.last_error = None if result.ok else result.error
    job.updated_at = now
    if result.ok:
        job.state, job.next_attempt_at = SUCCEEDED, None
    elif job.attempts_made < job.max_attempts:
        job.state, job.next_attempt_at = PENDING, now + job.retry_delays[job.attempts_made - 1]
    else:
        job.state, job.next_attempt_at = EXHAUSTED, None
    return job


class Deliverer:
    """Runs attempts of stored jobs: used by the CLI (synchronously) and the server's queue worker."""

    def __init__(
        self,
        store,
        keys: KeyPair | None,
        session: requests.Session | None = None,
        wall: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        on_attempt: Callable[[Job, Attempt], None] | None = None,
        owner: str | None = None,
        sender: Sender | None = None,
    ):
        self.store = store
        self.owner = owner  # the queue worker whose claim (lease) the attempts are recorded under
        self.keys = keys
        if session is None:
            from . import transport

            session = transport.new_session()
        self.session = session
        self.session.trust_env = False  # no proxies from the environment: we talk to the target only
        self.wall = wall
        self.sleep = sleep
        self.on_attempt = on_attempt
        self.sender = sender  # None: delivery.post over self.session

    def deliver(self, job: Job, request: Request | None = None, fakes: tuple[str, ...] = ()) -> Sent:
        """One attempt of `job`: `request` as given (a fault's altered request) or as the job prepares it; the
        record stored is exactly what was sent, with the new state, together."""
        if job.state != DELIVERING:
            self.store.mark_delivering(job, self.wall())
        sent = self.send(job, request, fakes)
        self.store.finish_attempt(job, sent.attempt, owner=self.owner)
        if self.on_attempt:
            self.on_attempt(job, sent.attempt)
        return sent

    def send(
        self, job: Job, request: Request | None = None, fakes: tuple[str, ...] = (), credential: str | None = None
    ) -> Sent:
        """`deliver` without the store: POST attempt `job.attempts_made` and apply the retry decision to `job`.
        The caller records `sent.attempt` with the job's new state (the queue worker does it in batches).
        `credential`: the auth header's value made already (the queue's signing process), else made here."""
        sent = exchange(
            job,
            request or prepare(job, job.attempts_made, self.keys, credential),
            self.session,
            self.wall,
            fakes=fakes,
            sender=self.sender,
        )
        advance(job, sent.attempt, self.wall())
        return sent

    def run_once(self, job: Job) -> Attempt:
        """One attempt of a job already marked delivering (the queue worker's call)."""
        return self.deliver(job).attempt

    def run_to_end(self, job: Job) -> Sent | None:
        """Attempt, wait the scheduled delay, attempt again, until success or the schedule runs out; the last
        attempt made (None when the job had already finished)."""
        last = None
        while not job.finished:
            wait = (job.next_attempt_at or 0) - self.wall()
            if wait > 0:
                self.sleep(wait)
            last = self.deliver(job)
        return last

    def submit(self, job: Job) -> Sent | None:
        """Store `job` and deliver it to the end (the CLI's and the scenario runner's send)."""
        self.store.add_job(job, self.wall())
        return self.run_to_end(job)
