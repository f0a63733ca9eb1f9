"""How a delivery authenticates itself, per platform, as data: build the headers, verify them, mask them.

Accredit always RSA-signs. AccessRC subscriptions choose none / header / basic / hmac (its Subscribe `auth`).
ReachFive sends an optional static Authorization header.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any, Mapping

from . import signing
from .signing import KeyPair, VerificationError

KINDS = {
    "accredit": ("rsa",),
    "accessrc": ("none", "header", "basic", "hmac"),
    "reachfive": ("none", "authorization"),
}
MASK = "***"


class AuthError(ValueError):
    """An auth setting that does not fit the platform or misses a field."""


@dataclass(frozen=True)
class Auth:
    kind: str = "none"  # rsa | none | header | basic | hmac | authorization
    header_name: str | None = None
    header_value: str | None = None
    username: str | None = None
    password: str | None = None
    secret: str | None = None
    authorization: str | None = None
    rsa_padding: str = "pkcs1v15"

    def check(self, platform: str) -> "Auth":
        allowed = KINDS[platform]
        if self.kind not in allowed:
            raise AuthError(f"{platform} does not use {self.kind!r} auth; it uses {', '.join(allowed)}")
        need = {"header": ("header_name", "header_value"), "basic": ("username", "password"),
                "hmac": ("secret",), "authorization": ("authorization",)}.get(self.kind, ())
        missing = [n for n in need if not getattr(self, n)]
        if missing:
            raise AuthError(f"{self.kind} auth needs {', '.join(missing)}")
        if self.rsa_padding not in signing.PADDINGS:
            raise AuthError(f"rsa padding must be one of {', '.join(signing.PADDINGS)}")
        return self

    # -- sending ---------------------------------------------------------------------------------
    def headers(self, body: bytes, keys: KeyPair | None = None) -> dict[str, str]:
        if self.kind == "rsa":
            if keys is None:
                raise AuthError("RSA signing needs the key pair")
            return {"X-Signature": signing.rsa_sign(keys.private_key, body, self.rsa_padding)}
        if self.kind == "hmac":
            return {"x-signature": signing.hmac_signature(self.secret or "", body)}
        if self.kind == "basic":
            return {"Authorization": signing.basic_value(self.username or "", self.password or "")}
        if self.kind == "header":
            return {self.header_name or "x-api-key": self.header_value or ""}
        if self.kind == "authorization":
            return {"Authorization": self.authorization or ""}
        return {}

    # -- receiving -------------------------------------------------------------------------------
    def verify(self, headers: Mapping[str, str], body: bytes, public_key: Any = None) -> None:
        """Raise VerificationError unless `headers` authenticate `body` as this setting would send them."""
        get = _getter(headers)
        if self.kind == "rsa":
            signing.rsa_verify(public_key, body, get("X-Signature"), self.rsa_padding)
        elif self.kind == "hmac":
            signing.hmac_verify(self.secret or "", body, get("x-signature"))
        elif self.kind == "basic":
            signing.constant_equal(signing.basic_value(self.username or "", self.password or ""),
                                   get("Authorization"), "Authorization (Basic)")
        elif self.kind == "header":
            signing.constant_equal(self.header_value or "", get(self.header_name or "x-api-key"),
                                   f"{self.header_name} header")
        elif self.kind == "authorization":
            signing.constant_equal(self.authorization or "", get("Authorization"), "Authorization header")

    # -- storing and showing ---------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v is not None}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> "Auth":
        data = dict(data or {})
        known = {k: data.pop(k) for k in list(data) if k in cls.__dataclass_fields__}
        return cls(**known)

    def masked(self) -> dict:
        """What the APIs show: credentials masked, and rsa_padding only where RSA signs."""
        shown = self.to_dict()
        if self.kind != "rsa":
            shown.pop("rsa_padding", None)
        for name in ("header_value", "password", "secret", "authorization"):
            if shown.get(name):
                shown[name] = MASK
        return shown

    def without_secrets(self) -> "Auth":
        """The same kind with its credential values dropped: what a finished job keeps (issue 14, item 12)."""
        return replace(self, header_value=None, password=None, secret=None, authorization=None)

    @property
    def cleared(self) -> bool:
        """True when the kind needs a credential that is not here (dropped by without_secrets)."""
        need = {"header": self.header_value, "basic": self.password, "hmac": self.secret,
                "authorization": self.authorization}
        return self.kind in need and not need[self.kind]

    def secrets(self) -> list[str]:
        """Every credential value, and the Basic header built from them (a receiver may echo either)."""
        found = [v for v in (self.header_value, self.password, self.secret, self.authorization) if v]
        if self.kind == "basic" and self.username is not None and self.password:
            found.append(signing.basic_value(self.username, self.password))
            found.append(signing.basic_value(self.username, self.password).split(" ", 1)[1])
        return found

    @classmethod
    def from_accessrc(cls, obj: Mapping[str, Any] | None) -> "Auth":
        """The `auth` object of AccessRC's POST /api/Event/Subscribe (null, header, basic or hmac)."""
        if obj is None:
            return cls("none")
        if not isinstance(obj, Mapping):
            raise AuthError("auth must be an object or null")
        kind = obj.get("type")
        if kind in (None, "", "none"):
            return cls("none")
        if kind not in ("header", "basic", "hmac"):
            raise AuthError("auth.type must be one of hmac, header, basic")
        return cls(kind=kind, header_name=obj.get("headerName"), header_value=obj.get("headerValue"),
                   username=obj.get("username"), password=obj.get("password"), secret=obj.get("secret")
                   ).check("accessrc")


def default_auth(platform: str) -> Auth:
    return Auth("rsa") if platform == "accredit" else Auth("none")


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
    return {name: scrub(value.encode("utf-8", "surrogateescape"), secrets).decode("utf-8", "surrogateescape")
            for name, value in mask_headers(headers, secrets).items()}


def _getter(headers: Mapping[str, str]):
    lowered = {k.lower(): v for k, v in headers.items()}
    return lambda name: lowered.get(name.lower())


def from_options(platform: str, *, hmac_secret: str | None = None, api_key_header: str | None = None,
                 api_key: str | None = None, basic: str | None = None, authorization: str | None = None,
                 rsa_padding: str = "pkcs1v15", spell=lambda name: name) -> Auth:
    """The auth that `accessrc-sim send`'s options (or `simulator.testing.Sender`'s keywords) ask for, checked
    against the platform; AuthError naming the options as `spell(name)` spells them (`--hmac-secret`, `hmac_secret`)."""
    given = {"hmac_secret": hmac_secret, "api_key": api_key, "api_key_header": api_key_header, "basic": basic,
             "authorization": authorization}
    allowed = {"accessrc": {"hmac_secret", "api_key", "api_key_header", "basic"}, "reachfive": {"authorization"},
               "accredit": set()}[platform]
    wrong = [spell(name) for name, value in given.items() if value is not None and name not in allowed]
    if wrong:
        raise AuthError(f"{', '.join(wrong)} does not apply to {platform} events"
                        + (" (Accredit always signs with RSA)" if platform == "accredit" else ""))
    if platform == "accredit":
        return Auth("rsa", rsa_padding=rsa_padding).check(platform)
    chosen = [spell(n) for n in ("hmac_secret", "api_key", "basic", "authorization") if given[n] is not None]
    if len(chosen) > 1:
        raise AuthError(f"choose one auth: {', '.join(chosen)}")
    if hmac_secret is not None:
        return Auth("hmac", secret=hmac_secret).check(platform)
    if api_key is not None:
        return Auth("header", header_name=api_key_header or "x-api-key", header_value=api_key).check(platform)
    if api_key_header is not None:
        raise AuthError(f"{spell('api_key_header')} needs {spell('api_key')}")
    if basic is not None:
        user, sep, password = basic.partition(":")
        if not sep:
            raise AuthError(f"{spell('basic')} takes USER:PASS")
        return Auth("basic", username=user, password=password).check(platform)
    if authorization is not None:
        return Auth("authorization", authorization=authorization).check(platform)
    return Auth("none")
