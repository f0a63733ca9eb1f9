"""Who may call and what they reach: the one access decision of every route, and the running Services.

`RULES` says, per blueprint, where the admin key may be given (the platforms' stand-ins take it as their platform
does; the simulator's own routes also take a dashboard session); `refusal()` decides from the request's method,
headers, query and session alone, so the same function runs in the app (a before_request, `init_app`) and in the
HTTP server as soon as a request's headers are in, before its body is read (simulator.api.edge).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from flask import Flask, current_app, request

from ..services import EXTENSION, Services
from . import session as sessions
from .errors import ApiError


def services() -> Services:
    """The running simulator of this app (simulator.services), as create_app stored it."""
    return current_app.extensions[EXTENSION]


@dataclass(frozen=True)
class Rule:
    """Where a route takes the admin key: `headers` ("x-api-key", "bearer"), a dashboard session, a query
    parameter (the stream's: a browser EventSource sends no headers)."""

    headers: tuple[str, ...]
    session: bool = False
    query: str | None = None


ADMIN = Rule(("x-api-key", "bearer"), session=True)  # the simulator's own routes
RULES: dict[str, Rule | None] = {
    "health": None,  # open: a container's health check or a load balancer asks
    "openapi": None,  # open: the API's description
    "accessrc": Rule(("x-api-key",)),  # rule accessrc.api.key-header
    "provider_calls": Rule(("x-api-key",)),  # rule accessrc.api.key-header
    "accredit": Rule(("bearer",)),  # rule accredit.api.bearer
    "print_queue": Rule(("bearer",)),  # rule accredit.api.bearer
    "stream": Rule(("x-api-key", "bearer"), session=True, query="api_key"),
}
DASHBOARD_API = "/dashboard/api/"  # the dashboard's page, assets and login form are open; its API is not


def rule_for(blueprint: str | None, path: str) -> Rule | None:
    """The rule of a route (None: open). No route (a 404 or 405 to answer) is open here, in the app, which reads no
    body before it answers; the HTTP server answers a request with a body to no route before reading it
    (simulator.api.edge). A blueprint not named in RULES is one of the simulator's own: the admin key or a session."""
    if blueprint is None:
        return None
    if blueprint == "dashboard":
        return ADMIN if path.startswith(DASHBOARD_API) else None
    return RULES.get(blueprint, ADMIN)


def refusal(
    rule: Rule | None,
    method: str,
    header: Callable[[str], str | None],
    query: Mapping[str, str],
    session_id: str | None,
    svc: Services,
    sessions_: sessions.Sessions,
) -> str | None:
    """Why the request may not reach its route (the 401's message), or None when it may."""
    if rule is None:
        return None
    if rule.query and rule.query in query:
        return None if svc.check_api_key(query[rule.query]) else f"wrong {rule.query}"
    if rule.session and sessions_.allows(session_id, method, header(sessions.CSRF_HEADER)):
        return None
    given = []
    if "x-api-key" in rule.headers and header("x-api-key") is not None:
        given.append(header("x-api-key"))
    if "bearer" in rule.headers:
        scheme, _, token = (header("Authorization") or "").partition(" ")
        if scheme.lower() == "bearer" and token:
            given.append(token.strip())
    if any(svc.check_api_key(value) for value in given):
        return None
    where = " or ".join(
        "the x-api-key header" if k == "x-api-key" else "Authorization: Bearer <key>" for k in rule.headers
    )
    if rule.session:
        where += " (or log in to the dashboard; its changes also need X-Requested-With: accessrc-sim)"
    return f"missing or wrong API key: give the simulator's admin key as {where}"


def check_access() -> None:
    """The app's before_request: 401 in the route's envelope unless `refusal` lets the request through."""
    message = refusal(
        rule_for(request.blueprint, request.path),
        request.method,
        request.headers.get,
        request.args,
        request.cookies.get(sessions.cookie_name()),
        services(),
        sessions.sessions(),
    )
    if message is not None:
        raise ApiError(401, message)


def init_app(app: Flask) -> None:
    app.before_request(check_access)
