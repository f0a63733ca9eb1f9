"""The HTTP edge `serve` runs: waitress, with the access decision made as soon as a request's headers are in.

waitress reads a request's whole body (up to its max_request_body_size) before the app sees the request, so an app
that checks the key first still buffers a caller's body, key or no key. Here waitress's header parser asks
simulator.api.access (`rule_for` on the route the app would dispatch to, then `refusal`: the same function the app's
before_request calls) once the headers are parsed: a request with a body that would be refused is completed at
once, its body unread, with the 401 the app answers on that route (its envelope, from simulator.api.errors) and
`Connection: close`. Requests without a body, and every request allowed through, go to the app as before (which
decides again, in the same function).
"""

from __future__ import annotations

import json
import logging
from urllib.parse import parse_qsl

from flask import Flask
from waitress.channel import HTTPChannel
from waitress.parser import HTTPRequestParser
from waitress.server import BaseWSGIServer, create_server
from waitress.utilities import Error
from werkzeug.datastructures import Headers
from werkzeug.exceptions import HTTPException
from werkzeug.http import parse_cookie
from werkzeug.routing import RequestRedirect

from ..services import EXTENSION
from . import access, errors
from . import session as sessions

log = logging.getLogger("accessrc_sim.edge")


class Refused(Error):
    """The app's 401 for a route, answered by waitress instead of its own text/plain errors."""

    code = 401
    reason = "Unauthorized"

    def to_response(self, ident=None):
        return f"{self.code} {self.reason}", [("Content-Type", "application/json")], self.body


class Gate:
    """The app's access decision for a request known only by its parsed headers."""

    def __init__(self, app: Flask, host: str = "localhost"):
        self.app = app
        self.routes = app.url_map.bind(host)

    def blueprint(self, method: str, path: str) -> str | None:
        """The blueprint of the route the app would dispatch `method path` to (None: no route, a 404 or 405)."""
        try:
            endpoint, _ = self.routes.match(path, method)
        except (HTTPException, RequestRedirect):
            return None
        return endpoint.rpartition(".")[0] or None

    def refusal(self, parser: HTTPRequestParser, server_port: int) -> Refused | None:
        # PATH_INFO as Flask reads it: waitress's latin-1 text of the bytes, which are UTF-8
        path = parser.path.encode("latin-1").decode("utf-8", "replace")
        method = parser.command.upper()
        rule = access.rule_for(self.blueprint(method, path), path)
        if rule is None:
            return None
        headers = Headers([(key.replace("_", "-"), value) for key, value in parser.headers.items()])
        host = headers.get("Host") or f"localhost:{server_port}"
        cookie = parse_cookie(headers.get("Cookie", "")).get(sessions.cookie_name_for(host, parser.url_scheme))
        query = dict(reversed(parse_qsl(parser.query, keep_blank_values=True)))  # the first of a repeated name
        message = access.refusal(
            rule,
            method,
            headers.get,
            query,
            cookie,
            self.app.extensions[EXTENSION],
            self.app.extensions[sessions.EXTENSION],
        )
        if message is None:
            return None
        body = errors.envelope(401, message, path=path)
        return Refused(json.dumps(body, ensure_ascii=False).encode("utf-8"))


def guarded_channel(gate: Gate, server_port: int) -> type[HTTPChannel]:
    """waitress's channel whose parser asks `gate` once a request with a body has its headers."""

    class Parser(HTTPRequestParser):
        def parse_header(self, header_plus):
            super().parse_header(header_plus)
            if self.content_length > 0 or self.chunked:  # a body to read: decide before reading it
                try:
                    refused = gate.refusal(self, server_port)
                except Exception:  # e.g. the database is unreachable: the app decides, and answers, as before
                    log.exception("the access check after the headers of %s %s failed", self.command, self.path)
                    refused = None
                if refused is not None:
                    self.error = refused
                    self.completed = True
                    self.expect_continue = False  # no "100 Continue": the body is not wanted
                    self.connection_close = True

    return type("GuardedChannel", (HTTPChannel,), {"parser_class": Parser})


def create_guarded_server(app: Flask, **options):
    """waitress's create_server(app, **options), each of its listening servers checking access after the headers."""
    gate = Gate(app)
    listening: dict = {}
    server = create_server(app, map=listening, **options)
    for dispatcher in list(listening.values()):
        if isinstance(dispatcher, BaseWSGIServer):
            dispatcher.channel_class = guarded_channel(gate, dispatcher.effective_port)
    return server
