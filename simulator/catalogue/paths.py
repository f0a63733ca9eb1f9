"""Dotted-path access into JSON-like payloads (`applications.0.email`, `summary.totalRecords`)."""

from __future__ import annotations

from typing import Any

from .. import limits


class PathError(ValueError):
    """A dotted path that does not exist in the payload."""


def split(path: str) -> list[str]:
    if not path or any(part == "" for part in path.split(".")):
        raise PathError(f"invalid path {path!r}")
    parts = path.split(".")
    if len(parts) > limits.MAX_DEPTH:  # a payload nested that deep could not be serialised
        raise PathError(f"invalid path {path[:40]!r}…: {len(parts):,} parts; at most {limits.MAX_DEPTH}")
    return parts


def _step(node: Any, part: str, path: str) -> Any:
    if isinstance(node, dict):
        if part not in node:
            raise PathError(f"path {path!r} does not exist (no field {part!r})")
        return node[part]
    if isinstance(node, list):
        if not part.isdigit() or int(part) >= len(node):
            raise PathError(f"path {path!r} does not exist (no item {part!r} in a list of {len(node)})")
        return node[int(part)]
    raise PathError(f"path {path!r} does not exist ({part!r} is below a {type(node).__name__})")


def get(payload: Any, path: str) -> Any:
    node = payload
    for part in split(path):
        node = _step(node, part, path)
    return node


def exists(payload: Any, path: str) -> bool:
    try:
        get(payload, path)
        return True
    except PathError:
        return False


def set_path(payload: Any, path: str, value: Any, create: bool = False) -> bool:
    """Set `path` to `value`; True when that added a field. The one home of what `--set` may do:

    - change a field or list item that exists;
    - add a new field to an object that exists (advice only: the event's inferred no-extra-fields rule notes it,
      and refuses it only with --strict);
    - never walk through a missing object or past the end of a list: a PathError, unless `create` (then missing
      objects on the way are made; list items are never invented).
    """
    parts = split(path)
    node = payload
    for part in parts[:-1]:
        if create and isinstance(node, dict) and part not in node:
            node[part] = {}
        node = _step(node, part, path)
    last = parts[-1]
    if isinstance(node, dict):
        added = last not in node
        node[last] = value
        return added
    if isinstance(node, list):
        _step(node, last, path)
        node[int(last)] = value
        return False
    raise PathError(f"path {path!r} does not exist ({last!r} is below a {type(node).__name__})")


def check_settable(payload: Any, path: str) -> None:
    """PathError unless `set_path(payload, path, …)` would succeed (without `create`); changes nothing."""
    parts = split(path)
    node = payload
    for part in parts[:-1]:
        node = _step(node, part, path)
    if not isinstance(node, dict):
        _step(node, parts[-1], path)


def remove(payload: Any, path: str) -> None:
    parts = split(path)
    node = payload
    for part in parts[:-1]:
        node = _step(node, part, path)
    _step(node, parts[-1], path)
    if isinstance(node, dict):
        del node[parts[-1]]
    else:
        del node[int(parts[-1])]


def parse_value(text: str) -> Any:
    """A `--set` value: JSON where it is valid JSON, else the plain string. JSON nested deeper than
    limits.MAX_DEPTH is a PathError (not silently a string)."""
    try:
        return limits.loads(text)
    except limits.TooDeep as exc:
        raise PathError(f"the JSON value is {exc.msg}") from None
    except ValueError:
        return text


def parse_assignment(text: str) -> tuple[str, Any]:
    if "=" not in text:
        raise PathError(f"expected PATH=VALUE, got {text!r}")
    path, _, raw = text.partition("=")
    split(path.strip())
    return path.strip(), parse_value(raw)
