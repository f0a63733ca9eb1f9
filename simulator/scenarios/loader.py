"""Scenario files: parsed with positions, variables substituted, validated against schema.json, turned into steps.

Every problem of a file is reported as `file:line:column: what is wrong`, all of them, before anything is sent.
Positions come from PyYAML's composed nodes (JSON files are read by `json` for their values and by PyYAML for
their positions: JSON is YAML once tabs, which JSON only allows as whitespace, are counted as spaces).
"""
from __future__ import annotations

import copy
import difflib
import json
import os
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Iterable, Mapping

import yaml
from jsonschema import Draft202012Validator

from .. import catalogue, limits, rules
from ..auth import Auth, AuthError, default_auth
from ..catalogue import paths
from ..delivery import DOCUMENTED, DeliveryError, get_profile, profile_names

KINDS = ("send", "fault", "expect", "wait", "repeat")
FAULTS = ("bad_signature", "missing_signature", "wrong_key", "tampered_body", "duplicate", "replay", "out_of_order",
          "malformed_json", "missing_required_field", "wrong_content_type", "oversized_body")
CREDENTIAL_FAULTS = ("bad_signature", "missing_signature", "wrong_key", "tampered_body")
RESEND_FAULTS = ("duplicate", "replay")
REF_ROOTS = ("payload", "response", "request", "job_id", "attempts")
NUMERIC_FIELDS = {"timeout", "latency_ms", "attempts", "seed", "count", "job_attempt", "size", "after", "wait",
                  "repeat", "status", "delays"}
SUFFIXES = (".yaml", ".yml", ".json")
DEFAULT_TIMEOUT = 10.0

_VAR = re.compile(r"\$\$\{|\$\{([^{}]*)\}")
_STATIC = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)(?::-(.*))?$", re.S)
_RUNTIME = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)((?:\.[^.]+)+)$")
_NUMBER = re.compile(r"^-?\d+(\.\d+)?$")


def schema() -> dict:
    """The JSON Schema of scenario files (shipped in the package)."""
    return json.loads(resources.files("simulator.scenarios").joinpath("schema.json").read_text("utf-8"))


class ScenarioFileError(Exception):
    """One or more problems in scenario files, each `file:line:column: message`."""

    def __init__(self, problems: list[str]):
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass
class Step:
    kind: str
    name: str
    data: dict
    where: str
    skip: str | None = None
    event: str | None = None  # canonical event name for send/fault steps
    children: list["Step"] = field(default_factory=list)
    rule: rules.Rule | None = None  # the rule the step checks: inferred ones warn instead of failing, unless strict


@dataclass
class Scenario:
    path: str
    name: str
    description: str
    platform: str
    url: str
    auth: Auth
    timeout: float
    retry: tuple[float, ...] | None
    steps: list[Step]
    vars: dict
    profile: str = DOCUMENTED  # delivery profile of every request (delivery.DELIVERY_PROFILES)


# -- positions ----------------------------------------------------------------------------------------------------
@dataclass
class _Positions:
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
                return self._fmt(self.keys[path])
            if path in self.values:
                return self._fmt(self.values[path][0])
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
                return self._fmt(found)
        return self.at(path)

    def _fmt(self, index: int) -> str:
        line, col = self._line_col(index)
        return f"{self.filename}:{line}:{col}"


def _parse(text: str, filename: str, is_json: bool) -> tuple[Any, _Positions]:
    pos = _Positions(filename, text)
    value = None
    _check_size(len(text.encode("utf-8", "surrogatepass")), filename)
    if is_json:
        try:
            value = limits.loads(text)
        except limits.TooDeep as exc:
            raise ScenarioFileError([f"{filename}:{exc.lineno}:{exc.colno}: lists and mappings "
                                     f"{exc.msg}"]) from None
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
        raise ScenarioFileError([f"{pos._fmt(exc.position)}: YAML cannot contain character "
                                 f"#x{exc.character:04x} ({exc.reason})"]) from None
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


def _check_size(size: int, filename: str) -> None:
    if size > limits.MAX_SCENARIO_BYTES:
        raise ScenarioFileError([f"{filename}:1:1: a scenario is at most {limits.MAX_SCENARIO_BYTES:,} bytes "
                                 f"(1 MiB); this one is {size:,}"])


def _count_json(value: Any, filename: str) -> Any:
    """limits.MAX_NODES for the JSON that PyYAML could not read (so _BoundedLoader did not count it)."""
    count, stack = 0, [value]
    while stack:
        item = stack.pop()
        count += 1
        if count > limits.MAX_NODES:
            raise ScenarioFileError([f"{filename}:1:1: the document has more than {limits.MAX_NODES:,} values "
                                     "(the limit)"])
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

    def __init__(self, text: str, pos: _Positions):
        super().__init__(text)
        self._pos = pos
        self._depth = 0  # lists and mappings open around the node being composed
        self._measured: dict[int, tuple[int, int]] = {}  # id(node) -> (values it expands to, nesting height)

    def _refuse(self, mark, message: str) -> None:
        raise ScenarioFileError([f"{self._pos._fmt(mark.index)}: {message}"])

    def compose_node(self, parent, index):
        event = self.peek_event()
        container = isinstance(event, (yaml.SequenceStartEvent, yaml.MappingStartEvent))
        if container and self._depth >= limits.MAX_DEPTH:
            self._refuse(event.start_mark, f"lists and mappings nested deeper than {limits.MAX_DEPTH} levels "
                                           "(the limit)")
        self._depth += container
        try:
            node = super().compose_node(parent, index)
        finally:
            self._depth -= container
        if isinstance(event, yaml.AliasEvent):
            measured = self._measured.get(id(node))
            if measured is None:  # the alias names a node still being composed: one that contains it
                self._refuse(event.start_mark, f"alias *{event.anchor} repeats a node that contains it "
                                               "(a recursive alias)")
            size, height = measured
            if self._depth + height > limits.MAX_DEPTH:
                self._refuse(event.start_mark, f"alias *{event.anchor} nests lists and mappings deeper than "
                                               f"{limits.MAX_DEPTH} levels (the limit)")
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
            self._refuse(event.start_mark, f"this value expands to more than {limits.MAX_NODES:,} values (the "
                                           "limit; an alias counts as every value it repeats)")
        return node


def _build(loader: yaml.SafeLoader, node: yaml.Node, path: tuple, pos: _Positions, problems: list[str]) -> Any:
    pos.values[path] = (node.start_mark.index, node.end_mark.index)
    if isinstance(node, yaml.MappingNode):
        out: dict = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            if not isinstance(key, (str, int, float, bool)) or key is None:
                problems.append(f"{pos._fmt(key_node.start_mark.index)}: a key must be a plain value")
                continue
            key = str(key) if not isinstance(key, str) else key
            if key in out:
                problems.append(f"{pos._fmt(key_node.start_mark.index)}: duplicate key {key!r}")
                continue
            pos.keys[path + (key,)] = key_node.start_mark.index
            out[key] = _build(loader, value_node, path + (key,), pos, problems)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_build(loader, item, path + (i,), pos, problems) for i, item in enumerate(node.value)]
    return loader.construct_object(node, deep=True)


# -- variables ----------------------------------------------------------------------------------------------------
@dataclass
class _Ref:
    path: tuple
    text: str  # the whole `${...}`
    name: str
    rest: str  # `.payload.x`
    checked: bool = False


class _Vars:
    def __init__(self, cli: Mapping[str, str], file_vars: Mapping[str, Any], env: Mapping[str, str]):
        self.cli, self.file, self.env = dict(cli), dict(file_vars), dict(env)

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


def _substitute(value: Any, path: tuple, vars_: _Vars, pos: _Positions, problems: list[str], refs: list[_Ref],
                use_file_vars: bool = True) -> Any:
    if isinstance(value, dict):
        return {k: _substitute(v, path + (k,), vars_, pos, problems, refs, use_file_vars) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, path + (i,), vars_, pos, problems, refs, use_file_vars) for i, v in enumerate(value)]
    if not isinstance(value, str) or "$" not in value:
        return value
    whole: list[Any] = []

    def replace(match: re.Match) -> str:
        if match.group(0) == "$${":
            return "${"
        inner = match.group(1).strip()
        static = _STATIC.match(inner)
        if static:
            name, default = static.group(1), static.group(2)
            found, got, typed = vars_.lookup(name, default) if use_file_vars else \
                _Vars(vars_.cli, {}, vars_.env).lookup(name, default)
            if not found:
                problems.append(f"{pos.within(path, match.group(0))}: undefined variable {name!r} "
                                f"(define it under vars, or pass --var {name}=VALUE)")
                return match.group(0)
            if match.group(0) == value:
                whole.append((got, typed))
            return str(got) if not isinstance(got, bool) else str(got).lower()
        runtime = _RUNTIME.match(inner)
        if runtime:
            refs.append(_Ref(path, match.group(0), runtime.group(1), runtime.group(2)))
            return match.group(0)
        problems.append(f"{pos.within(path, match.group(0))}: bad variable reference {match.group(0)!r} "
                        "(use ${NAME}, ${NAME:-default} or ${step.payload.PATH})")
        return match.group(0)

    result = _VAR.sub(replace, value)
    if whole:
        got, typed = whole[0]
        if typed:
            return got
        if isinstance(got, str) and any(p in ("set", "body") for p in path[2:]):
            return paths.parse_value(got)  # as `--set`: JSON where it parses as JSON, else the string
        last = next((p for p in reversed(path) if isinstance(p, str)), "")
        if last in NUMERIC_FIELDS and isinstance(got, str) and _NUMBER.match(got.strip()):
            return float(got) if "." in got else int(got)
    return result


def contains_ref(value: Any) -> bool:
    if isinstance(value, str):
        return any(m.group(1) is not None and _RUNTIME.match(m.group(1).strip()) for m in _VAR.finditer(value))
    if isinstance(value, dict):
        return any(contains_ref(v) for v in value.values())
    if isinstance(value, list):
        return any(contains_ref(v) for v in value)
    return False


# -- schema validation -----------------------------------------------------------------------------------------------
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
_TYPE_NAMES = {"object": "a mapping", "array": "a list", "string": "a string", "integer": "a whole number",
               "number": "a number", "boolean": "true or false", "null": "null"}


def _json_type(value: Any) -> str:
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


def _schema_problems(kind: str, instance: Any, base: tuple, pos: _Positions, context: str) -> list[str]:
    problems = []
    for err in sorted(_VALIDATORS[kind].iter_errors(instance), key=lambda e: list(map(str, e.absolute_path))):
        rel = tuple(err.absolute_path)
        path = base + rel
        label = ".".join(str(p) for p in rel) or context
        if err.validator == "additionalProperties" and isinstance(err.instance, dict):
            allowed = set(err.schema.get("properties", {}))
            for extra in [k for k in err.instance if k not in allowed]:
                owner = ".".join(str(p) for p in rel) or context
                close = difflib.get_close_matches(str(extra), sorted(allowed), n=1, cutoff=0.75)
                problems.append(f"{pos.at(path + (extra,), key=True)}: unknown field {extra!r} in {owner}"
                                + (f": did you mean {close[0]!r}?" if close else "")
                                + f" (allowed: {', '.join(sorted(allowed))})")
        elif err.validator == "unevaluatedProperties" and isinstance(err.instance, dict):
            continue  # reported by additionalProperties of the referenced schema
        elif err.validator == "required":
            missing = re.findall(r"'([^']+)' is a required property", err.message)
            problems.append(f"{pos.at(path)}: {label}: missing required field {missing[0] if missing else ''!r}")
        elif err.validator == "type":
            wanted = err.validator_value if isinstance(err.validator_value, list) else [err.validator_value]
            problems.append(f"{pos.at(path)}: {label}: expected {' or '.join(_TYPE_NAMES[w] for w in wanted)}, "
                            f"got {_json_type(err.instance)}")
        elif err.validator in ("enum", "const"):
            options = err.validator_value if err.validator == "enum" else [err.validator_value]
            problems.append(f"{pos.at(path)}: {label}: {err.instance!r} is not one of "
                            f"{', '.join(map(str, options))}")
        elif err.validator == "oneOf":
            key = next((p for p in reversed(path) if isinstance(p, str)), label)
            if key in _ONE_OF_HELP:
                problems.append(f"{pos.at(path)}: {label}: {err.instance!r} {_ONE_OF_HELP[key]}")
            else:
                problems.append(f"{pos.at(path)}: {label}: {err.message}")
        elif err.validator == "propertyNames":
            problems.append(f"{pos.at(path)}: {label}: bad name {err.instance!r}")
        else:
            problems.append(f"{pos.at(path)}: {label}: {err.message}")
    return problems


# -- loading ------------------------------------------------------------------------------------------------------------
def collect_files(targets: Iterable[str | Path]) -> tuple[list[Path], list[str]]:
    """FILE or DIR arguments → scenario files (a folder: every .yaml/.yml/.json below it, sorted)."""
    files, problems = [], []
    for target in targets:
        target = Path(target)
        if target.is_dir():
            found = sorted(p for p in target.rglob("*") if p.is_file() and p.suffix.lower() in SUFFIXES)
            if not found:
                problems.append(f"{target}: no scenario files (.yaml, .yml, .json) in this folder")
            files.extend(found)
        elif target.is_file():
            files.append(target)
        else:
            problems.append(f"{target}: no such file or folder")
    return files, problems


def load_file(path: str | Path, cli_vars: Mapping[str, str] | None = None, url: str | None = None,
              auth: Auth | None = None, env: Mapping[str, str] | None = None) -> Scenario:
    """Load one scenario. `url` replaces the file's target URL; `auth` replaces its auth settings."""
    path = Path(path)
    try:
        _check_size(path.stat().st_size, str(path))  # before reading it: a huge file is refused, not loaded
        text = path.read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioFileError([f"{path}:1:1: cannot read: {exc}"]) from None
    return load_text(text, str(path), cli_vars, url, auth, env)


def load_text(text: str, filename: str, cli_vars: Mapping[str, str] | None = None, url: str | None = None,
              auth: Auth | None = None, env: Mapping[str, str] | None = None) -> Scenario:
    """Load a scenario from text (`filename` names it in messages; `.json` reads it as JSON, else YAML)."""
    data, pos = _parse(text, filename, filename.lower().endswith(".json"))
    return _Builder(filename, data, pos, dict(cli_vars or {}), url, auth,
                    os.environ if env is None else env).build()


def load_all(paths_: Iterable[str | Path], cli_vars=None, url=None, auth=None, env=None) -> list[Scenario]:
    """Load every file; raise ScenarioFileError with every problem of every file."""
    files, problems = collect_files(paths_)
    scenarios = []
    for f in files:
        try:
            scenarios.append(load_file(f, cli_vars, url, auth, env))
        except ScenarioFileError as exc:
            problems.extend(exc.problems)
    if problems:
        raise ScenarioFileError(problems)
    return scenarios


class _Builder:
    def __init__(self, filename, data, pos, cli_vars, url, auth, env):
        self.filename, self.data, self.pos = filename, data, pos
        self.cli_vars, self.url_override, self.auth_override, self.env = cli_vars, url, auth, env
        self.problems: list[str] = []
        self.profile = DOCUMENTED
        self.refs: list[_Ref] = []
        self._own_refs: list[_Ref] = []

    def fail(self, path: tuple, message: str, key: bool = False) -> None:
        self.problems.append(f"{self.pos.at(path, key)}: {message}")

    def build(self) -> Scenario:
        data = self.data
        if not isinstance(data, dict):
            raise ScenarioFileError([f"{self.pos.at(())}: a scenario file is a mapping with name, platform, url "
                                     f"and steps (got {_json_type(data)})"])
        raw_vars = data.get("vars") if isinstance(data.get("vars"), dict) else {}
        env_vars = _Vars(self.cli_vars, {}, self.env)
        file_vars = {k: _substitute(v, ("vars", k), env_vars, self.pos, self.problems, [], use_file_vars=False)
                     for k, v in raw_vars.items()}
        vars_ = _Vars(self.cli_vars, file_vars, self.env)
        if self.url_override and "url" in data:  # replaced: its variables need not be defined
            data = {**data, "url": self.url_override}
        data = {k: (v if k == "vars" else _substitute(v, (k,), vars_, self.pos, self.problems, self.refs))
                for k, v in data.items()}
        self.problems.extend(_schema_problems("", data, (), self.pos, "scenario"))
        steps_data = data.get("steps") if isinstance(data.get("steps"), list) else []
        platform = data.get("platform") if data.get("platform") in catalogue.PLATFORMS else None
        auth = self._auth(data, platform)
        self.profile = self._profile(data, platform)
        retry = self._retry(data.get("retry"), ("retry",), platform)
        timeout = float(data["timeout"]) if isinstance(data.get("timeout"), (int, float)) else DEFAULT_TIMEOUT
        defined: dict[str, str | None] = {}
        state = {"sent": False}
        steps = self._steps(steps_data, ("steps",), platform, auth, defined, state)
        self._check_refs(defined)
        if self.problems:
            raise ScenarioFileError(sorted(_dedupe(self.problems), key=_position))
        url = self.url_override or data["url"]
        return Scenario(path=self.filename, name=data["name"], description=data.get("description", ""),
                        platform=platform, url=url, auth=auth, timeout=timeout, retry=retry, steps=steps,
                        vars={k: v for k, v in {**file_vars, **self.cli_vars}.items()}, profile=self.profile)

    def _auth(self, data: dict, platform: str | None) -> Auth:
        if platform is None:
            return Auth("none")
        if self.auth_override is not None:
            return self.auth_override
        given = data.get("auth")
        if not isinstance(given, dict) or "kind" not in given:
            return default_auth(platform)
        try:
            return Auth.from_dict(given).check(platform)
        except (AuthError, TypeError) as exc:
            self.fail(("auth",), f"auth: {exc}")
            return default_auth(platform)

    def _profile(self, data: dict, platform: str | None) -> str:
        name = data.get("profile")
        if platform is None or not isinstance(name, str):
            return DOCUMENTED
        try:
            return get_profile(platform, name).name
        except DeliveryError as exc:
            self.fail(("profile",), f"profile: {exc}")
            return DOCUMENTED

    def _check_job_attempt(self, item: dict, path: tuple, platform: str) -> None:
        """`job_attempt` sets X-JobAttempt: refused where the scenario's profile sends no such header."""
        if "job_attempt" in item and not get_profile(platform, self.profile).job_headers:
            hint = "" if self.profile != DOCUMENTED or len(profile_names(platform)) < 2 else \
                " under the documented profile (X-JobId/X-JobAttempt are not in its documents; add " \
                "`profile: accredit-like` to the scenario to send them)"
            self.fail(path + ("job_attempt",), f"job_attempt: {platform} sends no X-JobAttempt header{hint}")

    def _retry(self, value: Any, path: tuple, platform: str | None) -> tuple[float, ...] | None:
        if value is None or value == "none":
            return None if value is None else ()
        if not isinstance(value, dict) or not isinstance(value.get("delays"), list):
            return None
        delays = tuple(float(d) for d in value["delays"] if isinstance(d, (int, float)))
        if platform and not get_profile(platform, self.profile).retries and delays:
            self.fail(path, f"retry: {platform} never retries (fire-and-forget); remove retry")
        return delays

    # -- steps -----------------------------------------------------------------------------------------------
    def _steps(self, items: list, base: tuple, platform, auth: Auth, defined: dict, state: dict) -> list[Step]:
        steps = []
        for i, item in enumerate(items):
            path = base + (i,)
            step = self._step(item, path, platform, auth, defined, state)
            if step is not None:
                steps.append(step)
        return steps

    def _step(self, item: Any, path: tuple, platform, auth: Auth, defined: dict, state: dict) -> Step | None:
        if not isinstance(item, dict):
            self.fail(path, f"a step is a mapping such as `send: EVENT` (got {_json_type(item)})")
            return None
        kinds = [k for k in KINDS if k in item and not (k == "expect" and any(o in item for o in ("send", "fault")))]
        if len(kinds) != 1:
            if not kinds:
                known_fields = {f for k in KINDS for f in _DEFS[f"{k}_step"]["properties"]}
                first = next((k for k in item if k not in known_fields), next(iter(item), None))
                where = path + (first,) if first is not None else path
                self.fail(where, f"unknown step kind {first!r}: a step starts with one of {', '.join(KINDS)}"
                          if first is not None else f"empty step: use one of {', '.join(KINDS)}", key=True)
            else:
                self.fail(path, f"a step has exactly one kind, this one has {', '.join(kinds)}")
            if "as" in item:  # most likely a send with a misspelt kind: its name still counts, one message
                state["sent"] = True
                self._define(item, None, defined)
            return None
        kind = kinds[0]
        if kind != "repeat":
            self._check_step_refs(kind, item, path, defined)
        before = len(self.problems)
        self.problems.extend(_schema_problems(kind, item, path, self.pos, f"{kind} step"))
        if len(self.problems) > before:
            if kind in ("send", "fault"):  # its name and its sending still count: one mistake, one message
                state["sent"] = True
                self._define(item, None, defined)
            return None
        where = self.pos.at(path)
        skip = None
        when = item.get("when", {}).get("auth")
        if when and auth.kind not in when:
            skip = f"only with {', '.join(when)} auth (this run: {auth.kind})"
        step = Step(kind=kind, name=item.get("name") or "", data=item, where=where, skip=skip)
        if platform is None:
            return step
        if kind == "send":
            step.event = self._event(item["send"], path + ("send",), platform)
            if step.event:
                self._check_payload(step.event, item, path, platform)
            self._check_job_attempt(item, path, platform)
            self._retry(item.get("retry"), path + ("retry",), platform)
            step.name = step.name or f"send {step.event or item['send']}"
            state["sent"] = True
        elif kind == "fault":
            self._fault(step, item, path, platform, auth, defined)
            state["sent"] = True
        elif kind == "expect":
            of = item["expect"].get("of")
            if of is not None and of not in defined:
                self.fail(path + ("expect", "of"), f"expect.of: no earlier step is named {of!r} (name one with as:)")
            elif of is None and not state["sent"]:
                self.fail(path + ("expect",), "expect: no earlier send or fault step to check")
            step.name = step.name or f"expect {of or 'previous answer'}"
        elif kind == "wait":
            step.name = step.name or f"wait {item['wait']:g} s"
        elif kind == "repeat":
            step.children = self._steps(item["steps"], path + ("steps",), platform, auth, defined, state)
            step.name = step.name or f"repeat {item['repeat']} times"
        if kind in ("send", "fault"):
            self._define(item, step.event, defined)
        event = step.event if kind != "expect" else defined.get(item["expect"].get("of") or "", None)
        if "rule" in item:
            step.rule = self._rule(item["rule"], path + ("rule",), platform, event)
        expect = item.get("expect") if isinstance(item.get("expect"), dict) else {}
        if expect.get("echo") and event and catalogue.get_event(event).reply_data is None:
            self.fail(path + ("expect", "echo"), f"expect.echo: {event} documents no reply data to echo")
        return step

    def _rule(self, rule_id: str, path: tuple, platform: str, event: str | None) -> rules.Rule | None:
        """The registry's rule `rule_id`, of this scenario's platform and (when it names one) of the step's event."""
        try:
            rule = rules.get(rule_id)
        except rules.RuleError:
            close = difflib.get_close_matches(rule_id, [r.id for r in rules.select(platform)], n=1, cutoff=0.75)
            self.fail(path, f"rule: no rule {rule_id!r} in the registry"
                      + (f": did you mean {close[0]!r}?" if close else f" (`accessrc-sim rules --platform {platform}` "
                         "lists them)"))
            return None
        if rule.platform != platform:
            self.fail(path, f"rule: {rule_id} is a rule of {rule.platform}; this scenario is {platform}")
        elif rule.event and event and rule.event != event:
            self.fail(path, f"rule: {rule_id} is about {rule.event}; this step sends {event}")
        return rule

    def _define(self, item: dict, event, defined: dict) -> None:
        """Record a send or fault step's `as:` name for the steps after it."""
        if isinstance(item.get("as"), str):
            defined[item["as"]] = event
            for ref in self._own_refs:
                self._check_ref(ref, defined)

    def _check_step_refs(self, kind: str, item: dict, path: tuple, defined: dict) -> None:
        """`${name.…}` in a step may use earlier steps; in its own `expect`, the step itself too (checked once
        the step's event is known)."""
        self._own_refs = []
        for ref in [r for r in self.refs if r.path[:len(path)] == path and len(r.path) > len(path)
                    and not r.checked]:
            ref.checked = True
            own = kind in ("send", "fault") and ref.name == item.get("as") and \
                ref.path[:len(path) + 1] == path + ("expect",)
            if own:
                self._own_refs.append(ref)
            else:
                self._check_ref(ref, defined)

    def _event(self, name: str, path: tuple, platform: str) -> str | None:
        try:
            return catalogue.get_event(name, platform).name
        except catalogue.CatalogueError as exc:
            self.fail(path, str(exc))
            return None

    def _check_payload(self, event: str, item: dict, path: tuple, platform: str, set_key: str = "set",
                       sets: dict | None = None, set_path: tuple | None = None) -> dict | None:
        sets = item.get(set_key) if sets is None else sets
        sets = sets if isinstance(sets, dict) else {}
        set_path = set_path or path + (set_key,)
        static = {k: v for k, v in sets.items() if not contains_ref(v)}
        bad = [k for k in sets if not _valid_path(k)]
        for k in bad:
            self.fail(set_path + (k,), f"set: invalid path {k!r}", key=True)
        if bad:
            return None
        try:
            sample = catalogue.generate(event, seed=item.get("seed", 0), overrides=static, count=item.get("count"),
                                        force=bool(item.get("force")))
        except catalogue.CatalogueError as exc:
            for problem in exc.problems or [str(exc)]:
                key = _attribute(problem, sets)
                if key is not None:
                    missing = re.match(r"^path '(.+)' does not exist (\(.*\))$", problem)
                    text = f"path '{missing.group(1)}' does not exist in {event} {missing.group(2)}" if missing \
                        else f"{problem} ({event})"
                    self.fail(set_path + (key,), f"set: {text}", key=True)
                else:
                    where = set_path if sets else path + (("send",) if "send" in item else ("event",))
                    self.fail(where, f"{problem} ({event})")
            return None
        for k in sets:
            if k not in static and not paths.exists(sample, k):
                self.fail(set_path + (k,), f"set {k}: path does not exist in {event}", key=True)
        for i, k in enumerate(item.get("remove") or []):
            if not _valid_path(k) or not paths.exists(sample, k):
                self.fail(path + ("remove", i), f"remove: path {k!r} does not exist in {event}")
        return sample

    def _fault(self, step: Step, item: dict, path: tuple, platform: str, auth: Auth, defined: dict) -> None:
        kind = item["fault"]
        of = item.get("of")
        if of is not None:
            if kind not in RESEND_FAULTS:
                self.fail(path + ("of",), f"of: only {' and '.join(RESEND_FAULTS)} resend an earlier step")
            elif of not in defined:
                self.fail(path + ("of",), f"of: no earlier step is named {of!r} (name one with as:)")
            else:
                step.event = defined[of]
            if "event" in item:
                self.fail(path + ("event",), "event: give either of (resend an earlier step) or event, not both",
                          key=True)
        elif "event" not in item:
            self.fail(path, f"fault {kind}: missing required field 'event'"
                      + (" (or of: NAME to resend an earlier step)" if kind in RESEND_FAULTS else ""))
        else:
            step.event = self._event(item["event"], path + ("event",), platform)
        if step.event and of is None:
            sample = self._check_payload(step.event, item, path, platform)
            for side in ("earlier", "later"):
                if isinstance(item.get(side), dict) and "set" in item[side]:
                    self._check_payload(step.event, item, path, platform, sets=item[side]["set"],
                                        set_path=path + (side, "set"))
            if sample is not None:
                for key in ("field", "tamper"):
                    if key in item and (not _valid_path(item[key]) or not paths.exists(sample, item[key])):
                        self.fail(path + (key,), f"{key}: path {item[key]!r} does not exist in {step.event}")
        misplaced = {"field": "missing_required_field", "tamper": "tampered_body", "content_type":
                     "wrong_content_type", "size": "oversized_body", "after": "replay", "earlier": "out_of_order",
                     "later": "out_of_order"}
        for key, owner in misplaced.items():
            if key in item and kind != owner:
                self.fail(path + (key,), f"{key}: only for the {owner} fault", key=True)
        self._check_job_attempt(item, path, platform)
        if step.skip is None and kind in CREDENTIAL_FAULTS:
            if auth.kind == "none":
                self.fail(path + ("fault",), f"fault {kind}: this scenario sends no credentials (auth kind none); "
                          "set auth, or limit the step with when: {auth: [...]}")
            elif kind == "tampered_body" and auth.kind not in ("rsa", "hmac"):
                self.fail(path + ("fault",), f"fault tampered_body: {auth.kind} auth does not cover the body, so "
                          "a changed body cannot be detected; it needs rsa or hmac")
        step.name = step.name or f"{kind}" + (f" of {of}" if of else f" ({step.event or item.get('event')})")

    def _check_ref(self, ref: _Ref, defined: dict) -> None:
        where = self.pos.within(ref.path, ref.text)
        if ref.name not in defined:
            self.problems.append(f"{where}: undefined variable {ref.text!r}: no earlier step is named "
                                 f"{ref.name!r} (name one with as:)")
            return
        parts = ref.rest.strip(".").split(".")
        if parts[0] not in REF_ROOTS:
            self.problems.append(f"{where}: {ref.text!r}: after the step name use one of {', '.join(REF_ROOTS)}")
            return
        event = defined.get(ref.name)
        if parts[0] == "payload" and len(parts) > 1 and event:
            path = ".".join(parts[1:])
            try:
                sample = catalogue.generate(event, seed=0, count=3 if catalogue.get_event(event).count_of else None)
            except catalogue.CatalogueError:
                return
            literal = []
            for p in parts[1:]:
                if p.isdigit():
                    break
                literal.append(p)
            checked = ".".join(literal)
            if checked and not paths.exists(sample, checked) and not any(
                    paths.exists(sample, ".".join(literal[:i])) and isinstance(
                        paths.get(sample, ".".join(literal[:i])), list) for i in range(1, len(literal))):
                self.problems.append(f"{where}: {ref.text!r}: path {path!r} does not exist in {event}")
        if parts[0] == "response" and len(parts) > 1 and parts[1] not in ("status", "body", "headers", "ms"):
            self.problems.append(f"{where}: {ref.text!r}: a response has status, body, headers and ms")

    def _check_refs(self, defined: dict) -> None:
        for ref in self.refs:
            if not ref.checked and ref.path[:1] != ("steps",):
                self.problems.append(f"{self.pos.within(ref.path, ref.text)}: {ref.text!r}: step results can "
                                     "only be used inside steps")


def _valid_path(text: Any) -> bool:
    return isinstance(text, str) and text != "" and all(part for part in text.split("."))


def _attribute(problem: str, sets: dict) -> str | None:
    """Which `set` key a catalogue problem is about (longest matching path)."""
    best = None
    for key in sets:
        if f"'{key}'" in problem or problem.startswith(key + ":") or problem.startswith(key + "."):
            if best is None or len(key) > len(best):
                best = key
    return best


def _position(problem: str) -> tuple:
    match = re.match(r"^.*?:(\d+):(\d+): ", problem)
    return (int(match.group(1)), int(match.group(2))) if match else (0, 0)


def _dedupe(items: list[str]) -> list[str]:
    seen, out = set(), []
    for item in items:
        if item not in seen:
            seen.add(item)
            out.append(item)
    return out
