"""Scenario files against schema.json: every error as `file:line:column: what is wrong`, in the format's words
(a misspelt field gets a "did you mean", a type error names the type wanted and the one found)."""

from __future__ import annotations

import copy
import difflib
import json
import re
from importlib import resources
from typing import Any

from jsonschema import Draft202012Validator

from .. import limits
from .positions import Positions

KINDS = ("send", "fault", "expect", "wait", "repeat", "await_call")


def schema() -> dict:
    """The JSON Schema of scenario files (shipped in the package)."""
    return json.loads(resources.files("simulator.scenarios").joinpath("schema.json").read_text("utf-8"))


_SCHEMA = schema()
_TOP = copy.deepcopy(_SCHEMA)
_TOP["properties"]["steps"]["items"] = True
_DEFS = copy.deepcopy(_SCHEMA["$defs"])
_DEFS["repeat_step"]["properties"]["steps"]["items"] = True
_VALIDATORS = {"": Draft202012Validator(_TOP)}
for _kind in KINDS:
    _VALIDATORS[_kind] = Draft202012Validator({"$ref": f"#/$defs/{_kind}_step", "$defs": _DEFS})

_ONE_OF_HELP = {
    "status": "must be an HTTP status (e.g. 200), a class such as 2xx, or a list of them",
    "retry": "must be `none` or {delays: [seconds, ...]} with at most 5 delays",
    "latency_ms": "must be a number of milliseconds above 0",
    "attempts": "must be a whole number from 1 to 6",
}
_TYPE_NAMES = {
    "object": "a mapping",
    "array": "a list",
    "string": "a string",
    "integer": "a whole number",
    "number": "a number",
    "boolean": "true or false",
    "null": "null",
}


def json_type(value: Any) -> str:
    """A value's type in the format's words ("a mapping", "a list", …)."""
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, (int, float)):
        return "a number"
    if value is None:
        return "null"
    return "a string"


def problems(kind: str, instance: Any, base: tuple, pos: Positions, context: str) -> list[str]:
    """The schema errors of `instance` (the whole file when `kind` is "", else one step of that kind at `base`)."""
    found = []
    for err in sorted(_VALIDATORS[kind].iter_errors(instance), key=lambda e: list(map(str, e.absolute_path))):
        rel = tuple(err.absolute_path)
        path = base + rel
        label = ".".join(str(p) for p in rel) or context
        if err.validator == "additionalProperties" and isinstance(err.instance, dict):
            allowed = set(err.schema.get("properties", {}))
            for extra in [k for k in err.instance if k not in allowed]:
                owner = ".".join(str(p) for p in rel) or context
                close = difflib.get_close_matches(str(extra), sorted(allowed), n=1, cutoff=0.75)
                found.append(
                    f"{pos.at(path + (extra,), key=True)}: unknown field {extra!r} in {owner}"
                    + (f": did you mean {close[0]!r}?" if close else "")
                    + f" (allowed: {', '.join(sorted(allowed))})"
                )
        elif err.validator == "unevaluatedProperties" and isinstance(err.instance, dict):
            continue  # reported by additionalProperties of the referenced schema
        elif err.validator == "required":
            missing = re.findall(r"'([^']+)' is a required property", err.message)
            found.append(f"{pos.at(path)}: {label}: missing required field {missing[0] if missing else ''!r}")
        elif err.validator == "type":
            wanted = err.validator_value if isinstance(err.validator_value, list) else [err.validator_value]
            found.append(
                f"{pos.at(path)}: {label}: expected {' or '.join(_TYPE_NAMES[w] for w in wanted)}, "
                f"got {json_type(err.instance)}"
            )
        elif err.validator in ("enum", "const"):
            options = err.validator_value if err.validator == "enum" else [err.validator_value]
            found.append(
                f"{pos.at(path)}: {label}: {limits.quote(err.instance)} is not one of {', '.join(map(str, options))}"
            )
        elif err.validator == "oneOf":
            key = next((p for p in reversed(path) if isinstance(p, str)), label)
            if key in _ONE_OF_HELP:
                found.append(f"{pos.at(path)}: {label}: {limits.quote(err.instance)} {_ONE_OF_HELP[key]}")
            else:
                found.append(f"{pos.at(path)}: {label}: {_cut(err.message)}")
        elif err.validator == "propertyNames":
            found.append(f"{pos.at(path)}: {label}: bad name {limits.quote(err.instance)}")
        else:
            found.append(f"{pos.at(path)}: {label}: {_cut(err.message)}")
    return found


def _cut(message: str) -> str:
    """jsonschema's message, which quotes the whole value, cut to about limits.QUOTED characters."""
    return message if len(message) <= 2 * limits.QUOTED else message[: 2 * limits.QUOTED] + "…"


def step_fields() -> set[str]:
    """Every field some step kind takes (a step with none of the kinds is named by its first other field)."""
    return {f for k in KINDS for f in _DEFS[f"{k}_step"]["properties"]}
