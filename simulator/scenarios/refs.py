"""The one `${…}` grammar of scenario files, for loading and for running.

    ${NAME}  ${NAME:-default}   a variable: --var, else the file's vars, else the environment, else the default
    ${step.payload.PATH}, …     a result of an earlier step named with `as: step`
    $${                         a literal `${`

Loading substitutes variables and collects step references (to check them); running resolves step references.
Each escape is turned into `${` once: when loading, except in steps, whose values are resolved again when they run.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from .. import limits
from ..catalogue import paths
from .positions import Positions

ESCAPE = "$${"
RUN_TIME = "steps"  # the top-level key whose values are resolved (again) when they run
NUMERIC_FIELDS = {
    "timeout",
    "latency_ms",
    "attempts",
    "seed",
    "count",
    "job_attempt",
    "size",
    "after",
    "wait",
    "repeat",
    "status",
    "delays",
    "within",
}  # a whole `${VAR}` there is a number when it reads as one

_TOKEN = re.compile(r"\$\$\{|\$\{([^{}]*)\}")
_VARIABLE = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)(?::-(.*))?$", re.S)
_STEP = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)\.([^.]+(?:\.[^.]+)*)$")
_NUMBER = re.compile(r"^-?\d+(\.\d+)?$")


@dataclass(frozen=True)
class Variable:
    name: str
    default: str | None = None


@dataclass(frozen=True)
class StepRef:
    step: str
    path: str  # `payload.x`, `response.status`, …


def parse(inner: str) -> Variable | StepRef | None:
    """What the text between `${` and `}` names; None when it is neither a variable nor a step reference."""
    inner = inner.strip()
    variable = _VARIABLE.match(inner)
    if variable:
        return Variable(variable.group(1), variable.group(2))
    step = _STEP.match(inner)
    return StepRef(step.group(1), step.group(2)) if step else None


def unescape(value: Any) -> Any:
    """`value` (nested lists and mappings too) with each `$${` read as a literal `${`: a step's value as it will be
    sent, where the loader needs it before the step runs (its name, a sample payload)."""
    if isinstance(value, dict):
        return {k: unescape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [unescape(v) for v in value]
    if not isinstance(value, str) or ESCAPE not in value:
        return value
    return _TOKEN.sub(lambda m: "${" if m.group(0) == ESCAPE else m.group(0), value)


def contains_ref(value: Any) -> bool:
    """Whether `value` (nested lists and mappings too) holds a step reference."""
    if isinstance(value, str):
        return any(m.group(1) is not None and isinstance(parse(m.group(1)), StepRef) for m in _TOKEN.finditer(value))
    if isinstance(value, dict):
        return any(contains_ref(v) for v in value.values())
    if isinstance(value, list):
        return any(contains_ref(v) for v in value)
    return False


# -- loading: variables substituted, step references collected ------------------------------------------------------
@dataclass
class Ref:
    """A step reference found when loading, where it stands, for the loader to check against earlier steps."""

    path: tuple  # of the value it stands in
    text: str  # the whole `${...}`
    name: str  # the step
    rest: str  # `payload.x`
    checked: bool = False


class Vars:
    """The values variables take: --var, the file's vars (typed: YAML values), the environment. A file var in
    `refused` (its value is not one a variable may take: already reported) is never substituted."""

    def __init__(
        self,
        cli: Mapping[str, str],
        file_vars: Mapping[str, Any],
        env: Mapping[str, str],
        refused: frozenset[str] = frozenset(),
    ):
        self.cli, self.file, self.env = dict(cli), dict(file_vars), dict(env)
        self.refused = refused

    def lookup(self, name: str, default: str | None) -> tuple[bool, Any, bool]:
        """(found, value, typed): --var, then the file's vars, then the environment, then the default."""
        if name in self.cli:
            return True, self.cli[name], False
        if name in self.file:
            return True, self.file[name], True
        if name in self.env:
            return True, self.env[name], False
        if default is not None:
            return True, default, False
        return False, None, False


class Budget:
    """What variables may add to one document, counted before each is put in: limits.MAX_NODES values in all (the
    document's own values included; a reference counts as every value it expands to, e.g. a `set` value that is
    JSON text) and limits.MAX_SCENARIO_BYTES of text. A thousand references to a long value are refused at the
    first one past the limit, not expanded (the trial: 10,000 references to a 10,000-item list, 2.75 GB)."""

    def __init__(self, nodes: int = 0):
        self.nodes = nodes
        self.bytes = 0
        self.over = False  # reported once; nothing more is substituted
        self._sizes: dict[tuple, int] = {}  # (variable, parsed as JSON) -> values it expands to

    def take(self, key: tuple, value: Any, parse_json: bool) -> None:
        """Count one reference to `value` (TooBig past the limit; nothing counted then)."""
        size = self._sizes.get(key)
        if size is None:
            size = self._sizes[key] = count_values(_parsed(value) if parse_json else value)
        text = 0 if not isinstance(value, str) else len(value.encode("utf-8", "surrogatepass"))
        if self.nodes + size > limits.MAX_NODES:
            raise TooBig(f"the variables put more than {limits.MAX_NODES:,} values in the document (the limit)")
        if self.bytes + text > limits.MAX_SCENARIO_BYTES:
            raise TooBig(f"the variables put more than {limits.MAX_SCENARIO_BYTES:,} bytes of text in the document")
        self.nodes += size
        self.bytes += text


class TooBig(ValueError):
    """A variable reference past what Budget allows."""


def _parsed(value: Any) -> Any:
    try:
        return paths.parse_value(value) if isinstance(value, str) else value
    except paths.PathError:
        return value


def count_values(value: Any) -> int:
    """Values in `value`, lists and mappings included (a mapping's keys too), without recursion."""
    count, stack = 0, [value]
    while stack:
        item = stack.pop()
        count += 1
        if isinstance(item, dict):
            count += len(item)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return count


def substitute(
    value: Any,
    path: tuple,
    vars_: Vars,
    pos: Positions,
    problems: list[str],
    refs: list[Ref],
    budget: Budget | None = None,
) -> Any:
    """`value` (at `path` of the file) with its variables replaced; step references are kept and appended to `refs`,
    each problem is appended to `problems`. A value that is one whole variable keeps the variable's type. With
    `budget`, each reference is counted against it before it is put in (past it: one problem, and the references
    are left as they are)."""
    if isinstance(value, dict):
        return {k: substitute(v, path + (k,), vars_, pos, problems, refs, budget) for k, v in value.items()}
    if isinstance(value, list):
        return [substitute(v, path + (i,), vars_, pos, problems, refs, budget) for i, v in enumerate(value)]
    if not isinstance(value, str) or "$" not in value:
        return value
    whole: list[Any] = []
    run_time = path[:1] == (RUN_TIME,)
    as_json = any(p in ("set", "body") for p in path[2:])

    def replace(match: re.Match) -> str:
        if match.group(0) == ESCAPE:
            return ESCAPE if run_time else "${"
        ref = parse(match.group(1))
        if isinstance(ref, Variable):
            if ref.name in vars_.refused and ref.name not in vars_.cli:
                return match.group(0)  # its value was refused (reported under vars): not put anywhere
            found, got, typed = vars_.lookup(ref.name, ref.default)
            if not found:
                problems.append(
                    f"{pos.within(path, match.group(0))}: undefined variable {ref.name!r} "
                    f"(define it under vars, or pass --var {ref.name}=VALUE)"
                )
                return match.group(0)
            if budget is not None:
                if budget.over:
                    return match.group(0)
                is_whole = match.group(0) == value
                try:
                    parse_json = is_whole and as_json and not typed
                    budget.take((ref.name, ref.default, parse_json), got, parse_json)
                except TooBig as exc:
                    budget.over = True
                    problems.append(
                        f"{pos.within(path, match.group(0))}: {match.group(0)[:200]}: {exc}; each reference to a "
                        "variable counts as every value it expands to"
                    )
                    return match.group(0)
            if match.group(0) == value:
                whole.append((got, typed))
            return str(got) if not isinstance(got, bool) else str(got).lower()
        if isinstance(ref, StepRef):
            refs.append(Ref(path, match.group(0), ref.step, ref.path))
            return match.group(0)
        problems.append(
            f"{pos.within(path, match.group(0))}: bad variable reference {limits.quote(match.group(0))} "
            "(use ${NAME}, ${NAME:-default} or ${step.payload.PATH})"
        )
        return match.group(0)

    result = _TOKEN.sub(replace, value)
    if whole:
        got, typed = whole[0]
        if typed:
            return got
        if isinstance(got, str) and as_json:
            try:
                return paths.parse_value(got)  # as `--set`: JSON where it parses as JSON, else the string
            except paths.PathError as exc:
                problems.append(f"{pos.at(path)}: {limits.quote(value)}: {exc}")
                return value
        last = next((p for p in reversed(path) if isinstance(p, str)), "")
        if last in NUMERIC_FIELDS and isinstance(got, str) and _NUMBER.match(got.strip()):
            return float(got) if "." in got else int(got)
    return result


# -- running: step references resolved -----------------------------------------------------------------------------
class Viewable(Protocol):
    def view(self) -> dict: ...


class Unresolved(Exception):
    """A step reference with no value when its step runs: what was asked (`expected`) and why not (`actual`)."""

    def __init__(self, expected: str, actual: str):
        super().__init__(f"{expected}: {actual}")
        self.expected = expected
        self.actual = actual


def resolve(value: Any, named: Mapping[str, Viewable], keep: tuple = ()) -> Any:
    """`value` with each `${name.path}` replaced by that path of the step named `name` (a value that is one whole
    reference keeps its type) and each `$${` by `${`; the keys in `keep` are left as they are."""
    if isinstance(value, dict):
        return {k: (v if k in keep else resolve(v, named)) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve(v, named) for v in value]
    if not isinstance(value, str) or "${" not in value:
        return value
    found: list[Any] = []

    def replace(match: re.Match) -> str:
        if match.group(0) == ESCAPE:
            return "${"
        ref = parse(match.group(1))
        name, rest = (ref.step, ref.path) if isinstance(ref, StepRef) else (match.group(1).strip(), "")
        if name not in named:
            raise Unresolved(
                f"{match.group(0)} from an earlier step",
                f"step {name!r} has no answer (it did not run or failed to send)",
            )
        try:
            got = paths.get(named[name].view(), rest)
        except paths.PathError as exc:
            raise Unresolved(match.group(0), str(exc)) from None
        if match.group(0) == value:
            found.append(got)
        return got if isinstance(got, str) else json.dumps(got)

    text = _TOKEN.sub(replace, value)
    return found[0] if found else text
