"""The checks of a receiver's answer: status, body paths, the echoed reply data, the documented envelope, latency
and attempts. Pure: an Exchange and the step's `expect` in, the Failures out."""

from __future__ import annotations

import re
from typing import Any

from .. import catalogue, envelopes, platforms
from ..catalogue import paths
from . import faults
from .results import MISSING, Exchange, Failure, shown


def default_status(kind: str, fault: str | None, platform: str) -> list:
    """The statuses a correct receiver answers a send or fault step with, when the step does not say."""
    if kind == "send":
        return ["2xx"]
    spec = faults.FAULTS[fault]
    if spec.credentials:
        return list(platforms.get(platform).credential_fault_statuses)
    return list(spec.answer)


def status_matches(status: int | None, wanted: list) -> bool:
    """Whether `status` is one of `wanted` (numbers, or classes such as "2xx")."""
    if status is None:
        return False
    for w in wanted:
        if isinstance(w, str) and re.fullmatch(r"[1-5]xx", w) and str(status)[0] == w[0]:
            return True
        if isinstance(w, int) and not isinstance(w, bool) and status == w:
            return True
    return False


ANY_STATUS = frozenset({"1xx", "2xx", "3xx", "4xx", "5xx"})


def any_status(wanted: list) -> bool:
    """Whether `wanted` takes every status: the step asks only that the receiver answers (in time)."""
    return ANY_STATUS <= {w for w in wanted if isinstance(w, str)}


def check_exchange(expect: dict, ex: Exchange, wanted_status: list) -> list[Failure]:
    """Every expectation that the answer of `ex` does not meet."""
    out: list[Failure] = []
    label = ex.label
    if not status_matches(ex.status, wanted_status):
        actual = ex.status if ex.status is not None else ex.error
        if ex.status is not None and ex.error and not ex.error.startswith("HTTP "):
            actual = f"{ex.status} ({ex.error})"
        if any_status(wanted_status):  # only an answer, in time, is asked for (the timeout rows): not a status
            out.append(Failure("answer", "an answer (any status)", actual, label))
        else:
            wanted = wanted_status[0] if len(wanted_status) == 1 else wanted_status
            out.append(Failure("status", wanted, actual, label))
    body = ex.response_json()
    for path, value in (expect.get("body") or {}).items():
        if body is None:
            out.append(
                Failure(
                    f"body.{path}",
                    value,
                    "answer is not JSON: " + ex.response_body[:120].decode("utf-8", "replace"),
                    label,
                )
            )
            continue
        try:
            got = paths.get(body, path)
        except paths.PathError:
            out.append(Failure(f"body.{path}", value, MISSING, label))
            continue
        if got != value:
            out.append(Failure(f"body.{path}", value, got, label))
    if expect.get("echo") and ex.status is not None:
        out.extend(echo_failures(ex, body))
    shape = expect.get("envelope")
    if shape and ex.status is not None:
        problem = envelope_problem(shape, ex.status, body)
        if problem:
            out.append(Failure("envelope", problem[0], problem[1], label))
    if "latency_ms" in expect and (ex.status is None or ex.ms > float(expect["latency_ms"])):
        out.append(
            Failure(
                "latency_ms",
                f"at most {expect['latency_ms']} ms",
                f"{ex.ms:.0f} ms" + (f" ({ex.error})" if ex.error else ""),
                label,
            )
        )
    if "attempts" in expect and ex.job.attempts_made != expect["attempts"]:
        out.append(Failure("attempts", expect["attempts"], ex.job.attempts_made, label))
    return out


def echo_failures(ex: Exchange, body: Any) -> list[Failure]:
    """The 200 reply's `data` against the event's documented reply data: the ids it echoes must be equal, a
    placeholder (the pull form) must be present, `{}` only asks for an object."""
    spec = catalogue.get_event(ex.event)
    if spec.reply_data is None or not isinstance(ex.payload, dict):
        return [Failure("echo", "an event with documented reply data", ex.event, ex.label)]
    if not 200 <= ex.status < 300:
        return [Failure("echo", "a 2xx answer whose data echoes the delivery", ex.status, ex.label)]
    wanted = spec.reply_data(ex.payload)
    data = body.get("data", MISSING) if isinstance(body, dict) else MISSING
    if not isinstance(data, dict):
        return [Failure("body.data", wanted, data, ex.label)]
    out = []
    for key, value in wanted.items():
        got = data.get(key, MISSING)
        if got is MISSING or (not isinstance(value, (dict, list)) and got != value):
            out.append(
                Failure(f"body.data.{key}", value if not isinstance(value, (dict, list)) else "present", got, ex.label)
            )
    return out


def envelope_problem(shape: str, status: int, body: Any) -> tuple[str, str] | None:
    """(expected, actual) when the answer is not the documented envelope, else None."""
    success = 200 <= status < 300
    if shape == "success" or (shape == "documented" and success):
        if not envelopes.is_success_envelope(body):
            return ('{"status":"success","message":…,"data":{…}}', shown(body))
        return None
    if not envelopes.is_failed_envelope(body):
        return ('{"status":"failed","error":{"code","message","type"}}', shown(body))
    error = body["error"]
    if shape == "documented" and error.get("code") != status:
        return (f"error.code {status}", f"error.code {error.get('code')}")
    documented_type = envelopes.ERRORS.get(status, (None, None))[1]
    if shape == "documented" and documented_type and error.get("type") != documented_type:
        return (f"error.type {documented_type}", f"error.type {error.get('type')}")
    return None
