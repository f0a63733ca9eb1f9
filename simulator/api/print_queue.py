"""Accredit's Print Queue (`/api/printQueue`, Bearer): the ZIP files announced by BadgeExportZipFile.Created, each
downloaded as a real ZIP of small badge PDFs, and their print status. Errors carry the documented ACR_02.004 codes.

The documents name the section `api/printQueue` and what it does, not its paths or bodies (rule
accredit.api.print-queue.routes, inferred). It knows the ids this simulator sent (accredit.api.print-queue.sent);
any other is not found, with the documented ACR_02.004.000/.001 (accredit.api.print-queue.not-found,
.metadata-not-found). A print status outside our list (accredit.api.print-queue.statuses, inferred) is kept as
given with `advice`; refused (ACR_02.004.002) only under `serve --strict`.
"""

from __future__ import annotations

import json

from flask import Blueprint, Response, g

from .. import catalogue
from ..models import Job
from ..platforms import badges
from ..platforms.accredit import NAME
from ..store import ProviderObject
from .access import services
from .advice import answer, breach
from .errors import (
    ACR_INVALID_PRINT_STATUS,
    ACR_ZIP_METADATA_NOT_FOUND,
    ACR_ZIP_NOT_FOUND,
    ApiError,
    json_response,
)
from .inputs import json_body, reject_unknown, require_string

bp = Blueprint("print_queue", __name__, url_prefix="/api/printQueue")

EVENT = "BadgeExportZipFile.Created"
KEY = "BadgeExportZipFileId"
RULE = "accredit.api.print-queue"
KIND = "badge_export_zip"  # provider object: a ZIP file's print status


def _sent(zip_id: str, code: str = ACR_ZIP_NOT_FOUND) -> Job:
    job = services().store.find_sent_job(EVENT, KEY, zip_id)
    if job is None:
        what = "Badge Export Zip File Not Found" if code == ACR_ZIP_NOT_FOUND else "Badge Export Metadata Not Found"
        rule = "not-found" if code == ACR_ZIP_NOT_FOUND else "metadata-not-found"
        raise ApiError(
            400, f"{what}: {zip_id} was never sent in a {EVENT} by this simulator (rule {RULE}.{rule})", KEY, code
        )
    g.call_job = job.id
    return job


def _payload(job: Job) -> dict:
    try:
        body = json.loads(job.body)
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _item(zip_id: str, job: Job) -> dict:
    payload = _payload(job)
    state = services().store.get_provider_object(NAME, KIND, zip_id)
    names = badges.badge_names(payload)
    return {
        "badgeExportZipFileId": zip_id,
        "printStatus": state.status if state else badges.NEW_STATUS,
        "printStatusUpdatedAt": _iso(state.updated_at) if state else None,
        "badgeCount": len(names),
        "badges": names,
        "timestamp": payload.get("Timestamp"),
        "jobId": job.id,
        "downloadUrl": f"/api/printQueue/{zip_id}/download",
    }


def _iso(ts: float) -> str:
    from datetime import UTC, datetime

    return catalogue.iso_millis(datetime.fromtimestamp(ts, UTC))


@bp.get("")
def list_zip_files():
    sent = services().store.sent_values(EVENT, KEY)
    return json_response([_item(zip_id, job) for zip_id, job in sent])


@bp.get("/<zip_id>")
def get_zip_file(zip_id: str):
    return json_response(_item(zip_id, _sent(zip_id, ACR_ZIP_METADATA_NOT_FOUND)))


@bp.get("/<zip_id>/download")
def download(zip_id: str):
    job = _sent(zip_id)
    data, _ = badges.badge_zip(zip_id, _payload(job))
    return Response(
        data,
        mimetype="application/zip",
        headers={"Content-Disposition": f'attachment; filename="BadgeExportZipFile-{zip_id}.zip"'},
    )


@bp.put("/<zip_id>/printStatus")
def update_print_status(zip_id: str):
    job = _sent(zip_id)
    data = json_body()
    reject_unknown(data, ("printStatus", "PrintStatus"))
    status = require_string(data, "printStatus", "PrintStatus")
    advice: list[str] = []
    if status not in badges.PRINT_STATUSES:  # the values are ours: kept as given unless --strict
        breach(
            advice,
            f"Invalid Print Status: {status!r} is not one of {', '.join(badges.PRINT_STATUSES)}; kept as given",
            "accredit.api.print-queue.statuses",
            "printStatus",
            ACR_INVALID_PRINT_STATUS,
        )
    services().store.save_provider_object(ProviderObject(NAME, KIND, zip_id, status, {}, job_id=job.id))
    return answer(_item(zip_id, job), advice)
