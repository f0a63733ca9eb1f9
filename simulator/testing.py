"""Signed platform requests for a receiver's own test suite, in-process: no server, no port, no network.

    from simulator.testing import Sender
    sender = Sender("accessrc", hmac_secret="s3cr3t")
    req = sender.request("DELIVERY_REQUEST_SENT", seed=1)
    client.post("/hook", data=req.body, headers=req.headers)

Every request is built by the same code the CLI, the server and the scenario runner use (catalogue, `delivery.new_job`,
`delivery.request_headers`, `Auth`, `signing`, `scenarios.faults`); nothing is sent. This module never imports Flask,
waitress, APScheduler or an HTTP client. The pytest plugin (`simulator.pytest_plugin`) wraps `Sender` in the
`accessrc_sender` fixture. The package is typed (PEP 561: it ships `py.typed`).
"""

from __future__ import annotations

import json
import os
import sys
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from . import catalogue, config, delivery, platforms, signing
from .auth import AuthError
from .catalogue import paths
from .config import Settings
from .models import Job
from .scenarios import faults
from .signing import KeyPair, VerificationError

__all__ = ["FAULTS", "HeaderItems", "Sender", "SenderError", "SenderFactory", "SignedRequest", "VerificationError"]

PLACEHOLDER_URL = "http://127.0.0.1/"  # a job needs a target; nothing is ever sent to it
FAULTS: tuple[str, ...] = faults.NAMES  # the credential and body faults `accessrc-sim run` and `conformance` send
JSON_TYPE = "application/json"


class SenderError(ValueError):
    """A Sender or request that cannot be built: unknown platform, event, example, fault or profile, auth that does
    not fit the platform, an argument of the wrong type, a payload that breaks the event's schema (each problem
    listed), more attempts than the platform makes, a fault option that does not fit the fault, an unusable
    `keys_dir`."""


@dataclass(frozen=True)
class SignedRequest:
    """One request exactly as the platform would POST it: send `body` (the signed bytes) with `headers`.

    `headers` is exactly what the simulator sends on the wire: the platform's documented headers (its signature or
    credential; `X-JobId`/`X-JobAttempt` where its delivery profile sends them) plus `Content-Type: application/json`
    and `User-Agent: accessrc-sim/<version>`, which no platform documents (inferred rules
    `<platform>.headers.content-type` and `<platform>.headers.user-agent`: `accessrc-sim rules`).
    """

    event: str
    headers: dict[str, str]
    body: bytes
    payload: dict[str, Any] | None  # the decoded body; None when the body is not JSON (malformed_json)
    job_id: str = ""  # the job this request belongs to (in X-JobId only where the delivery profile sends it)
    attempt: int = 0  # 0 for the first try (X-JobAttempt where sent)
    fault: str | None = None  # the fault it carries, None for a genuine request
    # each inferred rule the payload breaks (e.g. a field `set` added that the documents do not show), as the CLI's
    # `note:` lines: advice, never a refusal unless strict=True
    notes: tuple[str, ...] = ()


_OWN_FILES = frozenset(os.path.normcase(os.path.abspath(f)) for f in (__file__, signing.__file__))


def _warn_new_keys(keys_dir: Path) -> None:
    """Announce a key pair generated in the simulator's own folder, at the caller's line (whichever method of
    Sender made the pair: the first frame outside this module and simulator.signing)."""
    frame = sys._getframe(0)
    level = 1
    while frame.f_back is not None and os.path.normcase(os.path.abspath(frame.f_code.co_filename)) in _OWN_FILES:
        frame = frame.f_back
        level += 1
    warnings.warn(signing.generated_message(keys_dir), UserWarning, stacklevel=level)


class HeaderItems(Protocol):
    """What `Sender.verify` reads headers from: a dict, or a framework's headers object (werkzeug/Flask's
    `request.headers`, Starlette's, Django's `request.headers`): anything with `items()` of name/value strings."""

    def items(self) -> Iterable[tuple[str, str]]: ...


class SenderFactory(Protocol):
    """The type of the `accessrc_sender` fixture (annotate a test's parameter with it): makes a Sender, its
    keys in the test's temporary folder unless `keys_dir` is given."""

    def __call__(
        self,
        platform: str = "accessrc",
        *,
        hmac_secret: str | None = None,
        api_key_header: str | None = None,
        api_key: str | None = None,
        basic: str | tuple[str, str] | None = None,
        authorization: str | None = None,
        rsa_padding: str = "pkcs1v15",
        keys_dir: str | os.PathLike[str] | None = None,
        profile: str | None = None,
    ) -> Sender: ...


def _text(name: str, value: object) -> str | None:
    """`value` when it is a string or None, else SenderError (the value is not shown: it may be a credential)."""
    if value is None or isinstance(value, str):
        return value
    raise SenderError(f"{name} must be a string, got {type(value).__name__}")


def _integer(name: str, value: object) -> int | None:
    if value is None or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    raise SenderError(f"{name} must be an integer, got {type(value).__name__} {value!r}")


def _flag(name: str, value: object) -> bool:
    if isinstance(value, bool):
        return value
    raise SenderError(f"{name} must be True or False, got {type(value).__name__} {value!r}")


def _catalogue_problem(exc: catalogue.CatalogueError, forced: bool) -> SenderError:
    """A catalogue refusal with each problem listed, as `accessrc-sim sample`/`send` print it."""
    detail = (
        "".join(f"\n  - {p}" for p in exc.problems)
        if len(exc.problems) > 1 or (exc.problems and exc.problems[0] not in str(exc))
        else ""
    )
    hint = "" if forced or not exc.problems else "\n(force=True builds it anyway, still signed)"
    return SenderError(f"{exc}{detail}{hint}")


class Sender:
    """Plays one platform: Accredit (RSA `X-Signature`), AccessRC (none, API-key header, Basic or HMAC) or ReachFive
    (none or a static `Authorization`). The auth options mirror `accessrc-sim send`'s flags; `basic` is
    "user:pass" or ("user", "pass").

    Accredit's key pair lives in `keys_dir` (created on first use). By default it is the simulator's own:
    `$ACCESSRC_SIM_KEYS_DIR`, else `keys/` in the simulator's data folder (`$ACCESSRC_SIM_HOME`, else the user data
    folder, e.g. ~/.local/share/accessrc-sim), so a receiver configured with `accessrc-sim keys show` verifies it; a
    pair generated there is announced with a UserWarning pointing at the caller's line (a given `keys_dir` stays
    quiet). `profile` is the delivery profile (`documented`, or `accredit-like` for AccessRC: adds
    X-JobId/X-JobAttempt).
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
        if not isinstance(platform, str) or platform not in platforms.NAMES:
            raise SenderError(f"platform must be one of {', '.join(platforms.NAMES)}, got {platform!r}")
        self.platform = platform
        if isinstance(basic, tuple):
            if len(basic) != 2 or not all(isinstance(part, str) for part in basic):
                raise SenderError('basic takes "user:pass" or ("user", "pass")')
            basic = ":".join(basic)  # a Basic user name holds no colon (RFC 7617); the password may
        texts = {
            "hmac_secret": hmac_secret,
            "api_key_header": api_key_header,
            "api_key": api_key,
            "basic": basic,
            "authorization": authorization,
            "rsa_padding": rsa_padding,
            "profile": profile,
        }
        for name, value in texts.items():
            _text(name, value)
        if keys_dir is not None and not isinstance(keys_dir, (str, os.PathLike)):
            raise SenderError(f"keys_dir must be a path (str or os.PathLike), got {type(keys_dir).__name__}")
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
        if rsa_padding != "pkcs1v15" and self.auth.kind != "rsa":
            raise SenderError(f"rsa_padding is for Accredit's RSA signature; {platform} signs with {self.auth.kind}")
        try:
            self.profile = delivery.get_profile(platform, profile)
        except delivery.DeliveryError as exc:
            raise SenderError(str(exc)) from exc
        self._default_keys = keys_dir is None
        self.keys_dir = Path(keys_dir if keys_dir is not None else Settings.load().keys_dir)
        self._keys: KeyPair | None = None

    def __repr__(self) -> str:  # never show a credential
        return f"Sender({self.platform!r}, auth={self.auth.masked()!r}, profile={self.profile.name!r})"

    # -- what the platform sends -----------------------------------------------------------------------------
    def events(self) -> list[str]:
        """The names of the events this platform sends (`accessrc-sim events`)."""
        return [spec.name for spec in catalogue.EVENTS if spec.platform == self.platform]

    def examples(self, event: str) -> list[str]:
        """The names of the documents' example payloads of `event`, for `request(event, example=NAME)`."""
        return [example.name for example in self._spec(event).examples]

    # -- keys --------------------------------------------------------------------------------------------------
    @property
    def keys(self) -> KeyPair | None:
        """Accredit's RSA key pair (loaded, or generated in `keys_dir`, on first use); None for other platforms."""
        if self.auth.kind != "rsa":
            return None
        if self._keys is None:
            try:
                if self._default_keys:  # the simulator's own data folder: private (0700), and a new pair is news
                    config.make_folder(self.keys_dir.parent)
                    self._keys = signing.load_keys(self.keys_dir, on_generated=_warn_new_keys)
                else:
                    self._keys = signing.load_keys(self.keys_dir)
            except (signing.KeyFileError, OSError) as exc:
                raise SenderError(f"keys_dir {str(self.keys_dir)!r}: {exc}") from exc
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
        self,
        event: str,
        *,
        seed: int | None = None,
        set: Mapping[str, Any] | None = None,
        example: str | None = None,
        force: bool = False,
        strict: bool = False,
    ) -> SignedRequest:
        """A genuine first attempt of `event`: a generated payload (`seed` makes it reproducible, `set` overrides
        dotted paths, and may add a field to an existing object) or the documents' example `example` ("" for the
        event's first one; `examples(event)` lists them). A payload that breaks the event's schema is refused
        (SenderError listing each problem) unless `force=True` (as `send --force`: built and signed anyway, to test
        your own validation); one that breaks only inferred rules is built, each listed in `notes`; `strict=True`
        refuses it (as `send --strict`)."""
        return self.attempts(event, seed=seed, set=set, example=example, force=force, strict=strict, n=1)[0]

    def attempts(
        self,
        event: str,
        *,
        seed: int | None = None,
        set: Mapping[str, Any] | None = None,
        example: str | None = None,
        force: bool = False,
        strict: bool = False,
        n: int | None = None,
    ) -> list[SignedRequest]:
        """The same job as its attempts would arrive (first try and retries): same body and job id, attempt
        0..n-1. `n` defaults to every attempt the platform makes (6 for Accredit and AccessRC: 1 + 5 retries; 1
        for ReachFive, which never retries); more than that is a SenderError. Other options as `request`."""
        n = _integer("n", n)
        job, payload = self._job(event, seed, set, example, force=force, strict=strict)
        count = job.max_attempts if n is None else n
        if not 1 <= count <= job.max_attempts:
            why = (
                f"{self.platform} never retries (fire-and-forget)"
                if not self.profile.retries
                else f"{self.platform} makes at most {job.max_attempts} attempts (1 + {len(job.retry_delays)} retries)"
            )
            raise SenderError(f"n must be 1..{job.max_attempts}: {why}; got {n}")
        keys = self.keys
        notes = () if force or payload is None else tuple(str(a) for a in catalogue.advise(job.event, payload))
        return [
            SignedRequest(
                event=job.event,
                headers=delivery.request_headers(job, number, keys),
                body=job.body,
                payload=payload,
                job_id=job.id,
                attempt=number,
                notes=notes,
            )
            for number in range(count)
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
        """`event` with one thing wrong, byte for byte as `accessrc-sim run`/`conformance` send it (see FAULTS).

        Credential faults must get 401: `bad_signature` (one detail of the credential wrong), `missing_signature`,
        `wrong_key` (someone else's well-formed credential) and `tampered_body` (a field changed after signing; only
        with rsa or hmac auth, the others do not cover the body). Body faults carry correct credentials for their
        bytes and must be refused by the parser: `malformed_json` (400), `missing_required_field` (400),
        `wrong_content_type` (400/415), `oversized_body` (400/413).

        Options, each for its fault only: `tamper` (tampered_body: the dotted path of the field to change; default
        the first top-level string or number that differs in another payload), `field` (missing_required_field:
        the path to drop; default the first field the documents call required), `content_type`
        (wrong_content_type: default text/plain; application/json is refused, it is the right one), `size`
        (oversized_body: the body's size in bytes, 1024 to 64 MiB; default 2 MiB)."""
        if not isinstance(name, str) or name not in FAULTS:
            raise SenderError(f"fault must be one of {', '.join(FAULTS)}, got {name!r}")
        options: dict[str, object] = {"field": field, "tamper": tamper, "content_type": content_type, "size": size}
        misplaced = faults.misplaced_options(name, [k for k, v in options.items() if v is not None])
        if misplaced:
            raise SenderError("; ".join(message for _, message in misplaced))
        texts = {option: _text(option, options[option]) for option in ("field", "tamper", "content_type")}
        for option, text in texts.items():
            if text == "":
                raise SenderError(f"{option} must not be empty")
        self._check_fault_fits(name, content_type, _integer("size", size))
        seed = _integer("seed", seed)
        job, payload = self._job(event, seed, set, example)
        for option in ("field", "tamper"):
            self._check_fault_path(option, texts[option], job.event, payload)
        keys = self.keys
        try:
            body, headers, shown, _ = faults.build(
                name,
                job.event,
                self.auth,
                delivery.request_headers(job, 0, keys),
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
    def verify(self, headers: HeaderItems, body: bytes) -> None:
        """Check `headers` authenticate `body` (the raw bytes received) as this sender signs them (header names
        case-insensitive); raise VerificationError saying what is wrong. With no auth (AccessRC/ReachFive `none`)
        there is nothing to check."""
        items = getattr(headers, "items", None)  # a dict, or a framework's headers object (werkzeug, starlette)
        pairs = list(items()) if callable(items) else None
        if pairs is None or not all(isinstance(k, str) and isinstance(v, str) for k, v in pairs):
            raise SenderError("headers must be a mapping of header names to string values")
        if isinstance(body, (bytearray, memoryview)):
            body = bytes(body)
        if not isinstance(body, bytes):
            raise SenderError(
                f"body must be the raw bytes received (e.g. request.get_data(), await request.body()), "
                f"got {type(body).__name__}"
            )
        keys = self.keys
        self.auth.verify(dict(pairs), body, public_key=keys.public_key if keys else None)

    # -- internals ---------------------------------------------------------------------------------------------
    def _spec(self, event: str) -> catalogue.EventSpec:
        if not isinstance(event, str):
            raise SenderError(f"event must be an event name (a string), got {type(event).__name__}")
        try:
            return catalogue.get_event(event, self.platform)
        except catalogue.CatalogueError as exc:
            raise SenderError(str(exc)) from exc

    def _job(
        self,
        event: str,
        seed: int | None,
        sets: Mapping[str, Any] | None,
        example: str | None,
        *,
        force: bool = False,
        strict: bool = False,
    ) -> tuple[Job, dict[str, Any]]:
        spec = self._spec(event)
        _integer("seed", seed)
        _text("example", example)
        _flag("force", force)
        _flag("strict", strict)
        if sets is not None and not isinstance(sets, Mapping):
            raise SenderError(f'set must be a mapping of dotted paths to values ({{"a.b": 1}}), got {type(sets)}')
        overrides: dict[str, Any] = dict(sets or {})
        for path, value in overrides.items():
            if not isinstance(path, str):
                raise SenderError(f"set: a path must be a string (dotted: a.b.0), got {path!r}")
            try:
                json.dumps(value)
            except (TypeError, ValueError) as exc:
                raise SenderError(f"set {path}: not a JSON value ({exc})") from exc
        try:
            payload = catalogue.generate(
                spec.name, seed=seed, overrides=overrides, example=example, force=force, strict=strict
            )
        except catalogue.CatalogueError as exc:
            raise _catalogue_problem(exc, force) from exc
        try:
            job = delivery.new_job(
                spec.name,
                self.platform,
                PLACEHOLDER_URL,
                catalogue.body_bytes(payload),
                self.auth,
                source="testing",
                profile=self.profile.name,
            )
        except (delivery.DeliveryError, AuthError) as exc:
            raise SenderError(str(exc)) from exc
        return job, payload

    def _check_fault_fits(self, name: str, content_type: str | None, size: int | None) -> None:
        """Refuse a fault this auth cannot carry, or an option value that makes no fault."""
        if faults.FAULTS[name].credentials and self.auth.kind == "none" and name != "tampered_body":
            raise SenderError(f"{name} needs credentials; auth kind is {self.auth.kind}")
        if name == "tampered_body":
            why = faults.body_not_covered(self.auth)
            if why:
                raise SenderError(why)
        if content_type is not None:
            if any(ord(c) < 32 or ord(c) == 127 for c in content_type):
                raise SenderError("content_type must not hold control characters (it is a header value)")
            if content_type.split(";")[0].strip().lower() == JSON_TYPE:
                raise SenderError(
                    f"content_type {content_type!r} is the right Content-Type, not a wrong one; "
                    f"give another (default {faults.DEFAULT_WRONG_CONTENT_TYPE})"
                )
        low, high = faults.OVERSIZE_RANGE
        if size is not None and not low <= size <= high:
            raise SenderError(f"size must be {low}..{high} bytes (an oversized body), got {size}")

    @staticmethod
    def _check_fault_path(option: str, path: str | None, event: str, payload: dict[str, Any]) -> None:
        """`field`/`tamper` name a field of the payload (the scenario loader's check and message)."""
        if path is None:
            return
        if not _valid_path(path) or not paths.exists(payload, path):
            raise SenderError(f"{option}: path {path!r} does not exist in {event}")
        if option == "tamper":
            value = paths.get(payload, path)
            if isinstance(value, bool) or not isinstance(value, (str, int, float)):
                raise SenderError(
                    f"tamper: {path} holds {type(value).__name__}; name a string or number field to change"
                )

    def _resign(self, job: Job, body: bytes) -> dict[str, str]:
        """Correct credentials for faulty bytes: the fault must reach the receiver's parser, not its auth check."""
        job.body = body
        return delivery.request_headers(job, 0, self.keys)


def _valid_path(text: str) -> bool:
    try:
        paths.split(text)
    except paths.PathError:
        return False
    return True
