"""The shape of a catalogue entry and the context a payload factory draws from."""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cached_property
from importlib import resources
from typing import TYPE_CHECKING, Any

from .advice import Advisory

if TYPE_CHECKING:  # Faker costs ~40 ms to import; only generate() needs it, and imports it then
    from faker import Faker

PLATFORMS = ("accessrc", "accredit", "reachfive")


@dataclass
class GenContext:
    """Everything a factory may draw from: a seeded Faker and RNG, the clock, and the caller's hints.

    Hints are the caller's overrides (dotted path → value). A factory reads the ones it understands so that
    the rest of the payload stays consistent with them (e.g. `summary.failureCount` sizes `errors`).
    """

    fake: Faker
    rng: random.Random
    now: datetime
    hints: dict[str, Any] = field(default_factory=dict)
    count: int | None = None

    def uuid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def hint(self, path: str, default: Any = None, kind: type | tuple[type, ...] | None = None) -> Any:
        value = self.hints.get(path, default)
        if kind is not None and value is not default and not isinstance(value, kind):
            return default
        if isinstance(value, bool) and kind in (int, (int,)):
            return default
        return value

    def choice(self, seq):
        return self.rng.choice(list(seq))

    def before_now(self, min_seconds: int, max_seconds: int) -> datetime:
        return self.now - timedelta(
            seconds=self.rng.randint(min_seconds, max_seconds), milliseconds=self.rng.randint(0, 999)
        )

    def federation_id(self) -> str:
        return f"VR-{self.rng.randint(100_000_000, 999_999_999)}"


def iso_millis(moment: datetime) -> str:
    """ISO 8601 UTC with milliseconds and `Z`, e.g. `2024-05-10T11:09:21.248Z` (Accredit, ReachFive)."""
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


@dataclass(frozen=True)
class EventSpec:
    """One event the simulator can send, as the platform documents it."""

    name: str
    platform: str
    availability: str  # "live" or "planned", as the platform's event list gives it
    description: str
    factory: Callable[[GenContext], dict]
    aliases: tuple[str, ...] = ()
    reply_data: Callable[[dict], Any] | None = None  # AccessRC: the `data` of the documented 200 reply
    advisories: tuple[Advisory, ...] = ()  # inferred rules: advice, a refusal only with --strict
    closed_rule: str | None = None  # the inferred "no fields beyond the documented ones" rule, if it applies
    present_rule: str | None = None  # the inferred "every documented field is present" rule, if it applies
    open_fields: bool = False  # the documents allow fields of the user's choosing (Accredit): --set may add them
    count_of: str | None = None  # the list that `count` sizes, if any
    inferred: tuple[str, ...] = ()  # fields/aspects the fact sheets mark as inferred

    @cached_property
    def schema(self) -> dict:
        text = resources.files("simulator.catalogue").joinpath("schemas", f"{self.schema_file}").read_text("utf-8")
        return json.loads(text)

    @property
    def schema_file(self) -> str:
        return f"{self.platform}.{self.name}.json"

    @cached_property
    def examples(self) -> tuple[Example, ...]:
        """The documents' own example payloads of this event, as written (simulator/catalogue/examples/)."""
        path = resources.files("simulator.catalogue").joinpath("examples", self.schema_file)
        if not path.is_file():
            return ()
        return tuple(Example(**item) for item in json.loads(path.read_text("utf-8")))

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "platform": self.platform,
            "availability": self.availability,
            "description": self.description,
            "aliases": list(self.aliases),
            "count_of": self.count_of,
            "inferred": list(self.inferred),
            "examples": [{"name": e.name, "source": e.source, "note": e.note} for e in self.examples],
        }


@dataclass(frozen=True)
class Example:
    """A payload exactly as a platform document shows it; `note` says what was mended (scrape artefacts only)."""

    name: str
    source: str  # seeds/<file> or platforms/<file>.md#<section>
    payload: dict
    note: str | None = None
