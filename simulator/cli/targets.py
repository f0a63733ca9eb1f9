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


def parse_url_for(values: tuple[str, ...], key: str = "EVENT", known: tuple[str, ...] | None = None) -> dict[str, str]:
    """`--url-for KEY=URL` options (KEY an event for conformance, a platform for run) as a mapping, each URL
    checked; a bad, repeated or unknown (not in `known`) one is a usage error."""
    out: dict[str, str] = {}
    for text in values:
        name, sep, url = text.partition("=")
        name, url = name.strip(), url.strip()
        if not sep or not name or not url:
            raise UsageProblem(f"--url-for takes {key}=URL, got {text!r}")
        if known is not None and name not in known:
            raise UsageProblem(f"--url-for {text}: {key} must be one of {', '.join(known)}")
        if name in out:
            raise UsageProblem(f"--url-for: {name} is given twice")
        check_url(url)
        out[name] = url
    return out
