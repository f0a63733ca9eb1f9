"""Browser sessions for the dashboard, as notebook servers do it: the page never carries the admin key.

`serve` prints a one-time login URL with a token made at start (`/?token=…`); opening it, or posting the admin
key to `/dashboard/login`, sets an HttpOnly, SameSite=Strict cookie naming a session kept in memory (gone when the
server stops). A token opens one session, once: opened again, the link says it was used and how to log in again
(the admin key in the page's form). A session counts as the admin key on the simulator's own routes, never on the
platforms' stand-ins; a change (any method but GET/HEAD/OPTIONS) made with a session also needs
`X-Requested-With: accessrc-sim`, a header no other site can make a browser send here.

Sessions and login links are bound to the admin key in force when they were made (its hash, as
Services.key_hash reads it): a rotation (`accessrc-sim admin-key --rotate`, from any process) ends every session and
every unused link within a second, the time the server takes to see the new hash. A session also ends
SESSION_LIFETIME (12 h) after it was opened, however busy; the browser then logs in again.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from flask import Flask, Response, current_app, request

from ..services import EXTENSION as SERVICES

EXTENSION = "accessrc_sim_sessions"
COOKIE_PREFIX = "accessrc_sim_session"
CSRF_HEADER, CSRF_VALUE = "X-Requested-With", "accessrc-sim"
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
MAX_SESSIONS = 1000  # the oldest beyond this are forgotten (their browsers log in again)
SESSION_LIFETIME = 12 * 3600.0  # seconds a session lasts from its login, used or not (a working day and then some)


class Sessions:
    """The one-time login tokens of this process and the sessions they (or the admin key) opened, each kept with the
    admin key's hash it was made under (`key_hash()`, the one in force) and, for a session, when it ends."""

    def __init__(
        self,
        login_token: str | None = None,
        key_hash: Callable[[], str | None] = lambda: None,
        lifetime: float = SESSION_LIFETIME,
        clock: Callable[[], float] = time.monotonic,
    ):
        self._key_hash = key_hash
        self._lifetime = lifetime
        self._clock = clock
        self._tokens: dict[str, str | None] = {}  # token -> the key hash it was made under
        self._used: OrderedDict[str, None] = OrderedDict()  # spent tokens' digests, to say "already used"
        self._ids: OrderedDict[str, tuple[str | None, float]] = OrderedDict()  # id -> (key hash, ends at)
        self._lock = threading.Lock()
        self.login_token = self.new_login_token(login_token)  # the one `serve` prints at start

    def new_login_token(self, token: str | None = None) -> str:
        """A token that opens one session, once, while the admin key it was made under is in force."""
        token = token or secrets.token_urlsafe(32)
        key = self._key_hash()
        with self._lock:
            self._tokens[token] = key
            while len(self._tokens) > MAX_SESSIONS:
                del self._tokens[next(iter(self._tokens))]
        return token

    def redeem(self, given: str | None) -> str:
        """ "ok" (the token is spent now: open the session), "used" (it was spent before), "rotated" (the admin
        key it was made under has been replaced: the link is dead) or "invalid"."""
        if given is None:
            return "invalid"
        given_bytes = given.encode("utf-8", "surrogateescape")
        digest = hashlib.sha256(given_bytes).hexdigest()
        key = self._key_hash()
        with self._lock:
            for token, made_under in list(self._tokens.items()):
                if hmac.compare_digest(given_bytes, token.encode("utf-8")):
                    del self._tokens[token]
                    if key is None or made_under != key:
                        return "rotated"
                    self._used[digest] = None
                    while len(self._used) > MAX_SESSIONS:
                        self._used.popitem(last=False)
                    return "ok"
            return "used" if digest in self._used else "invalid"

    def open(self) -> str:
        session_id = secrets.token_urlsafe(32)
        key = self._key_hash()
        with self._lock:
            self._ids[session_id] = (key, self._clock() + self._lifetime)
            while len(self._ids) > MAX_SESSIONS:
                self._ids.popitem(last=False)
        return session_id

    def valid(self, session_id: str | None) -> bool:
        """A session opened under the admin key in force, less than its lifetime ago (one that is not is forgotten)."""
        if not session_id:
            return False
        key = self._key_hash()
        with self._lock:
            held = self._ids.get(session_id)
            if held is None:
                return False
            if key is None or held[0] != key or self._clock() >= held[1]:
                del self._ids[session_id]
                return False
            return True

    def allows(self, session_id: str | None, method: str, csrf: str | None) -> bool:
        """A live session, and for a change (not GET/HEAD/OPTIONS) the header a cross-site page cannot set."""
        return self.valid(session_id) and (method in SAFE_METHODS or csrf == CSRF_VALUE)


def init_app(app: Flask) -> Sessions:
    sessions = Sessions(app.config.get("LOGIN_TOKEN"), app.extensions[SERVICES].key_hash)
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
    )  # no expiry date: gone when the browser closes; the server ends it after SESSION_LIFETIME anyway
    return response
