"""Limits on the JSON and YAML a user gives: every parser of user text applies them, so a hostile document is a
clear 400 or exit 2 naming where it went wrong, never a RecursionError, a 500 or an expansion that eats the memory.
And the limits of every HTTP server the simulator runs on waitress (`server_options`): `serve`, `receiver`, the
demo receivers of `serve --demo`, the platform APIs of `run --api-port`.

Pure: no Flask, no Click, no waitress (its settings are a dict).
"""

from __future__ import annotations

import json
import re
import reprlib
from typing import Any

MAX_DEPTH = 64  # lists and mappings nested in one another, in any JSON or YAML document a user gives
MAX_NODES = 100_000  # values in one scenario document, each YAML alias counted as the size of what it repeats
MAX_SCENARIO_BYTES = 1024 * 1024  # one scenario file or text (1 MiB)
QUOTED = 200  # characters of a value a message quotes, at most (then `…`)

# A JSON string (as the JSON grammar has it), or one bracket: what the depth scan needs to see.
_TOKEN = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]', re.S)


class TooDeep(json.JSONDecodeError):
    """A JSON document nested deeper than the limit (a ValueError: callers that catch bad JSON catch it too)."""

    def __init__(self, doc: str, pos: int, limit: int):
        super().__init__(f"nested deeper than {limit} levels (the limit)", doc, pos)
        self.limit = limit


def json_too_deep(text: str, limit: int = MAX_DEPTH) -> int | None:
    """The index of the first `[` or `{` that opens level `limit + 1`, or None. Linear, no recursion: run it
    before `json.loads`, whose parser recurses once per level."""
    if text.count("[") + text.count("{") <= limit:
        return None
    depth = 0
    for match in _TOKEN.finditer(text):
        token = match.group()
        if token in "[{":
            depth += 1
            if depth > limit:
                return match.start()
        elif token in "]}":
            depth = max(0, depth - 1)  # more closing than opening: invalid JSON, json.loads says where
    return None


def loads(data: str | bytes | bytearray, limit: int = MAX_DEPTH) -> Any:
    """`json.loads`, refusing a document nested deeper than `limit` (TooDeep, with its line and column) before
    parsing it. Raises ValueError (json.JSONDecodeError, UnicodeDecodeError) for anything json.loads refuses."""
    text = data.decode(json.detect_encoding(data), "surrogatepass") if isinstance(data, (bytes, bytearray)) else data
    where = json_too_deep(text, limit)
    if where is not None:
        raise TooDeep(text, where, limit)
    try:
        return json.loads(text)
    except RecursionError:  # only if the caller's own stack was already deep: still a clear refusal
        raise TooDeep(text, 0, limit) from None


_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxlist, _REPR.maxtuple, _REPR.maxdict, _REPR.maxset = 4, 20, 20, 20, 20
_REPR.maxstring = _REPR.maxother = _REPR.maxlong = QUOTED


def quote(value: Any, limit: int = QUOTED) -> str:
    """`repr(value)` for a message, at most about `limit` characters (cut with `…`): a message about a huge value
    stays small, and quoting it costs no more than the characters shown (reprlib walks only what it shows)."""
    if isinstance(value, str):
        return repr(value) if len(value) <= limit else repr(value[:limit]) + f"… ({len(value):,} characters)"
    text = _REPR.repr(value)
    return text if len(text) <= limit else text[:limit] + "…"


CONNECTION_LIMIT = 1000  # open connections; beyond it waitress stops accepting until some close
IDLE_TIMEOUT = 30  # seconds a connection may sit with no request in progress and no bytes moving
BODY_CAP_FACTOR = 2  # waitress itself refuses bodies over twice the app's limit (MAX_CONTENT_LENGTH)


def server_options(
    max_content_length: int, connection_limit: int = CONNECTION_LIMIT, idle_timeout: int = IDLE_TIMEOUT
) -> dict:
    """waitress settings that keep a server answering under idle, slow or huge clients, with or without a key.

    Bodies up to `max_content_length` reach the app; over it, up to BODY_CAP_FACTOR times it, the app answers 413
    in its envelope; beyond that waitress answers its own 413 (text/plain) and closes, without reading the rest:
    right after the headers when Content-Length says so. poll(), not select(): descriptors above 1023 work.
    """
    return {
        "connection_limit": connection_limit,
        "channel_timeout": idle_timeout,
        "cleanup_interval": 1,
        "asyncore_use_poll": True,
        "max_request_body_size": BODY_CAP_FACTOR * max_content_length,
    }
