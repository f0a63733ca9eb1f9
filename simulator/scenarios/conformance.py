"""Receiver readiness: run a platform's conformance set (scenarios/conformance/<platform>/<row>.yaml, one file per
row) and turn the step results into a table of rows with evidence, and a verdict.

Every step of the set is a check that names its rule (simulator/rules/conformance.yaml): a documented rule that
fails makes its row FAIL and the verdict NOT READY; an inferred one only gives advice (row WARN, `advice:` lines),
unless the run is strict. A row the platform's documents make meaningless is not applicable, with the reason.

AccessRC subscribes one callbackUrl per event type, so it can be tested per event: each target is an (event, URL)
pair, every row runs once per target with `${EVENT}` set, and no check posts an event to another event's URL.

The follow-up row (`--follow-up`, FOLLOW_UP) is extra: it runs once, for the event whose follow-up call it awaits
(FOLLOW_UP_EVENT), with the platform APIs served to the receiver. No document says the call is required, so its rule
is inferred and it is judged like every inferred rule: a receiver that does not call back gets a WARN, and a FAIL
only with --strict; without --follow-up the row is not in the table at all.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .. import catalogue
from ..auth import Auth
from ..config import Settings
from . import faults
from .loader import Scenario, ScenarioFileError, Step, load_file
from .results import ScenarioResult, StepResult
from .runner import Runner

PLATFORMS = ("accessrc", "accredit", "reachfive")
ROWS = (
    ("credentials", "Signature or credentials verified"),
    ("validation", "Payload validation (400 on malformed or incomplete bodies)"),
    ("idempotency", "Idempotency (a duplicate delivery acknowledged without error)"),
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
# The event a platform's set tests at --url (${EVENT}); AccessRC may name other events with --url-for.
DEFAULT_EVENT = {
    "accessrc": "DELIVERY_CHANNEL_STATUS_UPDATED",
    "accredit": "BadgeExportZipFile.Created",
    "reachfive": "END_JOB_NOTIFICATION",
}
PER_EVENT_URLS = ("accessrc",)  # platforms whose subscriptions are one callback URL per event type (--url-for)
CHECKED_KINDS = ("send", "fault", "expect", "await_call")  # the steps that are checks: each names its rule
FOLLOW_UP = ("follow-up", "Follow-up call to the platform API")
# The event whose follow-up call the row awaits (the call: scenarios/conformance/<platform>/follow-up.yaml)
FOLLOW_UP_EVENT = {"accessrc": "DELIVERY_REQUEST_SENT", "accredit": "BadgeExportZipFile.Created"}
FOLLOW_UP_WITHIN = 10.0
NO_FOLLOW_UP = "{platform} documents no API a receiver calls back: there is no follow-up call to check"


class ConformanceError(ValueError):
    """The conformance set cannot be found or used, or the targets make no sense."""


@dataclass(frozen=True)
class Target:
    """One subscription under test: the event and the URL it is delivered to."""

    event: str
    url: str


@dataclass
class Check:
    """One step of a row: what it checked, its outcome and the rule it checks (with its source)."""

    name: str
    state: str  # pass | fail | warn (an inferred rule failed: advice) | skip
    event: str
    evidence: str
    rule: str | None = None
    source: str | None = None  # documented | inferred
    quote: str | None = None  # documented: the document's words
    where: str | None = None
    reason: str | None = None  # inferred: why we chose it

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Row:
    id: str
    title: str
    state: str  # pass | warn (only inferred checks failed) | fail | n/a
    evidence: list[str] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)

    @property
    def sources(self) -> str:
        """What the row's checks rest on: documented, inferred, or both (shown beside its title)."""
        found = sorted({c.source for c in self.checks if c.source})
        return " + ".join(found)


@dataclass
class PlannedRow:
    id: str
    title: str
    runs: list[tuple[Target, Scenario]]  # empty when not applicable
    reason: str = ""  # why not applicable


@dataclass
class Plan:
    platform: str
    targets: list[Target]
    auth: Auth
    timeout: float
    rows: list[PlannedRow]

    @property
    def url(self) -> str:
        return self.targets[0].url


@dataclass
class Verdict:
    platform: str
    targets: list[Target]
    auth: Auth
    timeout: float
    strict: bool
    rows: list[Row]
    results: list[ScenarioResult]
    complete: bool = True  # False: the run was stopped before every row was checked (no verdict then)

    @property
    def url(self) -> str:
        return self.targets[0].url

    @property
    def applicable(self) -> list[Row]:
        return [r for r in self.rows if r.state != "n/a"]

    @property
    def ready(self) -> bool:
        """Every documented check passed (and, when strict, every inferred one too)."""
        return self.complete and bool(self.applicable) and all(r.state in ("pass", "warn") for r in self.applicable)

    @property
    def ready_strict(self) -> bool:
        """What the verdict would be with --strict: no check failed, documented or inferred."""
        return self.complete and bool(self.applicable) and all(r.state == "pass" for r in self.applicable)

    @property
    def advice(self) -> list[tuple[Row, Check]]:
        return [(r, c) for r in self.rows for c in r.checks if c.state == "warn"]


SHIPPED = "shipped_scenarios"  # simulator/shipped_scenarios -> ../scenarios


def default_dir() -> Path:
    """The scenarios folder: env ACCESSRC_SIM_SCENARIOS_DIR (read by config), else the shipped scenarios. They are
    the checkout's scenarios/, which the package reaches through its link simulator/shipped_scenarios, so an
    installed wheel (where the link became a folder) holds them too; resolved, so a checkout shows scenarios/."""
    configured = Settings.load().scenarios_dir
    return Path(configured) if configured else (Path(__file__).resolve().parents[1] / SHIPPED).resolve()


def not_applicable(platform: str, row: str, auth: Auth) -> str | None:
    if (platform, row) in NOT_APPLICABLE:
        return NOT_APPLICABLE[(platform, row)]
    if row == "credentials" and auth.kind == "none":
        return NO_AUTH.get(platform, "no credentials configured")
    return None


def targets(platform: str, url: str | None, url_for: dict[str, str] | None = None) -> list[Target]:
    """The (event, URL) pairs to test: `url` for the platform's default event unless `url_for` names it, then each
    `url_for` event at its own URL."""
    url_for = dict(url_for or {})
    if url_for and platform not in PER_EVENT_URLS:
        raise ConformanceError(
            f"--url-for: {platform} is tested with one event at --url (only "
            f"{', '.join(PER_EVENT_URLS)} subscribes one callback URL per event type)"
        )
    named: dict[str, str] = {}
    for name, event_url in url_for.items():
        try:
            event = catalogue.get_event(name, platform).name
        except catalogue.CatalogueError as exc:
            raise ConformanceError(f"--url-for: {exc}") from None
        if event in named:
            raise ConformanceError(f"--url-for: {event} is given twice")
        named[event] = event_url
    default = DEFAULT_EVENT[platform]
    out = []
    if url:
        if default in named:
            raise ConformanceError(
                f"--url is the URL of {default} (the event tested by default), but --url-for "
                f"gives that event its own URL: drop one of them"
            )
        out.append(Target(default, url))
    elif not named:
        raise ConformanceError(
            "give the receiver's URL with --url"
            + (" or one --url-for EVENT=URL per event" if platform in PER_EVENT_URLS else "")
        )
    out.extend(Target(event, event_url) for event, event_url in named.items())
    return out


def plan(
    platform: str,
    url: str | None,
    auth: Auth,
    timeout: float,
    scenarios_dir: str | Path | None = None,
    url_for: dict[str, str] | None = None,
    follow_up: bool = False,
    follow_up_within: float = FOLLOW_UP_WITHIN,
) -> Plan:
    """The rows to run; with `follow_up`, the follow-up row last (see FOLLOW_UP)."""
    if platform not in PLATFORMS:
        raise ConformanceError(f"platform must be one of {', '.join(PLATFORMS)}")
    base = Path(scenarios_dir) if scenarios_dir else default_dir()
    folder = base / "conformance" / platform
    if not folder.is_dir():
        raise ConformanceError(f"no conformance set at {folder} (point --scenarios-dir at the scenarios folder)")
    under_test = targets(platform, url, url_for)
    follow_target = _follow_up_target(platform, under_test) if follow_up else None
    rows, problems = [], []
    for row_id, title in ROWS + ((FOLLOW_UP,) if follow_up else ()):
        if row_id == FOLLOW_UP[0] and follow_target is None:
            rows.append(PlannedRow(row_id, title, [], NO_FOLLOW_UP.format(platform=platform)))
            continue
        reason = not_applicable(platform, row_id, auth)
        if reason:
            rows.append(PlannedRow(row_id, title, [], reason))
            continue
        path = folder / f"{row_id}.yaml"
        if not path.is_file():
            raise ConformanceError(f"the conformance set misses {path}")
        runs = []
        for target in [follow_target] if row_id == FOLLOW_UP[0] else under_test:
            variables = {"RECEIVER_URL": target.url, "TIMEOUT": f"{timeout:g}", "EVENT": target.event}
            if row_id == FOLLOW_UP[0]:
                variables["WITHIN"] = f"{follow_up_within:g}"
            field_ = faults.required_field(target.event)  # the field the validation row removes
            if field_:
                variables["REQUIRED_FIELD"] = field_
            try:
                scenario = load_file(path, cli_vars=variables, url=target.url, auth=auth, env={})
            except ScenarioFileError as exc:
                problems.extend(p for p in exc.problems if p not in problems)
                continue
            problems.extend(p for p in _unruled(scenario.steps) if p not in problems)
            if len(under_test) > 1:
                scenario.name = f"{scenario.name} [{target.event}]"
            runs.append((target, scenario))
        rows.append(PlannedRow(row_id, title, runs))
    if problems:
        raise ScenarioFileError(problems)
    return Plan(platform, under_test, auth, timeout, rows)


def _follow_up_target(platform: str, under_test: list[Target]) -> Target | None:
    """The target the follow-up row sends to: the one of the event whose follow-up call it awaits (None: the
    platform has no API to call back). AccessRC tests one URL per event, so that event's URL must be given."""
    event = FOLLOW_UP_EVENT.get(platform)
    if event is None:
        return None
    found = next((t for t in under_test if t.event == event), None)
    if found is None:
        raise ConformanceError(
            f"--follow-up checks the call after {event}: give the URL subscribed for it with "
            f"--url-for {event}=URL (no check posts an event to another event's URL)"
        )
    return found


def _unruled(steps: list[Step]) -> list[str]:
    """A conformance step that checks something must say which rule: its source decides failure or advice."""
    out = []
    for step in steps:
        if step.kind == "repeat":
            out.extend(_unruled(step.children))
        elif step.kind in CHECKED_KINDS and step.rule is None:
            out.append(
                f"{step.where}: a conformance check needs `rule:` (the id of the documented or inferred rule "
                "it checks; `accessrc-sim rules` lists them)"
            )
    return out


def run(p: Plan, runner: Runner, on_row: Callable[[Row, list[ScenarioResult]], None] | None = None) -> Verdict:
    """Run every row (each once per target); `on_row` sees each row as it is finished. Strict when the runner is.
    A stopped runner ends the run: the row it was checking is left out and the verdict is incomplete."""
    rows, results = [], []
    several = len(p.targets) > 1
    for planned in p.rows:
        if runner.stopped:
            break
        if not planned.runs:
            row, done = Row(planned.id, planned.title, "n/a", [planned.reason]), []
        else:
            checks, done = [], []
            for target, scenario in planned.runs:
                result = runner.run_scenario(scenario)
                done.append(result)
                checks.extend(_check(step, target.event) for step in result.steps if step.counted or step.skipped)
            if runner.stopped:
                results.extend(done)
                break
            prefix = (lambda c: f"[{c.event}] ") if several else (lambda c: "")
            mixed = len({c.source for c in checks if c.source}) > 1  # then each line says which of its checks is ours
            suffix = (lambda c: "  (inferred)" if c.source == "inferred" else "") if mixed else (lambda c: "")
            evidence = [f"{MARKS[c.state]}{prefix(c)}{c.evidence}{suffix(c)}" for c in checks]
            row = Row(planned.id, planned.title, _row_state(checks), evidence, checks)
        rows.append(row)
        results.extend(done)
        if on_row:
            on_row(row, done)
    return Verdict(
        p.platform, p.targets, p.auth, p.timeout, runner.strict, rows, results, complete=len(rows) == len(p.rows)
    )


def _check(step: StepResult, event: str) -> Check:
    if step.skipped:
        state, evidence = "skip", f"{step.name}: not checked ({step.skipped})"
    elif step.passed:
        state, evidence = "pass", step.evidence
    else:
        state = "warn" if step.warned else "fail"
        evidence = f"{step.name}: " + "; ".join(f.text() for f in step.failures)
    rule = step.rule
    return Check(
        step.name,
        state,
        event,
        evidence,
        rule.id if rule else None,
        rule.source if rule else None,
        rule.quote if rule else None,
        rule.where if rule else None,
        rule.reason if rule else None,
    )


def _row_state(checks: list[Check]) -> str:
    if any(c.state == "fail" for c in checks) or not any(c.state in ("pass", "warn") for c in checks):
        return "fail"
    return "warn" if any(c.state == "warn" for c in checks) else "pass"


PASSED, FAILED, WARNED, SKIPPED = "ok ", "FAIL ", "WARN ", "skip "  # the first word of each evidence line
MARKS = {"pass": PASSED, "fail": FAILED, "warn": WARNED, "skip": SKIPPED}
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
    marks = {"pass": ("PASS", "green"), "fail": ("FAIL", "red"), "warn": ("WARN", "yellow"), "n/a": ("N/A ", "yellow")}
    settings = f"auth {v.auth.kind}, timeout {v.timeout:g} s" + (", strict" if v.strict else "")
    if len(v.targets) == 1:
        lines = [f"Receiver readiness for {v.platform} at {v.url} ({settings})", ""]
    else:
        lines = [f"Receiver readiness for {v.platform}, one URL per event ({settings})"]
        lines += [f"  {t.event} at {t.url}" for t in v.targets] + [""]
    for row in v.rows:
        text, colour = marks[row.state]
        lines.append(
            f"  {style(text, fg=colour) if color else text}  {row.title}"
            + (f"  [{row.sources}]" if row.sources else "")
        )
        for item in row.evidence:
            mark, _, rest = item.partition(" ")
            if mark + " " in MARKS.values():  # aligned: ok / FAIL / WARN / skip, then the step's evidence
                lines.append(f"        {mark:<5}{_one_line(rest)}")
            else:
                lines.append(f"        {_one_line(item)}")
    lines.append("")
    lines.extend(_one_line(f"advice: {text}", 700) for text in advice_lines(v))
    if v.advice:
        lines.append(
            "(advice: what the documents do not say, so it does not decide the verdict; --strict makes it count)"
        )
        lines.append("")
    failed = [r for r in v.applicable if r.state == "fail"]
    refused = [r for r in failed if any("Connection refused" in e for e in r.evidence)]
    urls = ", ".join(dict.fromkeys(t.url for t in v.targets))
    if refused and len(refused) == len(failed):
        lines.append(f"Nothing answered at {urls} (connection refused): is the receiver running on that port?")
    elif any(e.startswith(FAILED) and "expected 2xx, got 401" in e for r in failed for e in r.evidence):
        lines.append(
            f"Genuine deliveries were refused with 401: does the receiver expect the credentials this run "
            f"sends? ({CREDENTIALS_HINT.get(v.auth.kind, 'auth ' + v.auth.kind)})"
        )
    not_applicable_note = (
        f" ({len(v.rows) - len(v.applicable)} not applicable)" if len(v.rows) != len(v.applicable) else ""
    )
    if v.ready and not v.advice:
        lines.append(f"Verdict: READY - all {len(v.applicable)} applicable checks passed{not_applicable_note}")
    elif v.ready:
        lines.append(
            f"Verdict: READY - every documented check passed{not_applicable_note}; {len(v.advice)} "
            f"inferred check(s) failed: see advice (NOT READY with --strict)"
        )
    elif not v.applicable:
        lines.append("Verdict: NOT READY - no check applies")
    else:
        lines.append(
            f"Verdict: NOT READY - {len(failed)} of {len(v.applicable)} applicable checks failed: "
            + ", ".join(r.title for r in failed)
        )
    return lines


def advice_lines(v: Verdict) -> list[str]:
    """One line per failed check of an inferred rule: the row, the check and what happened, the rule and why we
    chose it."""
    several = len(v.targets) > 1
    return [
        f"{row.title}: {f'[{check.event}] ' if several else ''}{check.evidence} - inferred ({check.rule}): "
        f"{check.reason}"
        for row, check in v.advice
    ]


def _one_line(text: str, limit: int = 400) -> str:
    """Evidence on one table line: white space folded (an HTML error page is many lines), long text cut."""
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:limit] + "…"


def row_dict(row: Row) -> dict:
    return {
        "id": row.id,
        "title": row.title,
        "state": row.state,
        "evidence": list(row.evidence),
        "checks": [c.to_dict() for c in row.checks],
    }


def to_json_text(v: Verdict) -> str:
    return (
        json.dumps(
            {
                "platform": v.platform,
                "url": v.url,
                "targets": [{"event": t.event, "url": t.url} for t in v.targets],
                "auth": v.auth.masked(),
                "timeout": v.timeout,
                "strict": v.strict,
                "ready": v.ready,
                "ready_strict": v.ready_strict,
                "advice": advice_lines(v),
                "rows": [row_dict(r) for r in v.rows],
            },
            indent=2,
        )
        + "\n"
    )
