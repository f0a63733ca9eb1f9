"""Accredit's webhook subscription API (`/api/webhookSubscription`), called with `Authorization: Bearer <key>`.

Every rule these routes apply is in simulator/rules/loop.yaml (ids `accredit.api.webhook-subscription.*`). Errors
carry Accredit's documented `ACR_…` codes and name their rule; an inferred rule never refuses: what it would have
refused is accepted and said in the answer's `advice` list, which the platform-API call log keeps too.

Field names are camelCase (`event`, `callbackUrl`, `tenantId`); PascalCase (`Event`, `CallbackUrl`, `TenantId`) is
accepted too, since the real API's casing is not documented.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from flask import Blueprint

from .. import catalogue
from ..platforms.accredit import NAME, PLATFORM
from ..subscriptions import Subscription
from .access import services
from .advice import answer, note
from .errors import ACR_DUPLICATE, ACR_NO_SUBSCRIPTION, ACR_UNKNOWN_EVENT, ApiError, json_response
from .inputs import first_of, json_body, require_string, require_url

bp = Blueprint("accredit", __name__, url_prefix="/api/webhookSubscription")

FIELDS = ("event", "Event", "callbackUrl", "CallbackUrl", "tenantId", "TenantId")
SAMPLE_FIELDS = ("event", "Event", "callbackUrl", "CallbackUrl")
TENANT_MAX = 128
RULE = "accredit.api.webhook-subscription"


def _note(text: str, rule: str) -> str:
    return note(text, f"{RULE}.{rule}")


def _unknown(data: dict, allowed: tuple[str, ...], advice: list[str]) -> None:
    """Fields not in `allowed` are ignored, each with a note: the documents show no request body at all."""
    for name in sorted(set(data) - set(allowed)):
        advice.append(_note(f"unknown field {name!r} ignored", "unknown-fields"))


def _cited(rule: str, read, *args, **kwargs):
    """`read(*args, **kwargs)`, its refusal naming the documented rule it applies."""
    try:
        return read(*args, **kwargs)
    except ApiError as exc:
        exc.message += f" (rule {RULE}.{rule})"
        raise


def _event(data: dict) -> str:
    name = _cited("create", require_string, data, "event", "Event")
    try:
        return catalogue.get_event(name, NAME).name
    except catalogue.CatalogueError as exc:
        raise ApiError(
            400, f"No Notification Event Found: {exc} (rule {RULE}.unknown-event)", "event", ACR_UNKNOWN_EVENT
        ) from exc


def _tenant(data: dict, advice: list[str]) -> str | None:
    """The optional tenant id: a string (a number is kept as its JSON text; anything else ignored), with advice
    when it is longer than the 128 characters we chose."""
    name, value = first_of(data, "tenantId", "TenantId")
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        advice.append(_note(f"{name} {value} is a number: kept as the string {json.dumps(value)!r}", "tenant-id"))
        value = json.dumps(value)
    if not isinstance(value, str) or not value.strip():
        advice.append(
            _note(f"{name} is not a non-empty string: ignored (a subscription for every tenant)", "tenant-id")
        )
        return None
    if len(value) > TENANT_MAX:
        advice.append(_note(f"{name} is longer than {TENANT_MAX} characters", "tenant-id"))
    return value


def subscription_json(sub: Subscription) -> dict:
    return {
        "id": sub.id,
        "event": sub.event,
        "callbackUrl": sub.url,
        "tenantId": sub.meta.get("tenantId"),
        "signatureKey": services().keys.public_pem,
        "createdAt": _iso(sub.created_at),
    }


def _iso(ts: float) -> str:
    return catalogue.iso_millis(datetime.fromtimestamp(ts, UTC))


def _get(sub_id: str) -> Subscription:
    sub = services().subscriptions.get(sub_id)
    if sub is None or sub.platform != NAME:
        raise ApiError(400, f"No Subscription Found: {sub_id} (rule {RULE}.no-subscription)", "id", ACR_NO_SUBSCRIPTION)
    return sub


@bp.get("/events")
def list_events():
    return json_response([{"event": spec.name, "description": spec.description} for spec in catalogue.events(NAME)])


@bp.post("")
def create():
    data = json_body()
    advice: list[str] = []
    _unknown(data, FIELDS, advice)
    event = _event(data)
    url = _cited("callback-url", require_url, data, "callbackUrl", "CallbackUrl")
    tenant = _tenant(data, advice)
    svc = services()
    for existing in svc.subscriptions.list(platform=NAME, event=event, url=url):
        if existing.meta.get("tenantId") == tenant:
            raise ApiError(
                400,
                f"A subscription with the same values already exists (id {existing.id}; rule {RULE}.duplicate)",
                "callbackUrl",
                ACR_DUPLICATE,
            )
    sub = Subscription(NAME, event, url, PLATFORM.default_auth(), meta={"tenantId": tenant} if tenant else {})
    svc.save_subscription(sub, new=True)
    return answer(subscription_json(sub), advice)


@bp.get("")
def list_subscriptions():
    return json_response([subscription_json(s) for s in services().subscriptions.list(platform=NAME)])


@bp.get("/<sub_id>")
def get_subscription(sub_id: str):
    return json_response(subscription_json(_get(sub_id)))


@bp.delete("/<sub_id>")
def delete_subscription(sub_id: str):
    sub = _get(sub_id)
    services().remove_subscription(sub)
    return json_response(subscription_json(sub))


@bp.post("/triggerSampleEventNotification")
def trigger_sample():
    data = json_body()
    advice: list[str] = []
    _unknown(data, SAMPLE_FIELDS, advice)
    event = _event(data)
    url = _cited("callback-url", require_url, data, "callbackUrl", "CallbackUrl")
    job = services().enqueue(event, url, PLATFORM.default_auth(), source="sample")
    return answer({"jobId": job.id, "event": event, "callbackUrl": url}, advice)
