"""Fuzz the scenario loader (issue 7, item 6): malformed YAML and JSON, broken copies of the shipped scenarios,
and random documents built from the format's own words. The loader must never crash: it returns a scenario or
raises ScenarioFileError, every problem located as `file:line:column: message` inside the file."""

from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simulator.scenarios.loader import Scenario, ScenarioFileError, load_file

REPO = Path(__file__).resolve().parent.parent
SHIPPED = sorted(p for p in (REPO / "scenarios").rglob("*") if p.suffix in (".yaml", ".yml", ".json"))
LOCATED = re.compile(r"^(?P<file>.+?):(?P<line>\d+):(?P<col>\d+): \S")
FUZZ = settings(
    max_examples=150, deadline=None, database=None, derandomize=True, suppress_health_check=list(HealthCheck)
)
ENV = {"RECEIVER_URL": "http://127.0.0.1:9/hook", "HMAC_SECRET": "abcd1234"}

WORDS = [
    "name",
    "description",
    "platform",
    "url",
    "auth",
    "vars",
    "steps",
    "send",
    "expect",
    "fault",
    "wait",
    "repeat",
    "retry",
    "set",
    "seed",
    "as",
    "status",
    "body",
    "envelope",
    "latency_ms",
    "attempts",
    "headers",
    "remove_headers",
    "event",
    "of",
    "after",
    "earlier",
    "later",
    "field",
    "tamper",
    "size",
    "content_type",
    "kind",
    "secret",
    "timeout",
    "delays",
    "steps",
    "accessrc",
    "accredit",
    "reachfive",
    "hmac",
    "basic",
    "DELIVERY_CHANNEL_STATUS_UPDATED",
    "BadgeExportZipFile.Created",
    "END_JOB_NOTIFICATION",
    "bad_signature",
    "duplicate",
    "replay",
    "out_of_order",
    "oversized_body",
    "documented",
    "${RECEIVER_URL}",
    "${a.payload.x}",
    "${UNDEFINED}",
    "$${x}",
    "${",
    "}",
    "status",
    "providerDeliveryChannelId",
    "summary.totalRecords",
]


def _check(text: str, suffix: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"fuzzed{suffix}"
        path.write_text(text, "utf-8")
        try:
            result = load_file(path, env=ENV)
        except ScenarioFileError as exc:
            assert exc.problems, "an error with no problem in it"
            lines = text.count("\n") + 2
            for problem in exc.problems:
                match = LOCATED.match(problem)
                assert match, f"not located: {problem!r}"
                assert match["file"] == str(path), problem
                assert 1 <= int(match["line"]) <= lines and int(match["col"]) >= 1, problem
        else:
            assert isinstance(result, Scenario)


scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**20), 10**20),
    st.floats(allow_nan=True),
    st.sampled_from(WORDS),
    st.text(max_size=12),
)
documents = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.one_of(st.sampled_from(WORDS), st.text(max_size=6)), children, max_size=5),
    ),
    max_leaves=25,
)


@given(text=st.text(max_size=400))
@FUZZ
def test_random_text_as_yaml(text):
    _check(text, ".yaml")


@given(text=st.text(max_size=400))
@FUZZ
def test_random_text_as_json(text):
    _check(text, ".json")


@given(doc=documents, as_json=st.booleans())
@FUZZ
def test_random_documents_in_the_formats_words(doc, as_json):
    text = json.dumps(doc, indent=1, allow_nan=True) if as_json else yaml.safe_dump(doc, allow_unicode=True)
    _check(text, ".json" if as_json else ".yaml")


@given(
    steps=st.lists(
        st.dictionaries(
            st.sampled_from(WORDS),
            scalars | st.dictionaries(st.sampled_from(WORDS), scalars, max_size=3),
            min_size=1,
            max_size=4,
        ),
        max_size=4,
    ),
    platform=st.sampled_from(["accessrc", "accredit", "reachfive", "other"]),
)
@FUZZ
def test_well_framed_files_with_random_steps(steps, platform):
    doc = {"name": "fuzz", "platform": platform, "url": "${RECEIVER_URL}", "steps": steps}
    _check(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False), ".yaml")


@pytest.mark.parametrize("path", SHIPPED, ids=[str(p.relative_to(REPO)) for p in SHIPPED])
def test_shipped_scenarios_load(path):
    """The mutations below start from files that load."""
    assert isinstance(load_file(path, env=ENV), Scenario)


@given(data=st.data())
@settings(max_examples=300, deadline=None, database=None, derandomize=True, suppress_health_check=list(HealthCheck))
def test_broken_copies_of_the_shipped_scenarios(data):
    path = data.draw(st.sampled_from(SHIPPED))
    text = path.read_text("utf-8")
    for _ in range(data.draw(st.integers(1, 3))):
        start = data.draw(st.integers(0, len(text)))
        end = data.draw(st.integers(start, min(len(text), start + 40)))
        kind = data.draw(st.sampled_from(["delete", "insert", "replace", "truncate", "swap_lines", "dedent"]))
        if kind == "delete":
            text = text[:start] + text[end:]
        elif kind == "insert":
            text = (
                text[:start]
                + data.draw(
                    st.sampled_from(
                        WORDS + [":", "- ", "\n", "\t", "{", "[", "'", '"', "&a", "*a", "!!python/object", "? ", "#"]
                    )
                )
                + text[start:]
            )
        elif kind == "replace":
            text = text[:start] + data.draw(st.text(max_size=8)) + text[end:]
        elif kind == "truncate":
            text = text[:start]
        elif kind == "swap_lines":
            lines = text.split("\n")
            i, j = data.draw(st.integers(0, len(lines) - 1)), data.draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
            text = "\n".join(lines)
        else:
            lines = text.split("\n")
            i = data.draw(st.integers(0, len(lines) - 1))
            lines[i] = lines[i].lstrip()
            text = "\n".join(lines)
    _check(text, path.suffix)


def test_a_control_character_is_a_located_error(tmp_path):
    """Found by the fuzzer: PyYAML refuses such text before parsing, which escaped the loader as a ReaderError."""
    path = tmp_path / "bell.yaml"
    path.write_text("name: a\nplatform: accessrc\n  \x07url: x\n", "utf-8")
    with pytest.raises(ScenarioFileError) as exc:
        load_file(path, env=ENV)
    assert exc.value.problems == [
        f"{path}:3:3: YAML cannot contain character #x0007 (special characters are not allowed)"
    ]


@pytest.fixture(scope="module")
def scenario_api(tmp_path_factory, keys_dir):
    from simulator.app import create_app

    app = create_app(
        {
            "DB_PATH": str(tmp_path_factory.mktemp("fuzz-api") / "sim.db"),
            "KEYS_DIR": str(keys_dir),
            "API_KEY": "fuzz-key",
            "START_WORKERS": False,
        }
    )
    return app.test_client()


@given(
    text=st.one_of(st.text(min_size=1, max_size=300), documents.map(lambda d: yaml.safe_dump(d, allow_unicode=True)))
)
@settings(max_examples=150, deadline=None, database=None, derandomize=True, suppress_health_check=list(HealthCheck))
def test_posted_scenarios_get_a_located_400_or_run(scenario_api, text):
    """The same through POST /api/scenario-runs: a 400 listing located problems (in posted.yaml/.json), or 202."""
    resp = scenario_api.post(
        "/api/scenario-runs",
        headers={"x-api-key": "fuzz-key"},
        json={"scenario": text, "url": "http://127.0.0.1:9/fuzz"},
    )
    assert resp.status_code in (202, 400), resp.get_data(as_text=True)[:300]
    body = resp.get_json()
    if resp.status_code == 400:
        problems = body["error"].get("problems") or []
        if body["error"]["field"] == "scenario" and problems:
            assert all(
                LOCATED.match(p) and LOCATED.match(p)["file"] in ("posted.yaml", "posted.json") for p in problems
            ), problems
        else:
            assert body["error"]["message"], body  # a refusal of the request itself (e.g. blank text)
