"""AccessRC's provider→AccessRC calls, the other half of the loop: `POST /api/DeliveryChannel/Create`,
`POST /api/DeliveryRequest/Sync`, `POST /api/Delivery/Sync`, with `x-api-key` and AccessRC's envelope.

Bodies are checked against simulator/platforms/provider_calls.py (each limit names its rule in rules/loop.yaml);
the ids should be ones this simulator sent (inferred rules accessrc.api.delivery-request-sync.sent and
accessrc.api.delivery-sync.sent). A documented rule refuses (400 naming it); an inferred one is a note in the
answer's `advice` list (state kept consistent: what it would have refused links or syncs nothing) and refuses only
under `serve --strict` (simulator/api/advice.py). A Create is reviewed and answered by DELIVERY_CHANNEL_STATUS_UPDATED
(Services.propose_channel).
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

from flask import Blueprint, g

from .. import rules
from ..platforms import provider_calls as calls
from ..platforms.accessrc import NAME
from ..platforms.provider_calls import CHANNEL
from ..store import ProviderObject
from .access import services
from .accessrc import ok
from .advice import advisory, breach, note
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


def _checked(fields: tuple[calls.Field, ...], advice: list[str]) -> dict:
    """The body: a documented limit refuses (400 naming its rule); an inferred one is a note in `advice` (the value
    taken as given) unless the server runs with --strict."""
    data = json_body()
    notes: list[calls.Problem] = []
    problem = calls.check(data, fields, advisory=advisory, notes=notes)
    if problem is not None:
        inferred = "" if rules.get(problem.rule).documented else ", inferred; refused: --strict"
        raise bad_request(f"{problem.message} (rule {problem.rule}{inferred})", problem.field)
    advice.extend(note(f"{p.message}: taken as given", p.rule) for p in notes)
    return data


def _body(job) -> dict:
    try:
        body = json.loads(job.body)
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


@bp.post("/DeliveryChannel/Create")
def delivery_channel_create():
    advice: list[str] = []
    data = _checked(calls.DELIVERY_CHANNEL_CREATE, advice)
    channel_id = data["providerDeliveryChannelId"]
    channel = services().propose_channel(channel_id, data)
    if channel is None:  # the one already proposed is kept as it is: no second review
        breach(
            advice,
            f"delivery channel {channel_id} is already proposed (pending review or approved): this Create changes "
            "nothing; a rejected one may be proposed again",
            "accessrc.api.delivery-channel-create.duplicate",
            "providerDeliveryChannelId",
        )
        channel = services().store.get_provider_object(NAME, CHANNEL, channel_id)
    return ok(
        {
            "message": "Delivery Channel request is submitted for review",
            "providerDeliveryChannelId": channel_id,
            "date": _date(channel.created_at if channel else None),
        },
        advice,
    )


@bp.post("/DeliveryRequest/Sync")
def delivery_request_sync():
    advice: list[str] = []
    data = _checked(calls.DELIVERY_REQUEST_SYNC, advice)
    store = services().store
    request_id = data["deliveryRequestId"]
    answer = {
        "message": "Delivery Request is synced successfully",
        "providerDeliveryRequestId": data.get("providerDeliveryRequestId"),
        "date": _date(),
    }
    job = store.find_sent_job(REQUEST_EVENT, "deliveryRequestId", request_id)
    if job is None:  # recorded (the call log), linked to nothing: no job, no mapping, no synced request
        breach(
            advice,
            f"deliveryRequestId {request_id} was never sent: no DELIVERY_REQUEST_SENT delivered by this simulator "
            "carries it; nothing is synced",
            "accessrc.api.delivery-request-sync.sent",
            "deliveryRequestId",
        )
        return ok(answer, advice)
    g.call_job = job.id
    sent = {d.get("deliveryId") for d in _body(job).get("delivery") or [] if isinstance(d, dict)}
    items = data.get("providerDelivery") if isinstance(data.get("providerDelivery"), list) else []
    for i, item in enumerate(items):
        delivery_id = item.get("deliveryId")
        if delivery_id is not None and delivery_id not in sent:
            breach(
                advice,
                f"providerDelivery[{i}].deliveryId {delivery_id} is not a delivery of request {request_id}: not mapped",
                "accessrc.api.delivery-request-sync.delivery-of-request",
                f"providerDelivery[{i}].deliveryId",
            )
    for item in items:
        if item.get("providerDeliveryId") and item.get("deliveryId") in sent:
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
    return ok(answer, advice)


@bp.post("/Delivery/Sync")
def delivery_sync():
    advice: list[str] = []
    data = _checked(calls.DELIVERY_SYNC, advice)
    store = services().store
    found = []
    given = data.get("deliveryList")
    for i, item in enumerate(given if isinstance(given, list) else []):  # none (advice given): nothing synced
        if not isinstance(item, dict):
            continue  # an item that is not an object: advice given by _checked
        delivery_id = item.get("deliveryId")
        if delivery_id is None:
            provider_id = item.get("providerDeliveryId")
            mapped = store.get_provider_object(NAME, MAPPED, provider_id) if isinstance(provider_id, str) else None
            if mapped is None:
                breach(
                    advice,
                    f"deliveryList[{i}]: deliveryId is null and providerDeliveryId {provider_id!r} was not mapped to "
                    "a delivery by a DeliveryRequest/Sync; not synced",
                    "accessrc.api.delivery-sync.mapped",
                    f"deliveryList[{i}].providerDeliveryId",
                )
                continue
            delivery_id = mapped.data["deliveryId"]
        job = store.find_sent_job(REQUEST_EVENT, "deliveryId", delivery_id, within="delivery") or store.find_sent_job(
            REFUND_EVENT, "deliveryId", delivery_id
        )
        if job is None:
            breach(
                advice,
                f"deliveryList[{i}].deliveryId {delivery_id} was never sent: no DELIVERY_REQUEST_SENT or "
                "DELIVERY_REFUND_REQUESTED delivered by this simulator carries it; not synced",
                "accessrc.api.delivery-sync.sent",
                f"deliveryList[{i}].deliveryId",
            )
            continue
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
        },
        advice,
    )
