"""`GET /healthz`: is the simulator up (its database answers) and are its queue worker and scheduler running.

Open: no admin key, so a container's health check or a load balancer can ask.
"""

from __future__ import annotations

from flask import Blueprint, Response

from .access import services
from .errors import success

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> Response:
    svc = services()
    svc.store.ping()
    return success(
        {
            "status": "ok",
            "queue": svc.queue.running,
            "scheduler": svc.scheduler.running,
            "pending": svc.store.count_jobs("pending"),
        }
    )
