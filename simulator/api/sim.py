"""The simulator's own routes: health, the events catalogue, subscriptions of every platform (CRUD, schedule,
pause/resume, fire), a one-off send, platform actions, and a server-sent-events stream of the delivery log.

Admin key as `x-api-key` or `Authorization: Bearer`; `/healthz` and `/api/openapi.json` need none.
"""
from __future__ import annotations

from flask import Blueprint, request

from .. import catalogue, platforms
from ..delivery import DeliveryError, check_timeout
from ..scheduler import ScheduleError, parse_schedule
from ..services import FireError
from ..subscriptions import Subscription
from . import (check_admin, event_spec, json_body, optional_delays, optional_int, optional_number,
               optional_object, optional_profile, platform_auth, reject_unknown, require_string, require_url,
               services)
from .accessrc import check_available
from .errors import ApiError, bad_request, json_response
from .jobs import job_json, job_seq
from .stream import event_stream

bp = Blueprint("sim", __name__)

OPEN_ENDPOINTS = {"sim.healthz"}


@bp.before_request
def _auth() -> None:
    if request.endpoint in OPEN_ENDPOINTS:
        return
    if request.endpoint == "sim.stream" and "api_key" in request.args:  # a browser EventSource sends no headers
        if services().check_api_key(request.args["api_key"]):
            return
        raise ApiError(401, "wrong api_key")
    check_admin(("x-api-key", "bearer"), session=True)


@bp.get("/healthz")
def healthz():
    svc = services()
    svc.store.ping()
    return json_response({"status": "ok", "queue": svc.queue.running, "scheduler": svc.scheduler.running,
                          "pending": svc.store.count_jobs("pending")})


# -- events ------------------------------------------------------------------------------------------
@bp.get("/api/events")
def list_events():
    platform = request.args.get("platform")
    if platform and platform not in catalogue.PLATFORMS:
        raise bad_request(f"platform must be one of {', '.join(catalogue.PLATFORMS)}", "platform")
    return json_response({"events": [s.to_dict() for s in catalogue.events(platform)]})


@bp.get("/api/events/<name>")
def get_event(name: str):
    spec = event_spec(name, status=404)
    return json_response({**spec.to_dict(), "schema": spec.schema})


@bp.get("/api/events/<name>/sample")
def sample_event(name: str):
    spec = event_spec(name, status=404)
    seed = request.args.get("seed")
    try:
        seed_value = int(seed) if seed not in (None, "") else None
    except ValueError:
        raise bad_request("seed must be an integer", "seed") from None
    payload = catalogue.generate(spec.name, seed=seed_value)
    return json_response({"event": spec.name, "payload": payload})


# -- subscriptions -----------------------------------------------------------------------------------
SUB_FIELDS = ("platform", "event", "url", "auth", "seed", "overrides", "schedule", "paused", "retry_delays",
              "timeout", "meta", "profile")


def _overrides(spec, data: dict, seed, name: str = "overrides") -> dict:
    overrides = optional_object(data, name)
    try:  # a trial generation, so a bad path or value is refused now rather than at each firing
        catalogue.generate(spec.name, seed=seed if seed is not None else 0, overrides=overrides)
    except catalogue.CatalogueError as exc:
        problems = "; ".join(exc.problems) if exc.problems else str(exc)
        raise bad_request(f"{name}: {problems}", name) from exc
    return overrides


def _timeout(data: dict) -> float | None:
    value = optional_number(data, "timeout")
    if value is None:
        return None
    try:
        return check_timeout(value)
    except DeliveryError as exc:
        raise bad_request(str(exc), "timeout") from exc


def _schedule(data: dict):
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
    body = sub.to_dict()
    body["next_fire_at"] = services().scheduler.next_fire_time(sub.id)
    return body


def _bool(data: dict, name: str, default: bool = False) -> bool:
    value = data.get(name, default)
    if not isinstance(value, bool):
        raise bad_request(f"{name} must be true or false", name)
    return value


@bp.get("/api/subscriptions")
def list_subscriptions():
    platform, event = request.args.get("platform") or None, request.args.get("event") or None
    subs = services().subscriptions.list(platform=platform, event=event)
    return json_response({"subscriptions": [sub_json(s) for s in subs]})


@bp.post("/api/subscriptions")
def create_subscription():
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
    sub = Subscription(platform, spec.name, url, auth, seed=seed, overrides=_overrides(spec, data, seed),
                       schedule=_schedule(data), paused=_bool(data, "paused"),
                       retry_delays=optional_delays(data), timeout=_timeout(data), meta=optional_object(data, "meta"),
                       profile=optional_profile(data, platform) or "documented")
    services().save_subscription(sub, new=True)
    return json_response(sub_json(sub), 201)


@bp.get("/api/subscriptions/<sub_id>")
def get_subscription(sub_id: str):
    return json_response(sub_json(_sub_or_404(sub_id)))


@bp.patch("/api/subscriptions/<sub_id>")
def update_subscription(sub_id: str):
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
        sub.paused = _bool(data, "paused")
    if "retry_delays" in data:
        sub.retry_delays = optional_delays(data)
    if "timeout" in data:
        sub.timeout = _timeout(data)
    if "meta" in data:
        sub.meta = optional_object(data, "meta")
    if "profile" in data:
        sub.profile = optional_profile(data, sub.platform) or "documented"
    services().save_subscription(sub)
    return json_response({**sub_json(sub), "credentials_dropped": dropped})


@bp.delete("/api/subscriptions/<sub_id>")
def delete_subscription(sub_id: str):
    sub = _sub_or_404(sub_id)
    services().remove_subscription(sub)
    return json_response(sub_json(sub))


def _set_paused(sub_id: str, paused: bool):
    sub = _sub_or_404(sub_id)
    sub.paused = paused
    services().save_subscription(sub)
    return json_response(sub_json(sub))


@bp.post("/api/subscriptions/<sub_id>/pause")
def pause_subscription(sub_id: str):
    return _set_paused(sub_id, True)


@bp.post("/api/subscriptions/<sub_id>/resume")
def resume_subscription(sub_id: str):
    return _set_paused(sub_id, False)


@bp.put("/api/subscriptions/<sub_id>/schedule")
def set_schedule(sub_id: str):
    sub = _sub_or_404(sub_id)
    data = json_body()
    try:
        sub.schedule = parse_schedule(data)
    except ScheduleError as exc:
        raise bad_request(str(exc), exc.field) from exc
    if sub.schedule is None:
        raise bad_request("give interval_seconds or cron (DELETE the schedule to stop firing)", "schedule")
    services().save_subscription(sub)
    return json_response(sub_json(sub))


@bp.delete("/api/subscriptions/<sub_id>/schedule")
def delete_schedule(sub_id: str):
    sub = _sub_or_404(sub_id)
    sub.schedule = None
    services().save_subscription(sub)
    return json_response(sub_json(sub))


def _enqueue_error(exc: Exception, field_prefix: str = "") -> ApiError:
    if isinstance(exc, FireError):
        detail = "; ".join(exc.problems) if exc.problems else str(exc)
        return bad_request(detail, field_prefix + (exc.field or "overrides"))
    return bad_request(str(exc), "url")


@bp.post("/api/subscriptions/<sub_id>/fire")
def fire_subscription(sub_id: str):
    sub = _sub_or_404(sub_id)
    data = json_body() if request.get_data(cache=True).strip() else {}
    reject_unknown(data, ("overrides", "seed"))
    seed = optional_int(data, "seed", 0, 2**63 - 1)
    overrides = optional_object(data, "overrides")
    _overrides(catalogue.get_event(sub.event), {"overrides": {**sub.overrides, **overrides}}, seed)  # before counting
    try:
        job = services().fire(sub, source="api", overrides=overrides, seed=seed)
    except (FireError, DeliveryError) as exc:
        raise _enqueue_error(exc) from exc
    return json_response(job_json(job, job_seq(job.id)), 201)


# -- one-off send --------------------------------------------------------------------------------------
SEND_FIELDS = ("event", "url", "auth", "seed", "overrides", "count", "force", "retry_delays", "timeout", "profile")


@bp.post("/api/send")
def send():
    data = json_body()
    reject_unknown(data, SEND_FIELDS)
    name = require_string(data, "event")
    spec = event_spec(name)
    url = require_url(data, "url")
    auth = platform_auth(spec.platform, data.get("auth"))
    seed = optional_int(data, "seed", 0, 2**63 - 1)
    count = optional_int(data, "count", 0, 10_000)
    force = _bool(data, "force")
    delays, timeout = optional_delays(data), _timeout(data)
    profile = optional_profile(data, spec.platform)
    try:
        job = services().enqueue(spec.name, url, auth, seed=seed, overrides=optional_object(data, "overrides"),
                                 count=count, force=force, retry_delays=delays, timeout=timeout, source="api",
                                 profile=profile)
    except (FireError, DeliveryError) as exc:
        raise _enqueue_error(exc) from exc
    return json_response(job_json(job, job_seq(job.id)), 201)


# -- platform actions ------------------------------------------------------------------------------------
# What a real platform user does, as the event it causes: params map to payload fields (dotted paths).
ACTIONS = {
    "approve-delivery-channel": {
        "event": "DELIVERY_CHANNEL_STATUS_UPDATED", "fixed": {"status": "Approved", "message": ""},
        "params": {"providerDeliveryChannelId": "providerDeliveryChannelId", "requestType": "requestType"},
        "description": "The AccessRC IM team approves a delivery channel request."},
    "reject-delivery-channel": {
        "event": "DELIVERY_CHANNEL_STATUS_UPDATED", "fixed": {"status": "Rejected"},
        "params": {"providerDeliveryChannelId": "providerDeliveryChannelId", "requestType": "requestType",
                   "message": "message"},
        "description": "The AccessRC IM team rejects a delivery channel request (message = the reason)."},
    "send-delivery-request": {
        "event": "DELIVERY_REQUEST_SENT", "fixed": {}, "params": {}, "count": "deliveries",
        "description": "A programme sends a delivery request to the provider (deliveries = list size)."},
    "request-refund": {
        "event": "DELIVERY_REFUND_REQUESTED", "fixed": {}, "params": {"deliveryId": "deliveryId"},
        "description": "A refund of one delivery is requested."},
    "sync-eligibility": {
        "event": "PROGRAM_ELIGIBILITY_EVALUATED", "fixed": {}, "params": {"programId": "programId"},
        "count": "applications",
        "description": "A Program Manager presses \"sync Eligibility Evaluation\" for programme P."},
    "pull-form": {
        "event": "PROGRAM_PULL_FORM", "fixed": {}, "params": {"programId": "programId"},
        "description": "A Program Manager pulls the application form from the provider."},
    "finish-import": {
        "event": "APPLICATIONS_IMPORT_RESULT", "fixed": {},
        "params": {"programId": "programId", "records": "summary.totalRecords",
                   "failures": "summary.failureCount"},
        "at_most": (("failures", "records"),),  # the action's own input rule: a count of the records given
        "description": "AccessRC finishes an applications import (records, failures)."},
    "create-badge-export": {
        "event": "BadgeExportZipFile.Created", "fixed": {}, "params": {"badgeExportZipFileId": "BadgeExportZipFileId"},
        "description": "An Accredit user groups badge exports into a ZIP file."},
    "finish-reachfive-job": {
        "event": "END_JOB_NOTIFICATION", "fixed": {},
        "params": {"type": "type", "status": "status", "operations": "total_operations",
                   "failed": "total_failed", "definitionId": "definition_id", "definitionName": "definition_name"},
        "at_most": (("failed", "operations"),),
        "description": "A ReachFive import or export job ends."},
}


@bp.get("/api/actions")
def list_actions():
    def params(a: dict) -> list[str]:
        optional = ["url", "auth", "seed"]
        if len(platforms.get(catalogue.get_event(a["event"]).platform).profiles) > 1:
            optional.append("profile")  # goes with url, like auth
        return sorted(a["params"]) + ([a["count"]] if a.get("count") else []) + optional

    return json_response({"actions": [
        {"name": name, "event": a["event"], "platform": catalogue.get_event(a["event"]).platform,
         "params": params(a), "description": a["description"]} for name, a in ACTIONS.items()]})


@bp.post("/api/actions/<name>")
def run_action(name: str):
    action = ACTIONS.get(name)
    if action is None:
        raise ApiError(404, f"no action {name!r}; known: {', '.join(ACTIONS)}", "name")
    data = json_body() if request.get_data(cache=True).strip() else {}
    allowed = [*action["params"], "url", "auth", "seed", "profile"] + ([action["count"]] if action.get("count") else [])
    reject_unknown(data, allowed)
    for part, whole in action.get("at_most", ()):
        if isinstance(data.get(part), int) and isinstance(data.get(whole), int) and data[part] > data[whole]:
            raise bad_request(f"{part} ({data[part]}) cannot be more than {whole} ({data[whole]})", part)
    overrides = dict(action["fixed"])
    for param, path in action["params"].items():
        if param in data:
            overrides[path] = data[param]
    count = optional_int(data, action["count"], 0, 10_000) if action.get("count") else None
    seed = optional_int(data, "seed", 0, 2**63 - 1)
    svc = services()
    event = action["event"]
    spec = catalogue.get_event(event)
    try:  # check the parameters once, before anything is stored
        catalogue.generate(event, seed=seed if seed is not None else 0, overrides=overrides, count=count)
    except catalogue.CatalogueError as exc:
        raise bad_request("; ".join(exc.problems) or str(exc), _param_for(action, exc)) from exc
    url = require_url(data, "url", required=False)
    for alone in ("auth", "profile"):
        if alone in data and url is None:
            raise bad_request(f"{alone} goes with url (subscriptions bring their own)", alone)
    if url is not None:
        targets = [(url, platform_auth(spec.platform, data.get("auth")), None, None, None,
                    optional_profile(data, spec.platform))]
    else:
        subs = svc.subscriptions.list(event=event, active_only=True)
        if not subs:
            raise bad_request(f"no active subscription for {event}; subscribe first or give url", "url")
        targets = [(s.url, s.auth, s.id, s.retry_delays, s.timeout, s.profile) for s in subs]
    jobs = []
    for target_url, auth, sub_id, delays, timeout, profile in targets:
        jobs.append(svc.enqueue(event, target_url, auth, seed=seed, overrides={**_sub_overrides(sub_id), **overrides},
                                count=count, retry_delays=delays, timeout=timeout, source=f"action:{name}",
                                subscription_id=sub_id, profile=profile))
    return json_response({"action": name, "event": event, "jobs": [job_json(j, job_seq(j.id)) for j in jobs]}, 201)


def _sub_overrides(sub_id: str | None) -> dict:
    sub = services().subscriptions.get(sub_id) if sub_id else None
    return dict(sub.overrides) if sub else {}


def _param_for(action: dict, exc: catalogue.CatalogueError) -> str:
    text = " ".join(exc.problems) or str(exc)
    for param, path in action["params"].items():
        if path in text or path.split(".")[-1] in text:
            return param
    return "body"


# -- live updates -----------------------------------------------------------------------------------------
@bp.get("/api/stream")
def stream():
    """Server-sent events: `job` when a job is created or changes state, `attempt` when an attempt is recorded
    (with its job). Resume with Last-Event-ID or ?since=<attempt id>:<job seq>; ends after ?max_seconds=N
    (default and cap 600). See simulator.api.stream."""
    return event_stream()
