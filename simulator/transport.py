"""The HTTP transport of every delivery: connections go to the addresses the outbound guard checked.

The guard resolves a target's name and checks each address; if the HTTP stack then resolved the name again to
connect, a second DNS answer (rebinding) could send the request elsewhere. Here the connection is made to the
checked addresses only, in the order the guard got them, while the URL keeps its name: the Host header, the TLS
server name (SNI) and the certificate's host-name check are the name's, as before.

`delivery.post()` attaches the checked addresses to each request (`request.checked_addresses`); a request sent
through a pinned session without them is checked here, once, and pinned to that answer. Pools are keyed by the
checked addresses too, so a kept-alive connection is only reused by a request whose own check saw its address.
A proxy would resolve the name itself, so a pinned session never sends through one.
"""

from __future__ import annotations

import collections
import functools
import socket

import requests
from requests.adapters import HTTPAdapter
from requests.utils import select_proxy
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError
from urllib3.poolmanager import PoolKey, _default_key_normalizer
from urllib3.util import connection as urllib3_connection

from . import guard

_PinnedKey = collections.namedtuple("_PinnedKey", PoolKey._fields + ("key_checked_addresses",))
_KEY = functools.partial(_default_key_normalizer, _PinnedKey)


class _PinnedMixin:
    """A urllib3 connection that connects to `checked_addresses` (tried in order), never resolving `host`."""

    def __init__(self, *args, checked_addresses: tuple[str, ...] = (), **kwargs):
        super().__init__(*args, **kwargs)
        self.checked_addresses = tuple(checked_addresses)

    def _new_conn(self) -> socket.socket:
        if not self.checked_addresses:
            raise NewConnectionError(self, "not sent: no address checked by the outbound guard")
        failure: Exception | None = None
        for address in self.checked_addresses:
            try:
                return urllib3_connection.create_connection(
                    (address, self.port),
                    self.timeout,
                    source_address=self.source_address,
                    socket_options=self.socket_options,
                )
            except TimeoutError as exc:
                failure = ConnectTimeoutError(
                    self, f"Connection to {self.host} ({address}) timed out. (connect timeout={self.timeout})"
                )
                failure.__cause__ = exc
            except OSError as exc:
                failure = NewConnectionError(self, f"Failed to establish a new connection: {exc}")
                failure.__cause__ = exc
        raise failure


class _PinnedHTTPConnection(_PinnedMixin, HTTPConnection):
    pass


class _PinnedHTTPSConnection(_PinnedMixin, HTTPSConnection):
    pass


class _PinnedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _PinnedHTTPConnection


class _PinnedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _PinnedHTTPSConnection


class PinnedAdapter(HTTPAdapter):
    """A requests transport adapter whose connections go to the guard-checked addresses of each request."""

    def init_poolmanager(self, *args, **kwargs) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _PinnedHTTPPool, "https": _PinnedHTTPSPool}
        self.poolmanager.key_fn_by_scheme = {"http": _KEY, "https": _KEY}

    def get_connection_with_tls_context(self, request, verify, proxies=None, cert=None):
        if select_proxy(request.url, proxies):  # a proxy would resolve the name itself: nothing to pin
            raise requests.ConnectionError(
                "not sent: deliveries never go through a proxy (the outbound guard checks the target's own addresses)",
                request=request,
            )
        return super().get_connection_with_tls_context(request, verify, proxies, cert)

    def build_connection_pool_key_attributes(self, request, verify, cert=None):
        host_params, pool_kwargs = super().build_connection_pool_key_attributes(request, verify, cert)
        checked = getattr(request, "checked_addresses", None)
        if checked is None:  # sent without delivery.post(): check here (TargetNotAllowed is a ValueError: InvalidURL)
            checked = guard.check_target(request.url)
        pool_kwargs["checked_addresses"] = tuple(checked)
        return host_params, pool_kwargs


def pin(session: requests.Session, url: str) -> requests.Session:
    """`session` with a PinnedAdapter serving `url`'s scheme (mounted once; the adapter it replaces is closed)."""
    if not isinstance(session.get_adapter(url), PinnedAdapter):
        prefix = url.split(":", 1)[0].lower() + "://"
        replaced = session.adapters.get(prefix)
        session.mount(prefix, PinnedAdapter())
        if replaced is not None:
            replaced.close()
    return session


def new_session() -> requests.Session:
    """A session for deliveries: pinned connections, no proxies or settings from the environment."""
    session = requests.Session()
    session.trust_env = False  # no proxies from the environment: we talk to the target only
    for prefix in ("http://", "https://"):
        session.mount(prefix, PinnedAdapter())
    return session
