"""Issue 14 (hardening), the auditor's second pass on user input: typed scenario vars that bypassed the node limit,
generated bodies amplified by a count, deep JSON on the command line, the posted scenario limit in bytes."""

from __future__ import annotations

import json
import sqlite3

import pytest
from click.testing import CliRunner
from sim_helpers import XKEY

from simulator.cli import main
from simulator.scenarios.loader import ScenarioFileError, load_text


def typed_var_bomb(items: int, uses: int) -> str:
    """The trial's file: a list under `vars` (vars take strings, numbers and booleans) used `uses` times in a set."""
    return json.dumps(
        {
            "name": "vars bomb",
            "platform": "accessrc",
            "url": "http://127.0.0.1:9/h",
            "vars": {"L": [1] * items},
            # each path through an object the event does not have: a problem of its own (a new field would be advice)
            "steps": [{"send": "DELIVERY_REFUND_REQUESTED", "set": {f"k{i}.x": "${L}" for i in range(uses)}}],
        },
        separators=(",", ":"),
    )


# -- item 2: a variable reference counts as every value it expands to ------------------------------------------------
def test_a_refused_typed_var_is_not_substituted_and_the_report_stays_small():
    text = typed_var_bomb(10_000, 10_000)
    with pytest.raises(ScenarioFileError) as exc:
        load_text(text, "bomb.json", env={})
    problems = exc.value.problems
    assert problems[0] == "bomb.json:1:84: vars.L: expected a string or a number or true or false, got a list"
    assert len(problems) <= 101 and problems[-1].startswith("… and ")  # at most 100 problems, then how many more
    assert sum(len(p) for p in problems) < 20_000  # the trial: a 300 MB message


def test_references_past_the_value_limit_are_refused_before_they_are_expanded():
    """A text var is allowed; put as JSON into `set` (a --var is untyped: read as --set reads it), each reference
    counts as every value it holds: 100 references to a 10,000-item list are past 100,000."""
    text = json.dumps(
        {
            "name": "json var",
            "platform": "accessrc",
            "url": "http://127.0.0.1:9/h",
            "steps": [{"send": "DELIVERY_REFUND_REQUESTED", "set": {f"k{i}": "${L}" for i in range(100)}}],
        }
    )
    with pytest.raises(ScenarioFileError) as exc:
        load_text(text, "v.json", cli_vars={"L": json.dumps([1] * 10_000)}, env={})
    over = [p for p in exc.value.problems if "each reference to a variable counts" in p]
    assert len(over) == 1 and "more than 100,000 values in the document (the limit)" in over[0]
    assert sum(len(p) for p in exc.value.problems) < 20_000


def test_text_vars_put_at_most_1_mib_into_the_document():
    text = "name: t\nplatform: accessrc\nurl: http://127.0.0.1:9/h\ndescription: " + "${S}" * 200 + "\nsteps: []\n"
    with pytest.raises(ScenarioFileError) as exc:
        load_text(text, "t.yaml", cli_vars={"S": "x" * 10_000}, env={})
    assert any("more than 1,048,576 bytes of text" in p for p in exc.value.problems)
    assert sum(len(p) for p in exc.value.problems) < 5_000


def test_a_few_references_to_a_var_still_load():
    text = (
        "name: ok\nplatform: accessrc\nurl: ${U}\n"
        "vars: {U: 'http://127.0.0.1:9/h', ID: '0b6f7c1e-1d2a-4b5c-9d8e-7f6a5b4c3d2e'}\n"
        "steps:\n" + "  - send: DELIVERY_REFUND_REQUESTED\n    set: {deliveryId: '${ID}'}\n" * 50
    )
    sc = load_text(text, "ok.yaml", env={})
    assert len(sc.steps) == 50 and sc.url == "http://127.0.0.1:9/h"


def test_the_trials_vars_bomb_posted_is_a_small_400(client):
    text = typed_var_bomb(10_000, 10_000)
    assert len(text.encode()) < 256 * 1024
    r = client.post("/api/scenario-runs", headers=XKEY, json={"scenario": text})
    assert r.status_code == 400
    assert len(r.data) < 30_000  # the trial: 300 MB
    assert r.get_json()["error"]["problems"][0].startswith("posted.json:1:84: vars.L: expected a string")


def test_run_refuses_the_trials_vars_bomb_with_exit_2_and_little_output(tmp_path):
    path = tmp_path / "bomb.json"
    path.write_text(typed_var_bomb(1_000, 1_000))  # the trial's 9 KB CLI file: 313 MB, 3 MB of errors
    result = CliRunner().invoke(main, ["run", str(path), "--db", str(tmp_path / "x.db")])
    assert result.exit_code == 2, result.output[-2000:]
    assert f"{path}:1:84: vars.L: expected a string" in result.output
    assert len(result.output) < 30_000
    assert not (tmp_path / "x.db").exists()


# -- item 1 (bytes): the posted scenario limit counts UTF-8 bytes ---------------------------------------------------
def test_posted_scenario_text_is_limited_in_bytes_not_characters(client):
    text = "name: multibyte\n# " + "é" * 140_000 + "\n"  # 140,000 characters, 280,000 bytes: over 256 KiB
    assert len(text) < 256 * 1024 < len(text.encode())
    r = client.post("/api/scenario-runs", headers=XKEY, json={"scenario": text})
    assert r.status_code == 400
    assert r.get_json()["error"]["field"] == "scenario" and "262144 bytes" in r.get_json()["error"]["message"]


def test_a_scenario_file_over_1_mib_of_utf8_is_refused_though_it_has_fewer_characters():
    text = "name: multibyte\n# " + "é" * 600_000 + "\n"  # 600,000 characters, 1.2 MB
    with pytest.raises(ScenarioFileError, match="at most 1,048,576 bytes"):
        load_text(text, "m.yaml", env={})


# -- item 9: a count cannot make a body over 1 MiB -------------------------------------------------------------------
def test_an_action_asking_for_10000_applications_is_refused_naming_the_field_and_stores_nothing(app, client):
    store = app.extensions["accessrc_sim"].store
    r = client.post(
        "/api/actions/sync-eligibility", headers=XKEY, json={"applications": 10_000, "url": "http://127.0.0.1:9/h"}
    )
    assert r.status_code == 400
    error = r.get_json()["error"]
    assert error["field"] == "applications" and "at most 1,048,576 bytes" in error["message"]
    assert store.count_jobs() == 0
    ok = client.post(
        "/api/actions/sync-eligibility", headers=XKEY, json={"applications": 100, "url": "http://127.0.0.1:9/h"}
    )
    assert ok.status_code == 201
    [(length,)] = sqlite3.connect(store.path).execute("SELECT body_length FROM jobs").fetchall()
    assert length <= 1024 * 1024


def test_send_with_a_count_over_the_body_limit_is_refused(app, client):
    r = client.post(
        "/api/send",
        headers=XKEY,
        json={"event": "DELIVERY_REQUEST_SENT", "count": 10_000, "url": "http://127.0.0.1:9/h"},
    )
    assert r.status_code == 400 and r.get_json()["error"]["field"] == "count"
    assert "at most 1,048,576 bytes" in r.get_json()["error"]["message"]
    assert app.extensions["accessrc_sim"].store.count_jobs() == 0


# -- items 8/10: deep JSON on the command line -----------------------------------------------------------------------
DEEP = "[" * 1000 + "]" * 1000


@pytest.mark.parametrize(
    "args, named",
    [
        (["--url", "http://127.0.0.1:9/h", "--auth", "[" * 100_000], "--auth"),
        (["--url", "http://127.0.0.1:9/h", "--auth", DEEP], "--auth"),
        (["-p", f"records={DEEP}"], "--param records"),
    ],
    ids=["auth 100000 [", "auth 1000 deep", "param 1000 deep"],
)
def test_trigger_refuses_deep_json_with_exit_2(args, named):
    result = CliRunner().invoke(
        main, ["trigger", "finish-import", "--server", "http://127.0.0.1:9", "--api-key", "k", *args]
    )
    assert result.exit_code == 2, result.output[-500:]
    assert named in result.output and "nested deeper than 64 levels" in result.output
    assert "Traceback" not in result.output and len(result.output) < 2000


def test_a_set_value_nested_deeper_than_64_is_an_error_not_a_string():
    result = CliRunner().invoke(main, ["sample", "DELIVERY_REFUND_REQUESTED", "--set", f"message={DEEP}"])
    assert result.exit_code == 2, result.output[-500:]
    assert "--set 'message=[[[" in result.output and "nested deeper than 64 levels" in result.output
    assert len(result.output) < 2000


@pytest.mark.parametrize("body", ["[" * 100_000, DEEP], ids=["100000 [", "1000 deep"])
def test_verify_checks_a_deep_body_as_bytes_and_says_so(tmp_path, body):
    path = tmp_path / "body.json"
    path.write_text(body)
    from simulator import signing

    good = signing.hmac_signature("s", body.encode())
    for signature, code in ((good, 0), ("sha256=" + "0" * 64, 1)):
        result = CliRunner().invoke(
            main,
            ["verify", "--platform", "accessrc", "--body", str(path), "--signature", signature, "--secret", "s"],
        )
        assert result.exit_code == code, result.output[-1000:]
        assert "nested deeper than 64 levels: not parsed as JSON" in result.output
        assert "Traceback" not in result.output
