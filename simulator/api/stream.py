"""The server-sent event stream of the delivery log: `GET /api/stream` here, and `/dashboard/api/stream` (the
dashboard's, records without their bodies) on the same generator.

Events: `hello` once; `job` when a job is created or changes state; `attempt` (with its job) when an attempt is
recorded; `call` (with the job it follows, or null) when a call to the platforms' APIs is recorded (the loop: the
calls a receiver makes back; `GET /api/calls` lists the same records). Each `id:` is
`<attempt id>:<job seq>:<call id>` as of that very event, so a client that reconnects with Last-Event-ID (or
?since=) resumes right after the last event it got. A cursor of two parts (`<attempt id>:<job seq>`, as before
calls were in the feed) resumes jobs and attempts there and calls from now.

Why calls are here rather than polled from `GET /api/calls` by each follower: this is the one live feed of the
simulator's records (one poll of the database for every follower, one cursor, one reconnect rule); `/api/calls`
stays the one place to list and filter them. Clients that know only `job` and `attempt` skip `call` events, as
server-sent events are meant to be read. The stream ends after ?max_seconds=
(default and cap 600 s) so no server thread is held for good; an EventSource reconnects by itself.

`/api/stream` takes the admin key as `x-api-key`, `Authorization: Bearer` or a dashboard session, or as
`?api_key=` (a browser EventSource sends no headers).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable

from flask import Blueprint, Response, request, stream_with_context

from ..models import DELIVERING, Job
from .access import services
from .errors import bad_request
from .jobs import attempt_json, job_json
from .loop import call_json

bp = Blueprint("stream", __name__)

POLL = 0.2  # seconds between looks at the database: a change shows within a second
HEARTBEAT = 15.0  # seconds of silence before a `: keep-alive` comment
MAX_SECONDS = 600.0
FORGET_AFTER = 10_000  # jobs whose last state the stream remembers; telling a client something twice is harmless


@bp.get("/api/stream")
def stream() -> Response:
    """Server-sent events: `job` when a job is created or changes state, `attempt` when an attempt is recorded
    (with its job), `call` when a call to the platforms' APIs is recorded (with the job it follows). Resume with
    Last-Event-ID or ?since=<attempt id>:<job seq>:<call id>; ends after ?max_seconds=N (default and cap 600)."""
    return event_stream()


def stream_cursor() -> tuple[int | None, int | None, int | None]:
    """The `<attempt id>:<job seq>:<call id>` a stream resumes from (Last-Event-ID or ?since=), as the `id:` lines
    give it; a part left out (or empty) is "from now"."""
    cursor = request.headers.get("Last-Event-ID") or request.args.get("since") or ""
    parts = cursor.split(":") if cursor else []
    try:
        if len(parts) > 3:
            raise ValueError("too many parts")
        values = [int(part) if part else None for part in parts] + [None] * (3 - len(parts))
        if any(v is not None and abs(v) >= 2**63 for v in values):  # SQLite integers
            raise ValueError("cursor out of range")
    except ValueError:
        raise bad_request("since / Last-Event-ID must be <attempt id>:<job seq>[:<call id>]", "since") from None
    return values[0], values[1], values[2]


def event_stream(shape: Callable[[dict], dict] = lambda record: record) -> Response:
    """The stream for the current request; `shape` trims each job / attempt / call record (the dashboard drops
    bodies)."""
    since_attempt, since_seq, since_call = stream_cursor()
    try:
        max_seconds = min(float(request.args.get("max_seconds") or MAX_SECONDS), MAX_SECONDS)
    except ValueError:
        raise bad_request("max_seconds must be a number", "max_seconds") from None
    svc = services()
    store = svc.store
    if since_attempt is None or since_seq is None:  # from now on
        last_attempt, last_seq = store.feed_position()
        since_attempt = last_attempt if since_attempt is None else since_attempt
        since_seq = last_seq if since_seq is None else since_seq
    if since_call is None:
        since_call = store.last_call_id()

    def cursor() -> str:
        """The cursor as of now: each event's id resumes right after that very event."""
        return f"{since_attempt}:{since_seq}:{since_call}"

    def events():
        nonlocal since_attempt, since_seq, since_call
        told: dict[str, tuple] = {}  # job id -> what the client was last told (state, attempts, updated_at)
        delivering: set[str] = set()
        started = last_beat = time.monotonic()
        yield f"retry: 1000\nid: {cursor()}\nevent: hello\ndata: {{}}\n\n"
        while not svc.stopping.is_set() and time.monotonic() - started < max_seconds:
            out = []

            def job_event(seq: int, job: Job) -> None:
                mark = _mark(job)
                if told.get(job.id) != mark:
                    told[job.id] = mark
                    out.append((cursor(), "job", shape(job_json(job, seq))))  # noqa: B023 (called in this iteration only)

            # Indexed look-ups only (a log of 100k jobs costs the same): new jobs, jobs in flight, new attempts.
            for seq, job in store.query_jobs(after_seq=since_seq, limit=500):
                since_seq = seq
                job_event(seq, job)
            in_flight = store.query_jobs(state=DELIVERING, limit=None)
            for seq, job in in_flight:
                job_event(seq, job)
            attempted = set()
            for attempt in store.recent_attempts(since_attempt, 200):
                since_attempt = attempt.id
                record = None
                for seq, job in store.query_jobs(job_id=attempt.job_id, limit=1):
                    record = shape(job_json(job, seq))
                    told[job.id] = _mark(job)
                    attempted.add(job.id)
                out.append((cursor(), "attempt", {"attempt": shape(attempt_json(attempt)), "job": record}))
            for call in store.calls_after(since_call, 200):
                since_call = call.id
                record = None
                if call.job_id:
                    for seq, job in store.query_jobs(job_id=call.job_id, limit=1):
                        record = shape(job_json(job, seq))
                out.append((cursor(), "call", {"call": shape(call_json(call)), "job": record}))
            now_in_flight = {job.id for _, job in in_flight}
            for job_id in delivering - now_in_flight - attempted:  # left `delivering` without an attempt
                for seq, job in store.query_jobs(job_id=job_id, limit=1):
                    job_event(seq, job)
            delivering = now_in_flight
            if len(told) > FORGET_AFTER:
                told.clear()
            for event_id, kind, data in out:  # each id resumes right after its own event
                yield f"id: {event_id}\nevent: {kind}\ndata: {json.dumps(data)}\n\n"
            now = time.monotonic()
            if out:
                last_beat = now
            elif now - last_beat >= HEARTBEAT:
                last_beat = now
                yield ": keep-alive\n\n"
            time.sleep(POLL)

    return Response(
        stream_with_context(events()),
        mimetype="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def _mark(job: Job) -> tuple:
    """What a client is told of a job: a change in any of these is a new `job` event."""
    return job.state, job.attempts_made, job.updated_at
