"""Scenario text read with the position of every value, so each problem is `file:line:column: what is wrong`.

Positions come from PyYAML's composed nodes (JSON files are read by `json` for their values and by PyYAML for
their positions: JSON is YAML once tabs, which JSON only allows as whitespace, are counted as spaces). The text is
composed within limits.MAX_DEPTH and limits.MAX_NODES before anything is expanded.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import yaml

from .. import limits


class ScenarioFileError(Exception):
    """One or more problems in scenario files, each `file:line:column: message`."""

    def __init__(self, problems: list[str]):
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass
class Positions:
    """Where each value (and each mapping key) of one parsed text starts, by its path of keys and indexes."""

    filename: str
    text: str
    values: dict = field(default_factory=dict)  # path -> (start index, end index) of the value node
    keys: dict = field(default_factory=dict)  # path -> start index of its key in the parent mapping

    def _line_col(self, index: int) -> tuple[int, int]:
        line = self.text.count("\n", 0, index) + 1
        col = index - (self.text.rfind("\n", 0, index) + 1) + 1
        return line, col

    def at(self, path: tuple, key: bool = False) -> str:
        """`file:line:col` of the value (or its key) at `path`; the nearest enclosing node when unknown."""
        path = tuple(path)
        while True:
            if key and path in self.keys:
                return self.fmt(self.keys[path])
            if path in self.values:
                return self.fmt(self.values[path][0])
            if not path:
                return f"{self.filename}:1:1"
            path = path[:-1]
            key = False

    def within(self, path: tuple, needle: str) -> str:
        """Position of `needle` inside the scalar at `path` (e.g. a `${VAR}`), else of the scalar."""
        span = self.values.get(tuple(path))
        if span:
            found = self.text.find(needle, span[0], max(span[1], span[0] + len(needle)))
            if found >= 0:
                return self.fmt(found)
        return self.at(path)

    def fmt(self, index: int) -> str:
        """`file:line:col` of a character index of the text."""
        line, col = self._line_col(index)
        return f"{self.filename}:{line}:{col}"


def parse(text: str, filename: str, is_json: bool) -> tuple[Any, Positions]:
    """The value of `text` (JSON when `is_json`, else YAML) and its positions, or a located ScenarioFileError."""
    pos = Positions(filename, text)
    value = None
    check_size(len(text.encode("utf-8", "surrogatepass")), filename)
    if is_json:
        try:
            value = limits.loads(text)
        except limits.TooDeep as exc:
            raise ScenarioFileError([f"{filename}:{exc.lineno}:{exc.colno}: lists and mappings {exc.msg}"]) from None
        except json.JSONDecodeError as exc:
            raise ScenarioFileError([f"{filename}:{exc.lineno}:{exc.colno}: invalid JSON: {exc.msg}"]) from None
        text_for_marks = text.replace("\t", " ")
    else:
        text_for_marks = text
    try:
        loader = _BoundedLoader(text_for_marks, pos)
    except yaml.reader.ReaderError as exc:  # a control character: PyYAML refuses the text before parsing it
        if is_json:  # valid JSON (e.g. a raw U+FFFE in a string): values are right, positions fall back to 1:1
            return _count_json(value, filename), pos
        raise ScenarioFileError(
            [f"{pos.fmt(exc.position)}: YAML cannot contain character #x{exc.character:04x} ({exc.reason})"]
        ) from None
    try:
        node = loader.get_single_node()
        problems: list[str] = []
        built = _build(loader, node, (), pos, problems) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        if is_json:  # valid JSON that PyYAML cannot read: values are right, positions fall back to 1:1
            return _count_json(value, filename), pos
        mark = exc.problem_mark or exc.context_mark
        where = f"{filename}:{mark.line + 1}:{mark.column + 1}" if mark else f"{filename}:1:1"
        what = " ".join(p for p in (exc.context, exc.problem) if p)
        raise ScenarioFileError([f"{where}: YAML syntax error: {what}"]) from None
    except yaml.YAMLError as exc:
        raise ScenarioFileError([f"{filename}:1:1: YAML error: {exc}"]) from None
    finally:
        loader.dispose()
    if problems:
        raise ScenarioFileError(problems)
    return (value if is_json else built), pos


def check_size(size: int, filename: str) -> None:
    """Refuse a scenario over limits.MAX_SCENARIO_BYTES (before reading it, when the size is known)."""
    if size > limits.MAX_SCENARIO_BYTES:
        raise ScenarioFileError(
            [f"{filename}:1:1: a scenario is at most {limits.MAX_SCENARIO_BYTES:,} bytes (1 MiB); this one is {size:,}"]
        )


def _count_json(value: Any, filename: str) -> Any:
    """limits.MAX_NODES for the JSON that PyYAML could not read (so _BoundedLoader did not count it)."""
    count, stack = 0, [value]
    while stack:
        item = stack.pop()
        count += 1
        if count > limits.MAX_NODES:
            raise ScenarioFileError(
                [f"{filename}:1:1: the document has more than {limits.MAX_NODES:,} values (the limit)"]
            )
        if isinstance(item, dict):
            stack.extend(item.values())
            count += len(item)  # the keys
        elif isinstance(item, list):
            stack.extend(item)
    return value


class _BoundedLoader(yaml.SafeLoader):
    """Composes a document within limits.MAX_DEPTH and limits.MAX_NODES, checked node by node as it is composed:
    an alias counts as the size (and height) of the node it names, memoised, so a "billion laughs" document is
    refused at the first node past the limit, before anything is expanded. A refusal is a located
    ScenarioFileError."""

    def __init__(self, text: str, pos: Positions):
        super().__init__(text)
        self._pos = pos
        self._depth = 0  # lists and mappings open around the node being composed
        self._measured: dict[int, tuple[int, int]] = {}  # id(node) -> (values it expands to, nesting height)

    def _refuse(self, mark, message: str) -> None:
        raise ScenarioFileError([f"{self._pos.fmt(mark.index)}: {message}"])

    def compose_node(self, parent, index):
        event = self.peek_event()
        container = isinstance(event, (yaml.SequenceStartEvent, yaml.MappingStartEvent))
        if container and self._depth >= limits.MAX_DEPTH:
            self._refuse(
                event.start_mark, f"lists and mappings nested deeper than {limits.MAX_DEPTH} levels (the limit)"
            )
        self._depth += container
        try:
            node = super().compose_node(parent, index)
        finally:
            self._depth -= container
        if isinstance(event, yaml.AliasEvent):
            measured = self._measured.get(id(node))
            if measured is None:  # the alias names a node still being composed: one that contains it
                self._refuse(
                    event.start_mark, f"alias *{event.anchor} repeats a node that contains it (a recursive alias)"
                )
            size, height = measured
            if self._depth + height > limits.MAX_DEPTH:
                self._refuse(
                    event.start_mark,
                    f"alias *{event.anchor} nests lists and mappings deeper than {limits.MAX_DEPTH} levels (the limit)",
                )
        else:
            if isinstance(node, yaml.MappingNode):
                children = [n for pair in node.value for n in pair]
            elif isinstance(node, yaml.SequenceNode):
                children = node.value
            else:
                children = []
            measures = [self._measured[id(child)] for child in children]
            size = 1 + sum(m[0] for m in measures)
            height = int(container) + max((m[1] for m in measures), default=0)
            self._measured[id(node)] = (size, height)
        if size > limits.MAX_NODES:
            self._refuse(
                event.start_mark,
                f"this value expands to more than {limits.MAX_NODES:,} values (the "
                "limit; an alias counts as every value it repeats)",
            )
        return node


def _build(loader: yaml.SafeLoader, node: yaml.Node, path: tuple, pos: Positions, problems: list[str]) -> Any:
    pos.values[path] = (node.start_mark.index, node.end_mark.index)
    if isinstance(node, yaml.MappingNode):
        out: dict = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            if not isinstance(key, (str, int, float, bool)) or key is None:
                problems.append(f"{pos.fmt(key_node.start_mark.index)}: a key must be a plain value")
                continue
            key = str(key) if not isinstance(key, str) else key
            if key in out:
                problems.append(f"{pos.fmt(key_node.start_mark.index)}: duplicate key {key!r}")
                continue
            pos.keys[path + (key,)] = key_node.start_mark.index
            out[key] = _build(loader, value_node, path + (key,), pos, problems)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_build(loader, item, path + (i,), pos, problems) for i, item in enumerate(node.value)]
    return loader.construct_object(node, deep=True)
