"""Load mode on Locust: a user class that builds, signs and posts fresh events, for rates one machine cannot send.

A locustfile (`locust -f "$(accessrc-sim load --print-locustfile)" …`); `accessrc-sim load … --engine locust
--workers N` runs it as a master and N workers on this machine. Never import it anywhere else: importing locust
monkey-patches the standard library for gevent.

Every request is built as load mode builds it (`simulator.load.events.build_event`: a fresh payload from the
catalogue, its own X-JobId, signed with the platform's signing code) and sent with the core's `delivery.post` (exact
bytes, no redirects, connected only to the addresses the outbound guard checked), then reported to Locust's `request`
event, so Locust's own stats, percentiles, failures table and CSV count it. A failure is named as load mode names it
(`HTTP 500`, `timeout`, `connection error`, `not sent: …`).

The rate and the count are the whole test's, not a user's. The master deals out slots (slot i is due at
start + i/rate, at most `--sim-requests`); each worker asks it for a batch of slots ahead of time, hands each slot to
one of its users at its due time (the slot's delay, as the master computed it, counted on the worker's own clock:
the machines' clocks need not agree), and tells the master when it has sent every slot it got. When the last slot
is sent and counted in the master's stats, the master ends the test. Without a master (`locust --headless` alone)
the same dealer runs in the process.

Settings are Locust custom arguments (`--sim-event`, `--sim-url`, `--sim-rate`, …, each also an environment variable
ACCESSRC_SIM_LOAD_*); the master sends them to its workers. The RSA key pair (Accredit) is each worker's own:
ACCESSRC_SIM_KEYS_DIR, else the data folder; a worker without one never generates a new pair (its signatures would
fail): its requests fail as `not sent: …` naming the missing file. The outbound guard applies on every machine
(ACCESSRC_SIM_ALLOW_HOSTS where each process runs): a master refuses a target off its allow-list before the test
starts (exit 2).
"""

from __future__ import annotations

import json
import logging
import math
import sys
import time
from collections import deque
from dataclasses import dataclass

import gevent
import locust.stats
from gevent.event import AsyncResult, Event
from gevent.lock import Semaphore
from locust import User, constant, events, task
from locust.exception import StopUser
from locust.runners import MasterRunner, WorkerRunner

from simulator import catalogue, config, delivery, platforms, signing, transport
from simulator.auth import AuthError
from simulator.load import GRACE, MAX_DURATION, MAX_RATE, MAX_REQUESTS, failure_reason
from simulator.load.events import FakerPools, LoadError, PayloadSource, build_event
from simulator.models import Job

log = logging.getLogger("accessrc_sim.locust")

ENV_PREFIX = "ACCESSRC_SIM_LOAD_"
TAKE, GRANT, DONE = "accessrc_sim_take", "accessrc_sim_grant", "accessrc_sim_done"  # master <-> worker messages
LEAD = 0.05  # seconds before its first slot's due time a batch is granted (covers the trip to the worker)
BATCH_SECONDS = 0.02  # a batch holds the slots of this much time (at least 1, at most MAX_BATCH)
MAX_BATCH = 64
START_DELAY = 0.2  # seconds between the test's start and slot 0: the users are being spawned meanwhile
STATS_WAIT = 10.0  # seconds the master waits, once every slot is sent, for the workers' last stats report
AUTH_OPTIONS = ("hmac_secret", "api_key_header", "api_key", "basic", "authorization")


# -- settings ------------------------------------------------------------------------------------------------------
@events.init_command_line_parser.add_listener
def add_arguments(parser) -> None:
    def add(flag: str, help: str, **kwargs) -> None:
        env = ENV_PREFIX + flag.removeprefix("--sim-").replace("-", "_").upper()
        parser.add_argument(flag, env_var=env, help=f"{help} (env {env})", **kwargs)

    add("--sim-event", "Event to send, as `accessrc-sim events` names it", default="", is_required=True)
    add("--sim-url", "The receiver's callback URL (loopback or ACCESSRC_SIM_ALLOW_HOSTS)", default="")
    add("--sim-rate", "Requests per second for the whole test, all workers together", type=float, default=0.0)
    add("--sim-requests", "Requests in all at most [default: until --run-time]", type=int, default=0)
    add("--sim-duration", "Seconds of slots; none starts after this + 1 s", type=float, default=0.0)
    add("--sim-timeout", "Seconds a request may take", type=float, default=delivery.DEFAULT_TIMEOUT)
    add("--sim-profile", "Delivery profile [default: the platform's documented one]", default="")
    add("--sim-hmac-secret", "AccessRC hmac auth: the secret", default="", is_secret=True)
    add("--sim-api-key-header", "AccessRC header auth: header name [default: x-api-key]", default="")
    add("--sim-api-key", "AccessRC header auth: the header's value", default="", is_secret=True)
    add("--sim-basic", "AccessRC basic auth: USER:PASS", default="", is_secret=True)
    add("--sim-authorization", "ReachFive: static Authorization header value", default="", is_secret=True)
    add("--sim-rsa-padding", "Accredit RSA signature padding", default="pkcs1v15", choices=signing.PADDINGS)
    add("--sim-overrides", 'Fields to set, a JSON object of dotted paths: {"status": "Rejected"}', default="")
    add("--sim-count", "Size of the event's main list", type=int, default=-1)
    add("--sim-force", "Allow overrides that break the event's schema (true/false)", default="false")
    add("--sim-seed", "Seed for generated values (each user draws its own stream from it)", type=int, default=-1)


@dataclass
class Target:
    """What every request of the test is built from (checked once per process)."""

    template: Job  # event, platform, URL (checked by the outbound guard), auth, timeout, profile
    source: PayloadSource  # fresh payloads; users draw from it with their own RNG
    keys: signing.KeyPair | None
    rate: float
    total: int | None  # None: until Locust's --run-time
    duration: float | None  # None: until Locust's --run-time
    seed: int | None


def target_from(options, with_keys: bool = True) -> Target:
    """The settings of `options` (Locust's parsed options), checked as `accessrc-sim load` checks them; LoadError
    naming the option otherwise. `with_keys`: load the RSA key pair too (a master never signs)."""
    given = lambda name: getattr(options, f"sim_{name}", None) or None  # noqa: E731  ("" and 0: not given)
    event = given("event")
    if not event:
        raise LoadError("--sim-event is required (an event name, as `accessrc-sim events` lists them)")
    if not given("url"):
        raise LoadError("--sim-url is required (the receiver's callback URL)")
    rate = float(options.sim_rate or 0)
    if not 0 < rate <= MAX_RATE:
        raise LoadError(f"--sim-rate must be more than 0 and at most {MAX_RATE:g} requests per second")
    total = int(options.sim_requests or 0) or None
    if total is not None and not 1 <= total <= MAX_REQUESTS:
        raise LoadError(f"--sim-requests must be between 1 and {MAX_REQUESTS:,}")
    duration = float(getattr(options, "sim_duration", 0) or 0) or None
    if duration is not None and not 0 < duration <= MAX_DURATION:
        raise LoadError(f"--sim-duration must be more than 0 and at most {MAX_DURATION:g} seconds")
    try:
        spec = catalogue.get_event(event)
        auth = platforms.get(spec.platform).auth_from_options(
            lambda name: "--sim-" + name.replace("_", "-"),
            rsa_padding=options.sim_rsa_padding or "pkcs1v15",
            **{name: given(name) for name in AUTH_OPTIONS},
        )
        template = delivery.new_job(
            spec.name,
            spec.platform,
            options.sim_url,
            b"",
            auth,
            delays=(),
            timeout=options.sim_timeout,
            source="load",
            profile=given("profile"),
        )
    except (catalogue.CatalogueError, AuthError, delivery.DeliveryError) as exc:
        raise LoadError(str(exc)) from exc
    try:
        overrides = json.loads(options.sim_overrides) if options.sim_overrides else {}
    except ValueError as exc:
        raise LoadError(f"--sim-overrides is not JSON: {exc}") from exc
    if not isinstance(overrides, dict):
        raise LoadError('--sim-overrides must be a JSON object of dotted paths, e.g. {"status": "Rejected"}')
    force = str(options.sim_force).strip().lower() in ("1", "true", "yes", "on")
    count = options.sim_count if options.sim_count is not None and options.sim_count >= 0 else None
    seed = options.sim_seed if options.sim_seed is not None and options.sim_seed >= 0 else None
    source = PayloadSource(spec.name, overrides, count, force, FakerPools(seed))
    try:
        source.check()  # the first payloads against the event's schema, before anything is sent
    except catalogue.CatalogueError as exc:
        raise LoadError(str(exc)) from exc
    keys = None
    if with_keys and platforms.get(spec.platform).signs_with_keys:
        keys_dir = config.from_environment().get("keys_dir") or config.default_keys_dir()
        try:
            keys = signing.load_keys(keys_dir, create=False)  # never a new pair: the receiver holds the old one
        except (OSError, signing.KeyFileError) as exc:
            raise LoadError(f"{spec.name} is RSA-signed and this process has no key pair: {exc}") from exc
    return Target(template, source, keys, rate, total, duration, seed)


# -- the master's dealer ---------------------------------------------------------------------------------------------
class Dealer:
    """Slots of the whole test: slot i is due at start + i/rate; at most `total`, none due after `duration` + GRACE
    (None: no end but Locust's --run-time)."""

    def __init__(self, rate: float, total: int | None, duration: float | None = None, clock=time.monotonic):
        self.rate, self.total, self.clock = rate, total, clock
        self.start = clock() + START_DELAY
        self.end = None if duration is None else self.start + duration + GRACE
        self.next = 0
        self.lock = Semaphore()  # batches are granted in order, each no earlier than its time

    @property
    def exhausted(self) -> bool:
        return self.total is not None and self.next >= self.total

    def take(self, n: int) -> tuple[int, int, float]:
        """(first slot, count, seconds until the first is due) of the next `n` slots at most; count 0: no more.
        Blocks (this greenlet) until LEAD before the first slot's due time."""
        with self.lock:
            if self.exhausted:
                return self.next, 0, 0.0
            due = self.start + self.next / self.rate
            if self.end is not None and max(due, self.clock()) > self.end:  # time is up: the slots left go unsent
                self.total = self.next
                return self.next, 0, 0.0
            wait = due - LEAD - self.clock()
            if wait > 0:
                gevent.sleep(wait)
            n = n if self.total is None else min(n, self.total - self.next)
            first, self.next = self.next, self.next + n
            return first, n, max(0.0, due - self.clock())


def batch_size(rate: float) -> int:
    return max(1, min(MAX_BATCH, math.ceil(rate * BATCH_SECONDS)))


# -- a process's slots -------------------------------------------------------------------------------------------------
class Feeder:
    """The slots this process got, as local due times, handed to its users one by one.

    `ask(n)` returns the dealer's (first, count, delay) for the next n slots: a call in the same process, or a
    message to the master and its answer. At most two batches are held ahead of the users."""

    def __init__(self, ask, rate: float, on_change=lambda: None, clock=time.monotonic):
        self.ask, self.rate, self.on_change, self.clock = ask, rate, on_change, clock
        self.batch = batch_size(rate)
        self.due: deque[float] = deque()
        self.changed = Event()
        self.exhausted = False
        self.granted = 0
        self.finished = 0  # requests reported to Locust (sent, failed or not sent)
        self.greenlet = gevent.spawn(self._fill)

    def _fill(self) -> None:
        while not self.exhausted:
            while len(self.due) >= 2 * self.batch:
                self.changed.clear()
                self.changed.wait(0.5)
            first, n, delay = self.ask(self.batch)
            now = self.clock()
            if n == 0:
                self.exhausted = True
            self.granted += n
            self.due.extend(now + delay + k / self.rate for k in range(n))
            self.changed.set()
        self.on_change()  # no more slots: perhaps every one is already sent

    def next(self) -> bool:
        """Wait for a slot and its due time: True, or False when there are no more slots."""
        while not self.due:
            if self.exhausted:
                return False
            self.changed.clear()
            self.changed.wait(0.5)
        due = self.due.popleft()
        self.changed.set()  # room for another batch
        wait = due - self.clock()
        if wait > 0:
            gevent.sleep(wait)
        return True

    @property
    def done(self) -> bool:
        return self.exhausted and not self.due and self.finished == self.granted

    def stop(self) -> None:
        self.greenlet.kill(block=False)


class State:
    """This process's part of the test: its target (or why it has none), dealer (master, local), feeder."""

    def __init__(self):
        self.environment = None
        self.target: Target | None = None
        self.error: str | None = None
        self.dealer: Dealer | None = None
        self.feeder: Feeder | None = None
        self.grants: deque[AsyncResult] = deque()
        self.users = 0
        self.done_reported = False
        self.done_workers: dict[str, int] = {}  # worker id -> requests it sent
        self.taken_by: set[str] = set()
        self.watcher = None


STATE = State()


def is_master(environment) -> bool:
    return isinstance(environment.runner, MasterRunner)


def is_worker(environment) -> bool:
    return isinstance(environment.runner, WorkerRunner)


@events.init.add_listener
def on_init(environment, **_kwargs) -> None:
    STATE.environment = environment
    runner = environment.runner
    if is_master(environment):
        runner.register_message(TAKE, on_take, concurrent=True)  # each request waits for its slots' time
        runner.register_message(DONE, on_done)
    elif is_worker(environment):
        runner.register_message(GRANT, on_grant)
    if not is_worker(environment) and environment.parsed_options is not None:
        try:  # the master refuses bad settings (a target off the allow-list included) before the test starts
            target_from(environment.parsed_options, with_keys=not is_master(environment))
        except LoadError as exc:
            sys.stderr.write(f"Error: {exc}\n")
            sys.exit(2)


@events.test_start.add_listener
def on_test_start(environment, **_kwargs) -> None:
    STATE.error, STATE.target, STATE.feeder, STATE.users = None, None, None, 0
    STATE.done_reported, STATE.done_workers, STATE.taken_by = False, {}, set()
    STATE.grants.clear()
    try:
        STATE.target = target_from(environment.parsed_options, with_keys=not is_master(environment))
    except LoadError as exc:  # a worker's own check (its allow-list, its key): every slot it gets fails with this
        STATE.error = f"not sent: {exc}"
        log.error("accessrc-sim: %s", exc)
        if not is_worker(environment):
            environment.process_exit_code = 2
            gevent.spawn(environment.runner.quit)
            return
    if not is_worker(environment):
        rate = STATE.target.rate if STATE.target else float(environment.parsed_options.sim_rate)
        total = STATE.target.total if STATE.target else None
        STATE.dealer = Dealer(rate, total, STATE.target.duration if STATE.target else None)
        STATE.watcher = gevent.spawn(watch_the_end, environment)


@events.test_stop.add_listener
def on_test_stop(environment, **_kwargs) -> None:
    if STATE.feeder is not None:
        STATE.feeder.stop()
    if STATE.watcher is not None and STATE.watcher is not gevent.getcurrent():
        STATE.watcher.kill(block=False)
        STATE.watcher = None


def on_take(environment, msg, **_kwargs) -> None:  # master: a worker asks for slots
    STATE.taken_by.add(msg.node_id)
    first, n, delay = STATE.dealer.take(int(msg.data["n"]))
    environment.runner.send_message(GRANT, {"first": first, "n": n, "delay": delay}, client_id=msg.node_id)


def on_done(environment, msg, **_kwargs) -> None:  # master: a worker sent every slot it got
    STATE.done_workers[msg.node_id] = int(msg.data["sent"])


def on_grant(environment, msg, **_kwargs) -> None:  # worker: the master's answer to the oldest request
    if STATE.grants:
        STATE.grants.popleft().set((msg.data["first"], msg.data["n"], msg.data["delay"]))


def ask_master(n: int) -> tuple[int, int, float]:
    answer = AsyncResult()
    STATE.grants.append(answer)
    STATE.environment.runner.send_message(TAKE, {"n": n})
    return answer.get()


def watch_the_end(environment) -> None:
    """Master or local: end the test once every slot was sent and counted (Locust's --run-time may end it first)."""
    runner = environment.runner
    while True:
        gevent.sleep(0.1)
        dealer = STATE.dealer
        if dealer is None or not dealer.exhausted:
            continue
        if is_master(environment):
            if not STATE.taken_by <= set(STATE.done_workers):
                continue
            sent = sum(STATE.done_workers.values())
            deadline = time.monotonic() + STATS_WAIT
            while environment.stats.total.num_requests < sent and time.monotonic() < deadline:
                gevent.sleep(0.1)  # the workers report their stats every few seconds
        elif STATE.feeder is None or not STATE.feeder.done:
            continue
        log.info("accessrc-sim: every slot sent, stopping")
        # Locust rewrites its CSV every CSV_STATS_INTERVAL_SEC and not at the end: one more round makes it final
        gevent.sleep(locust.stats.CSV_STATS_INTERVAL_SEC + 0.1)
        if environment.parsed_options and not environment.parsed_options.headless:
            runner.stop()
        else:
            runner.quit()
        return


def report_done_if_finished(environment) -> None:
    feeder = STATE.feeder
    if is_worker(environment) and feeder is not None and feeder.done and not STATE.done_reported:
        STATE.done_reported = True
        environment.runner.send_message(DONE, {"sent": feeder.finished})


# -- the user --------------------------------------------------------------------------------------------------------
class SignedEventUser(User):
    """Posts fresh signed events at the slots its process gets: open loop for the test, one request at a time."""

    wait_time = constant(0)  # the slots set the pace

    def on_start(self) -> None:
        environment = self.environment
        if STATE.feeder is None:
            if is_worker(environment):
                rate = float(environment.parsed_options.sim_rate)
                STATE.feeder = Feeder(ask_master, rate, lambda: report_done_if_finished(environment))
            else:
                STATE.feeder = Feeder(STATE.dealer.take, STATE.dealer.rate)
        STATE.users += 1
        target = STATE.target
        self.session = transport.new_session()  # pinned to the guard-checked addresses, no proxies from env
        if target is not None:
            worker = max(0, getattr(environment.runner, "worker_index", 0))
            index = worker * 100_000 + STATE.users  # each user its own stream, also when --sim-seed is given
            self.source = target.source.worker(index, target.seed)
            self.name = target.template.event

    def on_stop(self) -> None:
        self.session.close()

    @task
    def post_one(self) -> None:
        feeder = STATE.feeder
        if not feeder.next():
            report_done_if_finished(self.environment)
            raise StopUser()
        try:
            self._send()
        finally:
            feeder.finished += 1
            report_done_if_finished(self.environment)

    def _send(self) -> None:
        target = STATE.target
        fire = self.environment.events.request.fire
        if target is None:  # this process could not build events: the slot fails, saying why
            name = self.environment.parsed_options.sim_event or "event"
            fire(request_type="POST", name=name, response_time=0, response_length=0, exception=STATE.error)
            return
        event = build_event(self.source, target.template, target.keys)
        if event.error is not None:
            fire(
                request_type="POST",
                name=self.name,
                response_time=0,
                response_length=0,
                exception="not sent: could not build the event",
                context={"job_id": event.job_id, "error": event.error},
            )
            return
        resp = delivery.post(self.session, target.template.url, event.body, event.headers, target.template.timeout)
        ok = resp.error is None and resp.status is not None and 200 <= resp.status < 300
        fire(
            request_type="POST",
            name=self.name,
            response_time=resp.duration_ms,
            response_length=len(resp.body),
            exception=None if ok else failure_reason(resp.status, resp.error),  # Locust's error text
            context={"job_id": event.job_id},
            url=target.template.url,
        )
