"""Errors are values (ApiError); one handler turns them into each API family's documented envelope.

Accredit routes answer `{"code": "ACR_…", "message": …, "field": …}`; AccessRC routes and the simulator's own
routes answer the AccessRC envelope `{"error": {"code", "message", "type", "field"}, "data": null, "status": "failed"}`.
The simulator's own routes answer success in the same envelope (`success`): `{"status": "success", "data": …,
"error": null}`, with a list's paging and counts in `meta`.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

from flask import Flask, Response, current_app, request
from werkzeug.exceptions import HTTPException

from ..services import FireError
from ..store import storage_full

log = logging.getLogger("accessrc_sim.api")

TYPES = {
    400: "BadRequest",
    401: "Unauthorized",
    404: "NotFound",
    405: "MethodNotAllowed",
    409: "Conflict",
    413: "PayloadTooLarge",
    415: "UnsupportedMediaType",
    500: "Exception",
    503: "ServiceUnavailable",
}

# Accredit's documented codes (accredit.md); the HTTP status is the one the docs give for each.
ACR_INVALID_INPUT = "ACR_01.000.000"
ACR_MISSING = "ACR_01.000.001"
ACR_INVALID_CONTENTS = "ACR_01.000.003"
ACR_INVALID_LENGTH = "ACR_01.000.004"
ACR_NO_SUBSCRIPTION = "ACR_02.003.000"
ACR_UNKNOWN_EVENT = "ACR_02.003.001"
ACR_DUPLICATE = "ACR_02.003.002"
ACR_ZIP_NOT_FOUND = "ACR_02.004.000"  # Print Queue (rules accredit.api.print-queue.*)
ACR_ZIP_METADATA_NOT_FOUND = "ACR_02.004.001"
ACR_INVALID_PRINT_STATUS = "ACR_02.004.002"
ACR_UNAUTHORISED = "ACR_00.001.002"  # "user is not an API user": the closest documented 401 code
ACR_INTERNAL = "ACR_00.000.000"


@dataclass
class ApiError(Exception):
    status: int
    message: str
    field: str | None = None
    acr_code: str | None = None  # the Accredit code when raised on an Accredit route

    def __str__(self) -> str:
        return self.message


def bad_request(message: str, field: str | None = None, acr_code: str = ACR_INVALID_CONTENTS) -> ApiError:
    return ApiError(400, message, field, acr_code)


def missing(field: str) -> ApiError:
    return ApiError(400, f"{field} is required", field, ACR_MISSING)


def enqueue_error(exc: Exception) -> ApiError:
    """A refused send or firing (services.FireError, delivery.DeliveryError) as the 400 naming its field."""
    if isinstance(exc, FireError):
        detail = "; ".join(exc.problems) if exc.problems else str(exc)
        return bad_request(detail, exc.field or "overrides")
    return bad_request(str(exc), "url")


def _accredit_error(status: int, message: str, field: str | None, acr_code: str | None) -> dict:
    """Accredit's `{"code", "message"}` error body (its ACR codes), with our `field`."""
    code = acr_code or (ACR_UNAUTHORISED if status == 401 else ACR_INTERNAL if status >= 500 else ACR_INVALID_INPUT)
    body: dict[str, Any] = {"code": code, "message": message}
    if field:
        body["field"] = field
    return body


def _accessrc_error(status: int, message: str, field: str | None, acr_code: str | None) -> dict:
    """AccessRC's `{"error", "data", "status"}` envelope: also the simulator's own API's."""
    error: dict[str, Any] = {"code": status, "message": message, "type": TYPES.get(status, "Error")}
    if field:
        error["field"] = field
    return {"error": error, "data": None, "status": "failed"}


ACCREDIT_API = ("/api/webhookSubscription", "/api/printQueue")  # Accredit's APIs answer its error shape


def envelope(
    status: int, message: str, field: str | None = None, acr_code: str | None = None, path: str | None = None
) -> dict:
    path = path if path is not None else request.path
    build = _accredit_error if path.startswith(ACCREDIT_API) else _accessrc_error
    return build(status, message, field, acr_code)


def json_response(body: Any, status: int = 200) -> Response:
    return Response(json.dumps(body, ensure_ascii=False), status=status, mimetype="application/json")


def success(data: Any, status: int = 200, meta: dict | None = None) -> Response:
    """The simulator's own routes' success body: the error envelope's shape, `data` the object or the list."""
    body: dict[str, Any] = {"status": "success", "data": data, "error": None}
    if meta is not None:
        body["meta"] = meta
    return json_response(body, status)


def init_app(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def api_error(exc: ApiError):
        return json_response(envelope(exc.status, exc.message, exc.field, exc.acr_code), exc.status)

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        status = exc.code or 500
        if status == 404:
            message = f"no route {request.method} {request.path}"
        elif status == 405:
            message = f"{request.method} is not allowed on {request.path}"
        elif status == 413:
            limit = current_app.config.get("MAX_CONTENT_LENGTH")
            message = f"request body is larger than the {limit}-byte limit" if limit else "request body is too large"
        else:
            message = exc.description or exc.name
        response = json_response(envelope(status, message), status)
        if status == 405 and exc.get_response().headers.get("Allow"):
            response.headers["Allow"] = exc.get_response().headers["Allow"]
        return response

    @app.errorhandler(Exception)
    def internal_error(exc: Exception):
        if storage_full(exc):  # nothing was stored; the same request may succeed once there is room
            log.error("%s %s: %s", request.method, request.path, exc)
            response = json_response(
                envelope(
                    503,
                    "database or disk is full: the request could not be stored; free some space "
                    "(or delete old jobs: serve --retention DAYS) and try again",
                ),
                503,
            )
            response.headers["Retry-After"] = "30"
            return response
        log.exception("unhandled error on %s %s", request.method, request.path)
        return json_response(envelope(500, "Internal Server Error"), 500)
