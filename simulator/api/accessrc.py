"""AccessRC's event subscription API (`/api/Event/Subscribe`, `/api/Event/Unsubscribe`, GetLookUpValues),
called with the `x-api-key` header and answering the documented `{"error", "data", "status"}` envelope.

Every rule these routes apply is in simulator/rules/loop.yaml (ids `accessrc.api.subscribe.*`,
`accessrc.api.unsubscribe.*`, `accessrc.api.lookup.*`). A documented rule refuses (400, its id in the message);
an inferred one never does: what it would have refused is accepted and said in the answer's `advice` list (beside
`error`, `data` and `status`), which the platform-API call log (`GET /api/calls`, the dashboard) keeps too.

One subscription per event type, as Unsubscribe (keyed by eventType alone) implies: subscribing again to the
same type replaces its URL and auth and keeps its subscriptionId. Planned event types are refused unless the
server runs with --allow-planned.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

from flask import Blueprint, request

from .. import catalogue
from ..platforms.accessrc import AUTH_LIMITS, NAME
from ..subscriptions import Subscription
from .access import services
from .advice import answer, note
from .errors import ApiError, bad_request
from .inputs import json_body, platform_auth, require_url

bp = Blueprint("accessrc", __name__, url_prefix="/api")

NULL_EVENT = "NULL"  # the Subscribe enum's documented first value, which names no event
CALLBACK_URL_MAX = 256


def ok(data, advice: list[str] | None = None) -> object:
    return answer({"error": None, "data": data, "status": "success"}, advice or [])


def _date(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def unknown_fields(data: dict, allowed: tuple[str, ...], rule: str, advice: list[str], prefix: str = "") -> None:
    """Fields not in `allowed` are ignored, each with a note: the documents never say others are refused."""
    for name in sorted(set(data) - set(allowed)):
        advice.append(note(f"unknown field {prefix + name!r} ignored", rule))


def event_type(data: dict, route: str, advice: list[str]) -> str | None:
    """The catalogue name of `eventType`; None for "NULL" or no eventType (nothing to subscribe: said in advice)."""
    if data.get("eventType") is None or data.get("eventType") == NULL_EVENT:
        given = "eventType NULL" if data.get("eventType") == NULL_EVENT else "no eventType"
        advice.append(
            note(
                f"{given}: the enum's NULL names no event, so nothing was {route}", "accessrc.api.subscribe.null-event"
            )
        )
        return None
    if not isinstance(data["eventType"], str) or not data["eventType"].strip():
        raise bad_request("eventType must be a non-empty string (rule accessrc.api.subscribe.event-type)", "eventType")
    name = data["eventType"]
    try:
        spec = catalogue.get_event(name, NAME)
    except catalogue.CatalogueError as exc:
        raise bad_request(f"eventType: {exc} (rule accessrc.api.subscribe.event-type)", "eventType") from exc
    return spec.name


def check_available(name: str) -> None:
    spec = catalogue.get_event(name)
    if spec.availability != "live" and not services().settings.allow_planned:
        raise bad_request(
            f"eventType {name} is planned, not yet available for subscription "
            "(start the simulator with --allow-planned to allow it; rule accessrc.api.subscribe.planned)",
            "eventType",
        )


def callback_url(data: dict) -> str:
    url = data.get("callbackUrl")
    if isinstance(url, str) and len(url) > CALLBACK_URL_MAX:
        raise bad_request(
            f"callbackUrl is longer than {CALLBACK_URL_MAX} characters (rule accessrc.api.subscribe.callback-url)",
            "callbackUrl",
        )
    try:
        return require_url(data, "callbackUrl", max_len=CALLBACK_URL_MAX)
    except ApiError as exc:
        exc.message += " (rule accessrc.api.subscribe.callback-url)"
        raise


def subscribe_auth(value, advice: list[str]):
    """The `auth` object (null, header, basic, hmac) with its documented limits; unknown fields in it ignored."""
    if isinstance(value, dict):
        if value and "type" not in value:
            raise bad_request(
                "auth.type is required when auth is given (hmac, header, basic or null; "
                "rule accessrc.api.subscribe.auth-fields)",
                "auth.type",
            )
        unknown_fields(value, tuple(AUTH_LIMITS), "accessrc.api.subscribe.unknown-fields", advice, "auth.")
        value = {k: v for k, v in value.items() if k in AUTH_LIMITS}
    try:
        return platform_auth(NAME, value)
    except ApiError as exc:
        exc.message += " (rule accessrc.api.subscribe.auth-fields)"
        raise


def _data(sub: Subscription, message: str) -> dict:
    return {
        "message": message,
        "subscriptionId": sub.id,
        "callbackUrl": sub.url,
        "eventType": sub.event,
        "date": _date(sub.updated_at),
    }


def _nothing(message: str, url: str | None) -> dict:
    """The answer's data when no subscription was made or removed: the documented keys, no subscriptionId."""
    return {
        "message": message,
        "subscriptionId": None,
        "callbackUrl": url,
        "eventType": NULL_EVENT,
        "date": _date(time.time()),
    }


@bp.post("/Event/Subscribe")
def subscribe():
    data = json_body()
    advice: list[str] = []
    unknown_fields(data, ("eventType", "callbackUrl", "auth"), "accessrc.api.subscribe.unknown-fields", advice)
    name = event_type(data, "subscribed", advice)
    url = callback_url(data)
    auth = subscribe_auth(data.get("auth"), advice)
    if name is None:
        return ok(_nothing("Nothing subscribed: eventType NULL names no event", url), advice)
    check_available(name)
    svc = services()
    existing = svc.subscriptions.list(platform=NAME, event=name)
    for demo in [s for s in existing if s.meta.get("demo")]:  # a demo row gives way: nothing of it carries over
        svc.remove_subscription(demo)
        existing.remove(demo)
    dropped = False
    if existing:  # rule accessrc.api.subscribe.replaces
        sub = existing[0]
        dropped = sub.move_to(url, auth if auth.kind != "none" else None)  # rule accessrc.api.subscribe.credentials
        sub.auth = auth
        svc.save_subscription(sub)
    else:
        sub = svc.save_subscription(Subscription(NAME, name, url, auth), new=True)
    return ok({**_data(sub, "Webhook successfully subscribed"), "credentialsDropped": dropped}, advice)


@bp.post("/Event/Unsubscribe")
def unsubscribe():
    data = json_body()
    advice: list[str] = []
    unknown_fields(data, ("eventType",), "accessrc.api.subscribe.unknown-fields", advice)
    name = event_type(data, "unsubscribed", advice)
    if name is None:
        return ok(_nothing("Nothing unsubscribed: eventType NULL names no event", None), advice)
    svc = services()
    existing = svc.subscriptions.list(platform=NAME, event=name)
    if not existing:
        advice.append(note(f"no subscription for eventType {name}: nothing to remove", "accessrc.api.unsubscribe.none"))
        data_ = {**_nothing(f"Nothing unsubscribed: no subscription for eventType {name}", None), "eventType": name}
        return ok(data_, advice)
    for sub in existing:
        svc.remove_subscription(sub)
    return ok(_data(existing[0], "Webhook successfully unsubscribed"), advice)


@bp.route("/LookUp/GetLookUpValues", methods=["GET", "POST"])
def lookup_values():
    """The docs name GetLookUpValues with data "EventType" but not its path or shape: this is our reading
    (rule accessrc.api.lookup.path); another look-up answers an empty list, with advice."""
    advice: list[str] = []
    if request.method == "POST":
        body = json_body()
        unknown_fields(body, ("data",), "accessrc.api.subscribe.unknown-fields", advice)
        kind = body.get("data")
    else:
        kind = request.args.get("data")
    if kind != "EventType":
        advice.append(
            note(
                f"data {kind!r}: the simulator knows only the EventType look-up, so the list is empty",
                "accessrc.api.lookup.path",
            )
        )
        return ok([], advice)
    values = [
        {"value": s.name, "name": s.name, "availability": s.availability, "description": s.description}
        for s in catalogue.events(NAME)
    ]
    return ok(values, advice)
