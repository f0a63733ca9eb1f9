"""A reference receiver: what a correct service-provider endpoint does with our deliveries.

It verifies the platform's signature or credentials (401), validates the body against the event's documented rules
(400; inferred rules are logged as advice and refused only with `strict`: among them a body over STRICT_MAX_BODY and
a JSON body under a Content-Type that is not JSON, rules `<platform>.conformance.body-limit` and
`<platform>.conformance.content-type`), acknowledges a repeat without processing
it again (Accredit: the same X-JobId, as its guide advises; AccessRC and ReachFive, which document no dedup header:
the same body) and answers the documented envelopes. `fail_first` answers 500 to the first N attempts of each job.
"""

from __future__ import annotations

import hashlib
import logging
import re
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import quote

from flask import Flask, jsonify, request
from werkzeug.serving import WSGIRequestHandler, make_server

from . import catalogue, envelopes, limits, platforms
from .auth import Auth
from .signing import VerificationError

# The documents give no size limit, and their notifications are a few KiB. By default the receiver takes any body the
# simulator itself can generate (services.MAX_GENERATED_BODY, 1 MiB; the server cuts at twice that); with --strict it
# refuses what is over STRICT_MAX_BODY, our choice (inferred rule <platform>.conformance.body-limit).
MAX_BODY = 1024 * 1024
STRICT_MAX_BODY = 256 * 1024


def body_limit_rule(platform: str) -> str:
    return f"{platform}.conformance.body-limit"


def content_type_rule(platform: str) -> str:
    return f"{platform}.conformance.content-type"


@dataclass
class ReceiverConfig:
    platform: str
    auth: Auth
    public_key_pem: str | None = None  # Accredit: the signature key handed out at subscription
    event: str | None = None  # None: tell the event from the body
    fail_first: int = 0
    log: Callable[[str], None] | None = None
    strict: bool = False  # refuse bodies that break inferred rules too
    max_body: int = MAX_BODY  # bigger: 413 always (the receiver's own bound)
    strict_max_body: int = STRICT_MAX_BODY  # bigger: advice, 413 with strict (rule <platform>.conformance.body-limit)


@dataclass
class Received:
    at: float
    path: str
    job_id: str | None
    attempt: str | None
    event: str | None
    status: int
    outcome: str
    body: str = field(repr=False, default="")
    advice: list[str] = field(default_factory=list)  # inferred rules the body breaks (accepted all the same)


def detect_event(platform: str, payload) -> str | None:
    """The event a body belongs to: Accredit names it in `Event`; AccessRC and ReachFive only by shape, so the
    event whose documented fields the body shares most (then the one it adds fewest to and lacks fewest of).
    Validation follows, so a body that resembles an event but breaks its documented rules is refused with the
    reason."""
    named_by = platforms.get(platform).event_field  # Accredit names the event in the body
    if named_by and isinstance(payload, dict) and isinstance(payload.get(named_by), str):
        try:
            return catalogue.get_event(payload[named_by], platform).name
        except catalogue.CatalogueError:
            return "Entity.Event"  # any Entity.Action name is checked against the base fields
    if not isinstance(payload, dict):
        return None
    keys = set(payload)

    def fit(spec):
        documented = set(spec.schema.get("properties", {}))
        return len(keys & documented), -len(keys - documented), -len(documented - keys)

    best = max(catalogue.events(platform), key=fit)
    return best.name if fit(best)[0] else None


def create_receiver(config: ReceiverConfig) -> Flask:
    app = Flask("accessrc_sim_receiver")
    lock = threading.Lock()
    attempts_seen: dict[str, int] = {}
    processed: dict[str, dict] = {}
    received: list[Received] = []
    app.extensions["received"] = received

    def answer(status: int, body: dict, outcome: str, event: str | None = None, advice=()):
        job_id, attempt = request.headers.get("X-JobId"), request.headers.get("X-JobAttempt")
        with lock:
            received.append(
                Received(
                    time.time(),
                    request.path,
                    job_id,
                    attempt,
                    event,
                    status,
                    outcome,
                    request.get_data(as_text=True)[:2000],
                    [str(a) for a in advice],
                )
            )
        if config.log:
            config.log(
                f"{request.method} {request.path} job={job_id or '-'} attempt={attempt or '-'} "
                f"event={event or '-'} -> {status} {outcome}" + "".join(f"\n    advice: {a}" for a in advice)
            )
        return jsonify(body), status

    @app.get("/_received")
    def list_received():
        with lock:
            return jsonify([{k: v for k, v in r.__dict__.items()} for r in received])

    @app.post("/", defaults={"path": ""})
    @app.post("/<path:path>")
    def receive(path: str):
        size_rule, type_rule = body_limit_rule(config.platform), content_type_rule(config.platform)
        limit = min(config.max_body, config.strict_max_body) if config.strict else config.max_body

        def too_large(size: int):
            why = "--strict" if config.strict and limit < config.max_body else "the receiver's own bound"
            return answer(
                413,
                envelopes.failed(413, "Payload Too Large", "PayloadTooLarge"),
                f"too large: {size} bytes (limit {limit}, {why}; inferred rule {size_rule})",
            )

        if (request.content_length or 0) > limit:  # declared: refused before reading it
            return too_large(request.content_length)
        raw = request.get_data(cache=True)
        if len(raw) > limit:  # chunked: no length declared
            return too_large(len(raw))
        try:
            config.auth.verify(request.headers, raw, config.public_key_pem)
        except VerificationError as exc:
            return answer(401, envelopes.failed(401), f"verification failed: {exc}")
        notes: list[catalogue.Advice] = []  # inferred rules of the request itself: advice unless strict
        if not (request.mimetype or "").endswith("json"):
            shown = repr(request.mimetype) if request.mimetype else "(none)"
            if config.strict:
                return answer(
                    400,
                    envelopes.failed(400),
                    f"content type {shown} is not JSON (--strict; inferred rule {type_rule})",
                )
            notes.append(catalogue.Advice(type_rule, f"content type {shown} is not JSON; read as JSON all the same"))
        if len(raw) > config.strict_max_body:
            over = f"body of {len(raw)} bytes is over {config.strict_max_body} (--strict: 413)"
            notes.append(catalogue.Advice(size_rule, over))
        try:
            payload = limits.loads(raw)
        except limits.TooDeep as exc:
            return answer(400, envelopes.failed(400), f"JSON {exc.msg}")
        except ValueError:
            return answer(400, envelopes.failed(400), "malformed JSON")
        event = config.event or detect_event(config.platform, payload)
        problems = (
            catalogue.validate(event, payload, strict=config.strict)
            if event
            else ["matches no event of " + config.platform]
        )
        if problems:
            return answer(400, envelopes.failed(400), "invalid: " + "; ".join(problems[:3]), event)
        advice = [] if config.strict else [*notes, *catalogue.advise(event, payload)]
        dedup = platforms.get(config.platform).dedup_header  # documented for Accredit only (X-JobId)
        job_key = (request.headers.get(dedup) if dedup else None) or hashlib.sha256(raw).hexdigest()
        with lock:
            attempts_seen[job_key] = attempts_seen.get(job_key, 0) + 1
            seen = attempts_seen[job_key]
            duplicate = job_key in processed
        if seen <= config.fail_first:
            return answer(500, envelopes.failed(500), f"failing on purpose ({seen}/{config.fail_first})", event)
        spec = catalogue.get_event(event)
        data = spec.reply_data(payload) if spec.reply_data else {}
        if duplicate:
            return answer(
                200, envelopes.success(processed[job_key]), "duplicate: acknowledged, not processed again", event
            )
        with lock:
            processed[job_key] = data
        return answer(200, envelopes.success(data), "accepted", event, advice)

    @app.errorhandler(404)
    @app.errorhandler(405)
    def not_found(exc):
        code = getattr(exc, "code", 404)
        return jsonify(envelopes.failed(code, exc.description, exc.name.replace(" ", ""))), code

    return app


ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _log_stream_is_tty() -> bool:
    """Whether werkzeug's request lines land on a terminal: its logger's handler's stream, else stderr."""
    logger = logging.getLogger("werkzeug")
    for handler in [*logger.handlers, *logging.getLogger().handlers]:
        stream = getattr(handler, "stream", None)
        if stream is not None:
            return bool(getattr(stream, "isatty", lambda: False)())
    return sys.stderr.isatty()


class RequestLog(WSGIRequestHandler):
    """werkzeug's request lines, with its colour codes only when they go to a terminal (a log file or a pipe
    gets plain text)."""

    def log(self, type: str, message: str, *args) -> None:
        if not _log_stream_is_tty():
            message, args = ANSI.sub("", message % args if args else message).replace("%", "%%"), ()
        super().log(type, message, *args)


def _request_lines(app):
    """The app, writing one line per request to stderr as werkzeug's server does (waitress writes none):
    `127.0.0.1 - - [30/Nov/2026 03:05:09] "POST /accessrc/hook HTTP/1.1" 200 -`, plain text."""

    def logged(environ, start_response):
        def start(status, headers, exc_info=None):
            path = quote(environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", ""))
            query = f"?{environ['QUERY_STRING']}" if environ.get("QUERY_STRING") else ""
            request = f"{environ.get('REQUEST_METHOD', '-')} {path}{query} {environ.get('SERVER_PROTOCOL', '-')}"
            when = time.strftime("%d/%b/%Y %H:%M:%S")
            sys.stderr.write(f'{environ.get("REMOTE_ADDR", "-")} - - [{when}] "{request}" {status.split()[0]} -\n')
            return start_response(status, headers, exc_info)

        return app(environ, start)

    return logged


class WaitressThread:
    """A WSGI app on waitress, from a background thread, bounded as `serve` is (limits.server_options: connections,
    idle time, bodies cut by the server over twice `max_body`): the demo receivers of `serve --demo`, which share
    the server's process."""

    def __init__(self, app, host: str = "127.0.0.1", port: int = 0, max_body: int = MAX_BODY, threads: int = 8):
        from waitress.server import create_server

        self.server = create_server(
            _request_lines(app), host=host, port=port, threads=threads, **limits.server_options(max_body)
        )
        self.port = self.server.effective_port
        self.url = f"http://{host}:{self.port}"
        self.thread = threading.Thread(target=self.server.run, name="accessrc-sim-demo", daemon=True)

    def start(self) -> WaitressThread:
        self.thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        stop_waitress(self.server, self.thread, timeout)


def stop_waitress(server, thread: threading.Thread, timeout: float = 5.0) -> None:
    """Stop a waitress server run from `thread`: close every connection and the listening socket from the server's
    own loop (its trigger), then join the loop's thread and the worker threads."""

    def close_all() -> None:
        for channel in list(server._map.values()):
            if channel is not server.trigger:
                channel.close()
        server.trigger.close()

    try:
        server.trigger.pull_trigger(close_all)
    except OSError:  # already closed
        pass
    thread.join(timeout)
    server.task_dispatcher.shutdown(timeout=timeout)


class ServerThread:
    """A WSGI app served on 127.0.0.1 from a background thread (tests, demos, `serve --demo`)."""

    def __init__(self, app, host: str = "127.0.0.1", port: int = 0):
        self.server = make_server(host, port, app, threaded=True, request_handler=RequestLog)
        self.port = self.server.server_port
        self.url = f"http://{host}:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self) -> ServerThread:
        self.thread.start()
        return self

    def start(self) -> ServerThread:
        return self.__enter__()

    def __exit__(self, *exc) -> None:
        self.stop()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
