"""The loop seen from the simulator's side (own routes, admin key): `GET /api/calls` lists every call made to the
platforms' APIs (recorded by `init_app`'s hooks), `GET /api/reviews` the delivery channels proposed, and
`POST /api/reviews/<providerDeliveryChannelId>` is the trainer's decision under `serve --review manual`."""

from __future__ import annotations

import json
import logging
import time
from datetime import datetime

from flask import Blueprint, Flask, Response, g, request

from .. import limits
from ..auth import MASK, mask_headers
from ..platforms.accessrc import NAME as ACCESSRC
from ..platforms.accredit import NAME as ACCREDIT
from ..platforms.provider_calls import CHANNEL
from ..services import ReviewError
from ..store import Call, ProviderObject
from .access import services
from .errors import ApiError, bad_request, success
from .inputs import json_body, query_int, reject_unknown, require_string

log = logging.getLogger("accessrc_sim.api")

bp = Blueprint("loop", __name__)

# The blueprints whose calls are recorded: the platforms' stand-ins, by the platform they play.
RECORDED = {"provider_calls": ACCESSRC, "accessrc": ACCESSRC, "print_queue": ACCREDIT, "accredit": ACCREDIT}
DECISIONS = {"approve": True, "reject": False}
# Subscription APIs take credentials in their bodies (AccessRC's Subscribe `auth`): those values are never stored.
CREDENTIAL_FIELDS = {"headerValue", "password", "secret", "authorization", "header_value"}


def _masked(value, in_auth: bool = False):
    """Credential fields masked; inside an `auth` object every value but its type and header name (an unknown
    field there may hold a credential too)."""
    if isinstance(value, dict):
        return {
            k: _masked(v, in_auth or k == "auth")
            if isinstance(v, (dict, list))
            else MASK
            if v not in (None, "") and (k in CREDENTIAL_FIELDS or (in_auth and k not in ("type", "headerName")))
            else v
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_masked(v, in_auth) for v in value]
    return MASK if in_auth and value not in (None, "") else value


def kept_body(body: bytes) -> bytes:
    """The body as recorded: JSON with every credential field masked; anything else that holds a credential
    field's name is not kept (only its length is)."""
    try:
        parsed = limits.loads(body) if body else None
    except ValueError:
        return b"" if any(name.encode() in body for name in CREDENTIAL_FIELDS) else body
    if parsed is None:
        return body
    masked = _masked(parsed)
    return body if masked == parsed else json.dumps(masked, ensure_ascii=False).encode("utf-8")


def _text(data: bytes) -> str:
    return data.decode("utf-8", "replace")


def call_json(call: Call) -> dict:
    return {
        "id": call.id,
        "started_at": call.started_at,
        "duration_ms": call.duration_ms,
        "platform": call.platform,
        "method": call.method,
        "path": call.path,
        "query": call.query,
        "headers": call.headers,
        "body": _text(call.body),
        "body_length": call.body_length,
        "body_truncated": call.body_length > len(call.body),
        "status": call.status,
        "response_body": _text(call.response_body),
        "response_length": call.response_length,
        "job_id": call.job_id,
    }


def channel_json(channel: ProviderObject) -> dict:
    data = channel.data
    return {
        "providerDeliveryChannelId": channel.id,
        "status": channel.status,
        "review": data.get("review"),
        "due_at": channel.due_at,
        "reason": data.get("reason"),
        "decided_by": data.get("decidedBy"),
        "decided_at": data.get("decidedAt"),
        "jobs": data.get("jobs", []),
        "request": data.get("request"),
        "created_at": channel.created_at,
        "updated_at": channel.updated_at,
    }


def _since() -> float | None:
    raw = request.args.get("since")
    if raw is None or raw == "":
        return None
    try:
        return float(raw)
    except ValueError:
        pass
    try:
        return datetime.fromisoformat(raw.replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise bad_request("since must be a Unix time in seconds or an ISO 8601 date-time", "since") from None


@bp.get("/api/calls")
def list_calls() -> Response:
    limit = query_int("limit", 100, 1, 1000)
    calls = services().store.query_calls(
        path=request.args.get("path") or None, job_id=request.args.get("job") or None, since=_since(), limit=limit
    )
    return success([call_json(c) for c in calls])


@bp.get("/api/reviews")
def list_reviews() -> Response:
    status = request.args.get("status") or None
    channels = services().store.list_provider_objects(ACCESSRC, CHANNEL, status)
    return success([channel_json(c) for c in channels])


@bp.post("/api/reviews/<channel_id>")
def decide(channel_id: str) -> Response:
    data = json_body()
    reject_unknown(data, ("decision", "reason"))
    decision = require_string(data, "decision")
    if decision not in DECISIONS:
        raise bad_request('decision must be "approve" or "reject"', "decision")
    reason = require_string(data, "reason", max_len=1024, required=decision == "reject") or ""
    try:
        channel, _ = services().decide_channel(channel_id, DECISIONS[decision], reason, by="trainer")
    except ReviewError as exc:
        raise ApiError(exc.status, str(exc), "providerDeliveryChannelId") from exc
    return success(channel_json(channel))


def init_app(app: Flask) -> None:
    """Record every call to the platforms' stand-ins (RECORDED): method, path, headers (credentials masked), body
    (capped by the store), the answer, its timing, and the job it follows (a view sets `g.call_job`)."""

    @app.before_request
    def _start_clock() -> None:
        g.call_started = time.time()
        g.call_clock = time.perf_counter()

    @app.after_request
    def _record(response: Response) -> Response:
        platform = RECORDED.get(request.blueprint or "")
        if platform is None:
            return response
        try:
            body = request.get_data(cache=True)
        except Exception:  # e.g. over MAX_CONTENT_LENGTH: the answer says so; the body is not kept
            body = b""
        answer = b"" if response.is_streamed else response.get_data()
        kept = answer if response.mimetype.startswith(("application/json", "text/")) else b""  # not a ZIP's bytes
        started = getattr(g, "call_started", time.time())
        recorded = kept_body(body)
        try:
            services().store.add_call(
                Call(
                    method=request.method,
                    path=request.path,
                    query=request.query_string.decode("latin-1"),
                    status=response.status_code,
                    started_at=started,
                    duration_ms=(time.perf_counter() - getattr(g, "call_clock", time.perf_counter())) * 1000,
                    platform=platform,
                    headers=mask_headers(dict(request.headers)),
                    body=recorded,
                    body_length=len(body) if recorded is body else len(recorded),  # masked: its own length
                    response_body=kept_body(kept),
                    response_length=len(answer),
                    job_id=getattr(g, "call_job", None),
                )
            )
        except Exception:
            log.exception("recording the call %s %s failed", request.method, request.path)
        return response
