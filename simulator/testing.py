"""Signed platform requests for a receiver's own test suite, in-process: no server, no port, no network.

    from simulator.testing import Sender
    sender = Sender("accessrc", hmac_secret="s3cr3t")
    req = sender.request("DELIVERY_REQUEST_SENT", seed=1)
    client.post("/hook", data=req.body, headers=req.headers)

Every request is built by the same code the CLI, the server and the scenario runner use (catalogue, `delivery.new_job`,
`delivery.request_headers`, `Auth`, `signing`, `scenarios.faults`); nothing is sent. This module never imports Flask,
waitress or APScheduler. The pytest plugin (`simulator.pytest_plugin`) wraps `Sender` in the `accessrc_sender` fixture.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import catalogue, config, delivery, platforms, signing
from .auth import AuthError
from .config import Settings
from .models import Job
from .scenarios import faults
from .signing import KeyPair, VerificationError

__all__ = ["FAULTS", "Sender", "SenderError", "SignedRequest", "VerificationError"]

PLACEHOLDER_URL = "http://127.0.0.1/"  # a job needs a target; nothing is ever sent to it
FAULTS = faults.NAMES  # the credential and body faults `accessrc-sim run` and `conformance` send


class SenderError(ValueError):
    """A Sender or request that cannot be built: unknown platform, event, example, fault or profile, auth that does
    not fit the platform, more attempts than the platform makes."""


@dataclass(frozen=True)
class SignedRequest:
    """One request exactly as the platform would POST it: send `body` (the signed bytes) with `headers`."""

    event: str
    headers: dict[str, str]
    body: bytes
    payload: dict | None  # the decoded body; None when the body is not JSON (malformed_json)
    job_id: str = ""  # the job this request belongs to (in X-JobId only where the delivery profile sends it)
    attempt: int = 0  # 0 for the first try (X-JobAttempt where sent)
    fault: str | None = None  # the fault it carries, None for a genuine request


def _warn_new_keys(keys_dir: Path) -> None:
    warnings.warn(signing.generated_message(keys_dir), UserWarning, stacklevel=4)


class Sender:
    """Plays one platform: Accredit (RSA `X-Signature`), AccessRC (none, API-key header, Basic or HMAC) or ReachFive
    (none or a static `Authorization`). The auth options mirror `accessrc-sim send`'s flags.

    Accredit's key pair lives in `keys_dir` (created on first use), by default the simulator's own
    (`$ACCESSRC_SIM_KEYS_DIR`, else `keys/` in its data folder), so a receiver configured with `accessrc-sim keys
    show` verifies it; a pair generated there is announced with a UserWarning (one given `keys_dir` stays quiet).
    `profile` is the delivery profile (`documented`, or `accredit-like` for AccessRC: adds X-JobId/X-JobAttempt).
    """

    def __init__(
        self,
        platform: str,
        *,
        hmac_secret: str | None = None,
        api_key_header: str | None = None,
        api_key: str | None = None,
        basic: str | tuple[str, str] | None = None,
        authorization: str | None = None,
        rsa_padding: str = "pkcs1v15",
        keys_dir: str | os.PathLike[str] | None = None,
        profile: str | None = None,
    ) -> None:
        if platform not in platforms.NAMES:
            raise SenderError(f"platform must be one of {', '.join(platforms.NAMES)}, got {platform!r}")
        self.platform = platform
        if isinstance(basic, tuple):
            basic = ":".join(basic)  # a Basic user name holds no colon (RFC 7617); the password may
        try:
            self.auth = platforms.get(platform).auth_from_options(
                hmac_secret=hmac_secret,
                api_key_header=api_key_header,
                api_key=api_key,
                basic=basic,
                authorization=authorization,
                rsa_padding=rsa_padding,
            )
        except AuthError as exc:
            raise SenderError(str(exc)) from exc
        try:
            self.profile = delivery.get_profile(platform, profile)
        except delivery.DeliveryError as exc:
            raise SenderError(str(exc)) from exc
        self._default_keys = keys_dir is None
        self.keys_dir = Path(keys_dir if keys_dir is not None else Settings.load().keys_dir)
        self._keys: KeyPair | None = None

    def __repr__(self) -> str:  # never show a credential
        return f"Sender({self.platform!r}, auth={self.auth.masked()!r}, profile={self.profile.name!r})"

    # -- keys --------------------------------------------------------------------------------------------------
    @property
    def keys(self) -> KeyPair | None:
        """Accredit's RSA key pair (loaded, or generated in `keys_dir`, on first use); None for other platforms."""
        if self.auth.kind != "rsa":
            return None
        if self._keys is None:
            if self._default_keys:  # the simulator's own data folder: private (0700), and a new pair is news
                config.make_folder(self.keys_dir.parent)
                self._keys = signing.load_keys(self.keys_dir, on_generated=_warn_new_keys)
            else:
                self._keys = signing.load_keys(self.keys_dir)
        return self._keys

    @property
    def public_key_pem(self) -> str:
        """The PEM public key an Accredit receiver verifies `X-Signature` with."""
        keys = self.keys
        if keys is None:
            raise SenderError(f"{self.platform} does not sign with RSA; only accredit has a public key")
        return keys.public_pem

    # -- requests ----------------------------------------------------------------------------------------------
    def request(
        self, event: str, *, seed: int | None = None, set: Mapping[str, Any] | None = None, example: str | None = None
    ) -> SignedRequest:
        """A genuine first attempt of `event`: a generated payload (`seed` makes it reproducible, `set` overrides
        dotted paths) or the documents' example `example` ("" for the event's first one)."""
        return self.attempts(event, seed=seed, set=set, example=example, n=1)[0]

    def attempts(
        self,
        event: str,
        *,
        seed: int | None = None,
        set: Mapping[str, Any] | None = None,
        example: str | None = None,
        n: int = 1 + delivery.MAX_RETRIES,
    ) -> list[SignedRequest]:
        """The same job as its `n` attempts would arrive (first try and retries): same body and job id, attempt
        0..n-1. ReachFive never retries, so it only has n=1."""
        job, payload = self._job(event, seed, set, example)
        if not 1 <= n <= job.max_attempts:
            why = (
                f"{self.platform} never retries (fire-and-forget)"
                if not self.profile.retries
                else f"{self.platform} makes at most {job.max_attempts} attempts (1 + {len(job.retry_delays)} retries)"
            )
            raise SenderError(f"n must be 1..{job.max_attempts}: {why}; got {n}")
        return [
            SignedRequest(
                event=job.event,
                headers=delivery.request_headers(job, number, self.keys),
                body=job.body,
                payload=payload,
                job_id=job.id,
                attempt=number,
            )
            for number in range(n)
        ]

    def fault(
        self,
        name: str,
        event: str,
        *,
        seed: int | None = None,
        set: Mapping[str, Any] | None = None,
        example: str | None = None,
        field: str | None = None,
        tamper: str | None = None,
        content_type: str | None = None,
        size: int | None = None,
    ) -> SignedRequest:
        """`event` with one thing wrong, byte for byte as `accessrc-sim run`/`conformance` send it (see FAULTS):
        credential faults (bad_signature, missing_signature, wrong_key) and a body changed after signing
        (tampered_body) must get 401; malformed_json, missing_required_field, wrong_content_type and oversized_body
        carry correct credentials for their bytes and must be refused by the parser (400/413/415)."""
        if name not in FAULTS:
            raise SenderError(f"fault must be one of {', '.join(FAULTS)}, got {name!r}")
        job, payload = self._job(event, seed, set, example)
        try:
            body, headers, shown, _ = faults.build(
                name,
                job.event,
                self.auth,
                delivery.request_headers(job, 0, self.keys),
                job.body,
                payload,
                lambda changed: self._resign(job, changed),
                tamper=tamper,
                seed=seed,
                field=field,
                content_type=content_type,
                size=size,
            )
        except (faults.FaultError, catalogue.CatalogueError) as exc:
            raise SenderError(str(exc)) from exc
        if name == "oversized_body":
            shown = json.loads(body)
        return SignedRequest(
            event=job.event, headers=headers, body=body, payload=shown, job_id=job.id, attempt=0, fault=name
        )

    # -- receiving ---------------------------------------------------------------------------------------------
    def verify(self, headers: Mapping[str, str], body: bytes) -> None:
        """Check `headers` authenticate `body` as this sender signs them (header names case-insensitive); raise
        VerificationError saying what is wrong. With no auth (AccessRC/ReachFive `none`) there is nothing to check."""
        keys = self.keys
        self.auth.verify(headers, body, public_key=keys.public_key if keys else None)

    # -- internals ---------------------------------------------------------------------------------------------
    def _job(self, event: str, seed, sets, example) -> tuple[Job, dict]:
        try:
            spec = catalogue.get_event(event, self.platform)
            payload = catalogue.generate(spec.name, seed=seed, overrides=dict(sets or {}), example=example)
            job = delivery.new_job(
                spec.name,
                self.platform,
                PLACEHOLDER_URL,
                catalogue.body_bytes(payload),
                self.auth,
                source="testing",
                profile=self.profile.name,
            )
        except (catalogue.CatalogueError, delivery.DeliveryError, AuthError) as exc:
            raise SenderError(str(exc)) from exc
        except StopIteration as exc:  # pragma: no cover - defensive: an example lookup that found nothing
            raise SenderError(f"{event} has no example {example!r}") from exc
        return job, payload

    def _resign(self, job: Job, body: bytes) -> dict[str, str]:
        """Correct credentials for faulty bytes: the fault must reach the receiver's parser, not its auth check."""
        job.body = body
        return delivery.request_headers(job, 0, self.keys)
