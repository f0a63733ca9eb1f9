"""The platforms the simulator plays, one module each (accessrc, accredit, reachfive): auth kinds, delivery
profiles, the parsing of auth input, and the few behaviours that differ. Code elsewhere asks `get(name)` instead
of comparing platform names."""

from __future__ import annotations

from . import accessrc, accredit, reachfive
from .base import ACCREDIT_LIKE, DOCUMENTED, PROFILE_NAMES, Platform, Profile, ProfileError

PLATFORMS: dict[str, Platform] = {p.name: p for p in (accessrc.PLATFORM, accredit.PLATFORM, reachfive.PLATFORM)}
NAMES = tuple(PLATFORMS)

__all__ = [
    "ACCREDIT_LIKE",
    "DOCUMENTED",
    "NAMES",
    "PLATFORMS",
    "PROFILE_NAMES",
    "Platform",
    "Profile",
    "ProfileError",
    "get",
    "profile",
]


def get(name: str) -> Platform:
    found = PLATFORMS.get(name)
    if found is None:
        raise KeyError(f"platform must be one of {', '.join(NAMES)}, got {name!r}")
    return found


def profile(platform: str, name: str | None = None) -> Profile:
    """The delivery profile `name` of `platform` (None: its documented default)."""
    return get(platform).profile(name)
