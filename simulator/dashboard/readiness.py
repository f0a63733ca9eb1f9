"""Receiver readiness for the dashboard: the platform's conformance set (simulator/scenarios/conformance.py) run
in the background, one row at a time, so the page can show the table filling in.

    POST /dashboard/api/readiness        {"platform", "url", "auth", "timeout", "url_for", "strict"} -> 202 the run
    GET  /dashboard/api/readiness/<id>   the run: rows so far (with their checks), then `ready`, `ready_strict`
                                         and `advice`

`auth` is in each platform's terms, as the send panel takes it; `url_for` ({EVENT: URL}, AccessRC) and `strict` as
`conformance --url-for/--strict`. A row is pass, warn (only inferred checks failed: advice), fail or n/a. Runs live in
memory (the last MAX_RUNS).
"""
from __future__ import annotations

import threading
import time
import uuid
from collections import OrderedDict

from flask import current_app

from .. import catalogue
from ..api import (json_body, optional_number, optional_object, reject_unknown, remember_run, require_string,
                   require_url, services)
from ..api.errors import ApiError, bad_request, json_response
from ..delivery import DeliveryError, check_timeout
from ..scenarios import conformance
from . import bp, parse_auth

EXTENSION = "accessrc_sim_readiness_runs"
MAX_RUNS = 20
DEFAULT_TIMEOUT = 10.0


class ReadinessRun:
    def __init__(self, plan):
        self.id = str(uuid.uuid4())
        self.plan = plan
        self.status = "running"
        self.rows: list = []  # conformance.Row, in the plan's order
        self.results: list = []
        self.error: str | None = None
        self.ready: bool | None = None
        self.ready_strict: bool | None = None
        self.strict = False
        self.advice: list[str] = []
        self.started_at = time.time()
        self.finished_at: float | None = None
        self.lock = threading.Lock()

    def to_dict(self) -> dict:
        with self.lock:
            done = {row.id: row for row in self.rows}
            rows = []
            for planned in self.plan.rows:
                row = done.get(planned.id)
                rows.append(conformance.row_dict(row) if row else
                            {"id": planned.id, "title": planned.title, "state": "pending", "evidence": [],
                             "checks": []})
            advice = list(self.advice)
        p = self.plan
        return {"id": self.id, "status": self.status, "platform": p.platform, "url": p.url,
                "targets": [{"event": t.event, "url": t.url} for t in p.targets], "auth": p.auth.masked(),
                "timeout": p.timeout, "strict": self.strict, "rows": rows, "ready": self.ready,
                "ready_strict": self.ready_strict, "advice": advice, "error": self.error,
                "started_at": self.started_at, "finished_at": self.finished_at}


def _runs() -> "OrderedDict[str, ReadinessRun]":
    return current_app.extensions.setdefault(EXTENSION, OrderedDict())


@bp.post("/dashboard/api/readiness")
def start_readiness():
    from ..scenarios.loader import ScenarioFileError

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
    auth = parse_auth(platform, data.get("auth"))
    timeout = optional_number(data, "timeout")
    try:
        timeout = check_timeout(DEFAULT_TIMEOUT if timeout is None else timeout)
    except DeliveryError as exc:
        raise bad_request(str(exc), "timeout") from exc
    try:
        plan = conformance.plan(platform, url, auth, timeout, current_app.config.get("SCENARIOS_DIR"),
                                url_for=url_for)
    except ScenarioFileError as exc:
        raise ApiError(400, "the conformance set has problems: " + "; ".join(exc.problems[:3]), "platform") from exc
    except conformance.ConformanceError as exc:
        raise bad_request(str(exc), "url_for" if url_for else "platform") from exc
    run = ReadinessRun(plan)
    run.strict = strict
    remember_run(EXTENSION, run, MAX_RUNS)
    svc = services()
    threading.Thread(target=_execute, args=(run, svc.store, svc.keys), daemon=True,
                     name=f"readiness-{run.id[:8]}").start()
    return json_response(run.to_dict(), 202)


def _execute(run: ReadinessRun, store, keys) -> None:
    from ..scenarios.runner import Runner

    def finished(row, results) -> None:  # one row at a time: the page shows each verdict as it comes
        with run.lock:
            run.rows.append(row)
            run.results.extend(results)

    try:
        verdict = conformance.run(run.plan, Runner(store, keys=keys, strict=run.strict), on_row=finished)
        with run.lock:
            run.advice = conformance.advice_lines(verdict)
        run.ready, run.ready_strict = verdict.ready, verdict.ready_strict
    except Exception as exc:  # a crash ends the run visibly
        run.error = f"{type(exc).__name__}: {exc}"
        run.ready = run.ready_strict = False
    finally:
        run.finished_at = time.time()
        run.status = "finished"


@bp.get("/dashboard/api/readiness/<run_id>")
def get_readiness(run_id: str):
    run = _runs().get(run_id)
    if run is None:
        raise ApiError(404, f"no readiness run {run_id!r}", "id")
    return json_response(run.to_dict())
