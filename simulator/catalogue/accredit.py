"""Accredit events (seed 003 and ../shared/platforms/accredit.md). Keys are PascalCase, fields top level.

"additional fields depend on the subscribed event" (seed 003): every Accredit event is open to fields of the
user's choosing, and any `Entity.Action` name can be sent through the base notification (`--event-name`).
"""

from __future__ import annotations

from .advice import MILLIS_SHAPE, MILLIS_UTC, Advisory, matches
from .base import EventSpec, GenContext, iso_millis

TIMESTAMP_MILLIS = Advisory("accredit.payload.timestamp-millis", matches("Timestamp", MILLIS_UTC, MILLIS_SHAPE))
# ISO 8601 is documented; a date-time without a zone (.NET's DateTime of no kind) only breaks our reading of "UTC"
TIMESTAMP_ZONE = Advisory(
    "accredit.payload.timestamp-zone",
    matches("Timestamp", r".*(Z|[+-]\d{2}:\d{2})", "a date-time with its zone (Z or an offset), like the example"),
)
# The Entity.Event form is documented (the schema); letters and digits only is ours.
EVENT_NAME_CHARS = Advisory(
    "accredit.payload.event-name-chars",
    matches(
        "Event", r"[A-Za-z0-9]+\.[A-Za-z0-9]+", "Entity.Event in letters and digits, like BadgeExportZipFile.Created"
    ),
)


def base_notification(ctx: GenContext) -> dict:
    return {"Event": "Entity.Event", "Timestamp": iso_millis(ctx.now)}


def badge_export_zip_file_created(ctx: GenContext) -> dict:
    return {"Event": "BadgeExportZipFile.Created", "Timestamp": iso_millis(ctx.now), "BadgeExportZipFileId": ctx.uuid()}


EVENTS = (
    EventSpec(
        name="Entity.Event",
        platform="accredit",
        availability="live",
        description="The integration guide's base notification: Event and Timestamp; any Entity.Action name "
        "(--event-name) with fields of your choosing.",
        factory=base_notification,
        advisories=(TIMESTAMP_ZONE, TIMESTAMP_MILLIS, EVENT_NAME_CHARS),
        open_fields=True,
    ),
    EventSpec(
        name="BadgeExportZipFile.Created",
        platform="accredit",
        availability="live",
        description="Badge exports were grouped into a ZIP ready to download through the Print Queue API.",
        factory=badge_export_zip_file_created,
        advisories=(TIMESTAMP_ZONE, TIMESTAMP_MILLIS),
        open_fields=True,
        closed_rule="accredit.payload.no-extra-fields",
    ),
)
