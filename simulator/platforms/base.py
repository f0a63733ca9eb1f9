"""What a platform is to the simulator: its auth kinds, delivery profiles, error envelope and the parsing of its
auth input. One `Platform` value per platform module; nothing here sends or stores anything."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..auth import Auth, AuthError

DOCUMENTED, ACCREDIT_LIKE = "documented", "accredit-like"
PROFILE_NAMES = (DOCUMENTED, ACCREDIT_LIKE)
OPTION_NAMES = ("hmac_secret", "api_key", "api_key_header", "basic", "authorization")  # CLI/library auth inputs


class ProfileError(ValueError):
    """A delivery profile that does not exist, or not for this platform."""


@dataclass(frozen=True)
class Profile:
    """How a platform delivers under one named profile: whether it retries, whether it sends X-JobId/X-JobAttempt.

    `retry_rule` and `header_rule` name the rules (simulator/rules/delivery.yaml) saying where each choice comes from.
    """

    platform: str
    retries: bool
    job_headers: bool
    name: str = DOCUMENTED
    retry_rule: str = ""
    header_rule: str = ""

    @property
    def retries_documented(self) -> bool:
        """False when the platform documents no retry policy and ours is a choice (the retry rule's source)."""
        from .. import rules  # the registry reads its YAML once, on first use

        return rules.get(self.retry_rule).documented

    def note(self, delays: tuple[float, ...]) -> str | None:
        """One line saying which parts of this delivery are our choice, not the platform's (None: all documented)."""
        if self.retries_documented:
            return None
        retries = (
            f"retries after {','.join(f'{d:g}' for d in delays)} s" if delays else "no retries"
        ) + f" are our choice ({self.platform} documents no retry policy; --retry-delays changes them)"
        headers = (
            "X-JobId/X-JobAttempt added (profile accredit-like, not documented for AccessRC)"
            if self.job_headers
            else "no X-JobId/X-JobAttempt (none documented; --profile accredit-like adds them)"
        )
        return f"{retries}; {headers}"


@dataclass(frozen=True)
class Platform:
    """One platform's behaviour as data, and the parsing of its auth input (options, JSON, scenario files).

    `auth_kinds[0]` is the default auth. `options` are the CLI/library auth options that apply (OPTION_NAMES).
    """

    name: str
    auth_kinds: tuple[str, ...]
    profiles: tuple[Profile, ...]  # the documented default first
    options: frozenset[str]
    parse_json: Callable[[Any], Auth]  # the auth object of the platform's own APIs (and the dashboard's)
    credential_fault_statuses: tuple[int, ...] = (401,)  # what a receiver answers to wrong/missing credentials
    event_field: str | None = None  # the body field naming the event, when the platform names it
    dedup_header: str | None = None  # the documented header a receiver deduplicates on
    one_subscription_per_event: bool = False
    options_note: str = ""  # said when an auth option does not apply

    # -- auth ------------------------------------------------------------------------------------
    def default_auth(self) -> Auth:
        return Auth(self.auth_kinds[0])

    @property
    def signs_with_keys(self) -> bool:
        """True when every delivery is signed with the simulator's RSA key pair (the keys must be loaded)."""
        return self.auth_kinds == ("rsa",)

    def check_auth(self, auth: Auth) -> Auth:
        if auth.kind not in self.auth_kinds:
            raise AuthError(
                f"{self.name} does not use {auth.kind!r} auth; it uses {', '.join(self.auth_kinds)}", "kind"
            )
        return auth.check_fields()

    def auth_from_file(self, data: Mapping[str, Any] | None) -> Auth:
        """A scenario file's `auth:` (Auth's own field names: kind, header_name, …); absent: the default."""
        if data is None:
            return self.default_auth()
        if not isinstance(data, Mapping):
            raise AuthError("auth must be a mapping", "auth")
        return self.check_auth(Auth.from_dict(data))

    def auth_from_json(self, value: Any) -> Auth:
        """The auth object the platform's own API takes (AccessRC's Subscribe `auth`, …), checked."""
        return self.check_auth(self.parse_json(value))

    def auth_from_options(
        self, spell: Callable[[str], str] = lambda name: name, *, rsa_padding: str = "pkcs1v15", **given: str | None
    ) -> Auth:
        """The auth that `send`'s options (or `simulator.testing.Sender`'s keywords) ask for; AuthError naming the
        options as `spell(name)` spells them (`--hmac-secret`, `hmac_secret`)."""
        given = {name: given.get(name) for name in OPTION_NAMES}
        wrong = [spell(name) for name, value in given.items() if value is not None and name not in self.options]
        if wrong:
            raise AuthError(f"{', '.join(wrong)} does not apply to {self.name} events{self.options_note}")
        if self.signs_with_keys:
            return self.check_auth(Auth("rsa", rsa_padding=rsa_padding))
        chosen = [spell(n) for n in ("hmac_secret", "api_key", "basic", "authorization") if given[n] is not None]
        if len(chosen) > 1:
            raise AuthError(f"choose one auth: {', '.join(chosen)}")
        if given["hmac_secret"] is not None:
            return self.check_auth(Auth("hmac", secret=given["hmac_secret"]))
        if given["api_key"] is not None:
            return self.check_auth(
                Auth("header", header_name=given["api_key_header"] or "x-api-key", header_value=given["api_key"])
            )
        if given["api_key_header"] is not None:
            raise AuthError(f"{spell('api_key_header')} needs {spell('api_key')}")
        if given["basic"] is not None:
            user, sep, password = given["basic"].partition(":")
            if not sep:
                raise AuthError(f"{spell('basic')} takes USER:PASS")
            return self.check_auth(Auth("basic", username=user, password=password))
        if given["authorization"] is not None:
            return self.check_auth(Auth("authorization", authorization=given["authorization"]))
        return self.default_auth()

    # -- delivery --------------------------------------------------------------------------------
    def profile(self, name: str | None = None) -> Profile:
        """The profile `name` (None: the documented default), or ProfileError naming the choices."""
        name = DOCUMENTED if name is None else name
        for found in self.profiles:
            if found.name == name:
                return found
        if name not in PROFILE_NAMES:
            raise ProfileError(f"profile must be one of {', '.join(PROFILE_NAMES)}, got {name!r}")
        raise ProfileError(
            f"profile {name} is for accessrc only; {self.name} delivers as its documents say "
            f"(profile: {', '.join(p.name for p in self.profiles)})"
        )
