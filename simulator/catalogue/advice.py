"""Inferred payload rules as checks that advise, never refuse (unless --strict).

Each check is tied to a rule id of simulator/rules/payload.yaml, where its source and reason are written down.
Small builders cover the common shapes: no fields beyond the documented ones, a value list we only saw examples of,
a format we only saw examples of. Pure: no I/O.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable, Iterator

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
        return [f"{path}: {value!r} is not one of the documented examples ({', '.join(map(str, allowed))})"
                for path, value in at(payload, pattern) if value not in allowed]
    return check


def matches(pattern: str, regex: str, shape: str) -> Check:
    compiled = re.compile(regex)

    def check(payload: Any) -> list[str]:
        return [f"{path}: {value!r} is not {shape}" for path, value in at(payload, pattern)
                if isinstance(value, str) and not compiled.fullmatch(value)]
    return check


def no_extra_fields(schema: dict) -> Check:
    """Fields present in the payload but not among the schema's `properties`, at every level the schema describes."""

    def walk(node_schema: dict, value: Any, path: str, out: list[str]) -> None:
        if isinstance(value, dict) and "properties" in node_schema:
            props = node_schema["properties"]
            for key, item in value.items():
                where = f"{path}.{key}".lstrip(".")
                if key not in props:
                    out.append(f"{where}: not a documented field")
                else:
                    walk(props[key], item, where, out)
        elif isinstance(value, list) and isinstance(node_schema.get("items"), dict):
            for i, item in enumerate(value):
                walk(node_schema["items"], item, f"{path}.{i}".lstrip("."), out)

    def check(payload: Any) -> list[str]:
        out: list[str] = []
        walk(schema, payload, "", out)
        return out
    return check


MILLIS_UTC = r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z"
