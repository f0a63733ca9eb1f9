"""Run loaded scenarios: each step sends (through the Deliverer, or byte for byte for faults), every request is
recorded in the Store (jobs with source="scenario"), and the receiver's answers are checked.

No Flask. The store, the HTTP session and `sleep` are passed in.
"""
from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Callable

import requests

from .. import catalogue, delivery, envelopes, limits, transport
from ..auth import mask_headers, scrub, scrub_headers
from ..catalogue import paths
from ..delivery import DeliveryError, Deliverer
from ..models import Attempt, Job
from ..rules import Rule
from ..signing import KeyPair
from . import faults
from .faults import FaultError
from .loader import CREDENTIAL_FAULTS, Scenario, Step, _VAR

SOURCE = "scenario"


class _Missing:
    """The actual value of a body path the answer does not have (not the string "(missing)")."""

    def __repr__(self) -> str:
        return "(missing)"

    __str__ = __repr__


MISSING = _Missing()


@dataclass
class Failure:
    check: str
    expected: Any
    actual: Any  # MISSING when the answer has no such path
    label: str = ""

    def text(self) -> str:
        where = f"{self.label}: " if self.label else ""
        return f"{where}{self.check}: expected {_show(self.expected)}, got {_show(self.actual)}"

    def to_dict(self) -> dict:
        if self.actual is MISSING:  # JSON: no value, and says so
            return {"check": self.check, "expected": self.expected, "actual": None, "missing": True,
                    "label": self.label}
        return {"check": self.check, "expected": self.expected, "actual": self.actual, "label": self.label}


def _show(value: Any) -> str:
    if value is MISSING:
        return str(value)
    if isinstance(value, str):
        return value if len(value) <= 200 else value[:200] + "…"
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 200 else text[:200] + "…"


@dataclass
class Exchange:
    """One request of a step and the receiver's answer (headers as sent, unmasked: kept in memory only)."""

    label: str
    event: str
    url: str
    body: bytes
    headers: dict
    number: int
    payload: Any
    job: Job
    status: int | None = None
    response_headers: dict = field(default_factory=dict)
    response_body: bytes = b""
    ms: float = 0.0
    error: str | None = None
    checked: bool = True

    def response_json(self) -> Any:
        try:
            return limits.loads(self.response_body)  # a receiver's answer nested too deep is not JSON to us
        except ValueError:
            return None

    def view(self) -> dict:
        """What `${name.…}` can reach."""
        parsed = self.response_json()
        return {"payload": self.payload, "job_id": self.headers.get("X-JobId", self.job.id),
                "attempts": self.job.attempts_made,
                "request": {"headers": dict(self.headers), "body": self.body.decode("utf-8", "replace")},
                "response": {"status": self.status, "headers": dict(self.response_headers), "ms": round(self.ms, 1),
                             "body": parsed if parsed is not None else self.response_body.decode("utf-8", "replace")}}


@dataclass
class StepResult:
    name: str
    kind: str
    where: str
    passed: bool | None  # None: not counted (wait, repeat, skipped)
    status: str = ""
    ms: float | None = None
    failures: list[Failure] = field(default_factory=list)
    skipped: str | None = None
    exchanges: list[Exchange] = field(default_factory=list)
    duration: float = 0.0
    fault: str | None = None
    rule: Rule | None = None
    warned: bool = False  # failed, but its rule is inferred and the run is not strict: advice, not a failure

    @property
    def counted(self) -> bool:
        return self.passed is not None

    @property
    def failed(self) -> bool:
        """A failure that counts (not a warning)."""
        return self.passed is False and not self.warned

    @property
    def advice(self) -> str:
        """Why a warned step is only advice: its inferred rule and the reason we chose it."""
        if not self.rule:
            return ""
        return f"inferred ({self.rule.id}): {self.rule.reason}; a failure only with --strict"

    @property
    def evidence(self) -> str:
        parts = []
        for ex in self.exchanges:
            if not ex.checked:
                continue
            answer = str(ex.status) if ex.status is not None else (ex.error or "no answer")
            parts.append(f"{ex.label + ' ' if ex.label else ''}-> {answer} in {ex.ms:.0f} ms")
        return f"{self.name}: " + ", ".join(parts) if parts else self.name

    def to_dict(self) -> dict:
        return {"name": self.name, "kind": self.kind, "where": self.where, "passed": self.passed,
                "warned": self.warned, "rule": self.rule.id if self.rule else None,
                "source": self.rule.source if self.rule else None,
                "skipped": self.skipped, "status": self.status, "ms": self.ms,
                "duration_s": round(self.duration, 4),
                "failures": [f.to_dict() for f in self.failures],
                "jobs": [{"job_id": ex.job.id, "x_job_id": ex.headers.get("X-JobId"), "attempt": ex.number,
                          "status": ex.status, "ms": round(ex.ms, 1), "error": ex.error, "label": ex.label}
                         for ex in self.exchanges]}


@dataclass
class ScenarioResult:
    scenario: Scenario
    steps: list[StepResult] = field(default_factory=list)
    started_at: float = 0.0
    duration: float = 0.0

    @property
    def passed(self) -> int:
        return sum(1 for s in self.steps if s.passed is True)

    @property
    def failed(self) -> int:
        return sum(1 for s in self.steps if s.failed)

    @property
    def warned(self) -> int:
        return sum(1 for s in self.steps if s.warned)

    def to_dict(self) -> dict:
        sc = self.scenario
        return {"file": sc.path, "name": sc.name, "platform": sc.platform, "url": sc.url, "auth": sc.auth.masked(),
                "passed": self.passed, "failed": self.failed, "warned": self.warned,
                "duration_s": round(self.duration, 4),
                "steps": [s.to_dict() for s in self.steps]}


class StepFailed(Exception):
    def __init__(self, failure: Failure):
        super().__init__(failure.text())
        self.failure = failure


class Stop(Exception):
    """--fail-fast: a step failed; nothing more is run."""


def default_status(kind: str, fault: str | None, platform: str) -> list:
    if kind == "send" or fault in ("duplicate", "replay", "out_of_order"):
        return ["2xx"]
    if fault in CREDENTIAL_FAULTS:
        return [401, 403] if platform == "reachfive" else [401]
    return {"malformed_json": [400], "missing_required_field": [400], "wrong_content_type": [400, 415],
            "oversized_body": [400, 413]}[fault]


def status_matches(status: int | None, wanted: list) -> bool:
    if status is None:
        return False
    for w in wanted:
        if isinstance(w, str) and re.fullmatch(r"[1-5]xx", w) and str(status)[0] == w[0]:
            return True
        if isinstance(w, int) and not isinstance(w, bool) and status == w:
            return True
    return False


def check_exchange(expect: dict, ex: Exchange, wanted_status: list) -> list[Failure]:
    """Every expectation that the answer of `ex` does not meet."""
    out: list[Failure] = []
    label = ex.label
    if not status_matches(ex.status, wanted_status):
        actual = ex.status if ex.status is not None else ex.error
        if ex.status is not None and ex.error and not ex.error.startswith("HTTP "):
            actual = f"{ex.status} ({ex.error})"
        out.append(Failure("status", wanted_status[0] if len(wanted_status) == 1 else wanted_status, actual, label))
    body = ex.response_json()
    for path, value in (expect.get("body") or {}).items():
        if body is None:
            out.append(Failure(f"body.{path}", value, "answer is not JSON: " +
                               ex.response_body[:120].decode("utf-8", "replace"), label))
            continue
        try:
            got = paths.get(body, path)
        except paths.PathError:
            out.append(Failure(f"body.{path}", value, MISSING, label))
            continue
        if got != value:
            out.append(Failure(f"body.{path}", value, got, label))
    if expect.get("echo") and ex.status is not None:
        out.extend(echo_failures(ex, body))
    shape = expect.get("envelope")
    if shape and ex.status is not None:
        problem = envelope_problem(shape, ex.status, body)
        if problem:
            out.append(Failure("envelope", problem[0], problem[1], label))
    if "latency_ms" in expect and (ex.status is None or ex.ms > float(expect["latency_ms"])):
        out.append(Failure("latency_ms", f"at most {expect['latency_ms']} ms",
                           f"{ex.ms:.0f} ms" + (f" ({ex.error})" if ex.error else ""), label))
    if "attempts" in expect and ex.job.attempts_made != expect["attempts"]:
        out.append(Failure("attempts", expect["attempts"], ex.job.attempts_made, label))
    return out


def echo_failures(ex: Exchange, body: Any) -> list[Failure]:
    """The 200 reply's `data` against the event's documented reply data: the ids it echoes must be equal, a
    placeholder (the pull form) must be present, `{}` only asks for an object."""
    spec = catalogue.get_event(ex.event)
    if spec.reply_data is None or not isinstance(ex.payload, dict):
        return [Failure("echo", "an event with documented reply data", ex.event, ex.label)]
    if not 200 <= ex.status < 300:
        return [Failure("echo", "a 2xx answer whose data echoes the delivery", ex.status, ex.label)]
    wanted = spec.reply_data(ex.payload)
    data = body.get("data", MISSING) if isinstance(body, dict) else MISSING
    if not isinstance(data, dict):
        return [Failure("body.data", wanted, data, ex.label)]
    out = []
    for key, value in wanted.items():
        got = data.get(key, MISSING)
        if got is MISSING or (not isinstance(value, (dict, list)) and got != value):
            out.append(Failure(f"body.data.{key}", value if not isinstance(value, (dict, list)) else "present",
                               got, ex.label))
    return out


def envelope_problem(shape: str, status: int, body: Any) -> tuple[str, str] | None:
    """(expected, actual) when the answer is not the documented envelope, else None."""
    success = 200 <= status < 300
    if shape == "success" or (shape == "documented" and success):
        if not envelopes.is_success_envelope(body):
            return ('{"status":"success","message":…,"data":{…}}', _show(body))
        return None
    if not envelopes.is_failed_envelope(body):
        return ('{"status":"failed","error":{"code","message","type"}}', _show(body))
    error = body["error"]
    if shape == "documented" and error.get("code") != status:
        return (f"error.code {status}", f"error.code {error.get('code')}")
    documented_type = envelopes.ERRORS.get(status, (None, None))[1]
    if shape == "documented" and documented_type and error.get("type") != documented_type:
        return (f"error.type {documented_type}", f"error.type {error.get('type')}")
    return None


class Runner:
    def __init__(self, store, keys: KeyPair | Callable[[], KeyPair] | None = None,
                 session: requests.Session | None = None, sleep: Callable[[float], None] = time.sleep,
                 on_step: Callable[[Scenario, StepResult], None] | None = None,
                 on_scenario: Callable[[Scenario], None] | None = None, fail_fast: bool = False,
                 strict: bool = False):
        self.store = store
        self._keys = keys
        self.session = session or transport.new_session()
        self.session.trust_env = False
        self.sleep = sleep
        self.on_step = on_step
        self.on_scenario = on_scenario
        self.fail_fast = fail_fast
        self.strict = strict  # inferred rules fail like documented ones
        self.stopped = False

    @property
    def keys(self) -> KeyPair | None:
        if callable(self._keys):
            self._keys = self._keys()
        return self._keys

    # -- scenarios --------------------------------------------------------------------------------------------
    def run(self, scenarios: list[Scenario]) -> list[ScenarioResult]:
        results = []
        for sc in scenarios:
            if self.stopped:
                break
            results.append(self.run_scenario(sc))
        return results

    def run_scenario(self, sc: Scenario) -> ScenarioResult:
        result = ScenarioResult(sc, started_at=time.time())
        if self.on_scenario:
            self.on_scenario(sc)
        named: dict[str, Exchange] = {}
        state = {"last": None}
        start = time.monotonic()
        try:
            self._run_steps(sc, sc.steps, result, named, state, suffix="")
        except Stop:
            self.stopped = True
        result.duration = time.monotonic() - start
        return result

    def _run_steps(self, sc, steps, result, named, state, suffix: str) -> None:
        for step in steps:
            if step.kind == "repeat" and step.skip is None:
                times = step.data["repeat"]
                for i in range(times):
                    self._run_steps(sc, step.children, result, named, state, suffix=f"{suffix} [{i + 1}/{times}]")
                continue
            res = self._run_step(sc, step, named, state, suffix)
            result.steps.append(res)
            if self.on_step:
                self.on_step(sc, res)
            if res.failed and self.fail_fast:
                raise Stop()

    def _run_step(self, sc: Scenario, step: Step, named: dict, state: dict, suffix: str) -> StepResult:
        res = StepResult(name=step.name + suffix, kind=step.kind, where=step.where, passed=None,
                         fault=step.data.get("fault"), rule=step.rule)
        if step.skip:
            res.skipped = step.skip
            return res
        if step.kind == "wait":
            self.sleep(float(step.data["wait"]))
            return res
        started = time.monotonic()
        try:
            data = resolve(step.data, named, keep=("expect",) if step.kind != "expect" else ())
            expect = data["expect"] if step.kind == "expect" else {}
            if step.kind == "send":
                exchanges = [self._send(sc, step, data)]
            elif step.kind == "fault":
                exchanges = self._fault(sc, step, data, named)
            else:  # expect
                of = expect.get("of")
                target = named.get(of) if of else state["last"]
                if target is None:
                    raise StepFailed(Failure("of", f"an answer of {of or 'a previous step'}",
                                             "that step did not run"))
                exchanges = [target]
            res.exchanges = exchanges if step.kind != "expect" else []
            checked = [ex for ex in exchanges if ex.checked]
            if step.kind in ("send", "fault") and checked:
                state["last"] = checked[-1]
                if step.data.get("as"):  # before `expect` is resolved: it may refer to this very step
                    named[step.data["as"]] = checked[-1]
                expect = resolve(step.data.get("expect") or {}, named)
            for ex in exchanges:
                if not ex.checked and not status_matches(ex.status, ["2xx"]):
                    res.failures.append(Failure("status", "2xx", ex.status if ex.status is not None else ex.error,
                                                ex.label))
            if "status" in expect:
                wanted = expect["status"] if isinstance(expect["status"], list) else [expect["status"]]
            elif step.kind == "expect":
                wanted = ["2xx"] if not {"body", "envelope", "echo", "latency_ms", "attempts"} & set(expect) else \
                    ["1xx", "2xx", "3xx", "4xx", "5xx"]
            else:
                wanted = default_status(step.kind, step.data.get("fault"), sc.platform)
            for ex in checked:
                res.failures.extend(check_exchange(expect, ex, wanted))
            res.status = ",".join(str(ex.status) if ex.status is not None else "---" for ex in checked)
            res.ms = max((ex.ms for ex in checked), default=None)
        except StepFailed as exc:
            res.failures.append(exc.failure)
        except (DeliveryError, FaultError, catalogue.CatalogueError, paths.PathError) as exc:
            res.failures.append(Failure("step", "a request that can be sent", str(exc)))
        res.duration = time.monotonic() - started
        res.passed = not res.failures
        res.warned = bool(res.failures) and step.rule is not None and not step.rule.documented and not self.strict
        return res

    # -- send -------------------------------------------------------------------------------------------------
    def _payload(self, step: Step, data: dict, sets: dict | None = None, now: datetime | None = None,
                 seed_offset: int = 0) -> dict:
        seed = data.get("seed")
        payload = catalogue.generate(step.event, seed=None if seed is None else seed + seed_offset,
                                     overrides=data.get("set") if sets is None else sets, now=now,
                                     count=data.get("count"), force=bool(data.get("force")))
        for path in data.get("remove") or []:
            paths.remove(payload, path)
        return payload

    def _delays(self, sc: Scenario, data: dict) -> tuple[float, ...]:
        retry = data.get("retry")
        if retry == "none":
            return ()
        if isinstance(retry, dict):
            return tuple(float(d) for d in retry["delays"])
        return sc.retry or ()

    def _timeout(self, sc: Scenario, data: dict) -> float:
        return float(data.get("timeout") or sc.timeout)

    def _send(self, sc: Scenario, step: Step, data: dict) -> Exchange:
        payload = self._payload(step, data)
        body = catalogue.body_bytes(payload)
        url = data.get("url") or sc.url
        job = delivery.new_job(step.event, sc.platform, url, body, sc.auth, delays=self._delays(sc, data),
                               timeout=self._timeout(sc, data), source=SOURCE, headers=data.get("headers") or {},
                               profile=sc.profile)
        if data.get("job_attempt"):
            job.attempts_made = int(data["job_attempt"])
        keys = self.keys if sc.auth.kind == "rsa" else None
        Deliverer(self.store, keys, session=self.session, sleep=self.sleep).submit(job)
        last = self.store.attempts(job.id)[-1]
        sent_headers = delivery.request_headers(job, last.number, keys)
        return Exchange(label="", event=step.event, url=url, body=body, headers=sent_headers, number=last.number,
                        payload=payload, job=job, status=last.status, response_headers=last.response_headers,
                        response_body=last.response_body, ms=last.duration_ms, error=last.error)

    # -- faults -------------------------------------------------------------------------------------------------
    def _fault(self, sc: Scenario, step: Step, data: dict, named: dict) -> list[Exchange]:
        kind = data["fault"]
        url = data.get("url") or sc.url
        timeout = self._timeout(sc, data)
        keys = self.keys if sc.auth.kind == "rsa" else None
        extra = data.get("headers") or {}

        def fresh(payload, label="", checked=True, number=None):
            body = catalogue.body_bytes(payload)
            job = delivery.new_job(step.event, sc.platform, url, body, sc.auth, delays=(), timeout=timeout,
                                   source=SOURCE, headers=extra, profile=sc.profile)
            n = int(data.get("job_attempt") or 0) if number is None else number
            job.attempts_made = n
            return job, body, delivery.request_headers(job, n, keys)

        if kind in ("duplicate", "replay"):
            if data.get("of"):
                original = named.get(data["of"])
                if original is None:
                    raise StepFailed(Failure("of", f"an earlier answer of {data['of']}", "that step did not run"))
            else:
                payload = self._payload(step, data)
                job, body, headers = fresh(payload, number=0)
                original = self._exchange(sc, "original", step.event, url, body, headers, payload, timeout, [],
                                          checked=False, number=0)
                pre = [original]
            if kind == "replay":
                self.sleep(float(data.get("after", 1.0)))
            headers = dict(original.headers)
            if "job_attempt" in data and "X-JobAttempt" in headers:
                headers["X-JobAttempt"] = str(data["job_attempt"])
            again = self._exchange(sc, "", original.event, url, original.body, headers, original.payload,
                                   timeout, [], number=original.number if "job_attempt" not in data
                                   else int(data["job_attempt"]))
            return ([] if data.get("of") else pre) + [again]

        if kind == "out_of_order":
            shared = dict(data.get("set") or {})
            now = datetime.now(timezone.utc)
            earlier = self._payload(step, data, sets={**shared, **((data.get("earlier") or {}).get("set") or {})},
                                    now=now - timedelta(days=7))
            same_entity = {k: v for k, v in earlier.items() if k.endswith("Id") and isinstance(v, str)}
            later = self._payload(step, data, sets={**same_entity, **shared,
                                                    **((data.get("later") or {}).get("set") or {})},
                                  now=now, seed_offset=1)
            job_e, body_e, headers_e = fresh(earlier)
            job_l, body_l, headers_l = fresh(later)
            first = self._exchange(sc, "later event sent first", step.event, url, body_l, headers_l, later,
                                   timeout, [])
            second = self._exchange(sc, "earlier event sent second", step.event, url, body_e, headers_e, earlier,
                                    timeout, [])
            return [first, second]

        payload = self._payload(step, data)
        job, body, headers = fresh(payload)
        body, headers, payload, fakes = faults.build(
            kind, step.event, sc.auth, headers, body, payload, lambda b: self._resign(sc, job, b, keys),
            tamper=data.get("tamper"), seed=data.get("seed"), field=data.get("field"),
            content_type=data.get("content_type"), size=data.get("size"))
        return [self._exchange(sc, "", step.event, url, body, headers, payload, timeout, fakes,
                               number=job.attempts_made)]

    def _resign(self, sc: Scenario, job: Job, body: bytes, keys) -> dict:
        """Correct credentials for these (faulty) bytes: the fault must reach the receiver's parser, not its
        signature check."""
        job.body = body
        return delivery.request_headers(job, job.attempts_made, keys)

    def _exchange(self, sc: Scenario, label: str, event: str, url: str, body: bytes, headers: dict, payload: Any,
                  timeout: float, fakes: list[str], checked: bool = True, number: int = 0,
                  job_id: str | None = None) -> Exchange:
        """Send exactly these bytes and headers once and record them as a job of its own (source scenario)."""
        keys = self.keys if sc.auth.kind == "rsa" else None
        job = delivery.new_job(event, sc.platform, url, body, sc.auth, delays=(), timeout=timeout, source=SOURCE,
                               profile=sc.profile)
        job_id = job_id or headers.get("X-JobId")
        if job_id:
            job.id = job_id
        if self.store.get_job(job.id) is not None:  # a resend of a recorded job: a job row of its own
            job.id = delivery.new_job(event, sc.platform, url, body, sc.auth, delays=()).id
        job.attempts_made = number
        secrets_ = sc.auth.secrets() + fakes
        default = delivery.request_headers(job, number, keys)
        diff: dict[str, str | None] = {k: v for k, v in headers.items() if default.get(k) != v}
        diff.update({k: None for k in default if k not in headers})
        job.headers = mask_headers({k: v for k, v in diff.items() if v is not None}, secrets_)
        job.headers.update({k: None for k, v in diff.items() if v is None})
        now = time.time()
        self.store.add_job(job, now)
        resp = delivery.post(self.session, url, body, headers, timeout)
        error = resp.error
        if error is None and resp.status is not None and not 200 <= resp.status < 300:
            error = f"HTTP {resp.status}"
        attempt = Attempt(job_id=job.id, number=number, started_at=now, duration_ms=round(resp.duration_ms, 3),
                          url=url, request_headers=mask_headers(headers, secrets_), request_body=body,
                          status=resp.status, response_headers=scrub_headers(resp.headers, secrets_),
                          response_body=scrub(resp.body, secrets_), error=error)
        delivery.advance(job, attempt, time.time())
        self.store.finish_attempt(job, attempt)
        return Exchange(label=label, event=event, url=url, body=body, headers=dict(headers), number=number,
                        payload=payload, job=job, status=resp.status, response_headers=resp.headers,
                        response_body=resp.body, ms=resp.duration_ms, error=error, checked=checked)


# -- step results in variables ------------------------------------------------------------------------------------
class RefError(Exception):
    pass


def resolve(value: Any, named: dict[str, Exchange], keep: tuple = ()) -> Any:
    """Replace `${name.path}` references with the values of earlier steps (a whole-string reference keeps its type)."""
    if isinstance(value, dict):
        return {k: (v if k in keep else resolve(v, named)) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve(v, named) for v in value]
    if not isinstance(value, str) or "${" not in value:
        return value
    found: list[Any] = []

    def replace(match: re.Match) -> str:
        if match.group(0) == "$${":
            return "${"
        inner = match.group(1).strip()
        name, _, rest = inner.partition(".")
        if name not in named:
            raise StepFailed(Failure("variable", f"{match.group(0)} from an earlier step",
                                     f"step {name!r} has no answer (it did not run or failed to send)"))
        try:
            got = paths.get(named[name].view(), rest)
        except paths.PathError as exc:
            raise StepFailed(Failure("variable", match.group(0), str(exc))) from None
        if match.group(0) == value:
            found.append(got)
        return got if isinstance(got, str) else json.dumps(got)

    text = _VAR.sub(replace, value)
    return found[0] if found else text
