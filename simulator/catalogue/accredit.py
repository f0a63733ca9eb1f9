"""Accredit events (seed 003 and ../shared/platforms/accredit.md). Keys are PascalCase, fields top level."""
from __future__ import annotations

from .base import EventSpec, GenContext, iso_millis


def base_notification(ctx: GenContext) -> dict:
    return {"Event": "Entity.Event", "Timestamp": iso_millis(ctx.now)}


def badge_export_zip_file_created(ctx: GenContext) -> dict:
    return {"Event": "BadgeExportZipFile.Created", "Timestamp": iso_millis(ctx.now),
            "BadgeExportZipFileId": ctx.uuid()}


EVENTS = (
    EventSpec(
        name="Entity.Event", platform="accredit", availability="live",
        description="The integration guide's base notification: only the Event and Timestamp fields.",
        factory=base_notification,
    ),
    EventSpec(
        name="BadgeExportZipFile.Created", platform="accredit", availability="live",
        description="Badge exports were grouped into a ZIP ready to download through the Print Queue API.",
        factory=badge_export_zip_file_created,
    ),
)
