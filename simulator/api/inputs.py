"""Request input, parsed and checked: strict JSON bodies, fields, query arguments, in the API's own terms.

Each helper returns the value or raises an ApiError (400 unless said) naming the field at fault, so views read
top to bottom and the error handler (simulator.api.errors) writes the envelope.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

from flask import request

from .. import catalogue, guard, limits, platforms
from ..auth import Auth, AuthError
from ..catalogue import EventSpec
from ..delivery import DeliveryError, check_delays, check_timeout, get_profile
from .errors import ACR_INVALID_INPUT, ACR_INVALID_LENGTH, ApiError, bad_request, missing


def json_body() -> dict:
    """The request body as a JSON object, or a 400 naming what is wrong with it."""
    raw = request.get_data(cache=True)
    if not raw.strip():
        raise ApiError(400, "request body must be a JSON object", "body", ACR_INVALID_INPUT)
    try:
        data = limits.loads(raw)  # nested deeper than limits.MAX_DEPTH: refused before parsing
    except limits.TooDeep as exc:
        raise ApiError(400, f"request body: lists and objects {exc}", "body", ACR_INVALID_INPUT) from exc
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, f"request body is not valid JSON: {exc}", "body", ACR_INVALID_INPUT) from exc
    if not isinstance(data, dict):
        raise ApiError(400, "request body must be a JSON object", "body", ACR_INVALID_INPUT)
    return data


def first_of(data: dict, *names: str) -> tuple[str, Any]:
    """The first present key among `names` (e.g. `event` or `Event`) and its value; (names[0], None) if none."""
    for name in names:
        if name in data:
            return name, data[name]
    return names[0], None


def require_string(data: dict, *names: str, max_len: int | None = None, required: bool = True) -> str | None:
    """The string under the first present name of `names`; None only when absent and not `required`."""
    name, value = first_of(data, *names)
    if value is None:
        if required:
            raise missing(name)
        return None
    if not isinstance(value, str) or (required and not value.strip()):
        raise bad_request(f"{name} must be a non-empty string", name)
    if max_len is not None and len(value) > max_len:
        raise ApiError(400, f"{name} is longer than {max_len} characters", name, ACR_INVALID_LENGTH)
    return value


def require_url(data: dict, *names: str, max_len: int = 2048, required: bool = True) -> str | None:
    """An absolute http(s) URL the target guard allows (simulator.guard); None only when absent and not `required`."""
    url = require_string(data, *names, max_len=max_len, required=required)
    if url is None:
        return None
    name = first_of(data, *names)[0]
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError as exc:
        raise bad_request(f"{name} is not a valid URL: {exc}", name) from exc
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise bad_request(f"{name} must be an absolute http:// or https:// URL, got {url!r}", name)
    try:
        guard.check_target(url)
    except guard.TargetNotAllowed as exc:
        raise bad_request(f"{name}: {exc}", name) from exc
    return url


def query_int(name: str, default: int | None = None, minimum: int = 0, maximum: int | None = 2**63 - 1) -> int | None:
    """An integer query argument; the default maximum is SQLite's (a larger one is a 400, not an overflow)."""
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise bad_request(f"{name} must be an integer", name) from None
    if value < minimum or (maximum is not None and value > maximum):
        raise bad_request(f"{name} must be from {minimum}" + (f" to {maximum}" if maximum else ""), name)
    return value


def event_spec(name: str, field: str = "event", status: int = 400) -> EventSpec:
    """The catalogue entry named `name`, or an error naming `field`."""
    try:
        return catalogue.get_event(name)
    except catalogue.CatalogueError as exc:
        raise ApiError(status, str(exc), field) from exc


def platform_auth(platform: str, value: Any) -> Auth:
    """Auth in each platform's own terms (simulator.platforms: AccessRC its Subscribe `auth` object, Accredit null
    or {"rsa_padding": …}, ReachFive {"authorization": …} or null), or a 400 naming the field at fault."""
    try:
        return platforms.get(platform).auth_from_json(value)
    except AuthError as exc:
        raise bad_request(str(exc), exc.field or "auth") from exc


def optional_int(data: dict, name: str, minimum: int | None = None, maximum: int | None = None) -> int | None:
    """An integer (never a bool) within the bounds given, or None when absent or null."""
    value = data.get(name)
    if value is None:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or (minimum is not None and value < minimum)
        or (maximum is not None and value > maximum)
    ):
        bounds = f" from {minimum}" if minimum is not None else ""
        bounds += f" to {maximum}" if maximum is not None else ""
        raise bad_request(f"{name} must be an integer{bounds}", name)
    return value


def optional_number(data: dict, name: str) -> float | None:
    """A number (never a bool) as a float, or None when absent or null."""
    value = data.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise bad_request(f"{name} must be a number", name)
    return float(value)


def optional_bool(data: dict, name: str, default: bool = False) -> bool:
    """true or false; `default` when absent (null is refused: it is neither)."""
    value = data.get(name, default)
    if not isinstance(value, bool):
        raise bad_request(f"{name} must be true or false", name)
    return value


def optional_object(data: dict, name: str) -> dict:
    """A JSON object; {} when absent or null."""
    value = data.get(name)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise bad_request(f"{name} must be an object", name)
    return value


def optional_delays(data: dict, name: str = "retry_delays") -> tuple[float, ...] | None:
    """A retry schedule (seconds) delivery.check_delays accepts, or None when absent or null."""
    value = data.get(name)
    if value is None:
        return None
    if not isinstance(value, list) or any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in value):
        raise bad_request(f"{name} must be a list of numbers (seconds)", name)
    try:
        return check_delays(value)
    except DeliveryError as exc:
        raise bad_request(str(exc), name) from exc


def optional_timeout(data: dict, name: str = "timeout") -> float | None:
    """A per-attempt timeout (seconds) delivery.check_timeout accepts, or None when absent or null."""
    value = optional_number(data, name)
    if value is None:
        return None
    try:
        return check_timeout(value)
    except DeliveryError as exc:
        raise bad_request(str(exc), name) from exc


def optional_profile(data: dict, platform: str, name: str = "profile") -> str | None:
    """The delivery profile asked for (documented | accredit-like, the latter AccessRC only), or None."""
    value = data.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise bad_request(f"{name} must be a string", name)
    try:
        return get_profile(platform, value).name
    except DeliveryError as exc:
        raise bad_request(str(exc), name) from exc


def reject_unknown(data: dict, allowed: Iterable[str]) -> None:
    """A 400 naming the first field (alphabetically) not in `allowed`: a typo is an error, not ignored."""
    unknown = sorted(set(data) - set(allowed))
    if unknown:
        raise bad_request(f"unknown field {unknown[0]!r}", unknown[0], ACR_INVALID_INPUT)
