"""The HTTP edge `serve` runs: waitress, with the access decision made as soon as a request's headers are in.

waitress reads a request's whole body (up to its max_request_body_size) before the app sees the request, so an app
that checks the key first still buffers a caller's body, key or no key. Here waitress's header parser asks
simulator.api.access (`rule_for` on the route the app would dispatch to, then `refusal`: the same function the app's
before_request calls) once the headers are parsed: a request with a body that would be refused is completed at
once, its body unread, with the 401 the app answers on that route (its envelope, from simulator.api.errors) and
`Connection: close`. A request with a body to a path no route takes is answered the same way, key or no key, with
the app's 404 (or its 405 and `Allow`, for a method the path does not take); one to a path the app would redirect
(`//api//subscriptions`, a missing or extra trailing slash) gets that 404 too, naming the route's path, instead of a
308 after its body was read. Requests without a body, and every request allowed through, go to the app as before
(which decides again, in the same function). The check reads no database: the admin key's hash is the one
Services.key_hash keeps, re-read by a thread of its own, so a stalled database never stalls this one thread that
every connection goes through.
"""

from __future__ import annotations

import json
import logging
from urllib.parse import parse_qsl, urlsplit

from flask import Flask
from waitress.channel import HTTPChannel
from waitress.parser import HTTPRequestParser
from waitress.server import BaseWSGIServer, create_server
from waitress.utilities import Error
from werkzeug.datastructures import Headers
from werkzeug.exceptions import HTTPException, MethodNotAllowed
from werkzeug.http import parse_cookie
from werkzeug.routing import RequestRedirect

from ..services import EXTENSION
from . import access, errors
from . import session as sessions

log = logging.getLogger("accessrc_sim.edge")


REASONS = {401: "Unauthorized", 404: "Not Found", 405: "Method Not Allowed"}


class Answered(Error):
    """The app's answer (a 401, 404 or 405 in the path's envelope), given by waitress instead of its own text/plain
    errors, before the request's body is read (waitress adds `Connection: close`)."""

    def __init__(self, code: int, body: bytes, headers: tuple[tuple[str, str], ...] = ()):
        super().__init__(body)
        self.code, self.reason, self.headers = code, REASONS[code], headers

    def to_response(self, ident=None):
        return f"{self.code} {self.reason}", [("Content-Type", "application/json"), *self.headers], self.body


def answer(status: int, message: str, path: str, headers: tuple[tuple[str, str], ...] = ()) -> Answered:
    body = errors.envelope(status, message, path=path)
    return Answered(status, json.dumps(body, ensure_ascii=False).encode("utf-8"), headers)


class Gate:
    """The app's access decision for a request known only by its parsed headers."""

    def __init__(self, app: Flask, host: str = "localhost"):
        self.app = app
        self.routes = app.url_map.bind(host)

    def blueprint(self, method: str, path: str) -> str | None:
        """The blueprint of the route the app would dispatch `method path` to ("": a route outside any blueprint);
        no route (a 404, 405 or redirect to answer) raises werkzeug's HTTPException (RequestRedirect is one)."""
        endpoint, _ = self.routes.match(path, method)
        return endpoint.rpartition(".")[0]

    def refusal(self, parser: HTTPRequestParser, server_port: int) -> Answered | None:
        """The answer for a request with a body, known by its headers, when it must not reach the app (its body
        unread), or None when it may."""
        # PATH_INFO as Flask reads it: waitress's latin-1 text of the bytes, which are UTF-8
        path = parser.path.encode("latin-1").decode("utf-8", "replace")
        shown = "/" + path.lstrip("/")  # request.path, as the app's messages and envelopes read it
        method = parser.command.upper()
        try:
            blueprint = self.blueprint(method, path)
        except RequestRedirect as exc:  # the app would answer 308 (merged slashes, a trailing slash), body read
            where = urlsplit(exc.new_url).path
            return answer(
                404, f"no route {method} {shown} (a request with a body is not redirected: use {where})", shown
            )
        except MethodNotAllowed as exc:
            allow = (("Allow", ", ".join(exc.valid_methods)),) if exc.valid_methods else ()  # werkzeug's
            return answer(405, f"{method} is not allowed on {shown}", shown, allow)
        except HTTPException:  # NotFound
            return answer(404, f"no route {method} {shown}", shown)
        rule = access.rule_for(blueprint or None, shown)  # `//dashboard/api/…` is routed: request.path's rule
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
        return None if message is None else answer(401, message, shown)


def guarded_channel(gate: Gate, server_port: int) -> type[HTTPChannel]:
    """waitress's channel whose parser asks `gate` once a request with a body has its headers."""

    class Parser(HTTPRequestParser):
        def parse_header(self, header_plus):
            super().parse_header(header_plus)
            if self.content_length > 0 or self.chunked:  # a body to read: decide before reading it
                try:
                    refused = gate.refusal(self, server_port)
                except Exception:  # a bug here must not take the server down: the app decides, as before
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
