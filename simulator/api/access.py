"""Who may call and what they reach: the admin-key check of the simulator's routes and the running Services."""

from __future__ import annotations

from flask import current_app, request

from ..services import EXTENSION, Services
from .errors import ApiError
from .session import session_allows


def services() -> Services:
    """The running simulator of this app (simulator.services), as create_app stored it."""
    return current_app.extensions[EXTENSION]


def check_admin(header_kinds: tuple[str, ...], session: bool = False) -> None:
    """401 unless the admin key is given as one of `header_kinds` ("x-api-key", "bearer"), or, where `session`,
    the request carries a dashboard session (simulator.api.session)."""
    if session and session_allows():
        return
    given = []
    if "x-api-key" in header_kinds and request.headers.get("x-api-key") is not None:
        given.append(request.headers.get("x-api-key"))
    if "bearer" in header_kinds:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "bearer" and token:
            given.append(token.strip())
    svc = services()
    if not any(svc.check_api_key(value) for value in given):
        where = " or ".join(
            "the x-api-key header" if k == "x-api-key" else "Authorization: Bearer <key>" for k in header_kinds
        )
        if session:
            where += " (or log in to the dashboard; its changes also need X-Requested-With: accessrc-sim)"
        raise ApiError(401, f"missing or wrong API key: give the simulator's admin key as {where}")


def require_admin() -> None:
    """The simulator's own routes: the admin key as x-api-key or Bearer, or a dashboard session (a before_request)."""
    check_admin(("x-api-key", "bearer"), session=True)
