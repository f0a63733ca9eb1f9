"""The one `${…}` grammar (simulator/scenarios/refs.py): variables at load time, step references at run time, and
`$${` a literal `${` exactly once, in steps too. Plus the fault table the loader, runner and checks read."""

from __future__ import annotations

import pytest
from scripted_server import ScriptedServer

from simulator.scenarios import faults, refs
from simulator.scenarios.checks import default_status
from simulator.scenarios.loader import load_text, schema
from simulator.scenarios.runner import Runner


def test_a_reference_is_a_variable_or_a_step_result():
    assert refs.parse(" NAME ") == refs.Variable("NAME")
    assert refs.parse("BASE:-http://127.0.0.1:1") == refs.Variable("BASE", "http://127.0.0.1:1")
    assert refs.parse("refund.payload.delivery.id") == refs.StepRef("refund", "payload.delivery.id")
    assert refs.parse("refund.") is None and refs.parse("1x") is None
    assert refs.contains_ref({"a": ["x ${s.job_id}"]}) and not refs.contains_ref("$${s.job_id} ${NAME}")


class _Answered:
    def view(self) -> dict:
        return {"job_id": "j-1", "response": {"status": 202}}


def test_run_time_resolution_keeps_a_whole_reference_typed_and_reads_an_escape_once():
    named = {"s": _Answered()}
    assert refs.resolve({"status": "${s.response.status}", "note": "job ${s.job_id}, $${s.job_id}"}, named) == {
        "status": 202,
        "note": "job j-1, ${s.job_id}",
    }
    with pytest.raises(refs.Unresolved) as caught:
        refs.resolve("${t.job_id}", named)
    assert caught.value.actual == "step 't' has no answer (it did not run or failed to send)"


def test_an_escaped_reference_in_a_step_is_sent_as_written(store, keys):
    """`$${` is a literal `${` in a step's values too: read once, when the step runs (not again as a reference)."""
    with ScriptedServer() as server:
        text = (
            f"name: escape\nplatform: reachfive\nurl: {server.url}/jobs\nsteps:\n"
            "  - send: END_JOB_NOTIFICATION\n    name: '$${literal} step'\n    as: first\n"
            "    headers: {X-Note: '$${literal} and $${first.job_id}'}\n"
            "  - send: END_JOB_NOTIFICATION\n    headers: {X-Note: 'status ${first.response.status}'}\n"
        )
        scenario = load_text(text, "escape.yaml", env={})
        [result] = Runner(store, keys).run([scenario])
        got = list(server.requests)
    assert scenario.steps[0].name == "${literal} step"
    assert [s.passed for s in result.steps] == [True, True], [f.text() for s in result.steps for f in s.failures]
    assert [g["headers"]["X-Note"] for g in got] == ["${literal} and ${first.job_id}", "status 200"]


def test_every_fault_of_the_schema_is_one_entry_of_the_table():
    assert schema()["$defs"]["fault_step"]["properties"]["fault"]["enum"] == list(faults.FAULTS)
    assert faults.NAMES == (
        "bad_signature",
        "missing_signature",
        "wrong_key",
        "tampered_body",
        "malformed_json",
        "missing_required_field",
        "wrong_content_type",
        "oversized_body",
    )
    assert [f for f in faults.FAULTS if faults.FAULTS[f].make is None] == ["duplicate", "replay", "out_of_order"]
    assert default_status("fault", "wrong_content_type", "accessrc") == [400, 415]
    assert default_status("fault", "replay", "accessrc") == default_status("send", None, "accessrc") == ["2xx"]
    with pytest.raises(faults.FaultError, match="fault must be one of bad_signature, "):
        faults.build("duplicate", "END_JOB_NOTIFICATION", None, {}, b"{}", {}, lambda body: {})
