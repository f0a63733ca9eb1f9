import json
import os
import sqlite3
import subprocess
import sys
import time

import pytest
import requests
from click.testing import CliRunner

from simulator import catalogue, signing
from simulator.auth import Auth
from simulator.cli import main

from scripted_server import ScriptedServer, refused_url


@pytest.fixture
def run(tmp_path, keys_dir):
    def invoke(*args):
        env = {"ACCESSRC_SIM_DB": str(tmp_path / "cli.db"), "ACCESSRC_SIM_KEYS_DIR": str(keys_dir)}
        return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)
    return invoke


def test_events_lists_every_event_and_json_has_required_fields(run):
    out = run("events")
    assert out.exit_code == 0
    for spec in catalogue.EVENTS:
        assert spec.name in out.output
    items = json.loads(run("events", "--json").output)
    assert {i["name"] for i in items} == {e.name for e in catalogue.EVENTS}
    assert all({"name", "platform", "description", "availability"} <= set(i) for i in items)


def test_sample_same_seed_same_bytes_and_sets_parse_json(run):
    a = run("sample", "APPLICATIONS_IMPORT_RESULT", "--seed", "7", "--compact",
            "--set", "summary.totalRecords=120", "--set", "summary.failureCount=5")
    b = run("sample", "APPLICATIONS_IMPORT_RESULT", "--seed", "7", "--compact",
            "--set", "summary.totalRecords=120", "--set", "summary.failureCount=5")
    assert a.exit_code == 0 and a.output == b.output
    payload = json.loads(a.stdout)
    assert payload["summary"] == {"totalRecords": 120, "successCount": 115, "failureCount": 5}
    assert payload["status"] == "PARTIAL_SUCCESS"
    assert a.stdout.strip().encode() == catalogue.body_bytes(payload)


def test_sample_string_value_and_unknown_path_and_bad_value(run):
    out = run("sample", "DELIVERY_CHANNEL_STATUS_UPDATED", "--set", "message=Description is not clear enough",
              "--set", "status=Rejected")
    assert json.loads(out.stdout)["message"] == "Description is not clear enough"
    bad_path = run("sample", "DELIVERY_CHANNEL_STATUS_UPDATED", "--set", "nope=1")
    assert bad_path.exit_code == 2 and "path 'nope' does not exist" in bad_path.output
    bad_value = run("sample", "DELIVERY_CHANNEL_STATUS_UPDATED", "--set", "status=Maybe")
    assert bad_value.exit_code == 2 and "status:" in bad_value.output and "--force" in bad_value.output
    forced = run("sample", "DELIVERY_CHANNEL_STATUS_UPDATED", "--set", "status=Maybe", "--force")
    assert forced.exit_code == 0 and json.loads(forced.stdout)["status"] == "Maybe"


def test_send_prints_one_line_per_attempt_and_exits_0_on_2xx(run, tmp_path, keys):
    ok = (200, b'{"status":"success"}', 0, {})
    with ScriptedServer([(500, b"{}", 0, {}), (400, b"{}", 0, {}), ok]) as srv:
        out = run("send", "BadgeExportZipFile.Created", "--url", srv.url + "/baseWebhookNotification",
                  "--retry-delays", "0,0,0,0,0", "--seed", "3")
    assert out.exit_code == 0, out.output
    lines = [l for l in out.output.splitlines() if "attempt" in l and " ms" in l]
    assert len(lines) == 3
    assert "attempt 0  500" in lines[0] and "attempt 1  400" in lines[1] and "attempt 2  200" in lines[2]
    body = srv.requests[0]["body"]
    assert body == catalogue.body_bytes(catalogue.generate("BadgeExportZipFile.Created", seed=3))
    signing.rsa_verify(keys.public_pem, body, srv.requests[2]["headers"]["X-Signature"])
    db = sqlite3.connect(tmp_path / "cli.db")
    assert db.execute("SELECT state, attempts_made FROM jobs").fetchall() == [("succeeded", 3)]
    assert [r[0] for r in db.execute("SELECT status FROM attempts ORDER BY number")] == [500, 400, 200]


def test_send_exits_1_when_every_attempt_failed(run):
    out = run("send", "Entity.Event", "--url", refused_url(), "--retry-delays", "0,0")
    assert out.exit_code == 1
    assert out.output.count("Connection refused") == 3


def test_send_json_output(run):
    with ScriptedServer() as srv:
        out = run("send", "DELIVERY_REFUND_REQUESTED", "--url", srv.url, "--json", "--hmac-secret", "abcd1234")
    data = json.loads(out.stdout)
    assert data["state"] == "succeeded" and data["attempts"][0]["status"] == 200
    assert data["attempts"][0]["request_headers"]["x-signature"].startswith("sha256=")


@pytest.mark.parametrize("args, message", [
    (["Entity.Event", "--url", "http://127.0.0.1:1/", "--hmac-secret", "x"], "does not apply to accredit"),
    (["END_JOB_NOTIFICATION", "--url", "http://127.0.0.1:1/", "--basic", "u:p"], "does not apply to reachfive"),
    (["DELIVERY_REFUND_REQUESTED", "--url", "http://127.0.0.1:1/", "--basic", "nocolon"], "USER:PASS"),
    (["DELIVERY_REFUND_REQUESTED", "--url", "http://127.0.0.1:1/", "--basic", "u:p", "--hmac-secret", "s"],
     "choose one auth"),
    (["Entity.Event", "--url", "http://127.0.0.1:1/", "--retry-delays", "1,2,3,4,5,6"], "at most 5"),
    (["Entity.Event", "--url", "not-a-url"], "http:// or https://"),
    (["NOPE", "--url", "http://127.0.0.1:1/"], "unknown event"),
])
def test_send_bad_usage_exits_2_with_a_clear_message(run, args, message):
    out = run("send", *args)
    assert out.exit_code == 2
    assert message in out.output


def test_keys_show_prints_public_pem_only(run, keys):
    out = run("keys", "show")
    assert out.output == keys.public_pem
    assert "PRIVATE" not in out.output


def test_keys_generate_refuses_without_force(run, tmp_path):
    d = str(tmp_path / "newkeys")
    assert run("keys", "generate", "--keys-dir", d).exit_code == 0
    again = run("keys", "generate", "--keys-dir", d)
    assert again.exit_code == 2 and "--force" in again.output
    assert run("keys", "generate", "--keys-dir", d, "--force").exit_code == 0


def test_every_command_has_help_with_an_example():
    def walk(group, prefix=()):
        for name, cmd in group.commands.items():
            if hasattr(cmd, "commands"):
                yield from walk(cmd, prefix + (name,))
            else:
                yield prefix + (name,), cmd
    for path, cmd in walk(main):
        assert cmd.help and "Example:" in cmd.help, f"{' '.join(path)} has no help with an example"


def test_console_script_sends_to_the_reference_receiver(tmp_path, keys_dir):
    """The README's quick start, as processes: receiver and sender from the installed console script."""
    exe = os.path.join(os.path.dirname(sys.executable), "accessrc-sim")
    port = int(refused_url().split(":")[2].split("/")[0])
    env = dict(os.environ, ACCESSRC_SIM_DB=str(tmp_path / "q.db"), ACCESSRC_SIM_KEYS_DIR=str(keys_dir))
    log = open(tmp_path / "receiver.log", "w")
    receiver = subprocess.Popen([exe, "receiver", "--port", str(port)], stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        for _ in range(100):
            try:
                requests.get(f"http://127.0.0.1:{port}/_received", timeout=0.2)
                break
            except requests.RequestException:
                time.sleep(0.05)
        sent = subprocess.run([exe, "send", "BadgeExportZipFile.Created", "--url",
                               f"http://127.0.0.1:{port}/baseWebhookNotification"], env=env, capture_output=True,
                              text=True, timeout=60)
        assert sent.returncode == 0, sent.stdout + sent.stderr
        assert "delivered after 1 attempt(s)" in sent.stdout
        got = requests.get(f"http://127.0.0.1:{port}/_received", timeout=2).json()
        assert [(r["status"], r["outcome"]) for r in got] == [(200, "accepted")]
    finally:
        receiver.terminate()
        receiver.wait(10)
        log.close()
    assert "-> 200 accepted" in (tmp_path / "receiver.log").read_text()


def test_failed_attempt_lines_say_what_the_receiver_answered(run, start_receiver):
    srv = start_receiver("accredit")  # an Accredit receiver: an AccessRC HMAC send is refused with 401
    out = run("send", "DELIVERY_REFUND_REQUESTED", "--url", srv.url, "--hmac-secret", "abcd1234",
              "--retry-delays", "")
    assert out.exit_code == 1
    assert "attempt 0  401" in out.output and "HTTP 401: Verification failed" in out.output


def test_receiver_on_a_busy_port_is_a_clear_usage_error(run):
    import socket
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        out = run("receiver", "--port", str(busy.getsockname()[1]))
    assert out.exit_code == 2
    assert "cannot listen on 127.0.0.1" in out.output and "choose another --port" in out.output
    assert "Traceback" not in out.output


def test_admin_key_prints_the_generated_key_and_refuses_a_missing_db(run, tmp_path, keys_dir):
    from simulator.services import Services
    services = Services.build(tmp_path / "served.db", keys_dir)
    assert services.settings.api_key_generated
    out = run("admin-key", "--db", str(tmp_path / "served.db"))
    assert out.exit_code == 0 and out.output.strip() == services.settings.api_key
    missing = run("admin-key", "--db", str(tmp_path / "nope.db"))
    assert missing.exit_code == 2 and "no database" in missing.output
