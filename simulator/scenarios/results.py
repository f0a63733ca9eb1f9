"""What a scenario run records: each request of a step and its answer (Exchange), each step's verdict (StepResult,
with its Failures) and each scenario's (ScenarioResult). Reports and the conformance table read these."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from .. import limits
from ..models import Job
from ..rules import Rule
from .loader import Scenario


class _Missing:
    """The actual value of a body path the answer does not have (not the string "(missing)")."""

    def __repr__(self) -> str:
        return "(missing)"

    __str__ = __repr__


MISSING = _Missing()


def shown(value: Any) -> str:
    """A value as a failure line shows it: strings as they are, the rest as JSON, at most 200 characters."""
    if value is MISSING:
        return str(value)
    if isinstance(value, str):
        return value if len(value) <= 200 else value[:200] + "…"
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 200 else text[:200] + "…"


@dataclass
class Failure:
    check: str
    expected: Any
    actual: Any  # MISSING when the answer has no such path
    label: str = ""

    def text(self) -> str:
        where = f"{self.label}: " if self.label else ""
        return f"{where}{self.check}: expected {shown(self.expected)}, got {shown(self.actual)}"

    def to_dict(self) -> dict:
        if self.actual is MISSING:  # JSON: no value, and says so
            return {
                "check": self.check,
                "expected": self.expected,
                "actual": None,
                "missing": True,
                "label": self.label,
            }
        return {"check": self.check, "expected": self.expected, "actual": self.actual, "label": self.label}


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
        return {
            "payload": self.payload,
            "job_id": self.headers.get("X-JobId", self.job.id),
            "attempts": self.job.attempts_made,
            "request": {"headers": dict(self.headers), "body": self.body.decode("utf-8", "replace")},
            "response": {
                "status": self.status,
                "headers": dict(self.response_headers),
                "ms": round(self.ms, 1),
                "body": parsed if parsed is not None else self.response_body.decode("utf-8", "replace"),
            },
        }


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
    call: dict | None = None  # an await_call step: the call it matched (id, method, path, status, after_s, …)

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
        if self.call:
            c = self.call
            parts.append(f"call #{c['id']} {c['method']} {c['path']} -> {c['status']} after {c['after_s']:.1f} s")
        return f"{self.name}: " + ", ".join(parts) if parts else self.name

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "kind": self.kind,
            "where": self.where,
            "passed": self.passed,
            "warned": self.warned,
            "rule": self.rule.id if self.rule else None,
            "source": self.rule.source if self.rule else None,
            "skipped": self.skipped,
            "status": self.status,
            "ms": self.ms,
            "duration_s": round(self.duration, 4),
            "failures": [f.to_dict() for f in self.failures],
            "call": self.call,
            "jobs": [
                {
                    "job_id": ex.job.id,
                    "x_job_id": ex.headers.get("X-JobId"),
                    "attempt": ex.number,
                    "status": ex.status,
                    "ms": round(ex.ms, 1),
                    "error": ex.error,
                    "label": ex.label,
                }
                for ex in self.exchanges
            ],
        }


@dataclass
class ScenarioResult:
    scenario: Scenario
    steps: list[StepResult] = field(default_factory=list)
    started_at: float = 0.0
    duration: float = 0.0
    stopped: bool = False  # the run stopped here (a failed step under --fail-fast, or the stop flag)

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
        return {
            "file": sc.path,
            "name": sc.name,
            "platform": sc.platform,
            "url": sc.url,
            "auth": sc.auth.masked(),
            "passed": self.passed,
            "failed": self.failed,
            "warned": self.warned,
            "duration_s": round(self.duration, 4),
            "steps": [s.to_dict() for s in self.steps],
        }
