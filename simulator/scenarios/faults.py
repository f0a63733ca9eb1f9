"""Deliberate misbehaviour, built byte for byte: wrong, missing or foreign credentials, a body changed after
signing, broken JSON, a dropped required field, a wrong Content-Type, an oversized body.

Pure: a body and its correct headers in, the faulty body and headers out. Sending and recording is the runner's job.
"""
from __future__ import annotations

import base64
import json
import secrets
import string
from functools import lru_cache

from cryptography.hazmat.primitives.asymmetric import rsa

from .. import catalogue, signing
from ..auth import Auth
from ..catalogue import paths

DEFAULT_OVERSIZE = 2 * 1024 * 1024  # bytes; far above any realistic notification of these platforms
DEFAULT_WRONG_CONTENT_TYPE = "text/plain"


class FaultError(ValueError):
    """A fault that cannot be built for this auth or payload."""


def credential_headers(auth: Auth) -> list[str]:
    """Header names that carry the credential of `auth`."""
    return {"rsa": ["X-Signature"], "hmac": ["x-signature"], "header": [auth.header_name or "x-api-key"],
            "basic": ["Authorization"], "authorization": ["Authorization"]}.get(auth.kind, [])


def _find(headers: dict, name: str) -> str | None:
    return next((h for h in headers if h.lower() == name.lower()), None)


def _flip_char(text: str) -> str:
    """The same text with its last alphanumeric character changed: same length and form, wrong value."""
    for i in range(len(text) - 1, -1, -1):
        c = text[i]
        if c.isalnum():
            alphabet = string.digits if c.isdigit() else string.ascii_lowercase if c.islower() else \
                string.ascii_uppercase
            return text[:i] + alphabet[(alphabet.index(c) + 1) % len(alphabet)] + text[i + 1:]
    return text + "x"


def bad_signature(auth: Auth, headers: dict) -> dict:
    """The credential with one detail wrong: a signature with one bit flipped, a key/password/token off by a char."""
    out = dict(headers)
    name = _find(out, credential_headers(auth)[0]) if credential_headers(auth) else None
    if name is None:
        raise FaultError(f"bad_signature needs credentials; auth kind is {auth.kind}")
    value = out[name]
    if auth.kind == "rsa":
        raw = bytearray(base64.b64decode(value))
        raw[-1] ^= 0x01
        out[name] = base64.b64encode(bytes(raw)).decode("ascii")
    elif auth.kind == "basic":
        user_pass = base64.b64decode(value.split(" ", 1)[1]).decode("utf-8")
        out[name] = signing.basic_value(*_split_basic(_flip_char(user_pass)))
    else:
        out[name] = _flip_char(value)
    return out


def _split_basic(text: str) -> tuple[str, str]:
    user, _, password = text.partition(":")
    return user, password


def missing_signature(auth: Auth, headers: dict) -> dict:
    names = {n.lower() for n in credential_headers(auth)}
    if not names:
        raise FaultError(f"missing_signature needs credentials; auth kind is {auth.kind}")
    return {k: v for k, v in headers.items() if k.lower() not in names}


@lru_cache(maxsize=1)
def _foreign_key() -> rsa.RSAPrivateKey:
    """Another RSA key pair, made once per process: a well-formed signature by the wrong sender."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def wrong_key(auth: Auth, headers: dict, body: bytes) -> tuple[dict, list[str]]:
    """Well-formed credentials of someone else: another RSA key, another HMAC secret, another key/password/token.
    Returns the headers and the fake secrets (to mask them in the record)."""
    out = dict(headers)
    token = secrets.token_urlsafe(18)
    name = _find(out, credential_headers(auth)[0]) if credential_headers(auth) else None
    if name is None:
        raise FaultError(f"wrong_key needs credentials; auth kind is {auth.kind}")
    if auth.kind == "rsa":
        out[name] = signing.rsa_sign(_foreign_key(), body, auth.rsa_padding)
        return out, []
    if auth.kind == "hmac":
        other = "not-" + token
        out[name] = signing.hmac_signature(other, body)
        return out, [other]
    if auth.kind == "basic":
        out[name] = signing.basic_value(auth.username or "", token)
        return out, [token, out[name]]
    if auth.kind == "authorization":
        scheme = (auth.authorization or "").split(" ", 1)[0] if " " in (auth.authorization or "") else ""
        out[name] = f"{scheme} {token}" if scheme else token
        return out, [out[name]]
    out[name] = token
    return out, [token]


def tampered_payload(event: str, payload: dict, tamper: str | None, seed: int | None) -> dict:
    """The payload with one field replaced by a valid value of another payload of the same event, so the body
    still fits the schema and only the signature can tell."""
    other = catalogue.generate(event, seed=(seed or 0) + 7919)
    changed = json.loads(json.dumps(payload))
    candidates = [tamper] if tamper else [k for k in payload if isinstance(payload[k], (str, int)) and
                                           not isinstance(payload[k], bool)]
    for path in candidates:
        if paths.exists(other, path) and paths.get(other, path) != paths.get(payload, path):
            paths.set_path(changed, path, paths.get(other, path))
            return changed
        if tamper:
            value = paths.get(payload, path)
            paths.set_path(changed, path, _flip_char(value) if isinstance(value, str) else value + 1)
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


BODY_FAULTS = ("tampered_body", "malformed_json", "missing_required_field", "wrong_content_type", "oversized_body")
CREDENTIAL_FAULT_NAMES = ("bad_signature", "missing_signature", "wrong_key")
NAMES = CREDENTIAL_FAULT_NAMES + BODY_FAULTS


def build(kind: str, event: str, auth: Auth, headers: dict, body: bytes, payload: dict, resign, *,
          tamper: str | None = None, seed: int | None = None, field: str | None = None,
          content_type: str | None = None, size: int | None = None) -> tuple[bytes, dict, dict | None, list[str]]:
    """One fault applied to a genuine request (`body`, its `headers`, its `payload`): the faulty body, headers and
    payload (None when not JSON), and the fake credentials to mask. `resign(body)` gives correct headers for new
    bytes, for faults that must reach the receiver's parser, not its auth check. Used by the scenario runner and
    `simulator.testing`."""
    fakes: list[str] = []
    if kind == "bad_signature":
        headers = bad_signature(auth, headers)
        if auth.kind not in ("rsa", "hmac"):  # a wrong credential is still credential-like: masked
            fakes = [v for k, v in headers.items() if k.lower() in {h.lower() for h in credential_headers(auth)}]
    elif kind == "missing_signature":
        headers = missing_signature(auth, headers)
    elif kind == "wrong_key":
        headers, fakes = wrong_key(auth, headers, body)
    elif kind == "tampered_body":
        payload = tampered_payload(event, payload, tamper, seed)
        body = catalogue.body_bytes(payload)
    elif kind == "malformed_json":
        body = malformed(body)
        headers = resign(body)
        payload = None
    elif kind == "missing_required_field":
        payload, _ = without_required(event, payload, field)
        body = catalogue.body_bytes(payload)
        headers = resign(body)
    elif kind == "wrong_content_type":
        headers = dict(headers)
        name = next(h for h in headers if h.lower() == "content-type")
        headers[name] = content_type or DEFAULT_WRONG_CONTENT_TYPE
    elif kind == "oversized_body":
        body = oversized(payload, int(size or DEFAULT_OVERSIZE))
        headers = resign(body)
        payload = None
    else:
        raise FaultError(f"fault must be one of {', '.join(NAMES)}, got {kind!r}")
    return body, headers, payload, fakes
