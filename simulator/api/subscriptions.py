"""Subscriptions of every platform, in the simulator's own terms: CRUD, schedule, pause/resume, fire now.

    GET    /api/subscriptions[?platform=&event=]   POST /api/subscriptions
    GET    /api/subscriptions/<id>                 PATCH / DELETE /api/subscriptions/<id>
    POST   /api/subscriptions/<id>/pause           POST /api/subscriptions/<id>/resume
    PUT    /api/subscriptions/<id>/schedule        DELETE /api/subscriptions/<id>/schedule
    POST   /api/subscriptions/<id>/fire            {"overrides", "seed"} -> 201 the job
                                                   (+ meta.notes: the inferred rules it breaks, as /api/send)

Admin key as `x-api-key` or `Authorization: Bearer`, or a dashboard session. The platforms' own subscription APIs
are simulator.api.accessrc and simulator.api.accredit.
"""

from __future__ import annotations

from flask import Blueprint, Response, request

from .. import catalogue
from ..catalogue import EventSpec
from ..delivery import DeliveryError
from ..scheduler import ScheduleError, parse_schedule
from ..services import FireError
from ..subscriptions import Schedule, Subscription
from .access import services
from .accessrc import check_available
from .errors import ApiError, bad_request, enqueue_error, success
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
from .send import notes_meta

bp = Blueprint("subscriptions", __name__)

SUB_FIELDS = (
    "platform",
    "event",
    "url",
    "auth",
    "seed",
    "overrides",
    "schedule",
    "paused",
    "retry_delays",
    "timeout",
    "meta",
    "profile",
)


def _overrides(spec: EventSpec, data: dict, seed: int | None, name: str = "overrides") -> dict:
    overrides = optional_object(data, name)
    try:  # a trial generation, so a bad path or value is refused now rather than at each firing
        catalogue.generate(spec.name, seed=seed if seed is not None else 0, overrides=overrides)
    except catalogue.CatalogueError as exc:
        problems = "; ".join(exc.problems) if exc.problems else str(exc)
        raise bad_request(f"{name}: {problems}", name) from exc
    return overrides


def _schedule(data: dict) -> Schedule | None:
    try:
        return parse_schedule(data.get("schedule"))
    except ScheduleError as exc:
        raise bad_request(str(exc), exc.field) from exc


def _sub_or_404(sub_id: str) -> Subscription:
    sub = services().subscriptions.get(sub_id)
    if sub is None:
        raise ApiError(404, f"no subscription {sub_id}", "id")
    return sub


def sub_json(sub: Subscription) -> dict:
    """A subscription as the API answers it: its fields and when its schedule fires next."""
    body = sub.to_dict()
    body["next_fire_at"] = services().scheduler.next_fire_time(sub.id)
    return body


@bp.get("/api/subscriptions")
def list_subscriptions() -> Response:
    platform, event = request.args.get("platform") or None, request.args.get("event") or None
    subs = services().subscriptions.list(platform=platform, event=event)
    return success([sub_json(s) for s in subs])


@bp.post("/api/subscriptions")
def create_subscription() -> Response:
    data = json_body()
    reject_unknown(data, SUB_FIELDS)
    name = require_string(data, "event")
    spec = event_spec(name)
    platform = data.get("platform") or spec.platform
    if platform != spec.platform:
        raise bad_request(f"{spec.name} is a {spec.platform} event, not {platform}", "platform")
    url = require_url(data, "url")
    auth = platform_auth(platform, data.get("auth"))
    check_available(spec.name)  # planned event types (AccessRC's list has them) need --allow-planned
    seed = optional_int(data, "seed", 0, 2**63 - 1)
    sub = Subscription(
        platform,
        spec.name,
        url,
        auth,
        seed=seed,
        overrides=_overrides(spec, data, seed),
        schedule=_schedule(data),
        paused=optional_bool(data, "paused"),
        retry_delays=optional_delays(data),
        timeout=optional_timeout(data),
        meta=optional_object(data, "meta"),
        profile=optional_profile(data, platform) or "documented",
    )
    services().save_subscription(sub, new=True)
    return success(sub_json(sub), 201)


@bp.get("/api/subscriptions/<sub_id>")
def get_subscription(sub_id: str) -> Response:
    return success(sub_json(_sub_or_404(sub_id)))


@bp.patch("/api/subscriptions/<sub_id>")
def update_subscription(sub_id: str) -> Response:
    sub = _sub_or_404(sub_id)
    data = json_body()
    reject_unknown(data, [f for f in SUB_FIELDS if f not in ("platform", "event")])
    spec = catalogue.get_event(sub.event)
    auth = platform_auth(sub.platform, data["auth"]) if "auth" in data else None
    dropped = sub.move_to(require_url(data, "url"), auth) if "url" in data else False
    if auth is not None:
        sub.auth = auth
    if "seed" in data:
        sub.seed = optional_int(data, "seed", 0, 2**63 - 1)
    if "overrides" in data:
        sub.overrides = _overrides(spec, data, sub.seed)
    if "schedule" in data:
        sub.schedule = _schedule(data)
    if "paused" in data:
        sub.paused = optional_bool(data, "paused")
    if "retry_delays" in data:
        sub.retry_delays = optional_delays(data)
    if "timeout" in data:
        sub.timeout = optional_timeout(data)
    if "meta" in data:
        sub.meta = optional_object(data, "meta")
    if "profile" in data:
        sub.profile = optional_profile(data, sub.platform) or "documented"
    services().save_subscription(sub)
    return success({**sub_json(sub), "credentials_dropped": dropped})


@bp.delete("/api/subscriptions/<sub_id>")
def delete_subscription(sub_id: str) -> Response:
    sub = _sub_or_404(sub_id)
    services().remove_subscription(sub)
    return success(sub_json(sub))


def _set_paused(sub_id: str, paused: bool) -> Response:
    sub = _sub_or_404(sub_id)
    sub.paused = paused
    services().save_subscription(sub)
    return success(sub_json(sub))


@bp.post("/api/subscriptions/<sub_id>/pause")
def pause_subscription(sub_id: str) -> Response:
    return _set_paused(sub_id, True)


@bp.post("/api/subscriptions/<sub_id>/resume")
def resume_subscription(sub_id: str) -> Response:
    return _set_paused(sub_id, False)


@bp.put("/api/subscriptions/<sub_id>/schedule")
def set_schedule(sub_id: str) -> Response:
    sub = _sub_or_404(sub_id)
    data = json_body()
    try:
        sub.schedule = parse_schedule(data)
    except ScheduleError as exc:
        raise bad_request(str(exc), exc.field) from exc
    if sub.schedule is None:
        raise bad_request("give interval_seconds or cron (DELETE the schedule to stop firing)", "schedule")
    services().save_subscription(sub)
    return success(sub_json(sub))


@bp.delete("/api/subscriptions/<sub_id>/schedule")
def delete_schedule(sub_id: str) -> Response:
    sub = _sub_or_404(sub_id)
    sub.schedule = None
    services().save_subscription(sub)
    return success(sub_json(sub))


@bp.post("/api/subscriptions/<sub_id>/fire")
def fire_subscription(sub_id: str) -> Response:
    sub = _sub_or_404(sub_id)
    data = json_body() if request.get_data(cache=True).strip() else {}
    reject_unknown(data, ("overrides", "seed"))
    seed = optional_int(data, "seed", 0, 2**63 - 1)
    overrides = optional_object(data, "overrides")
    _overrides(catalogue.get_event(sub.event), {"overrides": {**sub.overrides, **overrides}}, seed)  # before counting
    try:
        job = services().fire(sub, source="api", overrides=overrides, seed=seed)
    except (FireError, DeliveryError) as exc:
        raise enqueue_error(exc) from exc
    return success(job_json(job, job_seq(job.id)), 201, meta=notes_meta([job]))
