"""The scenario-run API (for the dashboard): start a shipped or posted scenario, follow its steps, bad input refused."""

import time

import pytest

from simulator.api.scenario_runs import bp
from simulator.app import create_app
from simulator.auth import Auth
from simulator.store import Store

API_KEY = "test-admin-key"
H = {"x-api-key": API_KEY}


@pytest.fixture
def app(tmp_path, keys_dir):
    app = create_app(
        {"DB_PATH": str(tmp_path / "sim.db"), "KEYS_DIR": str(keys_dir), "API_KEY": API_KEY, "START_WORKERS": False}
    )
    if "scenarios" not in app.blueprints:  # until simulator/app.py registers it
        app.register_blueprint(bp)
    yield app
    app.extensions["accessrc_sim"].stop(5)


@pytest.fixture
def client(app):
    return app.test_client()


def wait_finished(client, run_id, timeout=20):
    deadline = time.monotonic() + timeout
    seen = []
    since = 0
    while time.monotonic() < deadline:
        data = client.get(f"/api/scenario-runs/{run_id}?since={since}", headers=H).get_json()["data"]
        seen.extend(data["steps"])
        since = data["next_since"]
        if data["status"] == "finished":
            return data, seen
        time.sleep(0.05)
    raise AssertionError("run did not finish")


def test_shipped_scenario_runs_and_progress_is_followed(client, start_receiver, tmp_path):
    srv = start_receiver("accessrc", Auth("hmac", secret="abcd1234"))
    listed = client.get("/api/scenarios", headers=H).get_json()["data"]
    assert {
        "file": "accessrc/delivery-channel-approved.yaml",
        "platform": "accessrc",
        "name": "Delivery channel approved (create, update, update status)",
        "steps": 3,
    } in listed
    r = client.post(
        "/api/scenario-runs",
        headers=H,
        json={"file": "accessrc/delivery-channel-approved.yaml", "vars": {"RECEIVER_URL": srv.url + "/hook"}},
    )
    assert r.status_code == 202
    run_id = r.get_json()["data"]["id"]
    data, steps = wait_finished(client, run_id)
    assert data["result"] == "passed" and data["summary"] == "3 passed, 0 failed"
    assert [s["index"] for s in steps] == [0, 1, 2]  # every step seen once while polling with since
    assert [s["name"] for s in steps] == [
        "approved - Delivery Channel Create",
        "approved - Delivery Channel Update",
        "approved - Delivery Channel Update Status",
    ]
    jobs = [job for _, job in Store(tmp_path / "sim.db").query_jobs(limit=10)]
    assert len(jobs) == 3 and {j.source for j in jobs} == {"scenario"}
    assert client.get("/api/scenario-runs", headers=H).get_json()["data"][0]["id"] == run_id


def test_posted_scenario_text_with_a_failing_expectation(client, start_receiver):
    srv = start_receiver("reachfive")
    text = (
        f"name: posted\nplatform: reachfive\nurl: {srv.url}/jobs\nsteps:\n"
        "  - send: END_JOB_NOTIFICATION\n    expect: {status: 204}\n"
    )
    r = client.post("/api/scenario-runs", headers=H, json={"scenario": text})
    assert r.status_code == 202
    data, steps = wait_finished(client, r.get_json()["data"]["id"])
    assert data["result"] == "failed" and data["summary"] == "0 passed, 1 failed"
    assert steps[0]["failures"][0] == {"check": "status", "expected": 204, "actual": 200, "label": ""}


def test_bad_scenarios_are_refused_with_positions_and_nothing_runs(client, start_receiver):
    srv = start_receiver("reachfive")
    text = f"name: posted\nplatform: reachfive\nurl: {srv.url}/jobs\nsteps:\n  - sned: END_JOB_NOTIFICATION\n"
    r = client.post("/api/scenario-runs", headers=H, json={"scenario": text})
    assert r.status_code == 400
    error = r.get_json()["error"]
    assert error["problems"] == [
        "posted.yaml:5:5: unknown step kind 'sned': a step starts with one of "
        "send, fault, expect, wait, repeat, await_call"
    ]
    assert client.get("/api/scenario-runs", headers=H).get_json()["data"] == []
    assert srv.received == []


def test_paths_outside_the_scenarios_folder_and_bad_input(client):
    for name in ("../pyproject.toml", "/etc/passwd", "accessrc/nope.yaml"):
        r = client.post("/api/scenario-runs", headers=H, json={"file": name})
        assert r.status_code == 404 and r.get_json()["error"]["field"] == "file"
    assert client.post("/api/scenario-runs", headers=H, json={}).status_code == 400
    assert client.post("/api/scenario-runs", headers=H, json={"file": "a", "scenario": "b"}).status_code == 400
    assert client.post("/api/scenario-runs", headers=H, json={"file": "x", "colour": 1}).status_code == 400
    assert client.get("/api/scenario-runs/nope", headers=H).status_code == 404
    assert client.get("/api/scenario-runs", headers={"x-api-key": "wrong"}).status_code == 401
    r = client.post(
        "/api/scenario-runs",
        headers=H,
        json={"file": "accessrc/program-pull-form.yaml", "url": "http://example.org/hook"},
    )
    assert r.status_code == 400 and r.get_json()["error"]["field"] == "url"


def test_a_failed_step_of_an_inferred_rule_is_a_warning_in_the_run(client, start_receiver):
    srv = start_receiver("accessrc")
    text = (
        "name: warned\nplatform: accessrc\nurl: " + srv.url + "/hook\nsteps:\n"
        "  - send: DELIVERY_REFUND_REQUESTED\n    as: refund\n"
        "  - fault: duplicate\n    of: refund\n    rule: accessrc.conformance.idempotency\n"
        "    expect: {status: 202}\n"
    )
    r = client.post("/api/scenario-runs", headers=H, json={"scenario": text})
    assert r.status_code == 202, r.get_json()
    data, steps = wait_finished(client, r.get_json()["data"]["id"])
    assert data["result"] == "passed" and data["summary"] == "1 passed, 0 failed, 1 warned"
    assert data["failed"] == 0 and data["warned"] == 1
    assert steps[1]["warned"] is True and steps[1]["source"] == "inferred" and steps[1]["passed"] is False


def test_a_set_that_adds_a_field_runs_and_the_run_shows_its_note(client, start_receiver):
    """Issue 12: as `accessrc-sim run` prints a `set:` note, the run's answer (started, polled, listed) carries it;
    the step is sent all the same. The answers match the documented ScenarioRun schema."""
    from jsonschema import Draft202012Validator

    from simulator.api.openapi import document

    srv = start_receiver("accessrc")
    text = (
        "name: typo\nplatform: accessrc\nurl: " + srv.url + "/hook\nsteps:\n"
        "  - send: DELIVERY_CHANNEL_STATUS_UPDATED\n    set:\n      statuss: Approved\n"
    )
    note = (
        "posted.yaml:7:7: set statuss: statuss: extra field 'statuss', not in the documents "
        "(inferred rule accessrc.payload.no-extra-fields) (DELIVERY_CHANNEL_STATUS_UPDATED)"
    )
    r = client.post("/api/scenario-runs", headers=H, json={"scenario": text})
    assert r.status_code == 202, r.get_json()
    started = r.get_json()["data"]
    data, steps = wait_finished(client, started["id"])
    listed = client.get("/api/scenario-runs", headers=H).get_json()["data"][0]
    assert started["notes"] == data["notes"] == listed["notes"] == [note]
    assert data["result"] == "passed" and len(steps) == 1 and len(srv.received) == 1
    doc = document()
    validator = Draft202012Validator({"$ref": "#/components/schemas/ScenarioRun", "components": doc["components"]})
    assert [e.message for e in validator.iter_errors(data)] == []
    assert [e.message for e in validator.iter_errors({**data, "notes": [1]})] != []  # the check can fail
    plain = client.post("/api/scenario-runs", headers=H, json={"scenario": text.replace("statuss", "status")})
    assert plain.status_code == 202 and plain.get_json()["data"]["notes"] == []


# -- hostile scenario text (issue 14, items 2 and 8): a 400 with a position, quickly, nothing run ---------------------
BOMB = "a: &a [lol,lol,lol,lol,lol,lol,lol,lol,lol]\n" + "".join(
    f"{c}: &{c} [{','.join(['*' + p] * 9)}]\n" for p, c in zip("abcdef", "bcdefg", strict=True)
)  # 7 levels × 9: 9**7 values


@pytest.mark.parametrize(
    "text, problem",
    [
        (
            BOMB,
            "posted.yaml:6:4: this value expands to more than 100,000 values (the limit; an alias counts as every "
            "value it repeats)",
        ),
        ("[" * 5000 + "]" * 5000, "posted.yaml:1:65: lists and mappings nested deeper than 64 levels (the limit)"),
        (
            '{"a":' * 5000 + "1" + "}" * 5000,
            "posted.json:1:321: lists and mappings nested deeper than 64 levels (the limit)",
        ),
        ("a: &a [1, *a]\n", "posted.yaml:1:11: alias *a repeats a node that contains it (a recursive alias)"),
    ],
    ids=["alias bomb", "yaml 5000 deep", "json 5000 deep", "recursive alias"],
)
def test_hostile_scenario_text_is_a_400_with_its_position(client, text, problem):
    started = time.monotonic()
    r = client.post("/api/scenario-runs", headers=H, json={"scenario": text})
    assert time.monotonic() - started < 1
    assert r.status_code == 400
    assert r.get_json()["error"]["problems"] == [problem]
    assert client.get("/api/scenario-runs", headers=H).get_json()["data"] == []


@pytest.mark.parametrize(
    "name, status",
    [
        ("accessrc/x\x00.yaml", 400),
        ("accessrc/\x07.yaml", 400),
        ("a" * 5000 + ".yaml", 404),
        ("accessrc/" + "b/" * 3000 + "x.yaml", 404),
    ],
    ids=["NUL", "control character", "name too long", "very deep path"],
)
def test_a_file_name_the_file_system_refuses_is_a_clear_4xx(client, name, status):
    r = client.post("/api/scenario-runs", headers=H, json={"file": name})
    assert r.status_code == status
    assert r.get_json()["error"]["field"] == "file" and r.get_json()["status"] == "failed"


# -- one run registry, owned by Services: stop() stops the runs -------------------------------------------------------
def test_stopping_the_services_ends_a_running_scenario_run_before_its_next_step(app, client, start_receiver):
    srv = start_receiver("reachfive")
    text = (
        f"name: long\nplatform: reachfive\nurl: {srv.url}/jobs\nsteps:\n  - send: END_JOB_NOTIFICATION\n"
        "  - wait: 30\n  - send: END_JOB_NOTIFICATION\n"
    )
    r = client.post("/api/scenario-runs", headers=H, json={"scenario": text})
    assert r.status_code == 202
    run_id = r.get_json()["data"]["id"]
    deadline = time.monotonic() + 10
    while not client.get(f"/api/scenario-runs/{run_id}", headers=H).get_json()["data"]["steps"]:
        assert time.monotonic() < deadline, "the first step did not run"
        time.sleep(0.05)
    time.sleep(0.2)  # into the 30 s wait
    started = time.monotonic()
    app.extensions["accessrc_sim"].stop(5)
    assert time.monotonic() - started < 2
    data = client.get(f"/api/scenario-runs/{run_id}", headers=H).get_json()["data"]
    assert data["status"] == "finished" and data["stopped"] is True and data["result"] == "failed"
    assert data["error"] == "stopped before its last step: the simulator is stopping"
    assert data["summary"] == "1 passed, 0 failed" and len(srv.received) == 1  # the step after the wait never ran


def test_stopping_the_services_ends_a_send_waiting_for_its_retry(app, client, start_receiver):
    """The wait between two retries is a pause of the run too: a stop ends it, and the job says why it ended."""
    srv = start_receiver("accredit", fail_first=5)
    text = (
        f"name: retrying\nplatform: accredit\nurl: {srv.url}/hook\nsteps:\n"
        "  - send: BadgeExportZipFile.Created\n    retry: {delays: [30, 30]}\n"
    )
    run_id = client.post("/api/scenario-runs", headers=H, json={"scenario": text}).get_json()["data"]["id"]
    deadline = time.monotonic() + 10
    while not srv.received:
        assert time.monotonic() < deadline, "the first attempt was not made"
        time.sleep(0.05)
    time.sleep(0.2)  # into the 30 s wait before retry 1
    started = time.monotonic()
    app.extensions["accessrc_sim"].stop(5)
    assert time.monotonic() - started < 2
    data = client.get(f"/api/scenario-runs/{run_id}", headers=H).get_json()["data"]
    assert data["status"] == "finished" and data["stopped"] is True and len(srv.received) == 1
    [(_, job)] = app.extensions["accessrc_sim"].store.query_jobs(source="scenario")
    assert job.state == "exhausted" and job.last_error == "the run was stopped before retry 1"


def test_a_run_that_ends_on_its_own_is_not_stopped(client, start_receiver):
    srv = start_receiver("reachfive")
    text = f"name: short\nplatform: reachfive\nurl: {srv.url}/jobs\nsteps:\n  - send: END_JOB_NOTIFICATION\n"
    data, _ = wait_finished(
        client, client.post("/api/scenario-runs", headers=H, json={"scenario": text}).get_json()["data"]["id"]
    )
    assert data["stopped"] is False and data["error"] is None and data["result"] == "passed"


def test_a_fault_the_receiver_refuses_is_an_expected_failure_in_the_log(client, start_receiver):
    """Issue 15: a scenario's deliberate fault, refused (4xx) by the receiver, is marked as such on the job; a
    genuine delivery of the same run is not, and neither is a fault the receiver accepted."""
    srv = start_receiver("accessrc", auth=Auth("hmac", secret="abcd1234"))
    text = (
        f"name: faults\nplatform: accessrc\nurl: {srv.url}/hook\nauth: {{kind: hmac, secret: abcd1234}}\nsteps:\n"
        "  - send: DELIVERY_CHANNEL_STATUS_UPDATED\n    as: genuine\n"
        "  - fault: bad_signature\n    event: DELIVERY_CHANNEL_STATUS_UPDATED\n    expect: {status: 401}\n"
        "  - fault: duplicate\n    of: genuine\n"
    )
    r = client.post("/api/scenario-runs", headers=H, json={"scenario": text})
    assert r.status_code == 202, r.get_json()
    data, _ = wait_finished(client, r.get_json()["data"]["id"])
    assert data["result"] == "passed"
    jobs = client.get("/api/jobs?source=scenario", headers=H).get_json()["data"][::-1]  # oldest first
    assert [(j["fault"], j["last_status"], j["expected_failure"], j["origin"]) for j in jobs] == [
        (None, 200, False, "scenario"),
        ("bad_signature", 401, True, "scenario"),
        ("duplicate", 200, False, "scenario"),
    ]
    assert jobs[1]["state"] == "exhausted"  # the record says what happened; the page says it was meant
