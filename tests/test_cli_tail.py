"""`accessrc-sim tail`: the real command, as a process, following a simulator served on 127.0.0.1 (random port)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid

import pytest
import requests
from click.testing import CliRunner
from sim_helpers import API_KEY, XKEY, wait_job_final, wait_until

from simulator.cli import main
from simulator.receiver import ServerThread

CLI = [sys.executable, "-c", "import sys; from simulator.cli import main; sys.argv[0] = 'accessrc-sim'; main()"]


@pytest.fixture
def served(app):
    server = ServerThread(app).start()
    yield server
    server.stop()


def ctrl_c_works() -> None:
    """In the child before exec: SIGINT back to its default. A shell runs a background job (`scripts/test &`) with
    SIGINT ignored, which children inherit, and Python then installs no KeyboardInterrupt: Ctrl-C would do nothing."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.fixture
def tail(tmp_path):
    """tail(*args) -> (process, stdout file): `accessrc-sim tail`, connected (it said so on stderr); its output
    goes to files nobody has to read."""
    procs = []

    def start(*args):
        out, err = tmp_path / f"tail-{len(procs)}.out", tmp_path / f"tail-{len(procs)}.err"
        env = {**os.environ, "ACCESSRC_SIM_API_KEY": API_KEY}
        with open(out, "w") as fh, open(err, "w") as eh:
            proc = subprocess.Popen([*CLI, "tail", *args], stdout=fh, stderr=eh, env=env, preexec_fn=ctrl_c_works)
        procs.append(proc)
        wait_until(
            lambda: "Ctrl-C to stop" in err.read_text() or (proc.poll() is not None and pytest.fail(err.read_text())),
            timeout=20,
            what="tail connected",
        )
        return proc, out

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def send(client, url, event="DELIVERY_CHANNEL_STATUS_UPDATED"):
    resp = client.post("/api/send", headers=XKEY, json={"event": event, "url": url})
    assert resp.status_code in (200, 201), resp.get_json()


def lines_of(out, has=""):
    return [line for line in out.read_text().splitlines() if line.strip() and has in line]


def stop(proc) -> int:
    proc.send_signal(signal.SIGINT)
    return proc.wait(10)


def test_one_line_per_attempt_and_ctrl_c_ends_cleanly(served, client, receiver, tail):
    rx = receiver("accessrc", fail_first=1)
    proc, out = tail("--server", served.url)
    send(client, rx.url + "/hook")
    event = "DELIVERY_CHANNEL_STATUS_UPDATED"
    wait_until(lambda: len(lines_of(out, event)) >= 2, timeout=15, what="two attempt lines")
    first, second = lines_of(out, event)
    assert "FAIL" in first and " 500 " in first and "attempt 1/" in first and rx.url in first
    assert "ok  " in second and " 200 " in second and "attempt 2/" in second
    assert "\x1b[" not in out.read_text()  # no colour: stdout is not a terminal
    assert stop(proc) == 0
    assert "Traceback" not in out.read_text() and "Aborted" not in out.read_text()


def test_status_failed_and_json_print_only_failed_attempts_as_json_lines(served, client, receiver, tail):
    rx = receiver("accessrc", fail_first=1)
    proc, out = tail(
        "--server", served.url, "--status", "failed", "--json", "--event", "DELIVERY_CHANNEL_STATUS_UPDATED"
    )
    send(client, rx.url + "/hook", "DELIVERY_REFUND_REQUESTED")  # another event: filtered out
    send(client, rx.url + "/hook")  # fails once, then succeeds
    wait_until(lambda: len(rx.received) >= 3, what="three deliveries")
    wait_until(lambda: lines_of(out), what="a line")
    time.sleep(1.0)  # the stream shows a change within a second: the other two attempts would be here by now
    assert stop(proc) == 0
    records = [json.loads(line) for line in lines_of(out)]
    assert len(records) == 1
    assert records[0]["attempt"]["ok"] is False and records[0]["attempt"]["status"] == 500
    assert records[0]["job"]["event"] == "DELIVERY_CHANNEL_STATUS_UPDATED"


def test_a_wrong_key_or_no_server_is_a_clear_exit_2(served):
    env = {"ACCESSRC_SIM_API_KEY": "wrong"}
    out = CliRunner().invoke(main, ["tail", "--server", served.url], env=env, catch_exceptions=False)
    assert out.exit_code == 2 and "answered 401" in out.output and "--api-key" in out.output
    gone = ServerThread(lambda e, s: []).start()
    url = gone.url
    gone.stop()
    out = CliRunner().invoke(main, ["tail", "--server", url], env={"ACCESSRC_SIM_API_KEY": API_KEY})
    assert out.exit_code == 2 and f"cannot reach the simulator at {url}" in out.output
    assert "Traceback" not in out.output


def sync(base_url, request_id, delivery_id=None):
    """A receiver calling back: a real HTTP POST /api/DeliveryRequest/Sync to the served simulator."""
    body = {"deliveryRequestId": request_id, "providerDeliveryRequestId": "SP-REQ-1", "status": "APPROVED"}
    if delivery_id:
        body["providerDelivery"] = [
            {"providerDeliveryId": "SP-D-1", "deliveryId": delivery_id, "syncStatus": "SUCCESS"}
        ]
    session = requests.Session()
    session.trust_env = False
    return session.post(base_url + "/api/DeliveryRequest/Sync", headers=XKEY, json=body, timeout=10)


def test_calls_back_are_lines_with_the_job_they_follow_and_no_calls_hides_them(app, served, client, receiver, tail):
    rx = receiver("accessrc")
    everything, out = tail("--server", served.url)
    quiet, quiet_out = tail("--server", served.url, "--no-calls")
    failed, failed_out = tail("--server", served.url, "--json", "--status", "failed")
    request_id, delivery_id = str(uuid.uuid4()), str(uuid.uuid4())
    overrides = {
        "deliveryRequestId": request_id,
        "delivery": [{"deliveryId": delivery_id, "beneficiaryId": "VR-558600001", "deliveryOptions": []}],
    }
    resp = client.post(
        "/api/send", headers=XKEY, json={"event": "DELIVERY_REQUEST_SENT", "url": rx.url + "/h", "overrides": overrides}
    )
    job = wait_job_final(client, resp.get_json()["data"]["id"])
    assert sync(served.url, request_id, delivery_id).status_code == 200
    refused_id = str(uuid.uuid4())
    app.config["STRICT"] = True  # as `serve --strict`: an id never sent is refused (inferred rule), not advice
    assert sync(served.url, refused_id).status_code == 400  # an id never sent: follows no job

    calls = wait_until(lambda: (lambda got: got if len(got) >= 2 else None)(lines_of(out, " call ")), 15, what="calls")
    ok, refused = calls
    assert ok.split("  ")[1:4] == ["call", "200", "POST /api/DeliveryRequest/Sync"]
    assert ok.endswith(f"follows job {job['id']} (DELIVERY_REQUEST_SENT)")
    assert refused.split("  ")[1:4] == ["call", "400", "POST /api/DeliveryRequest/Sync"]
    assert f"no job: deliveryRequestId {refused_id} was never sent" in refused  # why it was refused
    [attempt] = lines_of(out, "DELIVERY_REQUEST_SENT  attempt 1/")
    assert lines_of(out).index(attempt) < lines_of(out).index(ok)  # event out, then the call in

    # --no-calls: a later delivery's line proves the calls went by in its stream
    send(client, rx.url + "/h", "DELIVERY_REFUND_REQUESTED")
    wait_until(lambda: lines_of(quiet_out, "DELIVERY_REFUND_REQUESTED"), 15, what="the later delivery (--no-calls)")
    send(client, rx.url + "/h", "DELIVERY_REFUND_REQUESTED")
    wait_until(lambda: len(lines_of(quiet_out, "DELIVERY_REFUND_REQUESTED")) == 2, 15, what="the second one")
    assert not lines_of(quiet_out, " call ") and len(lines_of(quiet_out)) == 3

    # --json --status failed: the refused call only, as {call, job}
    wait_until(lambda: lines_of(failed_out), 15, what="a JSON line")
    for proc in (everything, quiet, failed):
        assert stop(proc) == 0
    [record] = [json.loads(line) for line in lines_of(failed_out)]
    assert record["job"] is None and record["call"]["status"] == 400 and record["call"]["job_id"] is None
    assert record["call"]["path"] == "/api/DeliveryRequest/Sync" and record["call"]["headers"]["X-Api-Key"] == "***"
    assert "Traceback" not in out.read_text()
