"""Scenario runs over HTTP, for the dashboard: list the shipped scenarios, start a run, follow its steps live.

    GET  /api/scenarios                     shipped scenario files (path, name, platform)
    POST /api/scenario-runs                 {"file": "accessrc/x.yaml" | "scenario": "<YAML/JSON text>",
                                             "vars": {...}, "url": "..."} -> 202 {"id", "status": "running", ...}
    GET  /api/scenario-runs                 recent runs of this process, newest first
    GET  /api/scenario-runs/<id>?since=N    the run's steps from index N (poll for live progress)

A run's `notes` are the loader's advice on its `set:` overrides (the inferred rules they break), as the CLI's
`note:` lines: the run goes ahead.

Admin key required (x-api-key or Authorization: Bearer). Only shipped files or posted text are run: a request
never names a path outside the scenarios folder. Runs live in the services' run registry (simulator/runs.py), which
`Services.stop()` stops.
"""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, current_app, request

from ..runs import Run
from ..scenarios import conformance
from ..scenarios.loader import SUFFIXES, Scenario, ScenarioFileError, load_file, load_text
from ..scenarios.results import StepResult
from ..scenarios.runner import Runner
from ..signing import KeyPair
from .access import services
from .errors import ApiError, bad_request, json_response, success
from .inputs import json_body, optional_object, reject_unknown, require_url

bp = Blueprint("scenarios", __name__, url_prefix="/api")

MAX_TEXT = 256 * 1024  # bytes of posted scenario text (UTF-8), at most


class ScenarioRun(Run):
    """One scenario run, its step results as they come (polled with `since`)."""

    kind = "scenario"
    kept = 100  # finished runs kept in memory, oldest dropped first

    def __init__(self, scenario: Scenario):
        super().__init__()
        self.scenario = scenario
        self.steps: list[dict] = []

    def add(self, res: StepResult) -> None:
        with self.lock:
            self.steps.append({"index": len(self.steps), **res.to_dict()})

    def to_dict(self, since: int = 0) -> dict:
        with self.lock:
            steps = self.steps[since:]
            passed = sum(1 for s in self.steps if s["passed"] is True)
            failed = sum(1 for s in self.steps if s["passed"] is False and not s["warned"])
            warned = sum(1 for s in self.steps if s["warned"])  # an inferred rule's step failed: advice
        sc = self.scenario
        return {
            "id": self.id,
            "status": self.status,
            "name": sc.name,
            "file": sc.path,
            "platform": sc.platform,
            "url": sc.url,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "passed": passed,
            "failed": failed,
            "warned": warned,
            "summary": f"{passed} passed, {failed} failed" + (f", {warned} warned" if warned else ""),
            "error": self.error,
            "stopped": self.stopped,
            "result": None if self.status == "running" else "failed" if failed or self.error else "passed",
            "next_since": since + len(steps),
            "steps": steps,
            # `file:line:col: set …` of each inferred rule a `set:` breaks (an added field, ...): advice, sent all
            # the same (`accessrc-sim run` prints them as `note:` lines)
            "notes": list(sc.notes),
        }

    def work(self, store, keys: KeyPair) -> None:
        """Run the scenario (on the registry's thread), stopping before the next step when the stop flag is set."""
        runner = Runner(store, keys=keys, on_step=lambda sc, res: self.add(res), stop_flag=self.stop_flag)
        if runner.run_scenario(self.scenario).stopped:
            self.cut_short("its last step")


def _scenarios_dir() -> Path:
    return Path(current_app.config.get("SCENARIOS_DIR") or conformance.default_dir())


@bp.get("/scenarios")
def list_scenarios():
    base = _scenarios_dir()
    out = []
    for path in sorted(p for p in base.rglob("*") if p.is_file() and p.suffix.lower() in SUFFIXES):
        rel = path.relative_to(base).as_posix()
        try:
            sc = load_file(path, env={})
            out.append({"file": rel, "name": sc.name, "platform": sc.platform, "steps": len(sc.steps)})
        except ScenarioFileError as exc:
            out.append({"file": rel, "name": None, "platform": None, "problems": exc.problems})
    return success(out)


@bp.post("/scenario-runs")
def start_run():
    data = json_body()
    reject_unknown(data, ("file", "scenario", "vars", "url"))
    variables = optional_object(data, "vars")
    if any(not isinstance(v, (str, int, float, bool)) for v in variables.values()):
        raise bad_request("vars values must be strings, numbers or booleans", "vars")
    variables = {k: (str(v).lower() if isinstance(v, bool) else str(v)) for k, v in variables.items()}
    url = require_url(data, "url", required=False)
    if ("file" in data) == ("scenario" in data):
        raise bad_request("give either file (a shipped scenario) or scenario (its text)", "file")
    try:
        if "file" in data:
            scenario = load_file(_shipped(data["file"]), cli_vars=variables, url=url, env={})
        else:
            text = data["scenario"]
            if not isinstance(text, str) or not text.strip() or len(text.encode("utf-8", "surrogatepass")) > MAX_TEXT:
                raise bad_request(f"scenario must be YAML or JSON text of at most {MAX_TEXT} bytes", "scenario")
            name = "posted.json" if text.lstrip().startswith("{") else "posted.yaml"
            scenario = load_text(text, name, cli_vars=variables, url=url, env={})
    except ScenarioFileError as exc:
        body = {
            "status": "failed",
            "data": None,
            "error": {
                "code": 400,
                "message": "the scenario has problems; nothing was sent",
                "type": "BadRequest",
                "field": "scenario",
                "problems": exc.problems,
            },
        }
        return json_response(body, 400)
    svc = services()
    run = ScenarioRun(scenario)
    svc.runs.start(run, lambda: run.work(svc.store, svc.keys))
    return success(run.to_dict(), 202)


def _shipped(name) -> Path:
    if not isinstance(name, str) or not name.strip() or any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise bad_request("file must be a path inside the scenarios folder (no control characters)", "file")
    base = _scenarios_dir().resolve()
    try:
        path = (base / name).resolve()
        shipped = base in path.parents and path.is_file() and path.suffix.lower() in SUFFIXES
    except (OSError, ValueError):  # a name the file system refuses (too long, ...): not a shipped scenario
        shipped = False
    if not shipped:
        raise ApiError(404, f"no shipped scenario {name[:200]!r} (GET /api/scenarios lists them)", "file")
    return path


@bp.get("/scenario-runs")
def list_runs():
    return success(
        [
            {k: v for k, v in r.to_dict(since=len(r.steps)).items() if k != "steps"}
            for r in services().runs.list(ScenarioRun.kind)
        ]
    )


@bp.get("/scenario-runs/<run_id>")
def get_run(run_id: str):
    run = services().runs.get(ScenarioRun.kind, run_id)
    if run is None:
        raise ApiError(404, f"no scenario run {run_id!r}", "id")
    raw = request.args.get("since", "0")
    if not raw.isdigit():
        raise bad_request("since must be a whole number", "since")
    return success(run.to_dict(since=int(raw)))
