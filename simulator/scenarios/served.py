"""The calls an `await_call` step can wait for: the paths the simulator serves per platform, and what a matched
call gives to later steps (`${name.call.FIELD…}`). Checked by the loader; matching is calls.py."""

from __future__ import annotations

import re

CALL_FIELDS = ("id", "method", "path", "query", "headers", "body", "status", "response", "job_id", "ms")

# (method, path pattern) the simulator serves per platform: the APIs a receiver calls back, and the subscription
# APIs (recorded too). `{id}` is one path segment.
SERVED: dict[str, tuple[tuple[str, str], ...]] = {
    "accessrc": (
        ("POST", "/api/DeliveryChannel/Create"),
        ("POST", "/api/DeliveryRequest/Sync"),
        ("POST", "/api/Delivery/Sync"),
        ("POST", "/api/Event/Subscribe"),
        ("POST", "/api/Event/Unsubscribe"),
        ("GET", "/api/LookUp/GetLookUpValues"),
        ("POST", "/api/LookUp/GetLookUpValues"),
    ),
    "accredit": (
        ("GET", "/api/printQueue"),
        ("GET", "/api/printQueue/{id}"),
        ("GET", "/api/printQueue/{id}/download"),
        ("PUT", "/api/printQueue/{id}/printStatus"),
        ("GET", "/api/webhookSubscription/events"),
        ("GET", "/api/webhookSubscription"),
        ("POST", "/api/webhookSubscription"),
        ("GET", "/api/webhookSubscription/{id}"),
        ("DELETE", "/api/webhookSubscription/{id}"),
        ("POST", "/api/webhookSubscription/triggerSampleEventNotification"),
    ),
}
_SEGMENT = "[^/]+"
_REF = re.compile(r"\$\{[^{}]*\}")


def _pattern(template: str) -> re.Pattern:
    return re.compile("^" + re.escape(template).replace(re.escape("{id}"), _SEGMENT) + "$")


def served_methods(platform: str, path: str) -> list[str] | None:
    """The methods the simulator answers at `path` for `platform` (None: a platform with no served APIs); a path
    holding a step reference (`${name.…}`) is matched with the reference as one segment."""
    table = SERVED.get(platform)
    if table is None:
        return None
    concrete = _REF.sub("x", path)
    return [method for method, template in table if _pattern(template).match(concrete)]


def served_paths(platform: str) -> list[str]:
    return [f"{method} {template}" for method, template in SERVED.get(platform, ())]


def default_method(platform: str, path: str) -> str:
    """POST, unless the path is served with one other method only (the Print Queue's GETs and PUT)."""
    methods = served_methods(platform, path) or []
    return methods[0] if len(methods) == 1 else "POST"
