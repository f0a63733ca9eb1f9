"""How a delivery authenticates itself: the auth kinds (small objects: build, verify, forge a credential), the
`Auth` value a job carries, and masking. Which kinds each platform uses, and how its auth input is parsed, is
simulator.platforms' business.
"""

from __future__ import annotations

import base64
import string
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from functools import lru_cache
from typing import Any

from cryptography.hazmat.primitives.asymmetric import rsa

from . import signing
from .signing import KeyPair

MASK = "***"


class AuthError(ValueError):
    """An auth setting that does not fit the platform or misses a field; `field` names the input at fault."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


class Kind:
    """One way a delivery authenticates itself: the Auth fields it needs, the header carrying the credential, how
    that header is built and verified, and how a fault forges it (one detail wrong, or someone else's)."""

    name = "none"
    needs: tuple[str, ...] = ()  # Auth fields that must be set
    covers_body = False  # True: the credential is computed over the body (a changed body is detectable)
    header: str | None = None  # the header carrying the credential (None: nothing is sent)

    def header_name(self, auth: Auth) -> str | None:
        return self.header

    def value(self, auth: Auth, body: bytes, keys: KeyPair | None) -> str:
        raise NotImplementedError

    def expected(self, auth: Auth) -> str:
        """The value a static credential must have (kinds that do not sign the body)."""
        raise NotImplementedError

    def verify(self, auth: Auth, given: str | None, body: bytes, public_key: Any) -> None:
        signing.constant_equal(self.expected(auth), given, f"{self.header_name(auth)} header")

    def bad(self, auth: Auth, value: str) -> str:
        """The credential with one detail wrong (same length and form)."""
        return flip_char(value)

    def foreign(self, auth: Auth, body: bytes, token: str) -> tuple[str, list[str]]:
        """Well-formed credentials of someone else, and the fake values to mask in the record."""
        return token, [token]


class _Rsa(Kind):
    name, covers_body, header = "rsa", True, "X-Signature"

    def value(self, auth, body, keys):
        if keys is None:
            raise AuthError("RSA signing needs the key pair")
        return signing.rsa_sign(keys.private_key, body, auth.rsa_padding)

    def verify(self, auth, given, body, public_key):
        signing.rsa_verify(public_key, body, given, auth.rsa_padding)

    def bad(self, auth, value):
        raw = bytearray(base64.b64decode(value))
        raw[-1] ^= 0x01  # one bit of the signature flipped
        return base64.b64encode(bytes(raw)).decode("ascii")

    def foreign(self, auth, body, token):
        return signing.rsa_sign(foreign_key(), body, auth.rsa_padding), []


class _Hmac(Kind):
    name, needs, covers_body, header = "hmac", ("secret",), True, "x-signature"

    def value(self, auth, body, keys):
        return signing.hmac_signature(auth.secret or "", body)

    def verify(self, auth, given, body, public_key):
        signing.hmac_verify(auth.secret or "", body, given)

    def foreign(self, auth, body, token):
        other = "not-" + token
        return signing.hmac_signature(other, body), [other]


class _Basic(Kind):
    name, needs, header = "basic", ("username", "password"), "Authorization"

    def expected(self, auth):
        return signing.basic_value(auth.username or "", auth.password or "")

    def value(self, auth, body, keys):
        return self.expected(auth)

    def verify(self, auth, given, body, public_key):
        signing.constant_equal(self.expected(auth), given, "Authorization (Basic)")

    def bad(self, auth, value):
        user, _, password = flip_char(base64.b64decode(value.split(" ", 1)[1]).decode("utf-8")).partition(":")
        return signing.basic_value(user, password)

    def foreign(self, auth, body, token):
        value = signing.basic_value(auth.username or "", token)
        return value, [token, value]


class _Header(Kind):
    name, needs = "header", ("header_name", "header_value")

    def header_name(self, auth):
        return auth.header_name or "x-api-key"

    def expected(self, auth):
        return auth.header_value or ""

    def value(self, auth, body, keys):
        return self.expected(auth)


class _Authorization(Kind):
    name, needs, header = "authorization", ("authorization",), "Authorization"

    def expected(self, auth):
        return auth.authorization or ""

    def value(self, auth, body, keys):
        return self.expected(auth)

    def foreign(self, auth, body, token):
        given = auth.authorization or ""
        value = f"{given.split(' ', 1)[0]} {token}" if " " in given else token  # the same scheme, another token
        return value, [value]


KINDS: dict[str, Kind] = {k.name: k for k in (Kind(), _Rsa(), _Hmac(), _Basic(), _Header(), _Authorization())}


@dataclass(frozen=True)
class Auth:
    kind: str = "none"  # rsa | none | header | basic | hmac | authorization (KINDS)
    header_name: str | None = None
    header_value: str | None = None
    username: str | None = None
    password: str | None = None
    secret: str | None = None
    authorization: str | None = None
    rsa_padding: str = "pkcs1v15"

    @property
    def how(self) -> Kind:
        found = KINDS.get(self.kind)
        if found is None:
            raise AuthError(f"auth kind must be one of {', '.join(KINDS)}, got {self.kind!r}", "kind")
        return found

    def check_fields(self) -> Auth:
        """The fields this kind needs are set and the RSA padding is known (which kinds a platform uses is
        simulator.platforms' business)."""
        missing = [n for n in self.how.needs if not getattr(self, n)]
        if missing:
            raise AuthError(f"{self.kind} auth needs {', '.join(missing)}", missing[0])
        if self.rsa_padding not in signing.PADDINGS:
            raise AuthError(f"rsa padding must be one of {', '.join(signing.PADDINGS)}", "rsa_padding")
        return self

    # -- sending ---------------------------------------------------------------------------------
    @property
    def credential_header(self) -> str | None:
        """The header that carries the credential (None for kind none)."""
        return self.how.header_name(self)

    def headers(self, body: bytes, keys: KeyPair | None = None, credential: str | None = None) -> dict[str, str]:
        """The credential header for `body`. `credential`: its value made already by this kind's `value` for this
        body (the queue's signing process runs that same code in another interpreter); None: made here."""
        name = self.credential_header
        if not name:
            return {}
        return {name: credential if credential is not None else self.how.value(self, body, keys)}

    # -- receiving -------------------------------------------------------------------------------
    def verify(self, headers: Mapping[str, str], body: bytes, public_key: Any = None) -> None:
        """Raise VerificationError unless `headers` authenticate `body` as this setting would send them."""
        name = self.credential_header
        if name is not None:
            self.how.verify(self, _getter(headers)(name), body, public_key)

    # -- storing and showing ---------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v is not None}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> Auth:
        """From `to_dict()`'s form (the store's, and scenario files' `auth:`); unknown keys are ignored."""
        data = dict(data or {})
        known = {k: data.pop(k) for k in list(data) if k in cls.__dataclass_fields__}
        return cls(**known)

    def masked(self) -> dict:
        """What the APIs show: credentials masked, and rsa_padding only where RSA signs."""
        shown = self.to_dict()
        if self.kind != "rsa":
            shown.pop("rsa_padding", None)
        for name in SECRET_FIELDS:
            if shown.get(name):
                shown[name] = MASK
        return shown

    def without_secrets(self) -> Auth:
        """The same kind with its credential values dropped: what a finished job keeps (issue 14, item 12)."""
        return replace(self, **{name: None for name in SECRET_FIELDS})

    @property
    def cleared(self) -> bool:
        """True when the kind needs a credential that is not here (dropped by without_secrets)."""
        return any(not getattr(self, name) for name in self.how.needs if name in SECRET_FIELDS)

    def secrets(self) -> list[str]:
        """Every credential value, and the Basic header built from them (a receiver may echo either)."""
        found = [v for v in (getattr(self, name) for name in SECRET_FIELDS) if v]
        if self.kind == "basic" and self.username is not None and self.password:
            found.append(signing.basic_value(self.username, self.password))
            found.append(signing.basic_value(self.username, self.password).split(" ", 1)[1])
        return found


SECRET_FIELDS = ("header_value", "password", "secret", "authorization")


def flip_char(text: str) -> str:
    """The same text with its last alphanumeric character changed: same length and form, wrong value."""
    for i in range(len(text) - 1, -1, -1):
        c = text[i]
        if c.isalnum():
            alphabet = (
                string.digits if c.isdigit() else string.ascii_lowercase if c.islower() else string.ascii_uppercase
            )
            return text[:i] + alphabet[(alphabet.index(c) + 1) % len(alphabet)] + text[i + 1 :]
    return text + "x"


@lru_cache(maxsize=1)
def foreign_key() -> rsa.RSAPrivateKey:
    """Another RSA key pair, made once per process: a well-formed signature by the wrong sender."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def mask_headers(headers: Mapping[str, str], secrets: list[str] | None = None) -> dict[str, str]:
    """Header values that carry credentials shown as ***; signatures stay visible (they are not secrets)."""
    sensitive = {"authorization", "x-api-key", "cookie", "proxy-authorization"}
    out = {}
    for name, value in headers.items():
        if name.lower() in sensitive or (secrets and value in secrets):
            out[name] = MASK
        else:
            out[name] = value
    return out


def scrub(data: bytes, secrets: list[str]) -> bytes:
    """`data` with every credential in `secrets` replaced by ***: a receiver's answer may echo what it got."""
    for secret in sorted(secrets, key=len, reverse=True):
        if secret:
            data = data.replace(secret.encode("utf-8"), MASK.encode())
    return data


def scrub_headers(headers: Mapping[str, str], secrets: list[str]) -> dict[str, str]:
    return {
        name: scrub(value.encode("utf-8", "surrogateescape"), secrets).decode("utf-8", "surrogateescape")
        for name, value in mask_headers(headers, secrets).items()
    }


def _getter(headers: Mapping[str, str]):
    lowered = {k.lower(): v for k, v in headers.items()}
    return lambda name: lowered.get(name.lower())
