"""Deliberate misbehaviour, built byte for byte: wrong, missing or foreign credentials, a body changed after
signing, broken JSON, a dropped required field, a wrong Content-Type, an oversized body.

Pure: a body and its correct headers in, the faulty body and headers out. Sending and recording is the runner's job.
FAULTS is the table of every fault a scenario step can name: adding one is one entry (and its name in schema.json).
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from .. import catalogue
from ..auth import Auth, flip_char
from ..catalogue import paths

DEFAULT_OVERSIZE = 2 * 1024 * 1024  # bytes; far above any realistic notification of these platforms
DEFAULT_WRONG_CONTENT_TYPE = "text/plain"


class FaultError(ValueError):
    """A fault that cannot be built for this auth or payload."""


def _credential(auth: Auth, headers: dict, fault: str) -> str:
    """The name under which `headers` carry the credential of `auth` (as sent), or FaultError."""
    wanted = auth.credential_header
    name = next((h for h in headers if wanted and h.lower() == wanted.lower()), None)
    if name is None:
        raise FaultError(f"{fault} needs credentials; auth kind is {auth.kind}")
    return name


def bad_signature(auth: Auth, headers: dict) -> tuple[dict, list[str]]:
    """The credential with one detail wrong: a signature with one bit flipped, a key/password/token off by a char.
    Returns the headers and the fake values to mask (a wrong static credential is still credential-like)."""
    name = _credential(auth, headers, "bad_signature")
    out = dict(headers)
    out[name] = auth.how.bad(auth, out[name])
    return out, [] if auth.how.covers_body else [out[name]]


def missing_signature(auth: Auth, headers: dict) -> dict:
    name = _credential(auth, headers, "missing_signature")
    return {k: v for k, v in headers.items() if k != name}


def wrong_key(auth: Auth, headers: dict, body: bytes) -> tuple[dict, list[str]]:
    """Well-formed credentials of someone else: another RSA key, another HMAC secret, another key/password/token.
    Returns the headers and the fake secrets (to mask them in the record)."""
    name = _credential(auth, headers, "wrong_key")
    forged, fakes = foreign_credential(auth, body)
    out = dict(headers)
    out[name] = next(iter(forged.values()))
    return out, fakes


def tampered_payload(event: str, payload: dict, tamper: str | None, seed: int | None) -> dict:
    """The payload with one field replaced by a valid value of another payload of the same event, so the body
    still fits the schema and only the signature can tell."""
    other = catalogue.generate(event, seed=(seed or 0) + 7919)
    changed = json.loads(json.dumps(payload))
    candidates = (
        [tamper]
        if tamper
        else [k for k in payload if isinstance(payload[k], (str, int)) and not isinstance(payload[k], bool)]
    )
    for path in candidates:
        if paths.exists(other, path) and paths.get(other, path) != paths.get(payload, path):
            paths.set_path(changed, path, paths.get(other, path))
            return changed
        if tamper:
            value = paths.get(payload, path)
            paths.set_path(changed, path, flip_char(value) if isinstance(value, str) else value + 1)
            return changed
    raise FaultError(f"no field of {event} can be changed to tamper with the body")


def malformed(body: bytes) -> bytes:
    """Valid JSON cut short by its last byte: `{"a":1` — the bytes are signed, so only the parser can tell."""
    return body[:-1]


def required_field(event: str) -> str | None:
    """The field `missing_required_field` drops: one the documents call required, else the first field of the
    event's documented payload (whether its absence must be refused is then an inferred rule)."""
    schema = catalogue.get_event(event).schema
    return next(iter(schema.get("required") or schema.get("properties") or []), None)


def without_required(event: str, payload: dict, field: str | None) -> tuple[dict, str]:
    name = field or required_field(event)
    if name is None:
        raise FaultError(f"{event} has no required field")
    changed = json.loads(json.dumps(payload))
    paths.remove(changed, name)
    return changed, name


def oversized(payload: dict, size: int) -> bytes:
    """The payload with an extra `_padding` field making the body exactly `size` bytes."""
    base = catalogue.body_bytes({**payload, "_padding": ""})
    pad = max(0, size - len(base))
    return catalogue.body_bytes({**payload, "_padding": "x" * pad})


@dataclass
class Genuine:
    """The genuine request a fault starts from (`body`, its `headers`, its `payload`) and the step's options.
    `resign(body)` gives correct headers for new bytes, for faults that must reach the receiver's parser, not its
    auth check."""

    event: str
    auth: Auth
    headers: dict
    body: bytes
    payload: dict
    resign: Callable[[bytes], dict]
    tamper: str | None = None
    seed: int | None = None
    field: str | None = None
    content_type: str | None = None
    size: int | None = None


Faulty = tuple[bytes, dict, dict | None, list[str]]  # body, headers, payload (None: not JSON), fakes to mask


def _bad_signature(g: Genuine) -> Faulty:
    headers, fakes = bad_signature(g.auth, g.headers)
    return g.body, headers, g.payload, fakes


def _missing_signature(g: Genuine) -> Faulty:
    return g.body, missing_signature(g.auth, g.headers), g.payload, []


def _wrong_key(g: Genuine) -> Faulty:
    headers, fakes = wrong_key(g.auth, g.headers, g.body)
    return g.body, headers, g.payload, fakes


def _tampered_body(g: Genuine) -> Faulty:
    payload = tampered_payload(g.event, g.payload, g.tamper, g.seed)
    return catalogue.body_bytes(payload), g.headers, payload, []


def _malformed_json(g: Genuine) -> Faulty:
    body = malformed(g.body)
    return body, g.resign(body), None, []


def _missing_required_field(g: Genuine) -> Faulty:
    payload, _ = without_required(g.event, g.payload, g.field)
    body = catalogue.body_bytes(payload)
    return body, g.resign(body), payload, []


def _wrong_content_type(g: Genuine) -> Faulty:
    headers = dict(g.headers)
    name = next(h for h in headers if h.lower() == "content-type")
    headers[name] = g.content_type or DEFAULT_WRONG_CONTENT_TYPE
    return g.body, headers, g.payload, []


def _oversized_body(g: Genuine) -> Faulty:
    body = oversized(g.payload, int(g.size or DEFAULT_OVERSIZE))
    return body, g.resign(body), None, []


CREDENTIALS = "credentials"  # the answer to a fault of credentials: the platform's statuses for refused ones


@dataclass(frozen=True)
class Fault:
    """One kind of fault: how a correct receiver answers it, how its request is made, the step fields it alone
    takes. `make` builds one faulty request from a genuine one; None: the runner sends a sequence (its own table)."""

    name: str
    answer: tuple | str  # statuses (200, "2xx") or CREDENTIALS
    make: Callable[[Genuine], Faulty] | None = None
    options: tuple[str, ...] = ()
    resends: bool = False  # may resend an earlier step (`of: NAME`)

    @property
    def credentials(self) -> bool:
        """A fault in the credentials (or in bytes they cover): it needs credentials to be sent, and is refused
        as they are."""
        return self.answer == CREDENTIALS


FAULTS: dict[str, Fault] = {
    f.name: f
    for f in (
        Fault("bad_signature", CREDENTIALS, _bad_signature),
        Fault("missing_signature", CREDENTIALS, _missing_signature),
        Fault("wrong_key", CREDENTIALS, _wrong_key),
        Fault("tampered_body", CREDENTIALS, _tampered_body, ("tamper",)),
        Fault("duplicate", ("2xx",), resends=True),
        Fault("replay", ("2xx",), options=("after",), resends=True),
        Fault("out_of_order", ("2xx",), options=("earlier", "later")),
        Fault("malformed_json", (400,), _malformed_json),
        Fault("missing_required_field", (400,), _missing_required_field, ("field",)),
        Fault("wrong_content_type", (400, 415), _wrong_content_type, ("content_type",)),
        Fault("oversized_body", (400, 413), _oversized_body, ("size",)),
    )
}
NAMES = tuple(name for name, fault in FAULTS.items() if fault.make)  # the faults of one request, built here
OPTION_OWNERS = {option: name for name, f in FAULTS.items() for option in f.options}  # option -> the fault taking it
OVERSIZE_RANGE = (1024, 64 * 1024 * 1024)  # oversized_body `size`, bytes (as scenarios/schema.json bounds it)


def misplaced_options(kind: str, given: Iterable[str]) -> list[tuple[str, str]]:
    """(option, message) for each option in `given` that belongs to another fault than `kind` (the scenario
    loader and `simulator.testing` refuse them alike)."""
    given = set(given)
    return [
        (key, f"{key}: only for the {owner} fault")
        for key, owner in OPTION_OWNERS.items()
        if key in given and owner != kind
    ]


def body_not_covered(auth: Auth) -> str | None:
    """Why tampered_body means nothing with `auth` (None when it does): a credential that is not computed over the
    body cannot tell a changed body, so a correct receiver accepts it."""
    if auth.how.covers_body:
        return None
    return (
        f"tampered_body: {auth.kind} auth does not cover the body, so a changed body cannot be detected; "
        "it needs rsa or hmac"
    )


def foreign_credential(auth: Auth, body: bytes) -> tuple[dict[str, str], list[str]]:
    """Well-formed credentials of someone else for `body` (another RSA key, another HMAC secret, another
    key/password/token): the credential header alone, and the fake secrets to mask. What `wrong_key` sends and the
    dashboard's forged send uses."""
    name = auth.credential_header
    if not name:
        raise FaultError(f"wrong_key needs credentials; auth kind is {auth.kind}")
    value, fakes = auth.how.foreign(auth, body, secrets.token_urlsafe(18))
    return {name: value}, fakes


def build(
    kind: str,
    event: str,
    auth: Auth,
    headers: dict,
    body: bytes,
    payload: dict,
    resign,
    *,
    tamper: str | None = None,
    seed: int | None = None,
    field: str | None = None,
    content_type: str | None = None,
    size: int | None = None,
) -> tuple[bytes, dict, dict | None, list[str]]:
    """One fault applied to a genuine request (`body`, its `headers`, its `payload`): the faulty body, headers and
    payload (None when not JSON), and the fake credentials to mask. `resign(body)` gives correct headers for new
    bytes, for faults that must reach the receiver's parser, not its auth check. Used by the scenario runner and
    `simulator.testing`."""
    fault = FAULTS.get(kind)
    if fault is None or fault.make is None:
        raise FaultError(f"fault must be one of {', '.join(NAMES)}, got {kind!r}")
    return fault.make(
        Genuine(
            event,
            auth,
            headers,
            body,
            payload,
            resign,
            tamper=tamper,
            seed=seed,
            field=field,
            content_type=content_type,
            size=size,
        )
    )
