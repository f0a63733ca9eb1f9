"""AccessRC: subscriptions choose none / header / basic / hmac auth (its Subscribe `auth` object), one callback URL
per event type; no retry policy, timeout or dedup header is documented (shared/platforms/accessrc.md)."""

from __future__ import annotations

from typing import Any

from ..auth import Auth, AuthError
from .base import ACCREDIT_LIKE, Platform, Profile

NAME = "accessrc"
# The Subscribe `auth` object's fields and their length limits (characters).
AUTH_LIMITS = {"type": 16, "headerName": 64, "headerValue": 512, "username": 128, "password": 512, "secret": 512}
_FIELD_OF = {
    "header_name": "headerName",
    "header_value": "headerValue",
    "username": "username",
    "password": "password",
    "secret": "secret",
}
_HINTS = {
    "kind": " (AccessRC's Subscribe auth object names it `type`)",
    "header_name": " (the Subscribe object's name is `headerName`)",
    "header_value": " (the Subscribe object's name is `headerValue`)",
}


def parse_subscribe_auth(value: Any) -> Auth:
    """The `auth` object of AccessRC's POST /api/Event/Subscribe (null, header, basic or hmac), with its length
    limits; AuthError names the Subscribe field at fault (`auth.headerName`, …)."""
    if value is None:
        return Auth("none")
    if not isinstance(value, dict):
        raise AuthError("auth must be an object or null", "auth")
    for name, limit in AUTH_LIMITS.items():
        item = value.get(name)
        if item is not None and (not isinstance(item, str) or len(item) > limit):
            raise AuthError(f"auth.{name} must be a string of at most {limit} characters", f"auth.{name}")
    unknown = sorted(set(value) - set(AUTH_LIMITS))
    if unknown:
        raise AuthError(f"unknown field auth.{unknown[0]}{_HINTS.get(unknown[0], '')}", f"auth.{unknown[0]}")
    kind = value.get("type")
    if kind in (None, "", "none"):
        return Auth("none")
    if kind not in ("header", "basic", "hmac"):
        raise AuthError("auth.type must be one of hmac, header, basic", "auth.type")
    auth = Auth(
        kind=kind,
        header_name=value.get("headerName"),
        header_value=value.get("headerValue"),
        username=value.get("username"),
        password=value.get("password"),
        secret=value.get("secret"),
    )
    try:
        return auth.check_fields()
    except AuthError as exc:  # spoken in the Subscribe object's names
        name = _FIELD_OF.get(exc.field or "", "type")
        raise AuthError(str(exc).replace(exc.field or "", f"auth.{name}"), f"auth.{name}") from exc


PLATFORM = Platform(
    name=NAME,
    auth_kinds=("none", "header", "basic", "hmac"),
    profiles=(
        Profile(
            NAME,
            retries=True,
            job_headers=False,
            retry_rule="accessrc.retries.policy",
            header_rule="accessrc.headers.no-job-headers",
        ),
        Profile(
            NAME,
            retries=True,
            job_headers=True,
            name=ACCREDIT_LIKE,
            retry_rule="accessrc.retries.policy",
            header_rule="accessrc.headers.accredit-like",
        ),
    ),
    options=frozenset({"hmac_secret", "api_key", "api_key_header", "basic"}),
    parse_json=parse_subscribe_auth,
    one_subscription_per_event=True,
)
