"""The outbound guard: a delivery goes only to loopback or to hosts the configuration names.

Checked after DNS resolution, so a friendly-looking name that resolves to someone else's address is refused,
and every address a name resolves to must be allowed (the HTTP client may connect to any of them).
Allow-list entries: an IP address, a CIDR range (`10.1.2.0/24`, `fd00::/8`) or a host name (exact, case-insensitive;
its resolved addresses are then allowed for that name). From env ACCESSRC_SIM_ALLOW_HOSTS (comma-separated) plus
whatever the caller passes in. Loopback (127.0.0.0/8, ::1) is always allowed.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

ENV_ALLOW_HOSTS = "ACCESSRC_SIM_ALLOW_HOSTS"

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], Iterable[str]]


class TargetNotAllowed(ValueError):
    """A target URL whose host is not loopback and not on the allow-list (or cannot be resolved)."""


@dataclass(frozen=True)
class AllowList:
    networks: tuple[IPNetwork, ...] = ()
    names: frozenset[str] = frozenset()

    @classmethod
    def parse(cls, entries: Iterable[str], source: str = "allow-list") -> AllowList:
        networks, names = [], set()
        for raw in entries:
            entry = raw.strip()
            if not entry:
                continue
            if entry.startswith("[") and entry.endswith("]"):
                entry = entry[1:-1]
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
                continue
            except ValueError:
                pass
            name = entry.lower().rstrip(".")
            if "/" in name or ":" in name or " " in name or not name:
                raise TargetNotAllowed(f"{source}: {raw!r} is neither an IP address, a CIDR range nor a host name")
            names.add(name)
        return cls(tuple(networks), frozenset(names))

    def __add__(self, other: AllowList) -> AllowList:
        return AllowList(self.networks + other.networks, self.names | other.names)

    def describe(self) -> str:
        parts = ["loopback"] + [str(n) for n in self.networks] + sorted(self.names)
        return ", ".join(parts)


def configured(
    allow: Iterable[str] | str | AllowList | None = None, environ: dict[str, str] | None = None
) -> AllowList:
    """The allow-list in force: env ACCESSRC_SIM_ALLOW_HOSTS plus `allow` (a list, a comma-separated string
    or an AllowList)."""
    env = os.environ if environ is None else environ
    result = AllowList.parse(env.get(ENV_ALLOW_HOSTS, "").split(","), f"env {ENV_ALLOW_HOSTS}")
    if isinstance(allow, AllowList):
        return result + allow
    if isinstance(allow, str):
        allow = allow.split(",")
    return result + AllowList.parse(allow or (), "allow-list")


def system_resolve(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [info[4][0] for info in infos]


def _address(text: str) -> IPAddress:
    address = ipaddress.ip_address(text.split("%", 1)[0])  # drop an IPv6 zone id
    mapped = getattr(address, "ipv4_mapped", None)
    return mapped or address


def check_target(
    url: str,
    allow: Iterable[str] | str | AllowList | None = None,
    resolve: Resolver = system_resolve,
    environ: dict[str, str] | None = None,
) -> list[str]:
    """Refuse (TargetNotAllowed) unless every address `url`'s host resolves to is loopback or allowed.

    Returns the resolved addresses. Never opens a connection: only a name lookup (none for an IP literal).
    """
    rules = configured(allow, environ)
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise TargetNotAllowed(f"target URL {url!r} is malformed: {exc}") from exc
    try:
        port = parts.port if parts.port is not None else (443 if parts.scheme.lower() == "https" else 80)
    except ValueError as exc:  # out of range, or not a number
        raise TargetNotAllowed(f"target URL {url!r} has a bad port ({exc}): a port is 1-65535") from exc
    if not 1 <= port <= 65535:
        raise TargetNotAllowed(f"target URL {url!r} has port {port}: a port is 1-65535")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise TargetNotAllowed(f"target URL {url!r} has no host")
    name_allowed = host.lower() in rules.names
    try:
        addresses = [_address(host)]
    except ValueError:  # not an address literal: a name, resolved below
        try:
            addresses = [_address(a) for a in resolve(host, port)]
        except (OSError, UnicodeError) as exc:
            raise TargetNotAllowed(f"refusing to send to {host}: the name does not resolve ({exc})") from exc
        if not addresses:
            raise TargetNotAllowed(f"refusing to send to {host}: the name resolves to no address") from None
    refused = [
        a
        for a in addresses
        if not (a.is_loopback or name_allowed or any(a in net for net in rules.networks if a.version == net.version))
    ]
    if refused:
        shown = ", ".join(sorted({str(a) for a in refused}))
        via = "" if shown == host else f" (resolves to {shown})"
        raise TargetNotAllowed(
            f"refusing to send to {host}{via}: not loopback and not on the allow-list ({rules.describe()}). "
            f"Allow it with {ENV_ALLOW_HOSTS}={host} (comma-separated hosts, IPs or CIDR ranges)"
        )
    return [str(a) for a in addresses]
