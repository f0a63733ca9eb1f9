"""The event catalogue: every documented event, its JSON Schema, and a seeded Faker factory.

Pure: no HTTP, no Flask, no storage. `generate()` is deterministic for a given seed (same seed, same bytes).
"""
from __future__ import annotations

import copy
import json
import random
import threading
from datetime import datetime, timedelta, timezone
from typing import Any, Iterable

from faker import Faker
from jsonschema import Draft202012Validator

from . import accessrc, accredit, paths, reachfive
from .base import PLATFORMS, EventSpec, GenContext, iso_millis
from .paths import PathError

__all__ = ["EVENTS", "PLATFORMS", "EventSpec", "CatalogueError", "PathError", "get_event", "events",
           "generate", "validate", "apply_overrides", "body_bytes", "iso_millis"]

EVENTS: tuple[EventSpec, ...] = accessrc.EVENTS + accredit.EVENTS + reachfive.EVENTS
_BY_NAME: dict[str, EventSpec] = {}
for _spec in EVENTS:
    for _name in (_spec.name, *_spec.aliases):
        _BY_NAME[_name] = _spec
        _BY_NAME.setdefault(_name.lower(), _spec)

# A fixed origin for seeded clocks, so a seeded payload's timestamps are reproducible too.
SEEDED_EPOCH = datetime(2025, 4, 7, 6, 42, 29, tzinfo=timezone.utc)


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
        fake = _local.fake = Faker("en_US")
    fake.seed_instance(seed if seed is not None else random.getrandbits(64))
    return fake


def generate(name: str, seed: int | None = None, overrides: dict[str, Any] | None = None,
             now: datetime | None = None, count: int | None = None, force: bool = False) -> dict:
    """A fresh payload for `name`. Overrides (dotted path → value) steer the factory, then are applied.

    Raises CatalogueError if a path does not exist or the result breaks the schema, unless `force`.
    """
    spec = get_event(name)
    overrides = dict(overrides or {})
    rng = random.Random(seed) if seed is not None else random.Random()
    if now is None:
        now = SEEDED_EPOCH + timedelta(seconds=rng.randint(0, 180 * 86400), milliseconds=rng.randint(0, 999)) if seed is not None \
            else datetime.now(timezone.utc)
    if count is not None and (spec.count_of is None or count < 0):
        raise CatalogueError(f"{spec.name} has no list to size with count" if spec.count_of is None
                             else "count must be 0 or more")
    ctx = GenContext(fake=_faker(seed), rng=rng, now=now, hints=overrides, count=count)
    payload = spec.factory(ctx)
    apply_overrides(payload, overrides, force=force)
    if not force:
        problems = validate(spec, payload)
        if problems:
            raise CatalogueError(f"the payload breaks the {spec.name} schema", problems)
    return payload


def apply_overrides(payload: dict, overrides: dict[str, Any], force: bool = False) -> dict:
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


def validate(spec: EventSpec | str, payload: Any) -> list[str]:
    """Every problem with `payload` against the event's schema and consistency rules, as `path: message`."""
    spec = get_event(spec) if isinstance(spec, str) else spec
    validator = _validators.get(spec.schema_file)
    if validator is None:
        validator = _validators[spec.schema_file] = Draft202012Validator(spec.schema)
    problems = []
    for err in sorted(validator.iter_errors(payload), key=lambda e: list(map(str, e.absolute_path))):
        where = ".".join(str(p) for p in err.absolute_path) or "(body)"
        problems.append(f"{where}: {err.message}")
    if not problems and spec.consistency is not None:
        problems.extend(spec.consistency(payload))
    return problems


def body_bytes(payload: Any) -> bytes:
    """The exact bytes sent: compact JSON, UTF-8, key order as the documents print them."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
