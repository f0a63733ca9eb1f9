"""The response envelopes the AccessRC pages document for a service provider's callback."""

from __future__ import annotations

from typing import Any

ERRORS = {
    400: ("Validation failed. Please check your input.", "BadRequest"),
    401: ("Verification failed", "Unauthorized"),
    500: ("Internal Server Error", "Exception"),
}


def success(data: Any = None) -> dict:
    return {"status": "success", "message": "Callback successfully received", "data": {} if data is None else data}


def failed(code: int, message: str | None = None, type_: str | None = None) -> dict:
    default_message, default_type = ERRORS.get(code, ("Request failed", "Error"))
    return {
        "status": "failed",
        "error": {"code": code, "message": message or default_message, "type": type_ or default_type},
    }


def is_success_envelope(body: Any) -> bool:
    return (
        isinstance(body, dict)
        and body.get("status") == "success"
        and "data" in body
        and isinstance(body.get("message"), str)
    )


def is_failed_envelope(body: Any) -> bool:
    err = body.get("error") if isinstance(body, dict) else None
    return (
        isinstance(body, dict)
        and body.get("status") == "failed"
        and isinstance(err, dict)
        and isinstance(err.get("code"), int)
        and isinstance(err.get("message"), str)
        and isinstance(err.get("type"), str)
    )
