"""AccessRC's provider→AccessRC calls, the other half of the loop: `POST /api/DeliveryChannel/Create`,
`POST /api/DeliveryRequest/Sync`, `POST /api/Delivery/Sync`, with `x-api-key` and AccessRC's envelope.

Bodies are checked against simulator/platforms/provider_calls.py (each limit names its rule in rules/loop.yaml);
the ids must be ones this simulator sent (inferred rules accessrc.api.delivery-request-sync.sent and
accessrc.api.delivery-sync.sent). A Create is reviewed and answered by DELIVERY_CHANNEL_STATUS_UPDATED
(Services.propose_channel).
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

from flask import Blueprint, g

from ..platforms import provider_calls as calls
from ..platforms.accessrc import NAME
from ..store import ProviderObject
from .access import services
from .accessrc import ok
from .errors import bad_request
from .inputs import json_body

bp = Blueprint("provider_calls", __name__, url_prefix="/api")

REQUEST_EVENT = "DELIVERY_REQUEST_SENT"
REFUND_EVENT = "DELIVERY_REFUND_REQUESTED"
MAPPED = "provider_delivery"  # provider object: a providerDeliveryId mapped to a deliveryId by DeliveryRequest/Sync
SYNCED_REQUEST = "delivery_request"
SYNCED_DELIVERY = "delivery"


def _date(ts: float | None = None) -> str:
    return datetime.fromtimestamp(time.time() if ts is None else ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _checked(fields: tuple[calls.Field, ...]) -> dict:
    data = json_body()
    problem = calls.check(data, fields)
    if problem is not None:
        raise bad_request(f"{problem.message} (rule {problem.rule})", problem.field)
    return data


def _body(job) -> dict:
    try:
        body = json.loads(job.body)
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


@bp.post("/DeliveryChannel/Create")
def delivery_channel_create():
    data = _checked(calls.DELIVERY_CHANNEL_CREATE)
    channel_id = data["providerDeliveryChannelId"]
    channel = services().propose_channel(channel_id, data)
    if channel is None:
        raise bad_request(
            f"delivery channel {channel_id} is already proposed (pending review or approved); "
            "a rejected one may be proposed again (rule accessrc.api.delivery-channel-create.duplicate)",
            "providerDeliveryChannelId",
        )
    return ok(
        {
            "message": "Delivery Channel request is submitted for review",
            "providerDeliveryChannelId": channel_id,
            "date": _date(channel.created_at),
        }
    )


@bp.post("/DeliveryRequest/Sync")
def delivery_request_sync():
    data = _checked(calls.DELIVERY_REQUEST_SYNC)
    store = services().store
    request_id = data["deliveryRequestId"]
    job = store.find_sent_job(REQUEST_EVENT, "deliveryRequestId", request_id)
    if job is None:
        raise bad_request(
            f"deliveryRequestId {request_id} was never sent: no DELIVERY_REQUEST_SENT delivered by this simulator "
            "carries it (rule accessrc.api.delivery-request-sync.sent, inferred)",
            "deliveryRequestId",
        )
    g.call_job = job.id
    sent = {d.get("deliveryId") for d in _body(job).get("delivery") or [] if isinstance(d, dict)}
    items = data.get("providerDelivery") or []
    for i, item in enumerate(items):
        delivery_id = item.get("deliveryId")
        if delivery_id is not None and delivery_id not in sent:
            raise bad_request(
                f"providerDelivery[{i}].deliveryId {delivery_id} is not a delivery of request {request_id} "
                "(rule accessrc.api.delivery-request-sync.delivery-of-request, inferred)",
                f"providerDelivery[{i}].deliveryId",
            )
    for item in items:
        if item.get("providerDeliveryId") and item.get("deliveryId"):
            store.save_provider_object(
                ProviderObject(
                    NAME,
                    MAPPED,
                    item["providerDeliveryId"],
                    "mapped",
                    {"deliveryId": item["deliveryId"], "deliveryRequestId": request_id},
                    job_id=job.id,
                )
            )
    store.save_provider_object(
        ProviderObject(NAME, SYNCED_REQUEST, request_id, data.get("status") or "SYNCED", {"sync": data}, job_id=job.id)
    )
    return ok(
        {
            "message": "Delivery Request is synced successfully",
            "providerDeliveryRequestId": data.get("providerDeliveryRequestId"),
            "date": _date(),
        }
    )


@bp.post("/Delivery/Sync")
def delivery_sync():
    data = _checked(calls.DELIVERY_SYNC)
    store = services().store
    found = []
    for i, item in enumerate(data["deliveryList"]):
        delivery_id = item.get("deliveryId")
        if delivery_id is None:
            provider_id = item.get("providerDeliveryId")
            mapped = store.get_provider_object(NAME, MAPPED, provider_id) if provider_id else None
            if mapped is None:
                raise bad_request(
                    f"deliveryList[{i}]: deliveryId is null and providerDeliveryId {provider_id!r} was not mapped to "
                    "a delivery by a DeliveryRequest/Sync (rule accessrc.api.delivery-sync.mapped, inferred)",
                    f"deliveryList[{i}].providerDeliveryId",
                )
            delivery_id = mapped.data["deliveryId"]
        job = store.find_sent_job(REQUEST_EVENT, "deliveryId", delivery_id, within="delivery") or store.find_sent_job(
            REFUND_EVENT, "deliveryId", delivery_id
        )
        if job is None:
            raise bad_request(
                f"deliveryList[{i}].deliveryId {delivery_id} was never sent: no DELIVERY_REQUEST_SENT or "
                "DELIVERY_REFUND_REQUESTED delivered by this simulator carries it "
                "(rule accessrc.api.delivery-sync.sent, inferred)",
                f"deliveryList[{i}].deliveryId",
            )
        found.append((delivery_id, item, job))
    if found:
        g.call_job = found[0][2].id
    for delivery_id, item, job in found:
        store.save_provider_object(
            ProviderObject(NAME, SYNCED_DELIVERY, delivery_id, item.get("status") or "SYNCED", {"sync": item}, job.id)
        )
    return ok(
        {
            "message": "Delivery is synced successfully",
            "deliveryIds": [delivery_id for delivery_id, _, _ in found],
            "date": _date(),
        }
    )
