"""Fuzz the server's API from its own OpenAPI document (issue 7, item 6): schemathesis generates requests for
every documented operation, valid and invalid, and sends them to a live `accessrc-sim serve`. Every answer must
be a documented one: no server error, a documented status code and content type, a body matching its schema.

Bounded: EXAMPLES per operation (the server-sent-events stream never ends by design and is left out; its
answers are tested in test_serve/test_api_jobs)."""

from __future__ import annotations

import json
from importlib import resources

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from reliability_helpers import API_KEY, ServeProcess
from schemathesis import GenerationMode, checks

EXAMPLES = 20
SKIPPED = {
    "/api/stream",
    "/",
    "/dashboard",
    "/dashboard/login",
    "/dashboard/api/stream",
    "/dashboard/api/send",
    "/dashboard/api/readiness",
    "/dashboard/api/readiness/{run_id}",
    "/dashboard/api/sample",
}  # dashboard routes: tests/test_dashboard.py
# "As documented": no 5xx; the status code, content type, headers and body each as the document says.
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_headers_conformance,
    checks.response_schema_conformance,
]
AUTH = {"x-api-key": API_KEY, "Authorization": f"Bearer {API_KEY}"}


@pytest.fixture(scope="module")
def served(tmp_path_factory, keys_dir):
    server = ServeProcess(tmp_path_factory.mktemp("fuzz"), keys_dir, "--retry-delays", "0,0", "--timeout", "1")
    yield server.start()
    server.stop()


@pytest.fixture(scope="module")
def api_schema(served):
    return schemathesis.openapi.from_url(served.url + "/api/openapi.json")


DOCUMENT = json.loads(resources.files("simulator.api").joinpath("openapi.json").read_text("utf-8"))


def _operations() -> list[tuple[str, str]]:
    return [
        (method.upper(), path)
        for path, item in DOCUMENT["paths"].items()
        for method in item
        if method in ("get", "post", "put", "patch", "delete") and path not in SKIPPED
    ]


def _has_inputs(method: str, path: str) -> bool:
    item = DOCUMENT["paths"][path]
    operation = item[method.lower()]
    return bool(item.get("parameters") or operation.get("parameters") or operation.get("requestBody"))


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=["valid", "invalid"])
@pytest.mark.parametrize("method,path", _operations(), ids=[f"{m} {p}" for m, p in _operations()])
def test_every_answer_is_documented(api_schema, method, path, mode):
    if mode == GenerationMode.NEGATIVE and not _has_inputs(method, path):
        pytest.skip("no parameters or body to make invalid")
    operation = api_schema[path][method]

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck)
    )
    def fuzz(case):
        case.call_and_validate(headers=AUTH, timeout=15, checks=CHECKS)

    fuzz()


@pytest.mark.parametrize(
    "path",
    [
        "/api/jobs?since_id={big}",
        "/api/jobs?before_id={big}",
        "/api/attempts?since_id={big}",
        "/api/stream?since={big}:1&max_seconds=1",
        "/api/stream?since=1:{big}&max_seconds=1",
        "/dashboard/api/stream?since={big}:1&max_seconds=1",
    ],
)
def test_numbers_beyond_sqlite_are_400_not_a_broken_answer(served, path):
    """Found by the fuzzer: ids past SQLite's 64-bit integers were a 500 (or a stream cut off mid-answer)."""
    resp = requests.get(served.url + path.format(big=2**64), headers=AUTH, timeout=10)
    assert resp.status_code == 400 and resp.json()["error"]["field"] in ("since_id", "before_id", "since")


def _nested(depth: int, leaf: str = '"x"') -> str:
    """`{"a":{"a":…}}` `depth` deep, as text (json.dumps itself would recurse)."""
    return '{"a":' * depth + leaf + "}" * depth


REFUND = '"event":"DELIVERY_REFUND_REQUESTED","url":"http://127.0.0.1:9/hook"'
DEEP_PATH = ".".join(["a"] * 5000)
# The trial's inputs (issue 14, item 8), each a 500 with a ~1,000-line traceback before: now a 400 saying why.
TRIAL = [
    ("/api/send", "[" * 100_000, "body", "nested deeper than 64 levels"),
    ("/api/send", "{" + REFUND + ',"overrides":{"x":' + _nested(5000) + "}}", "body", "nested deeper than 64 levels"),
    ("/api/send", "{" + REFUND + ',"meta":' + _nested(5000) + "}", "body", "nested deeper than 64 levels"),
    (
        "/api/send",
        '{"event":"Entity.Event","url":"http://127.0.0.1:9/hook","force":true,"overrides":{"' + DEEP_PATH + '":1}}',
        "overrides",
        "at most 64",
    ),
    ("/api/subscriptions", "{" + REFUND + ',"meta":' + _nested(5000) + "}", "body", "nested deeper than 64 levels"),
    ("/api/subscriptions", "{" + REFUND + ',"overrides":{"' + DEEP_PATH + '":1}}', "overrides", "at most 64"),
    ("/api/Event/Subscribe", "[" * 100_000, "body", "nested deeper than 64 levels"),
    ("/api/webhookSubscription", "[" * 100_000, None, "nested deeper than 64 levels"),
    ("/api/scenario-runs", json.dumps({"scenario": "[" * 5000 + "]" * 5000}), "scenario", "problems"),
    ("/api/scenario-runs", json.dumps({"scenario": '{"a":' * 5000 + "1" + "}" * 5000}), "scenario", "problems"),
    ("/api/scenario-runs", json.dumps({"file": "accessrc/x\x00.yaml"}), "file", "no control characters"),
]


@pytest.mark.parametrize(
    "path, body, field, said",
    TRIAL,
    ids=[
        "send 100k [",
        "send nested overrides",
        "send nested meta",
        "send 5000-part override path",
        "subscription nested meta",
        "subscription 5000-part override path",
        "Subscribe 100k [",
        "Accredit subscription 100k [",
        "scenario YAML 5000 deep",
        "scenario JSON 5000 deep",
        "scenario file with NUL",
    ],
)
def test_the_trials_deep_inputs_are_400_with_a_clear_message(served, path, body, field, said):
    resp = requests.post(
        served.url + path, data=body.encode(), headers={**AUTH, "Content-Type": "application/json"}, timeout=10
    )
    assert resp.status_code == 400, resp.text[:300]
    assert said in resp.text
    if field is not None:  # the AccessRC envelope; Accredit's names no field for a body that is not read
        assert resp.json()["error"]["field"] == field and resp.json()["status"] == "failed"
    else:
        assert resp.json()["code"].startswith("ACR_")


def test_the_server_survived_the_fuzzing(served, api_schema):
    """After everything above: still healthy, and no unhandled exception in its log."""
    assert requests.get(served.url + "/healthz", timeout=5).json()["data"]["status"] == "ok"
    assert "Traceback" not in served.output and "unhandled error" not in served.output
