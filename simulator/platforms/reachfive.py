"""ReachFive: an optional static Authorization header, fire-and-forget (no retries), a wrong credential answered
401 or 403 (shared/platforms/reachfive.md)."""

from __future__ import annotations

from typing import Any

from ..auth import Auth, AuthError
from .base import Platform, Profile

NAME = "reachfive"


def parse_json_auth(value: Any) -> Auth:
    """null, or {"authorization": "<header value>"} (at most 4096 characters)."""
    if value is None:
        return Auth("none")
    if (
        not isinstance(value, dict)
        or set(value) != {"authorization"}
        or not isinstance(value.get("authorization"), str)
        or not value["authorization"].strip()
        or len(value["authorization"]) > 4096
    ):
        raise AuthError('reachfive auth is {"authorization": "<header value>"} or null', "auth.authorization")
    return Auth("authorization", authorization=value["authorization"])


PLATFORM = Platform(
    name=NAME,
    auth_kinds=("none", "authorization"),
    profiles=(
        Profile(
            NAME,
            retries=False,
            job_headers=False,
            retry_rule="reachfive.retries.none",
            header_rule="reachfive.headers.no-job-headers",
        ),
    ),
    options=frozenset({"authorization"}),
    parse_json=parse_json_auth,
    credential_fault_statuses=(401, 403),
)
