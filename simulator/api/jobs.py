"""The delivery log: jobs (filter, page), one job with every attempt, redeliver; attempts since an id.

GET /api/jobs       data: [job, ...], meta: {"page": {"limit", "last_id", "next_before_id"}, "counts": {state: n}}
GET /api/attempts   data: [attempt, ...], meta: {"last_id"}
"""

from __future__ import annotations

import time

from flask import Blueprint, g, request

from ..delivery import profile_of
from ..models import EXHAUSTED, FINAL_STATES, STATES, Attempt, Job
from ..services import RedeliveryRefused
from .access import services
from .errors import ApiError, bad_request, success
from .inputs import query_int

bp = Blueprint("jobs", __name__, url_prefix="/api")

MAX_LIMIT = 500
BODY_PREVIEW = 64 * 1024


def _text(data: bytes) -> str:
    return data[:BODY_PREVIEW].decode("utf-8", "replace")


def origin(job: Job) -> str:
    """Who caused the job, for the log's filter: demo (a demo subscription's), api, cli, scenario, dashboard,
    schedule, redeliver, load or testing (the `source` without its detail, e.g. action:finish-import -> api)."""
    if job.subscription_id and job.subscription_id in _demo_subscriptions():
        return "demo"
    kind = job.source.split(":", 1)[0]
    return ORIGINS.get(kind, kind)


def _demo_subscriptions() -> set[str]:
    """The ids of the demo subscriptions (meta.demo), looked up at most every 2 s of a request (a stream is long)."""
    now = time.monotonic()
    cached = g.get("demo_subscriptions")
    if cached is None or now - cached[0] > 2.0:
        cached = (now, {s.id for s in services().subscriptions.list() if s.meta.get("demo")})
        g.demo_subscriptions = cached
    return cached[1]


ORIGINS = {"action": "api", "sample": "api", "review": "api"}  # sources a caller of the API asked for


def expected_failure(job: Job) -> bool:
    """A scenario's fault request that the receiver refused (a 4xx answer): the refusal the fault is there to
    provoke, not a failed delivery. A 5xx, a timeout or a 2xx is not this."""
    return bool(job.fault) and job.state == EXHAUSTED and job.last_status is not None and 400 <= job.last_status < 500


def job_json(job: Job, seq: int | None = None) -> dict:
    x_job_id = (job.headers.get("X-JobId") or job.id) if profile_of(job).job_headers else None
    return {
        "id": job.id,
        "seq": seq,
        "event": job.event,
        "platform": job.platform,
        "url": job.url,
        "state": job.state,
        "attempts_made": job.attempts_made,
        "max_attempts": job.max_attempts,
        "next_attempt_at": job.next_attempt_at,
        "created_at": job.created_at,
        "updated_at": job.updated_at,
        "last_status": job.last_status,
        "last_error": job.last_error,
        "subscription_id": job.subscription_id,
        "source": job.source,
        "origin": origin(job),
        "fault": job.fault,
        "expected_failure": expected_failure(job),
        "profile": job.profile,
        "x_job_id": x_job_id,
        "redelivery_of": services().subscriptions.redelivery_of(job.id) if job.source == "redeliver" else None,
        "retry_delays": list(job.retry_delays),
        "timeout": job.timeout,
        "auth": job.auth.masked(),
        "credentials_cleared": job.auth.cleared,
        "body": _text(job.body),
        "body_truncated": job.body_truncated or len(job.body) > BODY_PREVIEW,
        "body_length": job.full_body_length,
        "body_sha256": job.full_body_sha256,
    }


def attempt_json(a: Attempt) -> dict:
    return {
        "id": a.id,
        "job_id": a.job_id,
        "number": a.number,
        "started_at": a.started_at,
        "duration_ms": a.duration_ms,
        "url": a.url,
        "request_headers": a.request_headers,
        "request_body": _text(a.request_body),
        "request_body_truncated": a.request_body_truncated or len(a.request_body) > BODY_PREVIEW,
        "request_body_length": a.full_request_body_length,
        "request_body_sha256": a.full_request_body_sha256,
        "status": a.status,
        "ok": a.ok,
        "response_headers": a.response_headers,
        "response_body": _text(a.response_body),
        "error": a.error,
    }


FILTERS = {
    "event": "event",
    "subscription_id": "subscription_id",
    "subscription": "subscription_id",
    "status": "state",
    "state": "state",
    "platform": "platform",
    "source": "source",
}  # query arg -> filter


def query_jobs() -> tuple[list[tuple[int, Job]], dict]:
    """Jobs matching the filters; newest first (page back with before_id) or, with since_id, oldest first."""
    filters: dict[str, str] = {}
    disagree = False  # two names of one filter with different values (status=a&state=b): nothing matches both
    for arg, name in FILTERS.items():
        value = request.args.get(arg)
        if value:
            if name == "state" and value not in STATES:
                raise bad_request(f"{arg} must be one of {', '.join(STATES)}", arg)
            disagree |= filters.setdefault(name, value) != value
    limit = query_int("limit", 50, 1, MAX_LIMIT)
    since_id = query_int("since_id", None)
    before_id = query_int("before_id", None)
    if since_id is not None and before_id is not None:
        raise bad_request("give since_id or before_id, not both", "since_id")
    jobs = (
        []
        if disagree
        else services().store.query_jobs(**filters, after_seq=since_id, before_seq=before_id, limit=limit)
    )
    page = {"limit": limit}
    if jobs:
        page["last_id"] = max(seq for seq, _ in jobs)
        if since_id is None and len(jobs) == limit:
            page["next_before_id"] = min(seq for seq, _ in jobs)
    return jobs, page


def job_seq(job_id: str) -> int | None:
    return services().store.job_seq(job_id)


def get_job_or_404(job_id: str) -> Job:
    job = services().store.get_job(job_id)
    if job is None:
        raise ApiError(404, f"no job {job_id}", "id")
    return job


@bp.get("/jobs")
def list_jobs():
    jobs, page = query_jobs()
    counts = {state: 0 for state in STATES} | services().store.count_by_state()
    return success([job_json(job, seq) for seq, job in jobs], meta={"page": page, "counts": counts})


@bp.get("/jobs/<job_id>")
def get_job(job_id: str):
    job = get_job_or_404(job_id)
    body = job_json(job, job_seq(job_id))
    body["attempts"] = [attempt_json(a) for a in services().store.attempts(job_id)]
    return success(body)


@bp.post("/jobs/<job_id>/redeliver")
def redeliver(job_id: str):
    job = get_job_or_404(job_id)
    if job.state not in FINAL_STATES:
        raise ApiError(409, f"job {job_id} is still {job.state}; redeliver a succeeded or exhausted job", "id")
    try:
        again = services().redeliver(job)
    except RedeliveryRefused as exc:
        raise ApiError(409, str(exc), "id") from exc
    return success(job_json(again, job_seq(again.id)), 201)


@bp.get("/attempts")
def recent_attempts():
    since_id = query_int("since_id", 0)
    limit = query_int("limit", 200, 1, MAX_LIMIT)
    attempts = services().store.recent_attempts(since_id, limit)
    return success([attempt_json(a) for a in attempts], meta={"last_id": attempts[-1].id if attempts else since_id})
