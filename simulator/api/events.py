"""The events catalogue: every event type (filter by platform), one with its JSON Schema, a generated sample.

    GET /api/events[?platform=]           data: [...]
    GET /api/events/<name>                data: the event and its schema
    GET /api/events/<name>/sample[?seed=] data: {"event", "payload"}: a fresh payload, reproducible with a seed

Admin key as `x-api-key` or `Authorization: Bearer`, or a dashboard session.
"""

from __future__ import annotations

from flask import Blueprint, Response, request

from .. import catalogue
from .errors import bad_request, success
from .inputs import event_spec

bp = Blueprint("events", __name__)


@bp.get("/api/events")
def list_events() -> Response:
    platform = request.args.get("platform")
    if platform and platform not in catalogue.PLATFORMS:
        raise bad_request(f"platform must be one of {', '.join(catalogue.PLATFORMS)}", "platform")
    return success([s.to_dict() for s in catalogue.events(platform)])


@bp.get("/api/events/<name>")
def get_event(name: str) -> Response:
    spec = event_spec(name, status=404)
    return success({**spec.to_dict(), "schema": spec.schema})


@bp.get("/api/events/<name>/sample")
def sample_event(name: str) -> Response:
    spec = event_spec(name, status=404)
    seed = request.args.get("seed")
    try:
        seed_value = int(seed) if seed not in (None, "") else None
    except ValueError:
        raise bad_request("seed must be an integer", "seed") from None
    payload = catalogue.generate(spec.name, seed=seed_value)
    return success({"event": spec.name, "payload": payload})
