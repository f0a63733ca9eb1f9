"""`accessrc-sim trigger`: platform actions on a real simulator served on 127.0.0.1 (a random port)."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from sim_helpers import API_KEY, XKEY, wait_until

from simulator.cli import main
from simulator.receiver import ServerThread


@pytest.fixture
def served(app):
    server = ServerThread(app).start()
    yield server
    server.stop()


def data_of(resp):
    """The answer's data: the simulator's success envelope, or the bare answer."""
    body = resp.get_json()
    return body["data"] if isinstance(body, dict) and body.get("status") == "success" else body


def final_job(client, job_id):
    final = ("succeeded", "exhausted")
    return wait_until(
        lambda: (lambda j: j if j["state"] in final else None)(data_of(client.get(f"/api/jobs/{job_id}", headers=XKEY)))
    )


def trigger(*args, env_key=API_KEY):
    env = {"ACCESSRC_SIM_API_KEY": env_key} if env_key else {"ACCESSRC_SIM_API_KEY": ""}
    return CliRunner().invoke(main, ["trigger", *args], env=env, catch_exceptions=False)


def test_list_prints_every_action_with_its_description(served, client):
    out = trigger("--list", "--server", served.url)
    assert out.exit_code == 0, out.output
    data = data_of(client.get("/api/actions", headers=XKEY))
    actions = data["actions"] if isinstance(data, dict) else data
    for action in actions:
        assert action["name"] in out.output and action["description"] in out.output
    as_json = json.loads(trigger("--list", "--json", "--server", served.url).output)
    assert [a["name"] for a in as_json] == [a["name"] for a in actions]


def test_an_action_to_a_url_is_delivered_to_the_receiver(served, client, receiver):
    rx = receiver("accessrc")
    out = trigger(
        "finish-import", "--server", served.url, "--url", rx.url + "/hook", "-p", "records=120", "-p", "failures=5"
    )
    assert out.exit_code == 0, out.output
    assert "APPLICATIONS_IMPORT_RESULT -> 1 job(s)" in out.output
    job_id = out.output.split("job ")[1].split()[0]
    assert final_job(client, job_id)["state"] == "succeeded"
    body = json.loads(rx.received[-1].body)
    assert body["summary"]["totalRecords"] == 120 and body["summary"]["failureCount"] == 5


def test_an_unknown_name_lists_the_known_ones_and_exits_2(served):
    out = trigger("approve", "--server", served.url)
    assert out.exit_code == 2
    assert "no action 'approve'; known: approve-delivery-channel, reject-delivery-channel" in out.output
    assert "Traceback" not in out.output


def test_a_parameter_the_action_does_not_take_is_named(served):
    out = trigger("pull-form", "--server", served.url, "-p", "records=3", "--url", "http://127.0.0.1:9/x")
    assert out.exit_code == 2 and "--param records: pull-form takes programId" in out.output


def test_a_refused_action_shows_the_servers_reason(served):
    out = trigger("finish-import", "--server", served.url, "-p", "records=1", "-p", "failures=5")
    assert out.exit_code == 2
    assert "failures (5) cannot be more than records (1)" in out.output


def test_a_wrong_admin_key_or_no_server_is_a_clear_exit_2(served):
    out = trigger("--list", "--server", served.url, env_key="wrong")
    assert out.exit_code == 2 and "answered 401" in out.output and "--api-key" in out.output
    server = ServerThread(lambda e, s: []).start()
    url = server.url
    server.stop()
    out = trigger("--list", "--server", url)
    assert out.exit_code == 2 and f"cannot reach the simulator at {url}" in out.output
    assert "Traceback" not in out.output
