"""Inferred payload rules as checks that advise, never refuse (unless --strict).

Each check is tied to a rule id of simulator/rules/payload.yaml, where its source and reason are written down.
Small builders cover the common shapes: no fields beyond the documented ones, a value list we only saw examples of,
a format we only saw examples of. Pure: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

Check = Callable[[Any], list[str]]


@dataclass(frozen=True)
class Advisory:
    """An inferred rule of an event: `check(payload)` lists what breaks it, as `path: message`."""

    rule: str
    check: Check


@dataclass(frozen=True)
class Advice:
    """One inferred rule a payload breaks: a note for the user, a refusal only with --strict."""

    rule: str
    text: str

    def __str__(self) -> str:
        return f"{self.text} (inferred rule {self.rule})"


def at(payload: Any, pattern: str) -> Iterator[tuple[str, Any]]:
    """(path, value) of every place `pattern` names; `*` stands for every item of a list. Missing places are skipped."""
    nodes: list[tuple[str, Any]] = [("", payload)]
    for part in pattern.split("."):
        nxt = []
        for path, node in nodes:
            if part == "*" and isinstance(node, list):
                nxt.extend((f"{path}.{i}".lstrip("."), item) for i, item in enumerate(node))
            elif isinstance(node, dict) and part in node:
                nxt.append((f"{path}.{part}".lstrip("."), node[part]))
        nodes = nxt
    return iter(nodes)


def one_of(pattern: str, allowed: tuple) -> Check:
    def check(payload: Any) -> list[str]:
        return [
            f"{path}: {value!r} is not one of the documented examples ({', '.join(map(str, allowed))})"
            for path, value in at(payload, pattern)
            if value not in allowed
        ]

    return check


def matches(pattern: str, regex: str, shape: str) -> Check:
    """Values at `pattern` that are not in `shape` (a format shown only by example): `path: 'v' is not <shape>`."""
    compiled = re.compile(regex)

    def check(payload: Any) -> list[str]:
        return [
            f"{path}: {value!r} is not {shape}"
            for path, value in at(payload, pattern)
            if isinstance(value, str) and not compiled.fullmatch(value)
        ]

    return check


def not_negative(*patterns: str) -> Check:
    """Numbers at `patterns` below zero (counts the documents only type as integers)."""

    def check(payload: Any) -> list[str]:
        return [
            f"{path}: {value} is negative (a count)"
            for pattern in patterns
            for path, value in at(payload, pattern)
            if isinstance(value, (int, float)) and not isinstance(value, bool) and value < 0
        ]

    return check


def not_empty(*patterns: str) -> Check:
    """Strings at `patterns` that are empty (opaque ids the documents give no length for)."""

    def check(payload: Any) -> list[str]:
        return [f"{path}: empty" for pattern in patterns for path, value in at(payload, pattern) if value == ""]

    return check


def _walk(
    schema: dict, value: Any, path: str, visit: Callable[[dict, dict, str, list[str]], None], out: list[str]
) -> None:
    """Call `visit(properties, object, path, out)` on every object of `value` that `schema` describes."""
    if isinstance(value, dict) and "properties" in schema:
        props = schema["properties"]
        visit(props, value, path, out)
        for key, item in value.items():
            if key in props:
                _walk(props[key], item, f"{path}.{key}".lstrip("."), visit, out)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, item in enumerate(value):
            _walk(schema["items"], item, f"{path}.{i}".lstrip("."), visit, out)


def no_extra_fields(schema: dict) -> Check:
    """Fields present in the payload but not among the schema's `properties`, at every level the schema describes."""

    def extra(props: dict, obj: dict, path: str, out: list[str]) -> None:
        for key in obj:
            if key not in props:
                out.append(f"{path}.{key}".lstrip(".") + f": extra field {key!r}, not in the documents")

    def check(payload: Any) -> list[str]:
        out: list[str] = []
        _walk(schema, payload, "", extra, out)
        return out

    return check


def fields_present(schema: dict) -> Check:
    """Documented fields (the schema's `properties`) missing from the payload, at every level the schema describes."""

    def missing(props: dict, obj: dict, path: str, out: list[str]) -> None:
        out.extend(
            f"{path}.{key}".lstrip(".") + ": missing (the documented payload has it)" for key in props if key not in obj
        )

    def check(payload: Any) -> list[str]:
        out: list[str] = []
        _walk(schema, payload, "", missing, out)
        return out

    return check


MILLIS_UTC = r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z"
MILLIS_SHAPE = "in the documented example's form (exactly three fraction digits and Z)"
