"""Scenario results for people (live console lines, the `N passed, M failed` summary), CI (JUnit XML) and
machines (JSON)."""

from __future__ import annotations

import json
import os
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

from .loader import Scenario
from .results import MISSING, ScenarioResult, StepResult


def summary_line(results: list[ScenarioResult]) -> str:
    """Exactly `N passed, M failed` (CI tooling reads this line), then `, K warned` when steps of inferred rules
    failed (advice: they do not count as failures unless --strict)."""
    passed = sum(r.passed for r in results)
    failed = sum(r.failed for r in results)
    warned = sum(r.warned for r in results)
    return f"{passed} passed, {failed} failed" + (f", {warned} warned" if warned else "")


class Console:
    """One line per step as it finishes: mark (ok, FAIL, WARN, skip), step name, status, ms; failures indented below,
    and for a WARN (a step of an inferred rule) why it is only advice."""

    def __init__(self, echo: Callable[[str], None], color: bool = False, style: Callable | None = None):
        self.echo = echo
        self.color = color
        self.style = style or (lambda text, **_: text)

    def scenario(self, sc: Scenario) -> None:
        self.echo(f"{sc.path}: {sc.name} ({sc.platform}, auth {sc.auth.kind}) -> {sc.url}")

    def step(self, sc: Scenario, res: StepResult) -> None:
        if res.skipped:
            mark = "skip"
        elif res.passed is None:
            mark = "    "
        else:
            mark = "ok  " if res.passed else "WARN" if res.warned else "FAIL"
        if self.color and mark.strip():
            mark = self.style(mark, fg={"ok  ": "green", "FAIL": "red", "WARN": "yellow", "skip": "yellow"}[mark])
        status = res.status or ("-" if res.passed is not None else "")
        ms = f"{res.ms:.0f} ms" if res.ms is not None else ""
        line = f"  {mark}  {res.name:<48} {status:>7} {ms:>8}".rstrip()
        if res.skipped:
            line += f"  ({res.skipped})"
        self.echo(line)
        for failure in res.failures:
            self.echo(f"          {failure.text()}")
        if res.warned:
            self.echo(f"          advice: {res.advice}")


def write_junit(results: list[ScenarioResult], path: str | Path) -> None:
    """One testsuite per scenario file, one testcase per step; failures carry expected and actual. A warned step
    (its rule inferred, not --strict) is a passing testcase with the advice in <system-out>, never a failure."""
    root = ET.Element(
        "testsuites",
        name="accessrc-sim",
        tests=str(sum(len(_counted(r)) for r in results)),
        failures=str(sum(r.failed for r in results)),
        time=f"{sum(r.duration for r in results):.3f}",
    )
    for r in results:
        sc = r.scenario
        cases = [s for s in r.steps if s.counted or s.skipped]
        suite = ET.SubElement(
            root,
            "testsuite",
            name=sc.name,
            file=sc.path,
            tests=str(len(cases)),
            failures=str(r.failed),
            errors="0",
            skipped=str(sum(1 for s in r.steps if s.skipped)),
            time=f"{r.duration:.3f}",
        )
        ET.SubElement(ET.SubElement(suite, "properties"), "property", name="platform", value=sc.platform)
        for s in cases:
            case = ET.SubElement(
                suite, "testcase", classname=sc.name, name=s.name, file=sc.path, time=f"{s.duration:.3f}"
            )
            if s.skipped:
                ET.SubElement(case, "skipped", message=s.skipped)
            elif s.failures and not s.warned:
                first = s.failures[0]
                fail = ET.SubElement(case, "failure", message=first.text(), type=first.check)
                fail.text = (
                    "\n".join(
                        f"{f.label + ': ' if f.label else ''}{f.check}\n"
                        f"  expected: {json.dumps(f.expected, default=str)}"
                        f"\n  actual:   {_junit_value(f.actual)}"
                        for f in s.failures
                    )
                    + f"\n(step at {s.where})"
                )
            jobs = [
                f"job {ex.job.id} attempt {ex.number}: {ex.status if ex.status is not None else ex.error}"
                for ex in s.exchanges
            ]
            if s.call:
                c = s.call
                jobs.append(f"call #{c['id']} {c['method']} {c['path']}: {c['status']} (job {c['job_id']})")
            if s.warned:
                jobs = [f"WARN {f.text()}" for f in s.failures] + [f"advice: {s.advice}"] + jobs
            if jobs:
                ET.SubElement(case, "system-out").text = "\n".join(jobs)
    ET.indent(root)
    atomic_write(path, ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n")


def _counted(r: ScenarioResult) -> list[StepResult]:
    return [s for s in r.steps if s.counted or s.skipped]


def to_json(results: list[ScenarioResult], stopped: bool = False) -> dict:
    return {
        "passed": sum(r.passed for r in results),
        "failed": sum(r.failed for r in results),
        "warned": sum(r.warned for r in results),
        "stopped_early": stopped,
        "scenarios": [r.to_dict() for r in results],
    }


def write_json(results: list[ScenarioResult], path: str | Path, stopped: bool = False) -> None:
    atomic_write(path, json.dumps(to_json(results, stopped), indent=2, default=str) + "\n")


def atomic_write(path: str | Path, text: str) -> None:
    """Write the whole report or nothing (a half-written report would mislead CI)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _junit_value(value) -> str:
    """JSON of a value; a path the answer does not have reads (missing), not the string "(missing)"."""
    return str(value) if value is MISSING else json.dumps(value, default=str)
