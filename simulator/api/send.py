"""`POST /api/send`: one event (or a list of `count`) to a URL now, without a subscription.

    {"event", "url", "auth", "seed", "overrides", "count", "force", "retry_delays", "timeout", "profile"} -> 201 the job

An override may add a field the documents do not show: sent, and `meta.notes` names the inferred rule it breaks
(advice, as the CLI's `note:` lines), like every inferred rule the payload breaks.

Admin key as `x-api-key` or `Authorization: Bearer`, or a dashboard session.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from flask import Blueprint, Response

from .. import catalogue
from ..delivery import DeliveryError
from ..models import Job
from ..services import FireError
from .access import services
from .errors import enqueue_error, success
from .inputs import (
    event_spec,
    json_body,
    optional_bool,
    optional_delays,
    optional_int,
    optional_object,
    optional_profile,
    optional_timeout,
    platform_auth,
    reject_unknown,
    require_string,
    require_url,
)
from .jobs import job_json, job_seq

bp = Blueprint("send", __name__)

SEND_FIELDS = ("event", "url", "auth", "seed", "overrides", "count", "force", "retry_delays", "timeout", "profile")


@bp.post("/api/send")
def send() -> Response:
    data = json_body()
    reject_unknown(data, SEND_FIELDS)
    name = require_string(data, "event")
    spec = event_spec(name)
    url = require_url(data, "url")
    auth = platform_auth(spec.platform, data.get("auth"))
    seed = optional_int(data, "seed", 0, 2**63 - 1)
    count = optional_int(data, "count", 0, 10_000)
    force = optional_bool(data, "force")
    delays, timeout = optional_delays(data), optional_timeout(data)
    profile = optional_profile(data, spec.platform)
    try:
        job = services().enqueue(
            spec.name,
            url,
            auth,
            seed=seed,
            overrides=optional_object(data, "overrides"),
            count=count,
            force=force,
            retry_delays=delays,
            timeout=timeout,
            source="api",
            profile=profile,
        )
    except (FireError, DeliveryError) as exc:
        raise enqueue_error(exc) from exc
    return success(job_json(job, job_seq(job.id)), 201, meta=None if force else notes_meta([job]))


def notes_meta(jobs: Iterable[Job]) -> dict | None:
    """`{"notes": [...]}`: every inferred rule the jobs' bodies break (an override's added field, ...), each once,
    as advice; None when there is nothing to advise. The answers' `meta` of /api/send, a subscription's fire and
    an action, alike."""
    notes: dict[str, None] = {}
    for job in jobs:
        if not job.body_truncated:  # a stored head only is not the payload (never so for a job just enqueued)
            notes.update((str(a), None) for a in catalogue.advise(job.event, json.loads(job.body)))
    return {"notes": list(notes)} if notes else None
