"""Receivers broken in exactly one way each: the reference receiver with one defence removed or one answer wrong.

Used to show that every conformance row can fail (a check that cannot fail is worthless). Each is a WSGI app
around the reference receiver, served on 127.0.0.1 by ServerThread.
"""

from __future__ import annotations

import io
import json
import threading
import time

from werkzeug.wrappers import Response

from simulator import envelopes
from simulator.auth import Auth
from simulator.receiver import ReceiverConfig, create_receiver


def reference(platform: str, auth: Auth, public_pem: str | None, fail_first: int = 0):
    return create_receiver(ReceiverConfig(platform, auth, public_pem, None, fail_first))


def _read(environ) -> bytes:
    """The request body, put back so the wrapped app can read it again."""
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length) if length else b""
    environ["wsgi.input"] = io.BytesIO(body)
    return body


def _json(status: int, body: dict) -> Response:
    return Response(json.dumps(body), status=status, mimetype="application/json")


def skips_signature_check(platform: str, auth: Auth, public_pem: str | None):
    """Never verifies the signature or credentials (everything else as the reference)."""
    return reference(platform, Auth("none"), public_pem)


def accepts_malformed_json(platform: str, auth: Auth, public_pem: str | None):
    """Answers 200 to a body that is not JSON (after checking credentials like the reference)."""
    inner = reference(platform, auth, public_pem)

    def app(environ, start_response):
        body = _read(environ)
        try:
            json.loads(body)
        except ValueError:
            probe = Response.from_app(inner, environ)  # credentials are still checked
            if probe.status_code == 401:
                return probe(environ, start_response)
            return _json(200, envelopes.success({}))(environ, start_response)
        return inner(environ, start_response)

    return app


def fails_duplicates(platform: str, auth: Auth, public_pem: str | None, status: int = 500):
    """Answers `status` (500: a server error; 409: handled, not acknowledged) to a delivery whose X-JobId it has
    already seen."""
    inner = reference(platform, auth, public_pem)
    seen: set[str] = set()
    lock = threading.Lock()

    def app(environ, start_response):
        job_id = environ.get("HTTP_X_JOBID")
        with lock:
            repeat = job_id in seen
            if job_id:
                seen.add(job_id)
        if repeat:
            return _json(status, envelopes.failed(status) if status == 500 else {"error": "already processed"})(
                environ, start_response
            )
        return inner(environ, start_response)

    return app


def wrong_envelope(platform: str, auth: Auth, public_pem: str | None):
    """Right status codes, undocumented bodies: {"ok": true} and {"error": "..."}."""
    inner = reference(platform, auth, public_pem)

    def app(environ, start_response):
        resp = Response.from_app(inner, environ)
        body = {"ok": True} if resp.status_code < 300 else {"error": "rejected"}
        return _json(resp.status_code, body)(environ, start_response)

    return app


def too_slow(platform: str, auth: Auth, public_pem: str | None, delay: float = 0.5):
    """Accepts deliveries correctly but takes `delay` seconds to answer them (refusals stay fast)."""
    inner = reference(platform, auth, public_pem)

    def app(environ, start_response):
        resp = Response.from_app(inner, environ)
        if resp.status_code < 300:
            time.sleep(delay)
        return resp(environ, start_response)

    return app


def refuses_retries(platform: str, auth: Auth, public_pem: str | None):
    """Answers 400 to any X-JobAttempt other than 0 ("we only take first attempts")."""
    inner = reference(platform, auth, public_pem)

    def app(environ, start_response):
        if environ.get("HTTP_X_JOBATTEMPT", "0") != "0":
            _read(environ)
            return _json(400, envelopes.failed(400))(environ, start_response)
        return inner(environ, start_response)

    return app


def fails_repeated_bodies(platform: str, auth: Auth, public_pem: str | None):
    """Answers 409 to a body it has already seen (keyed on the bytes, not on X-JobId): a receiver without
    idempotency where no dedup header is documented (AccessRC)."""
    inner = reference(platform, auth, public_pem)
    seen: set[bytes] = set()
    lock = threading.Lock()

    def app(environ, start_response):
        body = _read(environ)
        with lock:
            repeat = body in seen
            seen.add(body)
        if repeat:
            return _json(409, envelopes.failed(409, "already processed", "Conflict"))(environ, start_response)
        return inner(environ, start_response)

    return app


BROKEN = {
    "skips_signature_check": skips_signature_check,
    "accepts_malformed_json": accepts_malformed_json,
    "fails_duplicates": fails_duplicates,
    "wrong_envelope": wrong_envelope,
    "too_slow": too_slow,
    "refuses_retries": refuses_retries,
    "fails_repeated_bodies": fails_repeated_bodies,
}
