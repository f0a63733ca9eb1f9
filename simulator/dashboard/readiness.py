"""Receiver readiness for the dashboard: the platform's conformance set (simulator/scenarios/conformance.py) run
in the background, one row at a time, so the page can show the table filling in.

    POST /dashboard/api/readiness        {"platform", "url", "auth", "timeout"} -> 202 the run
    GET  /dashboard/api/readiness/<id>   the run: rows so far, then `ready`

`auth` is in each platform's terms, as the send panel takes it. Runs live in memory (the last MAX_RUNS).
"""
from __future__ import annotations

import threading
import time
import uuid
from collections import OrderedDict

from flask import current_app

from .. import catalogue
from ..api import (json_body, optional_number, reject_unknown, remember_run, require_string, require_url,
                   services)
from ..api.errors import ApiError, bad_request, json_response
from ..delivery import DeliveryError, check_timeout
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
        self.started_at = time.time()
        self.finished_at: float | None = None
        self.lock = threading.Lock()

    def to_dict(self) -> dict:
        with self.lock:
            done = {row.id: row for row in self.rows}
            rows = []
            for row_id, title, _, _ in self.plan.rows:
                row = done.get(row_id)
                rows.append({"id": row_id, "title": title, "state": row.state if row else "pending",
                             "evidence": list(row.evidence) if row else []})
        p = self.plan
        return {"id": self.id, "status": self.status, "platform": p.platform, "url": p.url, "auth": p.auth.masked(),
                "timeout": p.timeout, "rows": rows, "ready": self.ready, "error": self.error,
                "started_at": self.started_at, "finished_at": self.finished_at}


def _runs() -> "OrderedDict[str, ReadinessRun]":
    return current_app.extensions.setdefault(EXTENSION, OrderedDict())


@bp.post("/dashboard/api/readiness")
def start_readiness():
    from ..scenarios import conformance
    from ..scenarios.loader import ScenarioFileError

    data = json_body()
    reject_unknown(data, ("platform", "url", "auth", "timeout"))
    platform = require_string(data, "platform")
    if platform not in catalogue.PLATFORMS:
        raise bad_request(f"platform must be one of {', '.join(catalogue.PLATFORMS)}", "platform")
    url = require_url(data, "url")
    auth = parse_auth(platform, data.get("auth"))
    timeout = optional_number(data, "timeout")
    try:
        timeout = check_timeout(DEFAULT_TIMEOUT if timeout is None else timeout)
    except DeliveryError as exc:
        raise bad_request(str(exc), "timeout") from exc
    try:
        plan = conformance.plan(platform, url, auth, timeout, current_app.config.get("SCENARIOS_DIR"))
    except ScenarioFileError as exc:
        raise ApiError(400, "the conformance set has problems: " + "; ".join(exc.problems[:3]), "platform") from exc
    except conformance.ConformanceError as exc:
        raise bad_request(str(exc), "platform") from exc
    run = ReadinessRun(plan)
    remember_run(EXTENSION, run, MAX_RUNS)
    svc = services()
    threading.Thread(target=_execute, args=(run, svc.store, svc.keys), daemon=True,
                     name=f"readiness-{run.id[:8]}").start()
    return json_response(run.to_dict(), 202)


def _execute(run: ReadinessRun, store, keys) -> None:
    from ..scenarios import conformance
    from ..scenarios.runner import Runner

    p = run.plan
    try:
        runner = Runner(store, keys=keys)
        for row in p.rows:  # one row at a time: the page shows each verdict as it comes
            verdict = conformance.run(conformance.Plan(p.platform, p.url, p.auth, p.timeout, [row]), runner)
            with run.lock:
                run.rows.extend(verdict.rows)
                run.results.extend(verdict.results)
        whole = conformance.Verdict(p.platform, p.url, p.auth, p.timeout, run.rows, run.results)
        run.ready = whole.ready
    except Exception as exc:  # a crash ends the run visibly
        run.error = f"{type(exc).__name__}: {exc}"
        run.ready = False
    finally:
        run.finished_at = time.time()
        run.status = "finished"


@bp.get("/dashboard/api/readiness/<run_id>")
def get_readiness(run_id: str):
    run = _runs().get(run_id)
    if run is None:
        raise ApiError(404, f"no readiness run {run_id!r}", "id")
    return json_response(run.to_dict())
