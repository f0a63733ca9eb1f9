"""AccessRC's event subscription API (`/api/Event/Subscribe`, `/api/Event/Unsubscribe`, GetLookUpValues),
called with the `x-api-key` header and answering the documented `{"error", "data", "status"}` envelope.

One subscription per event type, as Unsubscribe (keyed by eventType alone) implies: subscribing again to the
same type replaces its URL and auth and keeps its subscriptionId. Planned event types are refused unless the
server runs with --allow-planned.
"""

from __future__ import annotations

from datetime import UTC, datetime

from flask import Blueprint, request

from .. import catalogue
from ..platforms.accessrc import NAME
from ..subscriptions import Subscription
from .access import services
from .errors import bad_request, json_response
from .inputs import json_body, platform_auth, reject_unknown, require_string, require_url

bp = Blueprint("accessrc", __name__, url_prefix="/api")


def ok(data) -> object:
    return json_response({"error": None, "data": data, "status": "success"})


def _date(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def event_type(data: dict) -> str:
    name = require_string(data, "eventType")
    try:
        spec = catalogue.get_event(name, NAME)
    except catalogue.CatalogueError as exc:
        raise bad_request(f"eventType: {exc}", "eventType") from exc
    return spec.name


def check_available(name: str) -> None:
    spec = catalogue.get_event(name)
    if spec.availability != "live" and not services().settings.allow_planned:
        raise bad_request(
            f"eventType {name} is planned, not yet available for subscription "
            "(start the simulator with --allow-planned to allow it)",
            "eventType",
        )


def _data(sub: Subscription, message: str) -> dict:
    return {
        "message": message,
        "subscriptionId": sub.id,
        "callbackUrl": sub.url,
        "eventType": sub.event,
        "date": _date(sub.updated_at),
    }


@bp.post("/Event/Subscribe")
def subscribe():
    data = json_body()
    reject_unknown(data, ("eventType", "callbackUrl", "auth"))
    name = event_type(data)
    url = require_url(data, "callbackUrl", max_len=256)
    auth = platform_auth(NAME, data.get("auth"))
    check_available(name)
    svc = services()
    existing = svc.subscriptions.list(platform=NAME, event=name)
    for demo in [s for s in existing if s.meta.get("demo")]:  # a demo row gives way: nothing of it carries over
        svc.remove_subscription(demo)
        existing.remove(demo)
    dropped = False
    if existing:
        sub = existing[0]
        dropped = sub.move_to(url, auth if auth.kind != "none" else None)  # another URL: old credentials go
        sub.auth = auth
        svc.save_subscription(sub)
    else:
        sub = svc.save_subscription(Subscription(NAME, name, url, auth), new=True)
    return ok({**_data(sub, "Webhook successfully subscribed"), "credentialsDropped": dropped})


@bp.post("/Event/Unsubscribe")
def unsubscribe():
    data = json_body()
    reject_unknown(data, ("eventType",))
    name = event_type(data)
    svc = services()
    existing = svc.subscriptions.list(platform=NAME, event=name)
    if not existing:
        raise bad_request(f"no subscription for eventType {name}", "eventType")
    for sub in existing:
        svc.remove_subscription(sub)
    return ok(_data(existing[0], "Webhook successfully unsubscribed"))


@bp.route("/LookUp/GetLookUpValues", methods=["GET", "POST"])
def lookup_values():
    """The docs name GetLookUpValues with data "EventType" but not its path or shape: this is our reading."""
    if request.method == "POST":
        body = json_body()
        reject_unknown(body, ("data",))
        kind = body.get("data")
    else:
        kind = request.args.get("data")
    if kind != "EventType":
        raise bad_request('data must be "EventType" (the only look-up the simulator knows)', "data")
    values = [
        {"value": s.name, "name": s.name, "availability": s.availability, "description": s.description}
        for s in catalogue.events(NAME)
    ]
    return ok(values)
