"""Browser sessions for the dashboard, as notebook servers do it: the page never carries the admin key.

`serve` prints a login URL with a token made at start (`/?token=…`); opening it, or posting the admin key to
`/dashboard/login`, sets an HttpOnly, SameSite=Strict cookie naming a session kept in memory (gone when the server
stops). A session counts as the admin key on the simulator's own routes, never on the platforms' stand-ins; a change
(any method but GET/HEAD/OPTIONS) made with a session also needs `X-Requested-With: accessrc-sim`, a header no other
site can make a browser send here.
"""

from __future__ import annotations

import hmac
import secrets
import threading
from collections import OrderedDict

from flask import Flask, Response, current_app, request

EXTENSION = "accessrc_sim_sessions"
COOKIE_PREFIX = "accessrc_sim_session"
CSRF_HEADER, CSRF_VALUE = "X-Requested-With", "accessrc-sim"
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
MAX_SESSIONS = 1000  # the oldest beyond this are forgotten (their browsers log in again)


class Sessions:
    """The login token of this process and the sessions it opened."""

    def __init__(self, login_token: str | None = None):
        self.login_token = login_token or secrets.token_urlsafe(32)
        self._ids: OrderedDict[str, None] = OrderedDict()
        self._lock = threading.Lock()

    def check_login_token(self, given: str | None) -> bool:
        return given is not None and hmac.compare_digest(
            given.encode("utf-8", "surrogateescape"), self.login_token.encode("utf-8")
        )

    def open(self) -> str:
        session_id = secrets.token_urlsafe(32)
        with self._lock:
            self._ids[session_id] = None
            while len(self._ids) > MAX_SESSIONS:
                self._ids.popitem(last=False)
        return session_id

    def valid(self, session_id: str | None) -> bool:
        if not session_id:
            return False
        with self._lock:
            return session_id in self._ids


def init_app(app: Flask) -> Sessions:
    sessions = Sessions(app.config.get("LOGIN_TOKEN"))
    app.extensions[EXTENSION] = sessions
    return sessions


def sessions() -> Sessions:
    return current_app.extensions[EXTENSION]


def cookie_name() -> str:
    """One cookie per port (cookies ignore ports): two simulators on one machine keep their own sessions."""
    host = request.host
    port = host.rsplit(":", 1)[1] if ":" in host.rsplit("]", 1)[-1] else ("443" if request.scheme == "https" else "80")
    return f"{COOKIE_PREFIX}_{port}" if port.isdigit() else COOKIE_PREFIX


def has_session() -> bool:
    return sessions().valid(request.cookies.get(cookie_name()))


def session_allows() -> bool:
    """True when the request carries a live session and, for a change, the header a cross-site page cannot set."""
    if not has_session():
        return False
    return request.method in SAFE_METHODS or request.headers.get(CSRF_HEADER) == CSRF_VALUE


def start_session(response: Response) -> Response:
    response.set_cookie(
        cookie_name(), sessions().open(), httponly=True, samesite="Strict", path="/", secure=request.scheme == "https"
    )
    return response
