"""Every rule the simulator applies or checks, with where it comes from: one place, as data.

A rule is `documented` (with the exact `quote` and the document it is in, `where`) or `inferred` (with the `reason`
we chose it). The data lives in the YAML files beside this module, one per topic (payload, delivery, conformance);
`accessrc-sim rules` lists them. The copies of the documents the quotes come from are in docs/sources/.

Inferred rules never refuse a value or fail a receiver unless the user asks for `--strict`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import lru_cache
from importlib import resources

import yaml

DOCUMENTED, INFERRED = "documented", "inferred"
SOURCES = (DOCUMENTED, INFERRED)
FILES = ("payload.yaml", "delivery.yaml", "conformance.yaml", "loop.yaml")
TOPICS = ("schema", "consistency", "headers", "auth", "retries", "timeout", "envelope", "conformance")


class RuleError(ValueError):
    """A rule id that is not in the registry, or a malformed rules file."""


@dataclass(frozen=True)
class Rule:
    id: str
    platform: str
    event: str | None
    topic: str
    text: str  # what the rule says, in one sentence
    source: str  # documented | inferred
    quote: str | None = None  # documented: verbatim text of the document
    where: str | None = None  # documented: the document, e.g. seeds/003-….txt or platforms/accredit.md#Delivery rules
    reason: str | None = None  # inferred: why we chose it (documented: optional note)

    @property
    def documented(self) -> bool:
        return self.source == DOCUMENTED

    def to_dict(self) -> dict:
        return asdict(self)


def _check(raw: dict, origin: str) -> Rule:
    known = set(Rule.__dataclass_fields__)
    extra = set(raw) - known
    if extra:
        raise RuleError(f"{origin}: rule {raw.get('id')!r} has unknown fields {sorted(extra)}")
    rule = Rule(**{"event": None, **raw})
    if rule.source not in SOURCES:
        raise RuleError(f"{origin}: rule {rule.id}: source must be documented or inferred")
    if rule.topic not in TOPICS:
        raise RuleError(f"{origin}: rule {rule.id}: topic must be one of {', '.join(TOPICS)}")
    if rule.documented and not (rule.quote and rule.where):
        raise RuleError(f"{origin}: rule {rule.id}: a documented rule needs quote and where")
    if not rule.documented and not rule.reason:
        raise RuleError(f"{origin}: rule {rule.id}: an inferred rule needs a reason")
    return rule


@lru_cache(maxsize=1)
def _registry() -> dict[str, Rule]:
    rules: dict[str, Rule] = {}
    folder = resources.files("simulator.rules")
    for name in FILES:
        # libyaml's loader when PyYAML has it: the same safe subset, ~10x faster than the pure-Python one (these
        # files are read by every command that names a rule, `send` included)
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        for raw in yaml.load(folder.joinpath(name).read_text("utf-8"), Loader=loader) or []:
            rule = _check(raw, name)
            if rule.id in rules:
                raise RuleError(f"{name}: rule id {rule.id} is defined twice")
            rules[rule.id] = rule
    return rules


def all_rules() -> list[Rule]:
    return list(_registry().values())


def get(rule_id: str) -> Rule:
    try:
        return _registry()[rule_id]
    except KeyError:
        raise RuleError(f"no rule {rule_id!r} in the registry") from None


def select(platform: str | None = None, event: str | None = None, topic: str | None = None) -> list[Rule]:
    """Rules of a platform and/or event. An event's selection includes its platform's rules for every event."""
    out = []
    for rule in _registry().values():
        if platform and rule.platform != platform:
            continue
        if event and rule.event not in (None, event):
            continue
        if topic and rule.topic != topic:
            continue
        out.append(rule)
    return out
