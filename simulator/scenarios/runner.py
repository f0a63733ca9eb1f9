"""Run loaded scenarios: each step sends (through the Deliverer, or byte for byte for faults), every request is
recorded in the Store (jobs with source="scenario"), and the receiver's answers are checked (checks.py).

No Flask. The store, the HTTP session and `sleep` are passed in. A stop flag set from another thread ends a run
before its next step (a step sending finishes first, its retries included; a wait step ends at once).
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

import requests

from .. import catalogue, delivery, transport
from ..auth import mask_headers
from ..catalogue import paths
from ..delivery import Deliverer, DeliveryError
from ..models import EXHAUSTED, Job
from ..signing import KeyPair
from . import calls, faults, refs
from .checks import check_exchange, default_status, status_matches
from .faults import FaultError
from .loader import Scenario, Step
from .results import Exchange, Failure, ScenarioResult, StepResult

SOURCE = "scenario"
EXPECT_CHECKS = {"body", "envelope", "echo", "latency_ms", "attempts"}  # an expect step with one: any status


class StepFailed(Exception):
    def __init__(self, failure: Failure):
        super().__init__(failure.text())
        self.failure = failure


class _Done(Exception):
    """An await_call step is checked: skip the exchange checks of sends."""


class Stop(Exception):
    """The run stops here: a step failed under --fail-fast, or the stop flag was set."""


class Runner:
    def __init__(
        self,
        store,
        keys: KeyPair | Callable[[], KeyPair] | None = None,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] | None = None,
        on_step: Callable[[Scenario, StepResult], None] | None = None,
        on_scenario: Callable[[Scenario], None] | None = None,
        fail_fast: bool = False,
        strict: bool = False,
        stop_flag: threading.Event | None = None,
        calls_api: str | None = None,
    ):
        """`sleep` (tests drive time with it) waits retry delays and pauses; without it, pauses wait on `stop_flag`:
        an event another thread sets to stop the run (simulator.runs), which then ends them at once.
        `calls_api`: where the platform APIs are served to the receiver (named when an await_call step fails); an
        await_call step reads the calls from `store`, so they must be recorded there."""
        self.store = store
        self._keys = keys
        self.session = session or transport.new_session()
        self.session.trust_env = False
        self.sleep = sleep or time.sleep
        self._driven = sleep is not None
        self.on_step = on_step
        self.on_scenario = on_scenario
        self.fail_fast = fail_fast
        self.strict = strict  # inferred rules fail like documented ones
        self._stop = stop_flag if stop_flag is not None else threading.Event()
        self.calls_api = calls_api

    @property
    def keys(self) -> KeyPair | None:
        if callable(self._keys):
            self._keys = self._keys()
        return self._keys

    @property
    def stopped(self) -> bool:
        """Stopped by --fail-fast or the stop flag: no further step runs."""
        return self._stop.is_set()

    def _pause(self, seconds: float) -> None:
        """A wait step or a replay's delay; Stop when the run is stopped meanwhile."""
        if self._driven:
            self.sleep(seconds)
        else:
            self._stop.wait(seconds)
        if self.stopped:
            raise Stop()

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
        named: dict[str, Exchange | calls.CallMatch] = {}
        # since: calls an await_call step may match were recorded from then on (the previous send or fault step's
        # start, else the scenario's); consumed: the calls earlier await_call steps matched (each matches once)
        state = {"last": None, "since": time.time(), "consumed": set()}
        start = time.monotonic()
        try:
            self._run_steps(sc, sc.steps, result, named, state, suffix="")
        except Stop:
            self._stop.set()
            result.stopped = True
        result.duration = time.monotonic() - start
        return result

    def _run_steps(self, sc, steps, result, named, state, suffix: str) -> None:
        for step in steps:
            if self.stopped:
                raise Stop()
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
        res = StepResult(
            name=step.name + suffix,
            kind=step.kind,
            where=step.where,
            passed=None,
            fault=step.data.get("fault"),
            rule=step.rule,
        )
        if step.skip:
            res.skipped = step.skip
            return res
        if step.kind == "wait":
            self._pause(float(step.data["wait"]))
            return res
        started = time.monotonic()
        if step.kind in ("send", "fault"):
            state["since"] = time.time()
        try:
            data = refs.resolve(step.data, named, keep=("expect",) if step.kind != "expect" else ())
            if step.kind == "await_call":
                self._await_call(step, data, named, state, res)
                raise _Done()
            expect = data["expect"] if step.kind == "expect" else {}
            if step.kind == "send":
                exchanges = [self._send(sc, step, data)]
            elif step.kind == "fault":
                exchanges = self._fault(sc, step, data, named)
            else:  # expect
                of = expect.get("of")
                target = named.get(of) if of else state["last"]
                if target is None:
                    raise StepFailed(Failure("of", f"an answer of {of or 'a previous step'}", "that step did not run"))
                exchanges = [target]
            res.exchanges = exchanges if step.kind != "expect" else []
            checked = [ex for ex in exchanges if ex.checked]
            if step.kind in ("send", "fault") and checked:
                state["last"] = checked[-1]
                if step.data.get("as"):  # before `expect` is resolved: it may refer to this very step
                    named[step.data["as"]] = checked[-1]
                expect = refs.resolve(step.data.get("expect") or {}, named)
            for ex in exchanges:
                if not ex.checked and not status_matches(ex.status, ["2xx"]):
                    res.failures.append(
                        Failure("status", "2xx", ex.status if ex.status is not None else ex.error, ex.label)
                    )
            if "status" in expect:
                wanted = expect["status"] if isinstance(expect["status"], list) else [expect["status"]]
            elif step.kind == "expect":
                wanted = ["1xx", "2xx", "3xx", "4xx", "5xx"] if EXPECT_CHECKS & set(expect) else ["2xx"]
            else:
                wanted = default_status(step.kind, step.data.get("fault"), sc.platform)
            for ex in checked:
                res.failures.extend(check_exchange(expect, ex, wanted))
            res.status = ",".join(str(ex.status) if ex.status is not None else "---" for ex in checked)
            res.ms = max((ex.ms for ex in checked), default=None)
        except _Done:
            pass
        except StepFailed as exc:
            res.failures.append(exc.failure)
        except refs.Unresolved as exc:
            missed = [
                name for name in state.get("missed", {}) if re.search(rf"\$\{{\s*{re.escape(name)}\b", exc.expected)
            ]
            if missed:  # it needs a call an inferred await_call step did not see: not checked, not failed
                res.skipped = f"needs {missed[0]}, which the step {state['missed'][missed[0]]!r} did not get"
                return res
            res.failures.append(Failure("variable", exc.expected, exc.actual))
        except (DeliveryError, FaultError, catalogue.CatalogueError, paths.PathError) as exc:
            res.failures.append(Failure("step", "a request that can be sent", str(exc)))
        res.duration = time.monotonic() - started
        res.passed = not res.failures
        res.warned = bool(res.failures) and step.rule is not None and not step.rule.documented and not self.strict
        if res.warned and step.kind == "await_call" and step.data.get("as"):
            state.setdefault("missed", {})[step.data["as"]] = res.name
        return res

    # -- await_call ---------------------------------------------------------------------------------------------
    def _await_call(self, step: Step, data: dict, named: dict, state: dict, res: StepResult) -> None:
        """Poll the store for a matching call recorded since `state["since"]`, until `within` seconds have passed;
        a match is named (`as`), else every call on that path says why it did not match."""
        spec = data["await_call"]
        method, path, body, job = spec.get("method") or "POST", spec["path"], spec.get("body") or None, spec.get("job")
        within = float(spec.get("within") or calls.DEFAULT_WITHIN)
        wanted = spec["status"] if isinstance(spec.get("status"), list) else [spec.get("status", "2xx")]
        since, consumed = state["since"], state["consumed"]
        started = time.monotonic()
        deadline = started + within
        while True:
            on_path = sorted(
                (c for c in self.store.query_calls(path=path, since=since, limit=1000) if c.path == path),
                key=lambda c: c.id,
            )
            candidates = [c for c in on_path if c.method == method and c.id not in consumed]
            match = next((c for c in candidates if not calls.why_not(c, body, wanted, status_matches, job)), None)
            if match is not None:
                consumed.add(match.id)
                found = calls.CallMatch(match)
                if step.data.get("as"):
                    named[step.data["as"]] = found
                res.call = {**found.to_dict(), "after_s": round(time.monotonic() - started, 3)}
                res.status = str(match.status)
                res.ms = match.duration_ms
                return
            left = deadline - time.monotonic()
            if left <= 0:
                break
            self._stop.wait(min(calls.POLL_SECONDS, left))
            if self.stopped:
                raise Stop()
        res.failures.extend(self._no_call(method, path, body, job, within, since, on_path, candidates, wanted))

    def _no_call(self, method, path, body, job, within, since, on_path, candidates, wanted) -> list[Failure]:
        """Why no call matched: none came (and which calls did), or each one on that path and why not."""
        expected = calls.describe_expected(method, path, body, within, job)
        where = f" (the receiver calls the platform API at {self.calls_api})" if self.calls_api else ""
        if candidates:
            out = [Failure("call", expected, f"{len(candidates)} {method} call(s) on {path}, none matched{where}")]
            for call in candidates[-calls.LISTED :]:
                out.extend(calls.why_not(call, body, wanted, status_matches, job))
            return out
        if on_path:
            others = ", ".join(sorted({c.method for c in on_path}))
            return [Failure("call", expected, f"no {method} call on {path}, only {others} ({len(on_path)}){where}")]
        meanwhile = [c for c in self.store.query_calls(since=since, limit=calls.LISTED)]
        seen = (
            "other calls meanwhile: "
            + ", ".join(f"{c.method} {c.path} -> {calls.answer_of(c)}" for c in reversed(meanwhile))
            if meanwhile
            else "no call to the platform APIs at all"
        )
        return [Failure("call", expected, f"no call on {method} {path} ({seen}){where}")]

    # -- send -------------------------------------------------------------------------------------------------
    def _payload(
        self, step: Step, data: dict, sets: dict | None = None, now: datetime | None = None, seed_offset: int = 0
    ) -> dict:
        seed = data.get("seed")
        payload = catalogue.generate(
            step.event,
            seed=None if seed is None else seed + seed_offset,
            overrides=data.get("set") if sets is None else sets,
            now=now,
            count=data.get("count"),
            force=bool(data.get("force")),
        )
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

    def _signing_keys(self, sc: Scenario) -> KeyPair | None:
        return self.keys if sc.auth.kind == "rsa" else None

    def _deliverer(self, sc: Scenario) -> Deliverer:
        """The one delivery path; its waits between retries are pauses too, so a stopped run stops there."""
        return Deliverer(self.store, self._signing_keys(sc), session=self.session, sleep=self._pause)

    def _send(self, sc: Scenario, step: Step, data: dict) -> Exchange:
        payload = self._payload(step, data)
        body = catalogue.body_bytes(payload)
        url = data.get("url") or sc.url
        job = delivery.new_job(
            step.event,
            sc.platform,
            url,
            body,
            sc.auth,
            delays=self._delays(sc, data),
            timeout=self._timeout(sc, data),
            source=SOURCE,
            headers=_extra_headers(data),
            profile=sc.profile,
        )
        if data.get("job_attempt"):
            job.attempts_made = int(data["job_attempt"])
        try:
            sent = self._deliverer(sc).submit(job)
        except Stop:  # stopped while waiting for a retry: the job ends here, saying why
            job.state, job.next_attempt_at = EXHAUSTED, None
            job.last_error = f"the run was stopped before retry {job.attempts_made}"
            self.store.update_job(job)
            raise
        return _exchange_of(sent, job, step.event, payload)

    # -- faults -------------------------------------------------------------------------------------------------
    def _fault(self, sc: Scenario, step: Step, data: dict, named: dict) -> list[Exchange]:
        """A fault step: the faults that are a sequence of requests by the table below, any other one as
        faults.build makes it."""
        send = self._SEQUENCES.get(data["fault"], Runner._faulty_request)
        return send(self, sc, step, data, named)

    def _fresh(
        self, sc: Scenario, step: Step, data: dict, payload: Any, number: int | None = None, body: bytes | None = None
    ) -> tuple[Job, dict]:
        """A one-attempt job of this step for `payload` (or these `body` bytes), and the headers it would send
        unaltered."""
        body = catalogue.body_bytes(payload) if body is None else body
        job = delivery.new_job(
            step.event,
            sc.platform,
            data.get("url") or sc.url,
            body,
            sc.auth,
            delays=(),
            timeout=self._timeout(sc, data),
            source=SOURCE,
            headers=_extra_headers(data),
            profile=sc.profile,
        )
        job.attempts_made = int(data.get("job_attempt") or 0) if number is None else number
        return job, delivery.prepare(job, job.attempts_made, self._signing_keys(sc)).headers

    def _faulty_request(self, sc: Scenario, step: Step, data: dict, named: dict) -> list[Exchange]:
        payload = self._payload(step, data)
        job, headers = self._fresh(sc, step, data, payload)
        keys = self._signing_keys(sc)

        def resign(body: bytes) -> dict:
            """Correct credentials for these (faulty) bytes: the fault must reach the receiver's parser, not its
            signature check."""
            job.body = body
            return delivery.prepare(job, job.attempts_made, keys).headers

        body, headers, payload, fakes = faults.build(
            data["fault"],
            step.event,
            sc.auth,
            headers,
            job.body,
            payload,
            resign,
            tamper=data.get("tamper"),
            seed=data.get("seed"),
            field=data.get("field"),
            content_type=data.get("content_type"),
            size=data.get("size"),
        )
        return [self._exchange(sc, job, headers, body, payload, fakes=fakes, fault=data["fault"])]

    def _resend(self, sc: Scenario, step: Step, data: dict, named: dict) -> list[Exchange]:
        """duplicate and replay: an earlier request (of the step named by `of`, else one sent now) sent again as it
        was, at once or `after` seconds."""
        pre = []
        if data.get("of"):
            original = named.get(data["of"])
            if original is None:
                raise StepFailed(Failure("of", f"an earlier answer of {data['of']}", "that step did not run"))
        else:
            payload = self._payload(step, data)
            job, headers = self._fresh(sc, step, data, payload, number=0)
            original = self._exchange(sc, job, headers, job.body, payload, label="original", checked=False)
            pre = [original]
        if data["fault"] == "replay":
            self._pause(float(data.get("after", 1.0)))
        headers = dict(original.headers)
        number = original.number
        if "job_attempt" in data:
            number = int(data["job_attempt"])
            if "X-JobAttempt" in headers:
                headers["X-JobAttempt"] = str(number)
        job, _ = self._fresh(sc, step, data, original.payload, number=number, body=original.body)
        job.event = original.event
        return pre + [self._exchange(sc, job, headers, original.body, original.payload, fault=data["fault"])]

    def _out_of_order(self, sc: Scenario, step: Step, data: dict, named: dict) -> list[Exchange]:
        """Two events of the same entity, the later one (a week newer) sent first."""
        shared = dict(data.get("set") or {})
        now = datetime.now(UTC)
        earlier = self._payload(
            step, data, sets={**shared, **((data.get("earlier") or {}).get("set") or {})}, now=now - timedelta(days=7)
        )
        same_entity = {k: v for k, v in earlier.items() if k.endswith("Id") and isinstance(v, str)}
        later = self._payload(
            step,
            data,
            sets={**same_entity, **shared, **((data.get("later") or {}).get("set") or {})},
            now=now,
            seed_offset=1,
        )
        job_e, headers_e = self._fresh(sc, step, data, earlier)
        job_l, headers_l = self._fresh(sc, step, data, later)
        first = self._exchange(
            sc, job_l, headers_l, job_l.body, later, label="later event sent first", fault=data["fault"]
        )
        second = self._exchange(
            sc, job_e, headers_e, job_e.body, earlier, label="earlier event sent second", fault=data["fault"]
        )
        return [first, second]

    # the faults that are a sequence of requests (faults.FAULTS entries without `make`)
    _SEQUENCES: ClassVar[dict[str, Callable]] = {"duplicate": _resend, "replay": _resend, "out_of_order": _out_of_order}

    def _exchange(
        self,
        sc: Scenario,
        job: Job,
        headers: dict,
        body: bytes,
        payload: Any,
        *,
        label: str = "",
        fakes: list[str] = (),
        checked: bool = True,
        fault: str | None = None,
    ) -> Exchange:
        """Send exactly these bytes and headers once, through the Deliverer, as `job` (a job of its own in the
        store, source scenario, whose X-JobId is the one sent when that id is not taken yet; `fault` names the
        fault it carries, so the log tells a deliberate refusal from a real failure)."""
        job.body = body
        job.fault = fault
        keys = self._signing_keys(sc)
        sent_id = next((v for k, v in headers.items() if k.lower() == "x-jobid"), None)
        if sent_id and self.store.get_job(sent_id) is None:
            job.id = sent_id
        secrets_ = sc.auth.secrets() + list(fakes)
        default = delivery.request_headers(job, job.attempts_made, keys)  # what the fault changed: kept on the job
        diff: dict[str, str | None] = {k: v for k, v in headers.items() if default.get(k) != v}
        diff.update({k: None for k in default if k not in headers})
        job.headers = mask_headers({k: v for k, v in diff.items() if v is not None}, secrets_)
        job.headers.update({k: None for k, v in diff.items() if v is None})
        self.store.add_job(job, time.time())
        sent = self._deliverer(sc).deliver(job, delivery.Request(job.url, dict(headers), body), tuple(fakes))
        return _exchange_of(sent, job, job.event, payload, label=label, checked=checked)


def _extra_headers(data: dict) -> dict[str, str | None]:
    """A step's `headers:` as header text: a whole `${…}` reference keeps its JSON type when resolved (a status
    is a number), and a header is text, so a non-string value is sent as its JSON (`200`, `true`); null removes."""
    return {
        name: value if value is None or isinstance(value, str) else json.dumps(value)
        for name, value in (data.get("headers") or {}).items()
    }


def _exchange_of(
    sent: delivery.Sent, job: Job, event: str, payload: Any, label: str = "", checked: bool = True
) -> Exchange:
    """A step's view of the attempt `sent`: the request exactly as sent and the answer as read."""
    return Exchange(
        label=label,
        event=event,
        url=sent.request.url,
        body=sent.request.body,
        headers=dict(sent.request.headers),
        number=sent.attempt.number,
        payload=payload,
        job=job,
        status=sent.response.status,
        response_headers=sent.response.headers,
        response_body=sent.response.body,
        ms=sent.response.duration_ms,
        error=sent.attempt.error,
        checked=checked,
    )
