"""`await_call` steps: wait for a receiver's call back to a platform API and say why none matched.

The calls are the ones `serve` (or `run --api-port`) records in the Store the run uses (simulator/api/loop.py).
A call matches a step when its method and path are the step's, its JSON body holds the step's `body` (a partial
match: see `body_differences`) and its answer status is one the step accepts (default 2xx: the platform accepted it).

Which paths a platform serves (served.py) is checked when the file is loaded: a step that waits on a path nobody
answers would only ever time out.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from .. import limits
from .results import MISSING, Failure, shown

DEFAULT_WITHIN = 30.0
POLL_SECONDS = 0.1
LISTED = 5  # calls described, at most, in a failure


# -- matching ------------------------------------------------------------------------------------------------------
def body_differences(expected: Any, actual: Any, where: str = "") -> list[tuple[str, Any, Any]]:
    """(path, expected, actual) for each part of `expected` that `actual` does not hold. A mapping matches when each
    of its keys is there and matches (other keys may be present); a list when each of its items matches a different
    item of the actual list, in any order; anything else when equal."""
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return [(where or "body", expected, actual)]
        out = []
        for key, value in expected.items():
            path = f"{where}.{key}" if where else str(key)
            if key not in actual:
                out.append((path, value, MISSING))
            else:
                out.extend(body_differences(value, actual[key], path))
        return out
    if isinstance(expected, list):
        if not isinstance(actual, list):
            return [(where or "body", expected, actual)]
        free = list(range(len(actual)))
        for i, item in enumerate(expected):
            hit = next((j for j in free if not body_differences(item, actual[j])), None)
            if hit is None:
                return [(f"{where}[{i}]" if where else f"[{i}]", item, f"no such item in {shown(actual)}")]
            free.remove(hit)
        return []
    if (type(expected) is type(actual) or (_number(expected) and _number(actual))) and expected == actual:
        return []
    return [(where or "body", expected, actual)]


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def call_body(call) -> tuple[Any, str | None]:
    """The call's JSON body, or (None, why it cannot be read)."""
    if call.body_length > len(call.body):
        return None, f"its body was cut at {len(call.body)} bytes when recorded ({call.body_length} sent)"
    if not call.body:
        return None, "it has no body"
    try:
        return limits.loads(call.body), None
    except ValueError:
        return None, "its body is not JSON"


@dataclass
class CallMatch:
    """The call an await_call step found: what `${name.call.…}` reaches."""

    call: Any  # store.Call

    def view(self) -> dict:
        body, _ = call_body(self.call)
        answer = _text(self.call.response_body)
        try:
            answer = limits.loads(self.call.response_body) if self.call.response_body else answer
        except ValueError:
            pass
        return {
            "call": {
                "id": self.call.id,
                "method": self.call.method,
                "path": self.call.path,
                "query": self.call.query,
                "headers": dict(self.call.headers),
                "body": body if body is not None else _text(self.call.body),
                "status": self.call.status,
                "response": {"status": self.call.status, "body": answer},
                "job_id": self.call.job_id,
                "ms": round(self.call.duration_ms, 1),
            }
        }

    def to_dict(self) -> dict:
        return {
            "id": self.call.id,
            "method": self.call.method,
            "path": self.call.path,
            "status": self.call.status,
            "started_at": self.call.started_at,
            "job_id": self.call.job_id,
        }


def _text(data: bytes) -> str:
    return data.decode("utf-8", "replace")


def _clock(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%H:%M:%S")


def answer_of(call) -> str:
    """A call's answer in a few words: its status and, for a refusal, the error message."""
    text = str(call.status)
    if call.status >= 400 and call.response_body:
        try:
            body = limits.loads(call.response_body)
        except ValueError:
            body = None
        error = body.get("error") if isinstance(body, dict) else None
        message = (
            error.get("message") if isinstance(error, dict) else body.get("message") if isinstance(body, dict) else None
        )
        if message:
            text += f" ({message})"
    return text


def why_not(call, body: dict | None, wanted_status: list, status_ok, job: str | None = None) -> list[Failure]:
    """Why `call` (on the right method and path) does not match: the job it follows, its body, then its answer."""
    label = f"call #{call.id} at {_clock(call.started_at)} UTC"
    out = []
    if job is not None and call.job_id != job:
        out.append(Failure("job", job, call.job_id or "no job (it names no id this simulator sent)", label))
    if body:
        actual, problem = call_body(call)
        if problem:
            out.append(Failure("body", body, problem, label))
        else:
            out.extend(Failure(f"body.{path}", want, got, label) for path, want, got in body_differences(body, actual))
    if not status_ok(call.status, wanted_status):
        out.append(
            Failure(
                "answer",
                wanted_status[0] if len(wanted_status) == 1 else wanted_status,
                answer_of(call),
                label,
            )
        )
    return out


def describe_expected(method: str, path: str, body: dict | None, within: float, job: str | None = None) -> str:
    return (
        f"{method} {path}"
        + (f" with body {shown(body)}" if body else "")
        + (f" following job {job}" if job else "")
        + f" within {within:g} s"
    )
