"""Platform actions: what a real platform user does (approve a delivery channel, finish an import, …), sent as
the event it causes, to a given URL or to every active subscription of that event.

    GET  /api/actions          data: [{"name", "event", "platform", "params", "description"}, ...]
    POST /api/actions/<name>   the action's params (+ url, auth, seed, profile) -> 201 data: {"action", "event", "jobs"}
                               (+ meta.notes: the inferred rules the jobs break, a subscription's added field, ...)

Answers in the simulator's envelope `{"status": "success", "data": …, "error": null}` (errors.success).

Admin key as `x-api-key` or `Authorization: Bearer`, or a dashboard session.
"""

from __future__ import annotations

from flask import Blueprint, Response, request

from .. import catalogue, platforms
from ..services import MAX_GENERATED_BODY, FireError, check_count
from .access import services
from .errors import ApiError, bad_request, success
from .inputs import json_body, optional_int, optional_profile, platform_auth, reject_unknown, require_url
from .jobs import job_json, job_seq
from .send import notes_meta

bp = Blueprint("actions", __name__)

# What a real platform user does, as the event it causes: params map to payload fields (dotted paths).
ACTIONS = {
    "approve-delivery-channel": {
        "event": "DELIVERY_CHANNEL_STATUS_UPDATED",
        "fixed": {"status": "Approved", "message": ""},
        "params": {"providerDeliveryChannelId": "providerDeliveryChannelId", "requestType": "requestType"},
        "description": "The AccessRC IM team approves a delivery channel request.",
    },
    "reject-delivery-channel": {
        "event": "DELIVERY_CHANNEL_STATUS_UPDATED",
        "fixed": {"status": "Rejected"},
        "params": {
            "providerDeliveryChannelId": "providerDeliveryChannelId",
            "requestType": "requestType",
            "message": "message",
        },
        "description": "The AccessRC IM team rejects a delivery channel request (message = the reason).",
    },
    "send-delivery-request": {
        "event": "DELIVERY_REQUEST_SENT",
        "fixed": {},
        "params": {},
        "count": "deliveries",
        "description": "A programme sends a delivery request to the provider (deliveries = list size).",
    },
    "request-refund": {
        "event": "DELIVERY_REFUND_REQUESTED",
        "fixed": {},
        "params": {"deliveryId": "deliveryId"},
        "description": "A refund of one delivery is requested.",
    },
    "sync-eligibility": {
        "event": "PROGRAM_ELIGIBILITY_EVALUATED",
        "fixed": {},
        "params": {"programId": "programId"},
        "count": "applications",
        "description": 'A Program Manager presses "sync Eligibility Evaluation" for programme P.',
    },
    "pull-form": {
        "event": "PROGRAM_PULL_FORM",
        "fixed": {},
        "params": {"programId": "programId"},
        "description": "A Program Manager pulls the application form from the provider.",
    },
    "finish-import": {
        "event": "APPLICATIONS_IMPORT_RESULT",
        "fixed": {},
        "params": {"programId": "programId", "records": "summary.totalRecords", "failures": "summary.failureCount"},
        "at_most": (("failures", "records"),),  # the action's own input rule: a count of the records given
        "description": "AccessRC finishes an applications import (records, failures).",
    },
    "create-badge-export": {
        "event": "BadgeExportZipFile.Created",
        "fixed": {},
        "params": {"badgeExportZipFileId": "BadgeExportZipFileId"},
        "description": "An Accredit user groups badge exports into a ZIP file.",
    },
    "finish-reachfive-job": {
        "event": "END_JOB_NOTIFICATION",
        "fixed": {},
        "params": {
            "type": "type",
            "status": "status",
            "operations": "total_operations",
            "failed": "total_failed",
            "definitionId": "definition_id",
            "definitionName": "definition_name",
        },
        "at_most": (("failed", "operations"),),
        "description": "A ReachFive import or export job ends.",
    },
}


@bp.get("/api/actions")
def list_actions() -> Response:
    def params(a: dict) -> list[str]:
        optional = ["url", "auth", "seed"]
        if len(platforms.get(catalogue.get_event(a["event"]).platform).profiles) > 1:
            optional.append("profile")  # goes with url, like auth
        return sorted(a["params"]) + ([a["count"]] if a.get("count") else []) + optional

    return success(
        [
            {
                "name": name,
                "event": a["event"],
                "platform": catalogue.get_event(a["event"]).platform,
                "params": params(a),
                "description": a["description"],
            }
            for name, a in ACTIONS.items()
        ]
    )


@bp.post("/api/actions/<name>")
def run_action(name: str) -> Response:
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
    try:  # check the parameters once, before anything is stored (a count: before its list is generated)
        check_count(event, count, action.get("count", "count"), seed, overrides)
        body = catalogue.body_bytes(
            catalogue.generate(event, seed=seed if seed is not None else 0, overrides=overrides, count=count)
        )
    except FireError as exc:
        raise bad_request(str(exc), exc.field) from None
    except catalogue.CatalogueError as exc:
        raise bad_request("; ".join(exc.problems) or str(exc), _param_for(action, exc)) from exc
    if count and len(body) > MAX_GENERATED_BODY:
        raise bad_request(
            f"{action['count']} {count} makes a {event} body of {len(body):,} bytes; a generated body is at "
            f"most {MAX_GENERATED_BODY:,} bytes (1 MiB, the API's request limit)",
            action["count"],
        )
    url = require_url(data, "url", required=False)
    for alone in ("auth", "profile"):
        if alone in data and url is None:
            raise bad_request(f"{alone} goes with url (subscriptions bring their own)", alone)
    if url is not None:
        targets = [
            (
                url,
                platform_auth(spec.platform, data.get("auth")),
                None,
                None,
                None,
                optional_profile(data, spec.platform),
            )
        ]
    else:
        subs = svc.subscriptions.list(event=event, active_only=True)
        if not subs:
            raise bad_request(f"no active subscription for {event}; subscribe first or give url", "url")
        targets = [(s.url, s.auth, s.id, s.retry_delays, s.timeout, s.profile) for s in subs]
    jobs = []
    for target_url, auth, sub_id, delays, timeout, profile in targets:
        try:
            job = svc.enqueue(
                event,
                target_url,
                auth,
                seed=seed,
                overrides={**_sub_overrides(sub_id), **overrides},
                count=count,
                retry_delays=delays,
                timeout=timeout,
                source=f"action:{name}",
                subscription_id=sub_id,
                profile=profile,
            )
        except FireError as exc:  # a body over the limit with this seed (or a subscription's overrides)
            named = action.get("count") if exc.field == "count" else None
            raise bad_request(str(exc).replace("count", named, 1) if named else str(exc), named or exc.field) from None
        jobs.append(job)
    answer = {"action": name, "event": event, "jobs": [job_json(j, job_seq(j.id)) for j in jobs]}
    return success(answer, 201, meta=notes_meta(jobs))


def _sub_overrides(sub_id: str | None) -> dict:
    sub = services().subscriptions.get(sub_id) if sub_id else None
    return dict(sub.overrides) if sub else {}


def _param_for(action: dict, exc: catalogue.CatalogueError) -> str:
    text = " ".join(exc.problems) or str(exc)
    for param, path in action["params"].items():
        if path in text or path.split(".")[-1] in text:
            return param
    return "body"
