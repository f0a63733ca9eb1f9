"""AccessRC's provider→AccessRC calls (DeliveryChannel/Create, DeliveryRequest/Sync, Delivery/Sync): their bodies
as data, each limit naming its rule (simulator/rules/loop.yaml), and the one checker that walks them.

Only what the documents give (or a rule infers, with its reason) is checked; fields they do not name are taken as
given, since the documented field lists are partial.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

REVIEW_MODES = ("approve", "reject", "manual")  # serve --review: how a DeliveryChannel/Create is decided
REVIEW_DELAY = 3.0  # serve --review-delay: seconds before an automatic decision (rule accessrc.api.review.delay)
CHANNEL = "delivery_channel"  # a provider object's kind: a channel proposed by DeliveryChannel/Create
CHANNEL_EVENT = "DELIVERY_CHANNEL_STATUS_UPDATED"  # the review's answer (rule accessrc.api.review.manual)
PENDING_REVIEW = "pending"
AUTO_REJECT_REASON = "Description is not clear enough"  # seed 002's own rejection message (--review reject)

UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


@dataclass(frozen=True)
class Field:
    """One field of a body: its JSON type (None: not checked), limits, and the rule that says so."""

    name: str
    rule: str
    type: str | None = None  # string | number | boolean | list | object
    required: bool = False
    max_len: int | None = None
    enum: tuple[str, ...] | None = None
    pattern: re.Pattern | None = None
    pattern_rule: str | None = None
    items: tuple[Field, ...] | None = None  # a list of objects with these fields


@dataclass(frozen=True)
class Problem:
    field: str  # e.g. providerDelivery[0].syncStatus
    message: str
    rule: str


SYNC_STATUSES = ("SUCCESS", "FAILED")
REQUEST_STATUSES = (
    "DRAFT",
    "SENT_TO_SERVICE_PROVIDER",
    "PENDING_APPROVAL",
    "APPROVED",
    "REJECTED",
    "DELIVERED",
    "FAILED",
    "DISPATCH_IN_PROGRESS",
    "FAILED_RESPONSE_UNKNOWN",
)
DELIVERY_STATUSES = (
    "DELIVERY_READY_TO_COLLECT",
    "DELIVERY_COLLECTED",
    "DELIVERY_PENDING",
    "DELIVERY_REVERTED",
    "DELIVERED",
)

_RS = "accessrc.api.delivery-request-sync."
DELIVERY_REQUEST_SYNC = (
    Field("deliveryRequestId", _RS + "ids", "string", required=True, max_len=64),
    Field("providerDeliveryRequestId", _RS + "ids", "string", max_len=64),
    Field(
        "providerDelivery",
        _RS + "provider-delivery",
        "list",
        items=(
            Field("providerDeliveryId", _RS + "provider-delivery", "string"),
            Field("deliveryId", _RS + "provider-delivery", "string"),
            Field("syncStatus", _RS + "provider-delivery", "string", enum=SYNC_STATUSES),
        ),
    ),
    Field("message", _RS + "lengths", "string", max_len=1024),
    Field("providerStatus", _RS + "lengths", "string", max_len=64),
    Field("status", _RS + "status", "string", enum=REQUEST_STATUSES),
)

_DS = "accessrc.api.delivery-sync."
DELIVERY_SYNC = (
    Field(
        "deliveryList",
        _DS + "list-required",
        "list",
        required=True,
        items=(
            Field("providerDeliveryId", _DS + "fields", "string"),
            Field("deliveryId", _DS + "fields", "string"),
            Field("deliveryAmount", _DS + "fields", "number"),
            Field("status", _DS + "fields", "string", enum=DELIVERY_STATUSES),
        ),
    ),
)

_DC = "accessrc.api.delivery-channel-create."
DELIVERY_CHANNEL_CREATE = (
    Field(
        "providerDeliveryChannelId",
        _DC + "fields",
        "string",
        required=True,
        pattern=UUID,
        pattern_rule=_DC + "uuid",
    ),
    Field("deliveryOptions", _DC + "fields", "list", items=()),
)

_TYPES = {
    "string": (str,),
    "number": (int, float),
    "boolean": (bool,),
    "list": (list,),
    "object": (dict,),
}


def check(
    body: Any,
    fields: tuple[Field, ...],
    prefix: str = "",
    advisory: Callable[[str], bool] | None = None,
    notes: list[Problem] | None = None,
) -> Problem | None:
    """The first problem of `body` against `fields` (in their order), or None. Null counts as absent.
    A problem whose rule `advisory(rule)` says is only advice goes to `notes` instead, and the walk goes on with the
    next field (the value taken as given)."""
    if not isinstance(body, dict):
        return Problem(prefix.rstrip(".") or "body", "must be a JSON object", fields[0].rule if fields else "")

    def found(problem: Problem) -> Problem | None:
        if advisory is not None and notes is not None and advisory(problem.rule):
            notes.append(problem)
            return None
        return problem

    for spec in fields:
        where = f"{prefix}{spec.name}"
        problem = _field_problem(body.get(spec.name), spec, where)
        if problem is not None:
            if found(problem) is not None:
                return problem
            continue
        if spec.items is not None and body.get(spec.name) is not None:
            for i, item in enumerate(body[spec.name]):
                if not isinstance(item, dict):
                    problem = Problem(f"{where}[{i}]", f"{where}[{i}] must be an object", spec.rule)
                    if found(problem) is not None:
                        return problem
                    continue
                inner = check(item, spec.items, f"{where}[{i}].", advisory, notes) if spec.items else None
                if inner:
                    return inner
    return None


def _field_problem(value: Any, spec: Field, where: str) -> Problem | None:
    if value is None:
        return Problem(where, f"{where} is required", spec.rule) if spec.required else None
    wanted = _TYPES.get(spec.type or "")
    if wanted and (not isinstance(value, wanted) or (spec.type == "number" and isinstance(value, bool))):
        return Problem(where, f"{where} must be a {spec.type}", spec.rule)
    if spec.type == "string" and spec.required and not value.strip():
        return Problem(where, f"{where} must not be empty", spec.rule)
    if spec.max_len is not None and len(value) > spec.max_len:
        return Problem(where, f"{where} is longer than {spec.max_len} characters", spec.rule)
    if spec.enum is not None and value not in spec.enum:
        return Problem(where, f"{where} must be one of {', '.join(spec.enum)}", spec.rule)
    if spec.pattern is not None and not spec.pattern.match(value):
        return Problem(where, f"{where} must be a UUID", spec.pattern_rule or spec.rule)
    return None
