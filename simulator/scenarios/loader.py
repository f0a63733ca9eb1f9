"""Scenario files: parsed with positions (positions.py), variables substituted (refs.py), validated against
schema.json (validation.py), turned into steps checked against the catalogue, the rules and each other.

Every problem of a file is reported as `file:line:column: what is wrong`, all of them, before anything is sent.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import catalogue, platforms, rules
from ..auth import Auth, AuthError
from ..catalogue import paths
from ..delivery import DeliveryError, get_profile
from ..platforms import DOCUMENTED
from . import faults, refs, served, validation
from .positions import ScenarioFileError, check_size, parse
from .validation import KINDS, json_type, schema

REF_ROOTS = ("payload", "response", "request", "job_id", "attempts")
CALL_ROOTS = ("call",)  # what an await_call step named with `as` gives
CALL = "<await_call>"  # the `defined` value of an await_call step's name (a send's is its event)
SUFFIXES = (".yaml", ".yml", ".json")
DEFAULT_TIMEOUT = 10.0
RESENDING = tuple(name for name, f in faults.FAULTS.items() if f.resends)
MAX_PROBLEMS = 100  # problems reported for one file, at most (then how many more)
MAX_PROBLEM = 1000  # characters of one problem, at most (values in it are quoted cut: limits.quote)

__all__ = [
    "KINDS",
    "SUFFIXES",
    "Scenario",
    "ScenarioFileError",
    "Step",
    "collect_files",
    "load_all",
    "load_file",
    "load_text",
    "schema",
]


@dataclass
class Step:
    kind: str
    name: str
    data: dict
    where: str
    skip: str | None = None
    event: str | None = None  # canonical event name for send/fault steps
    children: list[Step] = field(default_factory=list)
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
    # `file:line:col: …` of each inferred rule a `set:` breaks (e.g. an added field): advice, refused with --strict
    notes: list[str] = field(default_factory=list)


# -- loading --------------------------------------------------------------------------------------------------------
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


def load_file(
    path: str | Path,
    cli_vars: Mapping[str, str] | None = None,
    url: str | None = None,
    auth: Auth | None = None,
    env: Mapping[str, str] | None = None,
) -> Scenario:
    """Load one scenario. `url` replaces the file's target URL; `auth` replaces its auth settings."""
    path = Path(path)
    try:
        check_size(path.stat().st_size, str(path))  # before reading it: a huge file is refused, not loaded
        text = path.read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioFileError([f"{path}:1:1: cannot read: {exc}"]) from None
    return load_text(text, str(path), cli_vars, url, auth, env)


def load_text(
    text: str,
    filename: str,
    cli_vars: Mapping[str, str] | None = None,
    url: str | None = None,
    auth: Auth | None = None,
    env: Mapping[str, str] | None = None,
) -> Scenario:
    """Load a scenario from text (`filename` names it in messages; `.json` reads it as JSON, else YAML)."""
    try:
        data, pos = parse(text, filename, filename.lower().endswith(".json"))
    except ScenarioFileError as exc:
        raise ScenarioFileError(_reported(exc.problems)) from None
    return _Builder(filename, data, pos, dict(cli_vars or {}), url, auth, os.environ if env is None else env).build()


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
        self.notes: list[str] = []
        self.profile = DOCUMENTED
        self.refs: list[refs.Ref] = []
        self._own_refs: list[refs.Ref] = []

    def fail(self, path: tuple, message: str, key: bool = False) -> None:
        self.problems.append(f"{self.pos.at(path, key)}: {message}")

    def build(self) -> Scenario:
        data = self.data
        if not isinstance(data, dict):
            raise ScenarioFileError(
                [
                    f"{self.pos.at(())}: a scenario file is a mapping with name, platform, url "
                    f"and steps (got {json_type(data)})"
                ]
            )
        raw_vars = data.get("vars") if isinstance(data.get("vars"), dict) else {}
        # a value a variable may not take (a list, a mapping: reported by the schema check) is never substituted
        refused = frozenset(k for k, v in raw_vars.items() if not isinstance(v, (str, int, float, bool)))
        budget = refs.Budget(len(self.pos.values))  # the document's own values, then what variables add
        env_vars = refs.Vars(self.cli_vars, {}, self.env)
        file_vars = {
            k: refs.substitute(v, ("vars", k), env_vars, self.pos, self.problems, [], budget)
            for k, v in raw_vars.items()
            if k not in refused
        }
        vars_ = refs.Vars(self.cli_vars, file_vars, self.env, refused)
        if self.url_override and "url" in data:  # replaced: its variables need not be defined
            data = {**data, "url": self.url_override}
        data = {
            k: (v if k == "vars" else refs.substitute(v, (k,), vars_, self.pos, self.problems, self.refs, budget))
            for k, v in data.items()
        }
        self.problems.extend(validation.problems("", data, (), self.pos, "scenario"))
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
            raise ScenarioFileError(_reported(sorted(_dedupe(self.problems), key=_position)))
        url = self.url_override or data["url"]
        return Scenario(
            path=self.filename,
            name=data["name"],
            description=data.get("description", ""),
            platform=platform,
            url=url,
            auth=auth,
            timeout=timeout,
            retry=retry,
            steps=steps,
            vars={k: v for k, v in {**file_vars, **self.cli_vars}.items()},
            profile=self.profile,
            notes=sorted(_dedupe(self.notes), key=_position),
        )

    def _auth(self, data: dict, platform: str | None) -> Auth:
        if platform is None:
            return Auth("none")
        if self.auth_override is not None:
            return self.auth_override
        given = data.get("auth")
        chosen = platforms.get(platform)
        if not isinstance(given, dict) or "kind" not in given:
            return chosen.default_auth()
        try:
            return chosen.auth_from_file(given)
        except (AuthError, TypeError) as exc:
            self.fail(("auth",), f"auth: {exc}")
            return chosen.default_auth()

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
            hint = (
                ""
                if self.profile != DOCUMENTED or len(platforms.get(platform).profiles) < 2
                else " under the documented profile (X-JobId/X-JobAttempt are not in its documents; add "
                "`profile: accredit-like` to the scenario to send them)"
            )
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
            self.fail(path, f"a step is a mapping such as `send: EVENT` (got {json_type(item)})")
            return None
        kinds = [k for k in KINDS if k in item and not (k == "expect" and any(o in item for o in ("send", "fault")))]
        if len(kinds) != 1:
            if not kinds:
                known_fields = validation.step_fields()
                first = next((k for k in item if k not in known_fields), next(iter(item), None))
                where = path + (first,) if first is not None else path
                self.fail(
                    where,
                    f"unknown step kind {first!r}: a step starts with one of {', '.join(KINDS)}"
                    if first is not None
                    else f"empty step: use one of {', '.join(KINDS)}",
                    key=True,
                )
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
        self.problems.extend(validation.problems(kind, item, path, self.pos, f"{kind} step"))
        if len(self.problems) > before:
            if kind in ("send", "fault"):  # its name and its sending still count: one mistake, one message
                state["sent"] = True
                self._define(item, None, defined)
            elif kind == "await_call":
                self._define(item, CALL, defined)
            return None
        where = self.pos.at(path)
        skip = None
        when = item.get("when", {}).get("auth")
        if when and auth.kind not in when:
            skip = f"only with {', '.join(when)} auth (this run: {auth.kind})"
        step = Step(kind=kind, name=refs.unescape(item.get("name") or ""), data=item, where=where, skip=skip)
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
            elif of is not None and defined[of] == CALL:
                self.fail(
                    path + ("expect", "of"),
                    f"expect.of: {of!r} is an await_call step: it has no answer of a receiver to check "
                    f"(use ${{{of}.call.…}} in a later step)",
                )
            elif of is None and not state["sent"]:
                self.fail(path + ("expect",), "expect: no earlier send or fault step to check")
            step.name = step.name or f"expect {of or 'previous answer'}"
        elif kind == "wait":
            step.name = step.name or f"wait {item['wait']:g} s"
        elif kind == "repeat":
            step.children = self._steps(item["steps"], path + ("steps",), platform, auth, defined, state)
            step.name = step.name or f"repeat {item['repeat']} times"
        elif kind == "await_call":
            self._await_call(step, item, path, platform)
        if kind in ("send", "fault"):
            self._define(item, step.event, defined)
        elif kind == "await_call":
            self._define(item, CALL, defined)
        event = step.event if kind != "expect" else defined.get(item["expect"].get("of") or "", None)
        if event == CALL:
            event = None
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
            self.fail(
                path,
                f"rule: no rule {rule_id!r} in the registry"
                + (
                    f": did you mean {close[0]!r}?"
                    if close
                    else f" (`accessrc-sim rules --platform {platform}` lists them)"
                ),
            )
            return None
        if rule.platform != platform:
            self.fail(path, f"rule: {rule_id} is a rule of {rule.platform}; this scenario is {platform}")
        elif rule.event and event and rule.event != event:
            self.fail(path, f"rule: {rule_id} is about {rule.event}; this step sends {event}")
        return rule

    def _await_call(self, step: Step, item: dict, path: tuple, platform: str) -> None:
        """The call must be one the simulator serves for this platform (with that method): else it never comes."""
        spec = item["await_call"]
        where = path + ("await_call",)
        call_path = spec["path"]
        methods = served.served_methods(platform, call_path)
        if methods is None:
            self.fail(where, f"await_call: {platform} has no API a receiver calls back (nothing to wait for)")
            return
        if not methods:
            self.fail(
                where + ("path",),
                f"await_call.path: the simulator serves no {platform} API at {call_path!r}; one of: "
                + ", ".join(served.served_paths(platform)),
            )
            return
        method = spec.get("method")
        if method is not None and method not in methods:
            self.fail(
                where + ("method",),
                f"await_call.method: {call_path} is served with {' or '.join(methods)}, not {method}",
            )
            return
        spec["method"] = method or served.default_method(platform, call_path)
        step.name = step.name or f"await {spec['method']} {refs.unescape(call_path)}"

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
        for ref in [r for r in self.refs if r.path[: len(path)] == path and len(r.path) > len(path) and not r.checked]:
            ref.checked = True
            own = (
                kind in ("send", "fault")
                and ref.name == item.get("as")
                and ref.path[: len(path) + 1] == path + ("expect",)
            )
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

    def _check_payload(
        self,
        event: str,
        item: dict,
        path: tuple,
        platform: str,
        set_key: str = "set",
        sets: dict | None = None,
        set_path: tuple | None = None,
    ) -> dict | None:
        sets = item.get(set_key) if sets is None else sets
        sets = sets if isinstance(sets, dict) else {}
        set_path = set_path or path + (set_key,)
        static = {k: refs.unescape(v) for k, v in sets.items() if not refs.contains_ref(v)}
        bad = [k for k in sets if not _valid_path(k)]
        for k in bad:
            self.fail(set_path + (k,), f"set: invalid path {k!r}", key=True)
        if bad:
            return None
        try:
            sample = catalogue.generate(
                event,
                seed=item.get("seed", 0),
                overrides=static,
                count=item.get("count"),
                force=bool(item.get("force")),
            )
        except catalogue.CatalogueError as exc:
            for problem in exc.problems or [str(exc)]:
                key = _attribute(problem, sets)
                if key is not None:
                    missing = re.match(r"^path '(.+)' does not exist (\(.*\))$", problem)
                    text = (
                        f"path '{missing.group(1)}' does not exist in {event} {missing.group(2)}"
                        if missing
                        else f"{problem} ({event})"
                    )
                    self.fail(set_path + (key,), f"set: {text}", key=True)
                else:
                    where = set_path if sets else path + (("send",) if "send" in item else ("event",))
                    self.fail(where, f"{problem} ({event})")
            return None
        for advice in [] if item.get("force") else catalogue.advise(event, sample):
            key = _attribute(advice.text, static)
            if key is not None:  # an inferred rule the user's own value breaks: a note, never a problem
                self.notes.append(f"{self.pos.at(set_path + (key,), True)}: set {key}: {advice} ({event})")
        for k in sets:
            if k not in static:
                try:
                    paths.check_settable(sample, k)  # a new field of an existing object is advice, as in `static`
                except paths.PathError:
                    self.fail(set_path + (k,), f"set {k}: path does not exist in {event}", key=True)
        for i, k in enumerate(item.get("remove") or []):
            if not _valid_path(k) or not paths.exists(sample, k):
                self.fail(path + ("remove", i), f"remove: path {k!r} does not exist in {event}")
        return sample

    def _fault(self, step: Step, item: dict, path: tuple, platform: str, auth: Auth, defined: dict) -> None:
        kind = item["fault"]
        spec = faults.FAULTS[kind]
        of = item.get("of")
        if of is not None:
            if not spec.resends:
                self.fail(path + ("of",), f"of: only {' and '.join(RESENDING)} resend an earlier step")
            elif of not in defined:
                self.fail(path + ("of",), f"of: no earlier step is named {of!r} (name one with as:)")
            elif defined[of] == CALL:
                self.fail(path + ("of",), f"of: {of!r} is an await_call step: it sent nothing to send again")
            else:
                step.event = defined[of]
            if "event" in item:
                self.fail(
                    path + ("event",), "event: give either of (resend an earlier step) or event, not both", key=True
                )
        elif "event" not in item:
            self.fail(
                path,
                f"fault {kind}: missing required field 'event'"
                + (" (or of: NAME to resend an earlier step)" if spec.resends else ""),
            )
        else:
            step.event = self._event(item["event"], path + ("event",), platform)
        if step.event and of is None:
            sample = self._check_payload(step.event, item, path, platform)
            for side in ("earlier", "later"):
                if isinstance(item.get(side), dict) and "set" in item[side]:
                    self._check_payload(
                        step.event, item, path, platform, sets=item[side]["set"], set_path=path + (side, "set")
                    )
            if sample is not None:
                for key in ("field", "tamper"):
                    if key in item and (not _valid_path(item[key]) or not paths.exists(sample, item[key])):
                        self.fail(path + (key,), f"{key}: path {item[key]!r} does not exist in {step.event}")
        for key, message in faults.misplaced_options(kind, item):
            self.fail(path + (key,), message, key=True)
        self._check_job_attempt(item, path, platform)
        if step.skip is None and spec.credentials:
            if auth.kind == "none":
                self.fail(
                    path + ("fault",),
                    f"fault {kind}: this scenario sends no credentials (auth kind none); "
                    "set auth, or limit the step with when: {auth: [...]}",
                )
            elif kind == "tampered_body" and faults.body_not_covered(auth):
                self.fail(path + ("fault",), f"fault {faults.body_not_covered(auth)}")
        step.name = step.name or f"{kind}" + (f" of {of}" if of else f" ({step.event or item.get('event')})")

    def _check_ref(self, ref: refs.Ref, defined: dict) -> None:
        where = self.pos.within(ref.path, ref.text)
        if ref.name not in defined:
            self.problems.append(
                f"{where}: undefined variable {ref.text!r}: no earlier step is named {ref.name!r} (name one with as:)"
            )
            return
        parts = ref.rest.split(".")
        roots = CALL_ROOTS if defined.get(ref.name) == CALL else REF_ROOTS
        if parts[0] not in roots:
            self.problems.append(f"{where}: {ref.text!r}: after the step name use one of {', '.join(roots)}")
            return
        event = defined.get(ref.name)
        if event == CALL:
            if len(parts) > 1 and parts[1] not in served.CALL_FIELDS:
                self.problems.append(
                    f"{where}: {ref.text!r}: a call has {', '.join(served.CALL_FIELDS)} "
                    f"(e.g. ${{{ref.name}.call.body.…}})"
                )
            return
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
            if (
                checked
                and not paths.exists(sample, checked)
                and not any(
                    paths.exists(sample, ".".join(literal[:i]))
                    and isinstance(paths.get(sample, ".".join(literal[:i])), list)
                    for i in range(1, len(literal))
                )
            ):
                self.problems.append(f"{where}: {ref.text!r}: path {path!r} does not exist in {event}")
        if parts[0] == "response" and len(parts) > 1 and parts[1] not in ("status", "body", "headers", "ms"):
            self.problems.append(f"{where}: {ref.text!r}: a response has status, body, headers and ms")

    def _check_refs(self, defined: dict) -> None:
        for ref in self.refs:
            if not ref.checked and ref.path[:1] != ("steps",):
                self.problems.append(
                    f"{self.pos.within(ref.path, ref.text)}: {ref.text!r}: step results can only be used inside steps"
                )


def _valid_path(text: Any) -> bool:
    return isinstance(text, str) and text != "" and all(part for part in text.split("."))


def _attribute(problem: str, sets: dict) -> str | None:
    """Which `set` key a catalogue problem is about (longest matching path): one quoted in the problem, or the
    one it starts with (followed by `:` or `.`). Looked up, not searched for: 10,000 keys with 10,000 problems
    stay linear."""
    quotes = [i for i, c in enumerate(problem) if c == "'"][:64]
    candidates = {problem[a + 1 : b] for n, a in enumerate(quotes) for b in quotes[n + 1 :]}
    candidates.update(problem[:i] for i, c in enumerate(problem) if c in ":.")
    return max((k for k in candidates if k in sets), key=len, default=None)


def _position(problem: str) -> tuple:
    match = re.match(r"^.*?:(\d+):(\d+): ", problem)
    return (int(match.group(1)), int(match.group(2))) if match else (0, 0)


def _reported(problems: list[str]) -> list[str]:
    """At most MAX_PROBLEMS problems, each at most MAX_PROBLEM characters: a hostile file's report stays small."""
    shown = [p if len(p) <= MAX_PROBLEM else p[:MAX_PROBLEM] + "… (cut)" for p in problems[:MAX_PROBLEMS]]
    if len(problems) > MAX_PROBLEMS:
        shown.append(f"… and {len(problems) - MAX_PROBLEMS:,} more problems (fix these first)")
    return shown


def _dedupe(items: list[str]) -> list[str]:
    seen, out = set(), []
    for item in items:
        if item not in seen:
            seen.add(item)
            out.append(item)
    return out
