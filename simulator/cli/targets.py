"""A target URL given on the command line: http(s), and one we may send to (loopback or the allow-list)."""

from __future__ import annotations

from .. import guard
from .errors import UsageProblem


def check_url(url: str) -> None:
    """A target we may not send to (not http(s), or not loopback / ACCESSRC_SIM_ALLOW_HOSTS) is bad usage."""
    if not url.lower().startswith(("http://", "https://")):
        raise UsageProblem(f"--url must be an http:// or https:// URL, got {url!r}")
    try:
        guard.check_target(url)
    except guard.TargetNotAllowed as exc:
        raise UsageProblem(str(exc)) from exc
