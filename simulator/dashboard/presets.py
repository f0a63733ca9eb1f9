"""Trigger-panel presets: the situations the platforms' documents describe, as an event plus overrides.

Pure data over the catalogue; every preset is checked against its event's schema by the tests.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from .. import catalogue
from ..catalogue.accessrc import REQUEST_TYPES


@dataclass(frozen=True)
class Preset:
    id: str
    event: str
    label: str
    overrides: dict[str, Any] = field(default_factory=dict)
    count: int | None = None  # size of the event's main list; the panel lets the user change it
    note: str = ""
    example: str | None = None  # the documents' example payload of this name, as written (no generation)

    @property
    def platform(self) -> str:
        return catalogue.get_event(self.event).platform

    def to_dict(self) -> dict:
        data = asdict(self)
        data["platform"] = self.platform
        data["count_of"] = catalogue.get_event(self.event).count_of
        return data


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in text.lower()).strip("-")


def _channel_presets() -> list[Preset]:
    out = []
    for status in ("Approved", "Rejected"):
        for request_type in REQUEST_TYPES:
            label = f"{status} — {request_type}" + (" (with a reason)" if status == "Rejected" else "")
            out.append(
                Preset(
                    f"channel-{status.lower()}-{_slug(request_type)}",
                    "DELIVERY_CHANNEL_STATUS_UPDATED",
                    label,
                    {"status": status, "requestType": request_type},
                    note="The IM team's review of a delivery channel request; a rejection carries "
                    "its reason in the message field."
                    if status == "Rejected"
                    else "The IM team approved a delivery channel request; the message field is empty.",
                )
            )
    return out


def _example_presets() -> list[Preset]:
    """Each example payload the documents show, as a preset: sent as written (examples are always valid)."""
    return [
        Preset(
            f"example-{_slug(spec.name)}-{ex.name}",
            spec.name,
            f"Documents' example: {ex.name}",
            example=ex.name,
            note=f"As written in {ex.source}." + (f" {ex.note}" if ex.note else ""),
        )
        for spec in catalogue.EVENTS
        for ex in spec.examples
    ]


PRESETS: tuple[Preset, ...] = (
    *_channel_presets(),
    Preset(
        "delivery-request-sent",
        "DELIVERY_REQUEST_SENT",
        "Delivery request with N deliveries",
        count=2,
        note="A Program Manager created a delivery request.",
    ),
    Preset("delivery-refund-requested", "DELIVERY_REFUND_REQUESTED", "Refund requested for a delivery"),
    Preset(
        "eligibility-n",
        "PROGRAM_ELIGIBILITY_EVALUATED",
        "Eligibility evaluated for N applications",
        count=3,
        note="finalEvaluation is mostly FITS_CRITERIA exactly when every mandatory criterion fits (inferred); at "
        "times FITS_CRITERIA with unvalidated profiles, as the documents' own example.",
    ),
    Preset("pull-form", "PROGRAM_PULL_FORM", "Program pulls its application form"),
    Preset(
        "import-success",
        "APPLICATIONS_IMPORT_RESULT",
        "Import SUCCESS (120 records)",
        {"status": "SUCCESS", "summary.totalRecords": 120},
    ),
    Preset(
        "import-partial",
        "APPLICATIONS_IMPORT_RESULT",
        "Import PARTIAL_SUCCESS (120 records, 5 failures)",
        {"summary.totalRecords": 120, "summary.failureCount": 5},
        note="successCount + failureCount = totalRecords; errors lists the failures (at times fewer entries "
        "than failureCount, as the documents' own example).",
    ),
    Preset(
        "import-failed",
        "APPLICATIONS_IMPORT_RESULT",
        "Import FAILED (40 records)",
        {"status": "FAILED", "summary.totalRecords": 40},
    ),
    Preset("accredit-base", "Entity.Event", "Base notification (Event, Timestamp)"),
    Preset("badge-zip", "BadgeExportZipFile.Created", "Badge export ZIP created"),
    Preset(
        "reachfive-import-success",
        "END_JOB_NOTIFICATION",
        "Import job SUCCESS",
        {"type": "import", "status": "SUCCESS"},
    ),
    Preset(
        "reachfive-import-failure",
        "END_JOB_NOTIFICATION",
        "Import job FAILURE",
        {"type": "import", "status": "FAILURE"},
    ),
    Preset(
        "reachfive-export-success",
        "END_JOB_NOTIFICATION",
        "Export job SUCCESS",
        {"type": "export", "status": "SUCCESS"},
    ),
    Preset(
        "reachfive-export-failure",
        "END_JOB_NOTIFICATION",
        "Export job FAILURE",
        {"type": "export", "status": "FAILURE"},
    ),
    *_example_presets(),
)

_BY_ID = {p.id: p for p in PRESETS}


class PresetError(ValueError):
    """An unknown preset or a count the event cannot take."""


def get_preset(preset_id: str) -> Preset:
    try:
        return _BY_ID[preset_id]
    except KeyError:
        raise PresetError(f"unknown preset {preset_id!r}") from None


def generate(preset: Preset, count: int | None = None, seed: int | None = None) -> dict:
    """A fresh payload for `preset` (raises catalogue.CatalogueError when it cannot be made)."""
    spec = catalogue.get_event(preset.event)
    if count is not None and spec.count_of is None:
        raise PresetError(f"{spec.name} has no list to size")
    if count is None:
        count = preset.count
    if preset.example is not None:
        return catalogue.example(spec.name, preset.example)
    return catalogue.generate(spec.name, seed=seed, overrides=dict(preset.overrides), count=count)
