"""Accredit's webhook subscription API (`/api/webhookSubscription`), called with `Authorization: Bearer <key>`.

Field names are camelCase (`event`, `callbackUrl`); PascalCase (`Event`, `CallbackUrl`) is accepted too, since
the real API's casing is not documented. Errors carry Accredit's documented `ACR_…` codes.
"""

from __future__ import annotations

from datetime import UTC

from flask import Blueprint

from .. import catalogue
from ..platforms.accredit import NAME, PLATFORM
from ..subscriptions import Subscription
from .access import services
from .errors import ACR_DUPLICATE, ACR_NO_SUBSCRIPTION, ACR_UNKNOWN_EVENT, ApiError, json_response
from .inputs import json_body, reject_unknown, require_string, require_url

bp = Blueprint("accredit", __name__, url_prefix="/api/webhookSubscription")

FIELDS = ("event", "Event", "callbackUrl", "CallbackUrl", "tenantId", "TenantId")


def _event(data: dict) -> str:
    name = require_string(data, "event", "Event")
    try:
        return catalogue.get_event(name, NAME).name
    except catalogue.CatalogueError as exc:
        raise ApiError(400, f"No Notification Event Found: {exc}", "event", ACR_UNKNOWN_EVENT) from exc


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
    from datetime import datetime

    return catalogue.iso_millis(datetime.fromtimestamp(ts, UTC))


def _get(sub_id: str) -> Subscription:
    sub = services().subscriptions.get(sub_id)
    if sub is None or sub.platform != NAME:
        raise ApiError(400, f"No Subscription Found: {sub_id}", "id", ACR_NO_SUBSCRIPTION)
    return sub


@bp.get("/events")
def list_events():
    return json_response([{"event": spec.name, "description": spec.description} for spec in catalogue.events(NAME)])


@bp.post("")
def create():
    data = json_body()
    reject_unknown(data, FIELDS)
    event = _event(data)
    url = require_url(data, "callbackUrl", "CallbackUrl")
    tenant = require_string(data, "tenantId", "TenantId", max_len=128, required=False)
    svc = services()
    for existing in svc.subscriptions.list(platform=NAME, event=event, url=url):
        if existing.meta.get("tenantId") == tenant:
            raise ApiError(
                400,
                f"A subscription with the same values already exists (id {existing.id})",
                "callbackUrl",
                ACR_DUPLICATE,
            )
    sub = Subscription(NAME, event, url, PLATFORM.default_auth(), meta={"tenantId": tenant} if tenant else {})
    svc.save_subscription(sub, new=True)
    return json_response(subscription_json(sub))


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
    reject_unknown(data, FIELDS)
    event = _event(data)
    url = require_url(data, "callbackUrl", "CallbackUrl")
    job = services().enqueue(event, url, PLATFORM.default_auth(), source="sample")
    return json_response({"jobId": job.id, "event": event, "callbackUrl": url})
