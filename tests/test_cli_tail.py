"""`accessrc-sim tail`: the real command, as a process, following a simulator served on 127.0.0.1 (random port)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from click.testing import CliRunner
from sim_helpers import API_KEY, XKEY, wait_until

from simulator.cli import main
from simulator.receiver import ServerThread

CLI = [sys.executable, "-c", "import sys; from simulator.cli import main; sys.argv[0] = 'accessrc-sim'; main()"]


@pytest.fixture
def served(app):
    server = ServerThread(app).start()
    yield server
    server.stop()


@pytest.fixture
def tail(tmp_path):
    """tail(*args) -> (process, stdout file): `accessrc-sim tail`, connected (it said so on stderr); its output
    goes to files nobody has to read."""
    procs = []

    def start(*args):
        out, err = tmp_path / f"tail-{len(procs)}.out", tmp_path / f"tail-{len(procs)}.err"
        env = {**os.environ, "ACCESSRC_SIM_API_KEY": API_KEY}
        with open(out, "w") as fh, open(err, "w") as eh:
            proc = subprocess.Popen([*CLI, "tail", *args], stdout=fh, stderr=eh, env=env)
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
