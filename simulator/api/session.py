"""Browser sessions for the dashboard, as notebook servers do it: the page never carries the admin key.

`serve` prints a one-time login URL with a token made at start (`/?token=…`); opening it, or posting the admin
key to `/dashboard/login`, sets an HttpOnly, SameSite=Strict cookie naming a session kept in memory (gone when the
server stops). A token opens one session, once: opened again, the link says it was used and how to log in again
(the admin key in the page's form). A session counts as the admin key on the simulator's own routes, never on the
platforms' stand-ins; a change (any method but GET/HEAD/OPTIONS) made with a session also needs
`X-Requested-With: accessrc-sim`, a header no other site can make a browser send here.
"""

from __future__ import annotations

import hashlib
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
    """The one-time login tokens of this process and the sessions they (or the admin key) opened."""

    def __init__(self, login_token: str | None = None):
        self._tokens: set[str] = set()
        self._used: OrderedDict[str, None] = OrderedDict()  # spent tokens' digests, to say "already used"
        self._ids: OrderedDict[str, None] = OrderedDict()
        self._lock = threading.Lock()
        self.login_token = self.new_login_token(login_token)  # the one `serve` prints at start

    def new_login_token(self, token: str | None = None) -> str:
        """A token that opens one session, once."""
        token = token or secrets.token_urlsafe(32)
        with self._lock:
            self._tokens.add(token)
            while len(self._tokens) > MAX_SESSIONS:
                self._tokens.pop()
        return token

    def redeem(self, given: str | None) -> str:
        """ "ok" (the token is spent now: open the session), "used" (it was spent before) or "invalid"."""
        if given is None:
            return "invalid"
        given_bytes = given.encode("utf-8", "surrogateescape")
        digest = hashlib.sha256(given_bytes).hexdigest()
        with self._lock:
            for token in self._tokens:
                if hmac.compare_digest(given_bytes, token.encode("utf-8")):
                    self._tokens.discard(token)
                    self._used[digest] = None
                    while len(self._used) > MAX_SESSIONS:
                        self._used.popitem(last=False)
                    return "ok"
            return "used" if digest in self._used else "invalid"

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

    def allows(self, session_id: str | None, method: str, csrf: str | None) -> bool:
        """A live session, and for a change (not GET/HEAD/OPTIONS) the header a cross-site page cannot set."""
        return self.valid(session_id) and (method in SAFE_METHODS or csrf == CSRF_VALUE)


def init_app(app: Flask) -> Sessions:
    sessions = Sessions(app.config.get("LOGIN_TOKEN"))
    app.extensions[EXTENSION] = sessions
    return sessions


def sessions() -> Sessions:
    return current_app.extensions[EXTENSION]


def cookie_name() -> str:
    """One cookie per port (cookies ignore ports): two simulators on one machine keep their own sessions."""
    return cookie_name_for(request.host, request.scheme)


def cookie_name_for(host: str, scheme: str) -> str:
    """The session cookie's name for a request to `host` (its Host header) over `scheme`."""
    port = host.rsplit(":", 1)[1] if ":" in host.rsplit("]", 1)[-1] else ("443" if scheme == "https" else "80")
    return f"{COOKIE_PREFIX}_{port}" if port.isdigit() else COOKIE_PREFIX


def has_session() -> bool:
    return sessions().valid(request.cookies.get(cookie_name()))


def start_session(response: Response) -> Response:
    response.set_cookie(
        cookie_name(), sessions().open(), httponly=True, samesite="Strict", path="/", secure=request.scheme == "https"
    )
    return response
