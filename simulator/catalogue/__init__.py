"""The event catalogue: every documented event, its JSON Schema, and a seeded Faker factory.

Pure: no HTTP, no Flask, no storage. `generate()` is deterministic for a given seed (same seed, same bytes).
"""

from __future__ import annotations

import copy
import json
import random
import threading
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from . import accessrc, accredit, paths, reachfive
from .advice import Advice, Advisory, fields_present, no_extra_fields
from .base import PLATFORMS, EventSpec, Example, GenContext, iso_millis
from .paths import PathError

if TYPE_CHECKING:  # both cost tens of ms to import: loaded on first generate() / validate(), not by `events`
    from faker import Faker
    from jsonschema import Draft202012Validator

__all__ = [
    "EVENTS",
    "PLATFORMS",
    "EventSpec",
    "Example",
    "Advice",
    "CatalogueError",
    "PathError",
    "get_event",
    "events",
    "generate",
    "validate",
    "advise",
    "example",
    "find_example",
    "apply_overrides",
    "body_bytes",
    "iso_millis",
]

EVENTS: tuple[EventSpec, ...] = accessrc.EVENTS + accredit.EVENTS + reachfive.EVENTS
_BY_NAME: dict[str, EventSpec] = {}
for _spec in EVENTS:
    for _name in (_spec.name, *_spec.aliases):
        _BY_NAME[_name] = _spec
        _BY_NAME.setdefault(_name.lower(), _spec)

# A fixed origin for seeded clocks, so a seeded payload's timestamps are reproducible too.
SEEDED_EPOCH = datetime(2025, 4, 7, 6, 42, 29, tzinfo=UTC)


class CatalogueError(ValueError):
    """Unknown event, bad override, or a payload that breaks its event's schema; `problems` lists each."""

    def __init__(self, message: str, problems: Iterable[str] = ()):
        super().__init__(message)
        self.problems = list(problems)


def get_event(name: str, platform: str | None = None) -> EventSpec:
    spec = _BY_NAME.get(name) or _BY_NAME.get(name.lower())
    if spec is None or (platform and spec.platform != platform):
        known = ", ".join(e.name for e in EVENTS if not platform or e.platform == platform)
        raise CatalogueError(f"unknown event {name!r}" + (f" for {platform}" if platform else "") + f"; known: {known}")
    return spec


def events(platform: str | None = None) -> list[EventSpec]:
    return [e for e in EVENTS if platform is None or e.platform == platform]


_local = threading.local()


def _faker(seed: int | None) -> Faker:
    fake = getattr(_local, "fake", None)
    if fake is None:
        from faker import Faker

        fake = _local.fake = Faker("en_US")
    fake.seed_instance(seed if seed is not None else random.getrandbits(64))
    return fake


def generate(
    name: str,
    seed: int | None = None,
    overrides: dict[str, Any] | None = None,
    now: datetime | None = None,
    count: int | None = None,
    force: bool = False,
    strict: bool = False,
    example: str | None = None,
) -> dict:
    """A fresh payload for `name` (or the documents' example `example`, "" for the event's first one). Overrides
    (dotted path → value) steer the factory, then are applied.

    Raises CatalogueError if a path cannot be set (see `paths.set_path`: a new field in an existing object can) or
    the result breaks a documented rule (with `strict`, an inferred rule too, e.g. no-extra-fields for an added
    field), unless `force`. Inferred rules it breaks are for `advise()` to report.
    """
    spec = get_event(name)
    overrides = dict(overrides or {})
    rng = random.Random(seed) if seed is not None else random.Random()
    if now is None:
        now = (
            SEEDED_EPOCH + timedelta(seconds=rng.randint(0, 180 * 86400), milliseconds=rng.randint(0, 999))
            if seed is not None
            else datetime.now(UTC)
        )
    if count is not None and (spec.count_of is None or count < 0):
        raise CatalogueError(
            f"{spec.name} has no list to size with count" if spec.count_of is None else "count must be 0 or more"
        )
    if example is not None:
        payload = _example(spec, example or None)
    else:
        ctx = GenContext(fake=_faker(seed), rng=rng, now=now, hints=overrides, count=count)
        payload = spec.factory(ctx)
    apply_overrides(payload, overrides, force=force or spec.open_fields)
    if not force:
        problems = validate(spec, payload, strict=strict)
        if problems:
            raise CatalogueError(
                f"the payload breaks the {spec.name} schema"
                if not strict
                else f"the payload breaks {spec.name} rules (--strict: inferred ones count too)",
                problems,
            )
    return payload


def example(name: str, which: str | None = None) -> dict:
    """A copy of the documents' example payload `which` of event `name` (its first example when None)."""
    return _example(get_event(name), which)


def find_example(spec: EventSpec, which: str | None = None) -> Example:
    """The documents' example `which` of an event (its first when None), or CatalogueError naming the examples."""
    if not spec.examples:
        raise CatalogueError(f"the documents show no example of {spec.name}")
    if which is None:
        return spec.examples[0]
    for item in spec.examples:
        if item.name == which:
            return item
    raise CatalogueError(f"no example {which!r} of {spec.name}; examples: " + ", ".join(e.name for e in spec.examples))


def _example(spec: EventSpec, which: str | None) -> dict:
    return copy.deepcopy(find_example(spec, which).payload)


def apply_overrides(payload: dict, overrides: dict[str, Any], force: bool = False) -> dict:
    """Set each dotted path (`paths.set_path`): a new field of an existing object is added (the event's inferred
    no-extra-fields rule advises against it, see `advise`); a path through a missing object or past the end of a
    list is refused unless `force` (or the event's fields are open: then missing objects are made)."""
    problems = []
    for path, value in overrides.items():
        try:
            paths.set_path(payload, path, copy.deepcopy(value), create=force)
        except PathError as exc:
            problems.append(str(exc))
    if problems:
        raise CatalogueError("; ".join(problems), problems)
    return payload


_validators: dict[str, Draft202012Validator] = {}


def validate(spec: EventSpec | str, payload: Any, strict: bool = False) -> list[str]:
    """Every documented rule `payload` breaks (the event's JSON Schema), as `path: message`; with `strict`, every
    inferred rule it breaks too."""
    spec = get_event(spec) if isinstance(spec, str) else spec
    validator = _validators.get(spec.schema_file)
    if validator is None:
        from jsonschema import Draft202012Validator

        validator = _validators[spec.schema_file] = Draft202012Validator(spec.schema)
    problems = []
    for err in sorted(validator.iter_errors(payload), key=lambda e: list(map(str, e.absolute_path))):
        where = ".".join(str(p) for p in err.absolute_path) or "(body)"
        problems.append(f"{where}: {err.message}")
    if strict and not problems:
        problems.extend(str(a) for a in advise(spec, payload))
    return problems


def advise(spec: EventSpec | str, payload: Any) -> list[Advice]:
    """Every inferred rule `payload` breaks: advice for the user, never a refusal (unless --strict).

    Meant for payloads that meet the documented rules; on others the schema problems say more."""
    spec = get_event(spec) if isinstance(spec, str) else spec
    out = []
    for advisory in (*_shape_checks(spec), *spec.advisories):
        out.extend(Advice(advisory.rule, text) for text in advisory.check(payload))
    return out


_shape_cache: dict[str, tuple[Advisory, ...]] = {}


def _shape_checks(spec: EventSpec) -> tuple[Advisory, ...]:
    """The inferred shape rules of an event, built from its schema once: every documented field present, none other."""
    if spec.name not in _shape_cache:
        checks = []
        if spec.present_rule:
            checks.append(Advisory(spec.present_rule, fields_present(spec.schema)))
        if spec.closed_rule:
            checks.append(Advisory(spec.closed_rule, no_extra_fields(spec.schema)))
        _shape_cache[spec.name] = tuple(checks)
    return _shape_cache[spec.name]


def body_bytes(payload: Any) -> bytes:
    """The exact bytes sent: compact JSON, UTF-8, key order as the documents print them."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
