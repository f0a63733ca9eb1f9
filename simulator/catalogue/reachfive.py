"""ReachFive End Job Notification (seed 004 and ../shared/platforms/reachfive.md): the job report minus `definition`."""

from __future__ import annotations

import string

from .advice import MILLIS_SHAPE, MILLIS_UTC, Advisory, matches, not_empty, not_negative
from .base import EventSpec, GenContext, iso_millis

ID_ALPHABET = string.ascii_letters + string.digits + "-_"
DEFINITION_NAMES = {
    "import": ("User import", "Nightly CRM import", "Loyalty members import", "Partner profiles import"),
    "export": ("Consents export", "User profiles export", "User events export", "Weekly analytics export"),
}


def _opaque_id(ctx: GenContext) -> str:
    return "A" + "".join(ctx.rng.choice(ID_ALPHABET) for _ in range(17))


def end_job_notification(ctx: GenContext) -> dict:
    job_type = ctx.hint("type", ctx.choice(("import", "export")), str)
    status = ctx.hint("status", "SUCCESS" if ctx.rng.random() < 0.75 else "FAILURE", str)
    total = ctx.hint("total_operations", None, int)
    failed = ctx.hint("total_failed", None, int)
    succeeded = ctx.hint("total_succeeded", None, int)
    if total is None:
        if succeeded is not None and failed is not None:
            total = succeeded + failed
        else:
            total = 0 if status == "FAILURE" and ctx.rng.random() < 0.5 else ctx.rng.randint(1, 500)
    if failed is None:
        failed = (
            total - succeeded
            if succeeded is not None
            else (ctx.rng.randint(0, total) if status == "FAILURE" else ctx.rng.randint(0, max(0, total // 20)))
        )
    failed = max(0, min(failed, total))
    if succeeded is None:
        succeeded = total - failed
    duration_ms = ctx.rng.randint(400, 120_000)
    ended = ctx.now
    created = ctx.now.__class__.fromtimestamp(ended.timestamp() - duration_ms / 1000, tz=ended.tzinfo)
    return {
        "total_succeeded": succeeded,
        "total_operations": total,
        "total_failed": failed,
        "id": _opaque_id(ctx),
        "status": status,
        "created_at": iso_millis(created),
        "type": job_type,
        "updated_at": iso_millis(ended),
        "definition_id": _opaque_id(ctx),
        "definition_name": ctx.choice(DEFINITION_NAMES.get(job_type, DEFINITION_NAMES["import"])),
    }


def totals(payload: dict) -> list[str]:
    problems = []
    ok, bad, total = payload.get("total_succeeded"), payload.get("total_failed"), payload.get("total_operations")
    if None not in (ok, bad, total) and ok + bad > total:
        problems.append(f"total_succeeded {ok} + total_failed {bad} > total_operations {total}")
    if str(payload.get("updated_at", "")) < str(payload.get("created_at", "")):
        problems.append("updated_at is before created_at")
    return problems


def not_running(payload: dict) -> list[str]:
    return ["status: RUNNING in an end-of-job notification"] if payload.get("status") == "RUNNING" else []


EVENTS = (
    EventSpec(
        name="END_JOB_NOTIFICATION",
        platform="reachfive",
        availability="live",
        description="An import or export job ended (success or failure); fire-and-forget, no retries.",
        factory=end_job_notification,
        closed_rule="reachfive.payload.no-extra-fields",
        present_rule="reachfive.payload.fields-present",
        advisories=(
            Advisory("reachfive.payload.totals", totals),
            Advisory("reachfive.payload.not-running", not_running),
            Advisory(
                "reachfive.payload.counts-not-negative",
                not_negative("total_operations", "total_succeeded", "total_failed"),
            ),
            Advisory("reachfive.payload.ids-not-empty", not_empty("id", "definition_id")),
            Advisory("reachfive.payload.dates-millis", matches("created_at", MILLIS_UTC, MILLIS_SHAPE)),
            Advisory("reachfive.payload.dates-millis", matches("updated_at", MILLIS_UTC, MILLIS_SHAPE)),
        ),
        inferred=("id alphabet and length", "RUNNING never sent at job end"),
    ),
)
