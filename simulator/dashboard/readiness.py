"""Receiver readiness for the dashboard: the platform's conformance set (simulator/scenarios/conformance.py) run
in the background, one row at a time, so the page can show the table filling in.

    POST /dashboard/api/readiness        {"platform", "url", "auth", "timeout", "url_for", "strict"} -> 202 the run
    GET  /dashboard/api/readiness/<id>   the run: rows so far (with their checks), then `ready`, `ready_strict`
                                         and `advice`

`auth` is in each platform's terms, as the send panel takes it; `url_for` ({EVENT: URL}, AccessRC) and `strict` as
`conformance --url-for/--strict`. A row is pass, warn (only inferred checks failed: advice), fail or n/a. Runs live in
the services' run registry (simulator/runs.py: the last `kept`), which `Services.stop()` stops.
"""

from __future__ import annotations

from flask import Blueprint, current_app

from .. import catalogue
from ..api.access import services
from ..api.errors import ApiError, bad_request, success
from ..api.inputs import (
    json_body,
    optional_number,
    optional_object,
    platform_auth,
    reject_unknown,
    require_string,
    require_url,
)
from ..delivery import DeliveryError, check_timeout
from ..runs import Run
from ..scenarios import conformance
from ..scenarios.loader import ScenarioFileError
from ..scenarios.runner import Runner
from ..signing import KeyPair

bp = Blueprint("readiness", __name__)

DEFAULT_TIMEOUT = 10.0


class ReadinessRun(Run):
    """One conformance run against a receiver, its rows as they are checked, then its verdict."""

    kind = "readiness"
    kept = 20

    def __init__(self, plan: conformance.Plan, strict: bool = False):
        super().__init__()
        self.plan = plan
        self.strict = strict
        self.rows: list = []  # conformance.Row, in the plan's order
        self.results: list = []
        self.ready: bool | None = None
        self.ready_strict: bool | None = None
        self.advice: list[str] = []

    def failed(self, exc: BaseException) -> None:
        super().failed(exc)
        self.ready = self.ready_strict = False

    def to_dict(self) -> dict:
        with self.lock:
            done = {row.id: row for row in self.rows}
            rows = []
            for planned in self.plan.rows:
                row = done.get(planned.id)
                rows.append(
                    conformance.row_dict(row)
                    if row
                    else {"id": planned.id, "title": planned.title, "state": "pending", "evidence": [], "checks": []}
                )
            advice = list(self.advice)
        p = self.plan
        return {
            "id": self.id,
            "status": self.status,
            "platform": p.platform,
            "url": p.url,
            "targets": [{"event": t.event, "url": t.url} for t in p.targets],
            "auth": p.auth.masked(),
            "timeout": p.timeout,
            "strict": self.strict,
            "rows": rows,
            "ready": self.ready,
            "ready_strict": self.ready_strict,
            "advice": advice,
            "error": self.error,
            "stopped": self.stopped,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
        }

    def work(self, store, keys: KeyPair) -> None:
        """Check every row (on the registry's thread); stopped, the verdict is incomplete: not ready."""

        def finished(row, results) -> None:  # one row at a time: the page shows each verdict as it comes
            with self.lock:
                self.rows.append(row)
                self.results.extend(results)

        runner = Runner(store, keys=keys, strict=self.strict, stop_flag=self.stop_flag)
        verdict = conformance.run(self.plan, runner, on_row=finished)
        with self.lock:
            self.advice = conformance.advice_lines(verdict)
        self.ready, self.ready_strict = verdict.ready, verdict.ready_strict
        if not verdict.complete:
            self.cut_short("every row was checked")


@bp.post("/dashboard/api/readiness")
def start_readiness():
    data = json_body()
    reject_unknown(data, ("platform", "url", "auth", "timeout", "url_for", "strict"))
    platform = require_string(data, "platform")
    if platform not in catalogue.PLATFORMS:
        raise bad_request(f"platform must be one of {', '.join(catalogue.PLATFORMS)}", "platform")
    url_for = optional_object(data, "url_for")
    for event in url_for:
        require_url(url_for, event)
    url = require_url(data, "url", required=not url_for)
    strict = data.get("strict", False)
    if not isinstance(strict, bool):
        raise bad_request("strict must be true or false", "strict")
    auth = platform_auth(platform, data.get("auth"))
    timeout = optional_number(data, "timeout")
    try:
        timeout = check_timeout(DEFAULT_TIMEOUT if timeout is None else timeout)
    except DeliveryError as exc:
        raise bad_request(str(exc), "timeout") from exc
    try:
        plan = conformance.plan(platform, url, auth, timeout, current_app.config.get("SCENARIOS_DIR"), url_for=url_for)
    except ScenarioFileError as exc:
        raise ApiError(400, "the conformance set has problems: " + "; ".join(exc.problems[:3]), "platform") from exc
    except conformance.ConformanceError as exc:
        raise bad_request(str(exc), "url_for" if url_for else "platform") from exc
    svc = services()
    run = ReadinessRun(plan, strict)
    svc.runs.start(run, lambda: run.work(svc.store, svc.keys))
    return success(run.to_dict(), 202)


@bp.get("/dashboard/api/readiness/<run_id>")
def get_readiness(run_id: str):
    run = services().runs.get(ReadinessRun.kind, run_id)
    if run is None:
        raise ApiError(404, f"no readiness run {run_id!r}", "id")
    return success(run.to_dict())
