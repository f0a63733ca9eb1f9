"""Receiver readiness: run a platform's conformance set (scenarios/conformance/<platform>/<row>.yaml, one file per
row) and turn the step results into a pass / fail / not-applicable table with evidence, and a verdict.

A row the platform's documents make meaningless is shown as not applicable, with the reason, and does not count.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ..auth import Auth
from .loader import Scenario, ScenarioFileError, load_file
from .runner import Runner, ScenarioResult

PLATFORMS = ("accessrc", "accredit", "reachfive")
ROWS = (
    ("credentials", "Signature or credentials verified"),
    ("validation", "Payload validation (400 on malformed or incomplete bodies)"),
    ("idempotency", "Idempotency (a duplicate X-JobId answered without error)"),
    ("envelope", "Documented response envelopes"),
    ("timeout", "Answers within the timeout"),
    ("retries", "Retries survived"),
)
NOT_APPLICABLE = {
    ("accredit", "envelope"): "Accredit documents no response body: only the status code counts",
    ("reachfive", "envelope"): "ReachFive documents no response body and ignores the answer (fire-and-forget)",
    ("reachfive", "idempotency"): "ReachFive sends no X-JobId and never sends a report twice",
    ("reachfive", "retries"): "ReachFive is fire-and-forget: no retries",
}
NO_AUTH = {
    "accessrc": "no auth configured (subscription auth null): nothing to verify; give --hmac-secret, --api-key or "
                "--basic to check it",
    "reachfive": "no Authorization configured, so ReachFive sends none; give --authorization to check that the "
                 "header is enforced",
}


class ConformanceError(ValueError):
    """The conformance set cannot be found or used."""


@dataclass
class Row:
    id: str
    title: str
    state: str  # pass | fail | n/a
    evidence: list[str] = field(default_factory=list)


@dataclass
class Plan:
    platform: str
    url: str
    auth: Auth
    timeout: float
    rows: list[tuple[str, str, Scenario | None, str]]  # id, title, scenario, reason when not applicable


@dataclass
class Verdict:
    platform: str
    url: str
    auth: Auth
    timeout: float
    rows: list[Row]
    results: list[ScenarioResult]

    @property
    def applicable(self) -> list[Row]:
        return [r for r in self.rows if r.state != "n/a"]

    @property
    def ready(self) -> bool:
        return bool(self.applicable) and all(r.state == "pass" for r in self.applicable)


ENV_SCENARIOS_DIR = "ACCESSRC_SIM_SCENARIOS_DIR"


def default_dir() -> Path:
    """The scenarios folder: env ACCESSRC_SIM_SCENARIOS_DIR, else the shipped scenarios/ next to the package (a
    checkout or an editable install)."""
    configured = os.environ.get(ENV_SCENARIOS_DIR)
    return Path(configured) if configured else Path(__file__).resolve().parents[2] / "scenarios"


def not_applicable(platform: str, row: str, auth: Auth) -> str | None:
    if (platform, row) in NOT_APPLICABLE:
        return NOT_APPLICABLE[(platform, row)]
    if row == "credentials" and auth.kind == "none":
        return NO_AUTH.get(platform, "no credentials configured")
    return None


def plan(platform: str, url: str, auth: Auth, timeout: float, scenarios_dir: str | Path | None = None) -> Plan:
    if platform not in PLATFORMS:
        raise ConformanceError(f"platform must be one of {', '.join(PLATFORMS)}")
    base = Path(scenarios_dir) if scenarios_dir else default_dir()
    folder = base / "conformance" / platform
    if not folder.is_dir():
        raise ConformanceError(f"no conformance set at {folder} (point --scenarios-dir at the scenarios folder)")
    rows, problems = [], []
    variables = {"RECEIVER_URL": url, "TIMEOUT": f"{timeout:g}"}
    for row_id, title in ROWS:
        reason = not_applicable(platform, row_id, auth)
        if reason:
            rows.append((row_id, title, None, reason))
            continue
        path = folder / f"{row_id}.yaml"
        if not path.is_file():
            raise ConformanceError(f"the conformance set misses {path}")
        try:
            scenario = load_file(path, cli_vars=variables, url=url, auth=auth, env={})
        except ScenarioFileError as exc:
            problems.extend(exc.problems)
            continue
        rows.append((row_id, title, scenario, ""))
    if problems:
        raise ScenarioFileError(problems)
    return Plan(platform, url, auth, timeout, rows)


def run(p: Plan, runner: Runner) -> Verdict:
    rows, results = [], []
    for row_id, title, scenario, reason in p.rows:
        if scenario is None:
            rows.append(Row(row_id, title, "n/a", [reason]))
            continue
        result = runner.run_scenario(scenario)
        results.append(result)
        evidence = []
        for step in result.steps:  # each line says whether its step passed: a 200 may be right or wrong
            if step.skipped:
                evidence.append(f"{SKIPPED}{step.name}: not checked ({step.skipped})")
            elif step.passed is True:
                evidence.append(f"{PASSED}{step.evidence}")
            elif step.passed is False:
                evidence.append(f"{FAILED}{step.name}: " + "; ".join(f.text() for f in step.failures))
        ok = result.failed == 0 and result.passed > 0
        rows.append(Row(row_id, title, "pass" if ok else "fail", evidence))
    return Verdict(p.platform, p.url, p.auth, p.timeout, rows, results)


PASSED, FAILED, SKIPPED = "ok ", "FAIL ", "skip "  # the first word of each evidence line
CREDENTIALS_HINT = {
    "rsa": "Accredit signs with this simulator's key: give the receiver the PEM of `accessrc-sim keys show`",
    "hmac": "--hmac-secret must be the receiver's secret",
    "header": "--api-key-header / --api-key must be the header and key the receiver checks",
    "basic": "--basic USER:PASS must be the receiver's user and password",
    "authorization": "--authorization must be the exact header value the receiver expects",
    "none": "no auth was sent: give the receiver's credentials with the auth options",
}


def table(v: Verdict, color: bool = False, style: Callable | None = None) -> list[str]:
    style = style or (lambda text, **_: text)
    marks = {"pass": ("PASS", "green"), "fail": ("FAIL", "red"), "n/a": ("N/A ", "yellow")}
    lines = [f"Receiver readiness for {v.platform} at {v.url} (auth {v.auth.kind}, timeout {v.timeout:g} s)", ""]
    for row in v.rows:
        text, colour = marks[row.state]
        lines.append(f"  {style(text, fg=colour) if color else text}  {row.title}")
        for item in row.evidence:
            mark, _, rest = item.partition(" ")
            if mark + " " in (PASSED, FAILED, SKIPPED):  # aligned: ok / FAIL / skip, then the step's evidence
                lines.append(f"        {mark:<5}{_one_line(rest)}")
            else:
                lines.append(f"        {_one_line(item)}")
    failed = [r for r in v.applicable if r.state == "fail"]
    lines.append("")
    refused = [r for r in v.applicable if r.state == "fail" and any("Connection refused" in e for e in r.evidence)]
    if refused and len(refused) == len(failed):
        lines.append(f"Nothing answered at {v.url} (connection refused): is the receiver running on that port?")
    elif any(e.startswith(FAILED) and "expected 2xx, got 401" in e for r in failed for e in r.evidence):
        lines.append(f"Genuine deliveries were refused with 401: does the receiver expect the credentials this run "
                     f"sends? ({CREDENTIALS_HINT.get(v.auth.kind, 'auth ' + v.auth.kind)})")
    if v.ready:
        lines.append(f"Verdict: READY - all {len(v.applicable)} applicable checks passed"
                     + (f" ({len(v.rows) - len(v.applicable)} not applicable)" if len(v.rows) != len(v.applicable)
                        else ""))
    elif not v.applicable:
        lines.append("Verdict: NOT READY - no check applies")
    else:
        lines.append(f"Verdict: NOT READY - {len(failed)} of {len(v.applicable)} applicable checks failed: "
                     + ", ".join(r.title for r in failed))
    return lines


def _one_line(text: str, limit: int = 400) -> str:
    """Evidence on one table line: white space folded (an HTML error page is many lines), long text cut."""
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:limit] + "…"


def to_json_text(v: Verdict) -> str:
    return json.dumps({"platform": v.platform, "url": v.url, "auth": v.auth.masked(), "timeout": v.timeout,
                       "ready": v.ready,
                       "rows": [{"id": r.id, "title": r.title, "state": r.state, "evidence": r.evidence}
                                for r in v.rows]}, indent=2) + "\n"
