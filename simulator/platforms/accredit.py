"""Accredit: every delivery RSA-signed (X-Signature), X-JobId/X-JobAttempt sent, up to 5 retries, a 400 retried
(shared/seeds, shared/platforms/accredit.md); the body names its event in `Event`."""

from __future__ import annotations

from typing import Any

from ..auth import Auth, AuthError
from ..signing import PADDINGS
from .base import Platform, Profile

NAME = "accredit"


def parse_json_auth(value: Any) -> Auth:
    """null, {} or {"rsa_padding": …}: Accredit always signs with RSA; only the padding is a choice (ours)."""
    if value in (None, {}, {"type": "rsa"}):
        return Auth("rsa")
    if (
        not isinstance(value, dict)
        or set(value) - {"rsa_padding", "type"}
        or value.get("type", "rsa") != "rsa"
        or value.get("rsa_padding", "pkcs1v15") not in PADDINGS
    ):
        raise AuthError(
            f'accredit always signs with RSA: auth is null or {{"rsa_padding": {" | ".join(PADDINGS)}}}', "auth"
        )
    return Auth("rsa", rsa_padding=value.get("rsa_padding", "pkcs1v15"))


PLATFORM = Platform(
    name=NAME,
    auth_kinds=("rsa",),
    profiles=(
        Profile(
            NAME,
            retries=True,
            job_headers=True,
            retry_rule="accredit.retries.up-to-5",
            header_rule="accredit.headers.job-id",
        ),
    ),
    options=frozenset(),
    parse_json=parse_json_auth,
    event_field="Event",
    dedup_header="X-JobId",
    options_note=" (Accredit always signs with RSA)",
)
