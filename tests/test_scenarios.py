"""`accessrc-sim run`: shipped scenarios pass against the reference receiver; failures, reports, exit codes,
the store record of every request, and faults checked byte for byte at the receiver."""

import json
import re
import shutil
import sqlite3
import xml.etree.ElementTree as ET
from pathlib import Path

import broken_receivers
import pytest
from click.testing import CliRunner
from scripted_server import refused_url

from simulator import signing
from simulator.auth import Auth
from simulator.cli import main
from simulator.receiver import ServerThread
from simulator.store import Store

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = ROOT / "scenarios"
HMAC = Auth("hmac", secret="abcd1234")
BEARER = Auth("authorization", authorization="Bearer mF_9.B5f-4.1JqM")
SUMMARY = r"^(\d+) passed, (\d+) failed(?:, (\d+) warned)?$"


@pytest.fixture
def run(tmp_path, keys_dir):
    def invoke(*args):
        db = tmp_path / "scen.db"
        result = CliRunner().invoke(
            main, ["run", *map(str, args), "--db", str(db), "--keys-dir", str(keys_dir)], catch_exceptions=False
        )
        result.db = db
        return result

    return invoke


@pytest.fixture
def receivers(start_receiver):
    """The receivers of docs/scenarios.md: Accredit (RSA), AccessRC (HMAC abcd1234), ReachFive (Bearer), Accredit
    failing the first two attempts of each job."""
    return {
        "accredit": start_receiver("accredit"),
        "accessrc": start_receiver("accessrc", HMAC),
        "reachfive": start_receiver("reachfive", BEARER),
        "retry": start_receiver("accredit", fail_first=2),
    }


def urls(receivers, platform):
    path = {"accredit": "/baseWebhookNotification", "accessrc": "/hook", "reachfive": "/jobs"}[platform]
    return [
        "--var",
        f"RECEIVER_URL={receivers[platform].url}{path}",
        "--var",
        f"RETRY_RECEIVER_URL={receivers['retry'].url}/baseWebhookNotification",
    ]


def summary(output):
    """(passed, failed) of the one summary line; warned steps (inferred rules) are advice, not failures."""
    lines = [line for line in output.splitlines() if re.match(SUMMARY, line)]
    assert len(lines) == 1, output
    passed, failed, _ = re.match(SUMMARY, lines[0]).groups()
    return int(passed), int(failed)


def sent_bodies(db):
    rows = sqlite3.connect(db).execute("SELECT request_body FROM attempts ORDER BY id").fetchall()
    return [json.loads(r[0]) for r in rows]


def shipped_files():
    return sorted(p for p in SCENARIOS.rglob("*.yaml"))


def test_scenarios_folder_holds_what_the_issue_lists():
    names = {p.relative_to(SCENARIOS).as_posix() for p in shipped_files()}
    for expected in (
        "accessrc/delivery-channel-approved.yaml",
        "accessrc/delivery-channel-rejected.yaml",
        "accessrc/applications-import-result.yaml",
        "accessrc/eligibility-evaluated.yaml",
        "accessrc/delivery-request-sent.yaml",
        "accessrc/delivery-refund-requested.yaml",
        "accessrc/program-pull-form.yaml",
        "accredit/sample-notification.yaml",
        "reachfive/end-job-success.yaml",
        "reachfive/end-job-failure.yaml",
        "reachfive/end-job-timeout.yaml",
        "accredit/retry-until-success.yaml",
    ):
        assert expected in names
    for platform in ("accessrc", "accredit", "reachfive"):
        assert (SCENARIOS / "conformance" / platform / "credentials.yaml").exists()


@pytest.mark.parametrize(
    "folder",
    ["accessrc", "accredit", "reachfive", "conformance/accessrc", "conformance/accredit", "conformance/reachfive"],
)
def test_every_shipped_scenario_passes_against_the_reference_receiver(folder, receivers, run, tmp_path):
    platform = folder.split("/")[-1]
    junit = tmp_path / "junit.xml"
    result = run(SCENARIOS / folder, *urls(receivers, platform), "--junit", junit)
    assert result.exit_code == 0, result.output
    passed, failed = summary(result.output)
    assert failed == 0 and passed > 0
    assert re.match(SUMMARY, result.output.rstrip().splitlines()[-1])
    suites = ET.parse(junit).getroot()
    warned = len([c for c in suites.iter("testcase") if (c.findtext("system-out") or "").startswith("WARN ")])
    assert int(suites.get("tests")) == passed + warned and int(suites.get("failures")) == 0
    # every request is a job of source "scenario" in the same store as other deliveries
    store = Store(result.db)
    jobs = [job for _, job in store.query_jobs(limit=10_000)]
    assert jobs and {j.source for j in jobs} == {"scenario"}
    attempts = sum(len(store.attempts(j.id)) for j in jobs)
    got = sum(len(r.received) for r in receivers.values())
    assert attempts == got


def test_delivery_channel_scenario_covers_the_three_request_types(receivers, run):
    result = run(
        SCENARIOS / "accessrc/delivery-channel-approved.yaml",
        SCENARIOS / "accessrc/delivery-channel-rejected.yaml",
        *urls(receivers, "accessrc"),
    )
    assert result.exit_code == 0, result.output
    bodies = [json.loads(r.body) for r in receivers["accessrc"].received]
    seen = {(b["status"], b["requestType"]) for b in bodies}
    assert seen == {
        (s, t)
        for s in ("Approved", "Rejected")
        for t in ("Delivery Channel Create", "Delivery Channel Update", "Delivery Channel Update Status")
    }


def test_partial_success_is_the_docs_120_records_with_5_failures(receivers, run):
    result = run(SCENARIOS / "accessrc/applications-import-result.yaml", *urls(receivers, "accessrc"))
    assert result.exit_code == 0, result.output
    bodies = sent_bodies(result.db)  # the receiver keeps only 2000 characters of each body
    partial = [b for b in bodies if b["status"] == "PARTIAL_SUCCESS"]
    assert len(partial) == 1 and partial[0]["summary"] == {"totalRecords": 120, "successCount": 115, "failureCount": 5}
    assert 1 <= len(partial[0]["errors"]) <= 5  # at times fewer entries, as the seed itself shows
    assert {b["status"] for b in bodies} == {"SUCCESS", "PARTIAL_SUCCESS", "FAILED"}


def test_retry_until_success_takes_three_attempts_with_the_same_job_id(receivers, run):
    result = run(SCENARIOS / "accredit/retry-until-success.yaml", *urls(receivers, "accredit"))
    assert result.exit_code == 0, result.output
    got = [(r.job_id, r.attempt, r.status) for r in receivers["retry"].received]
    assert [(a, s) for _, a, s in got] == [("0", 500), ("1", 500), ("2", 200)]
    assert len({j for j, _, _ in got}) == 1


def test_retry_until_success_warns_when_the_receiver_needs_another_number_of_attempts(start_receiver, run):
    """The count depends on the receiver (the scenario is written for --fail-first 2), not on a rule of Accredit:
    a correct receiver (one attempt) or one that fails three times gets a warning; a failure only with --strict."""
    for fail_first, attempts in ((3, 4), (0, 1)):
        srv = start_receiver("accredit", fail_first=fail_first)
        url = f"RETRY_RECEIVER_URL={srv.url}/x"
        result = run(SCENARIOS / "accredit/retry-until-success.yaml", "--var", url)
        assert result.exit_code == 0, result.output
        assert f"attempts: expected 3, got {attempts}" in result.output
        assert "WARN" in result.output and "inferred (accredit.retries.fail-first-demo)" in result.output
        strict = run(SCENARIOS / "accredit/retry-until-success.yaml", "--var", url, "--strict")
        assert strict.exit_code == 1, strict.output
        assert strict.output.rstrip().splitlines()[-1] == "0 passed, 1 failed"


def test_reachfive_timeout_scenario_fails_against_a_slow_receiver(keys, run):
    srv = ServerThread(broken_receivers.too_slow("reachfive", BEARER, None, delay=0.8)).start()
    try:
        result = run(
            SCENARIOS / "reachfive/end-job-timeout.yaml",
            "--var",
            f"RECEIVER_URL={srv.url}/jobs",
            "--var",
            "TIMEOUT=0.3",
        )
    finally:
        srv.stop()
    assert result.exit_code == 1
    assert "timeout after 0.3 s" in result.output


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


FAILING = """\
name: A failing check
platform: accessrc
url: ${RECEIVER_URL}
steps:
  - send: DELIVERY_REFUND_REQUESTED
    name: expects 201
    expect: {status: 201, body: {data.deliveryId: nope}}
  - send: DELIVERY_REFUND_REQUESTED
    name: passes
"""


def test_failed_expectation_exits_1_with_expected_and_actual_in_console_junit_and_json(start_receiver, run, tmp_path):
    srv = start_receiver("accessrc")
    path = write(tmp_path, "fail.yaml", FAILING)
    junit, report = tmp_path / "out" / "junit.xml", tmp_path / "out" / "report.json"
    result = run(path, "--url", srv.url + "/hook", "--junit", junit, "--report", report)
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert any(line.startswith("  FAIL  expects 201") and " 200 " in line and line.endswith(" ms") for line in lines)
    assert "          status: expected 201, got 200" in lines
    assert any(line.strip().startswith("body.data.deliveryId: expected nope, got ") for line in lines)
    assert any(line.startswith("  ok    passes") for line in lines)
    assert lines[-1] == "1 passed, 1 failed"
    root = ET.parse(junit).getroot()
    cases = root.findall("testsuite/testcase")
    assert [c.get("name") for c in cases] == ["expects 201", "passes"]
    failure = cases[0].find("failure")
    assert failure is not None and "expected: 201" in failure.text and "actual:   200" in failure.text
    assert cases[1].find("failure") is None
    data = json.loads(report.read_text())
    assert data["passed"] == 1 and data["failed"] == 1
    step = data["scenarios"][0]["steps"][0]
    assert step["failures"][0] == {"check": "status", "expected": 201, "actual": 200, "label": ""}
    assert step["jobs"][0]["status"] == 200


def test_fail_fast_stops_at_the_first_failure(start_receiver, run, tmp_path):
    srv = start_receiver("accessrc")
    path = write(tmp_path, "fail.yaml", FAILING)
    result = run(path, path, "--url", srv.url + "/hook", "--fail-fast")
    assert result.exit_code == 1
    assert "--fail-fast" in result.output
    assert result.output.rstrip().splitlines()[-1] == "0 passed, 1 failed"
    assert len(srv.received) == 1


def test_variables_from_var_file_env_and_defaults(start_receiver, run, tmp_path, monkeypatch):
    srv = start_receiver("accessrc", Auth("basic", username="webhook-user", password="s3cr3t"))
    path = write(
        tmp_path,
        "vars.yaml",
        """\
name: Variables
platform: accessrc
url: ${RECEIVER_URL}/${SUFFIX:-hook}
auth: {kind: basic, username: "${USER_NAME}", password: "${PASSWORD}"}
vars: {USER_NAME: webhook-user, PASSWORD: wrong}
steps:
  - send: DELIVERY_REFUND_REQUESTED
    as: refund
    expect: {status: 200, body: {data.deliveryId: "${refund.payload.deliveryId}"}}
  - send: DELIVERY_REFUND_REQUESTED
    set: {deliveryId: "${refund.response.body.data.deliveryId}"}
""",
    )
    monkeypatch.setenv("RECEIVER_URL", srv.url)
    result = run(path, "--var", "PASSWORD=s3cr3t")
    assert result.exit_code == 0, result.output
    assert [r.path for r in srv.received] == ["/hook", "/hook"]
    first, second = (json.loads(r.body) for r in srv.received)
    assert second["deliveryId"] == first["deliveryId"]  # taken from the first answer
    # credentials are masked in the store
    rows = sqlite3.connect(result.db).execute("SELECT request_headers_json FROM attempts").fetchall()
    assert all(json.loads(r[0])["Authorization"] == "***" for r in rows)
    assert "s3cr3t" not in json.dumps(rows)


def test_faults_reach_the_receiver_exactly_as_described(start_receiver, run, tmp_path, keys):
    srv = start_receiver("accredit", strict=True)  # refuses the wrong content type and 300 kB (inferred rules)
    path = write(
        tmp_path,
        "faults.yaml",
        """\
name: Faults
platform: accredit
url: ${RECEIVER_URL}
steps:
  - send: Entity.Event
    as: first
  - fault: bad_signature
    event: Entity.Event
  - fault: missing_signature
    event: Entity.Event
  - fault: wrong_key
    event: Entity.Event
  - fault: tampered_body
    event: BadgeExportZipFile.Created
    seed: 3
  - fault: duplicate
    of: first
  - fault: malformed_json
    event: Entity.Event
  - fault: missing_required_field
    event: BadgeExportZipFile.Created
    field: BadgeExportZipFileId
  - fault: wrong_content_type
    event: Entity.Event
  - fault: oversized_body
    event: Entity.Event
    size: 300000
  - fault: out_of_order
    event: Entity.Event
  - fault: replay
    event: Entity.Event
    after: 0.05
""",
    )
    result = run(path, "--var", f"RECEIVER_URL={srv.url}/n")
    assert result.exit_code == 0, result.output
    got = srv.received
    outcomes = [r.outcome for r in got]
    assert outcomes[0] == "accepted"
    assert outcomes[1] == "verification failed: X-Signature does not match the body"
    assert outcomes[2] == "verification failed: missing X-Signature"
    assert outcomes[3] == "verification failed: X-Signature does not match the body"
    assert outcomes[4] == "verification failed: X-Signature does not match the body"
    assert outcomes[5].startswith("duplicate") and got[5].job_id == got[0].job_id and got[5].body == got[0].body
    assert outcomes[6] == "malformed JSON"  # signed correctly: it got past the signature check
    assert outcomes[7].startswith("invalid: ") and "BadgeExportZipFileId" in outcomes[7]
    assert (
        outcomes[8]
        == "content type 'text/plain' is not JSON (--strict; inferred rule accredit.conformance.content-type)"
    )
    assert (
        outcomes[9] == "too large: 300000 bytes (limit 262144, --strict; inferred rule accredit.conformance.body-limit)"
    )
    assert len(got[9].body) <= 2000  # keeps 2000 chars
    later, earlier = json.loads(got[10].body), json.loads(got[11].body)
    assert later["Timestamp"] > earlier["Timestamp"] and outcomes[10:12] == ["accepted", "accepted"]
    assert outcomes[12] == "accepted" and outcomes[13].startswith("duplicate")  # replay: the old request again
    assert got[13].body == got[12].body and got[13].job_id == got[12].job_id and got[13].at - got[12].at >= 0.05
    # tampered: the body differs from what was signed, but is itself a valid payload
    store = Store(result.db)
    tampered = [
        j
        for _, j in store.query_jobs(limit=100)
        if j.event == "BadgeExportZipFile.Created" and store.attempts(j.id)[0].status == 401
    ][0]
    sent = store.attempts(tampered.id)[0]
    signature = sent.request_headers["X-Signature"]
    with pytest.raises(signing.VerificationError):
        signing.rsa_verify(keys.public_pem, sent.request_body, signature)
    oversized = [j for _, j in store.query_jobs(limit=100) if j.full_body_length == 300000]
    assert len(oversized) == 1  # kept as its first 64 KiB, length and SHA-256 (a scenario body is sent once)
    assert oversized[0].body_truncated and len(oversized[0].body) == 64 * 1024
    [sent_big] = store.attempts(oversized[0].id)
    assert sent_big.request_body_truncated and sent_big.full_request_body_length == 300000
    assert sent_big.full_request_body_sha256 == oversized[0].full_body_sha256


def test_header_auth_wrong_key_and_bad_credential_are_masked_in_the_store(start_receiver, run, tmp_path):
    auth = Auth("header", header_name="X-Partner-Key", header_value="k-123456")
    srv = start_receiver("accessrc", auth)
    path = write(
        tmp_path,
        "hdr.yaml",
        """\
name: Header auth
platform: accessrc
url: ${RECEIVER_URL}
auth: {kind: header, header_name: X-Partner-Key, header_value: k-123456}
steps:
  - fault: bad_signature
    event: DELIVERY_REFUND_REQUESTED
  - fault: wrong_key
    event: DELIVERY_REFUND_REQUESTED
  - fault: tampered_body
    event: DELIVERY_REFUND_REQUESTED
    when: {auth: [rsa, hmac]}
""",
    )
    junit = tmp_path / "j.xml"
    result = run(path, "--var", f"RECEIVER_URL={srv.url}/h", "--junit", junit)
    assert result.exit_code == 0, result.output
    assert "skip  tampered_body" in result.output and "only with rsa, hmac auth" in result.output
    assert ET.parse(junit).getroot().find("testsuite/testcase/skipped") is not None
    assert [r.outcome for r in srv.received] == ["verification failed: X-Partner-Key header does not match"] * 2
    rows = (
        sqlite3.connect(result.db)
        .execute("SELECT request_headers_json, j.headers_json FROM attempts a JOIN jobs j ON j.id = a.job_id")
        .fetchall()
    )
    for request_headers, job_headers in rows:
        assert json.loads(request_headers)["X-Partner-Key"] == "***"
        assert json.loads(job_headers)["X-Partner-Key"] == "***"


def test_repeat_and_wait_and_expect_steps(start_receiver, run, tmp_path):
    srv = start_receiver("reachfive")
    path = write(
        tmp_path,
        "repeat.yaml",
        """\
name: Repeat
platform: reachfive
url: ${RECEIVER_URL}
steps:
  - repeat: 3
    steps:
      - send: END_JOB_NOTIFICATION
        as: report
  - wait: 0.01
  - expect: {of: report, status: 2xx, latency_ms: 5000}
""",
    )
    result = run(path, "--var", f"RECEIVER_URL={srv.url}/jobs")
    assert result.exit_code == 0, result.output
    assert "send END_JOB_NOTIFICATION [3/3]" in result.output
    assert result.output.rstrip().splitlines()[-1] == "4 passed, 0 failed"
    assert len(srv.received) == 3


def test_json_scenario_files_run_too(start_receiver, run, tmp_path):
    srv = start_receiver("accessrc")
    path = write(
        tmp_path,
        "s.json",
        json.dumps(
            {
                "name": "JSON",
                "platform": "accessrc",
                "url": srv.url + "/hook",
                "steps": [
                    {"send": "DELIVERY_REFUND_REQUESTED", "expect": {"status": [200, 202], "envelope": "documented"}}
                ],
            }
        ),
    )
    result = run(path)
    assert result.exit_code == 0, result.output
    assert result.output.rstrip().splitlines()[-1] == "1 passed, 0 failed"


def test_unreachable_receiver_is_a_failure_not_a_crash(run, tmp_path):
    import socket

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    path = write(tmp_path, "down.yaml", FAILING)
    result = run(path, "--url", f"http://127.0.0.1:{port}/hook")
    assert result.exit_code == 1
    assert "connection error" in result.output
    assert result.output.rstrip().splitlines()[-1] == "0 passed, 2 failed"


def scenarios_doc():
    return (ROOT / "docs" / "scenarios.md").read_text()


def test_docs_ten_line_example_runs_and_its_error_messages_are_exact(start_receiver, run, tmp_path):
    section = scenarios_doc()
    example = section.split("```yaml\n", 1)[1].split("```", 1)[0]
    assert example.startswith("# file: refund.yaml\n")  # tests/test_docs.py writes it there for the doc's commands
    assert len(example.strip().splitlines()[1:]) == 10
    srv = start_receiver("accessrc", HMAC)
    path = write(tmp_path, "refund.yaml", example)
    junit = tmp_path / "report.xml"
    result = run(path, "--var", f"RECEIVER_URL={srv.url}/hook", "--junit", junit)
    assert result.exit_code == 0, result.output
    assert result.output.rstrip().splitlines()[-1] == "2 passed, 0 failed"
    assert len(ET.parse(junit).getroot().findall("testsuite/testcase")) == 2
    # the doc's error listing is what the loader prints for the same file with two typos
    broken = example.replace("send: DELIVERY_REFUND_REQUESTED", "send: DELIVERY_REFUND_REQUESTD").replace(
        "${refund.payload", "${refnd.payload"
    )
    path = write(tmp_path, "refund.yaml", broken)
    result = run(path, "--var", f"RECEIVER_URL={srv.url}/hook")
    assert result.exit_code == 2
    shown = section.split("```\nrefund.yaml", 1)[1].split("```", 1)[0]
    printed = [line.replace(str(path), "refund.yaml") for line in result.output.splitlines()]
    for line in ("refund.yaml" + shown).strip().splitlines():
        assert any(p.startswith(line.rstrip("…")) for p in printed), (line, printed)


def test_docs_receivers_match_the_shipped_defaults():
    """The shipped files' default URLs and credentials are the receivers docs/scenarios.md starts with BASE=9000."""
    section = scenarios_doc()
    from simulator.scenarios.loader import load_file

    assert "BASE=${BASE:-9000}" in section
    commands = {}
    for line in section.splitlines():
        if line.startswith("accessrc-sim receiver --port"):
            port = line.split("--port ")[1].split()[0]
            offset = 0 if port == "$BASE" else int(re.fullmatch(r"\$\(\(BASE\+(\d)\)\)", port).group(1))
            commands[str(9000 + offset)] = line
    for path in shipped_files():
        sc = load_file(path, env={})
        port = sc.url.split(":")[2].split("/")[0]
        command = commands[port]
        platform = "accredit" if "--platform" not in command else command.split("--platform ")[1].split()[0]
        assert sc.platform == platform, path
        if sc.auth.kind == "hmac":
            assert f"--hmac-secret {sc.auth.secret}" in command
        if sc.auth.kind == "authorization":
            assert f'--authorization "{sc.auth.authorization}"' in command
        assert ("--fail-first 2" in command) == (path.name == "retry-until-success.yaml")


def test_send_adds_and_removes_headers_and_sets_job_attempt(start_receiver, run, tmp_path):
    srv = start_receiver("accredit")
    path = write(
        tmp_path,
        "headers.yaml",
        """\
name: Headers
platform: accredit
url: ${RECEIVER_URL}
steps:
  - send: Entity.Event
    headers: {User-Agent: null, X-Trace: run-42}
    job_attempt: 4
""",
    )
    result = run(path, "--var", f"RECEIVER_URL={srv.url}/n")
    assert result.exit_code == 0, result.output
    assert srv.received[0].attempt == "4"
    store = Store(result.db)
    [(_, job)] = store.query_jobs(limit=1)
    sent = store.attempts(job.id)[0].request_headers
    assert sent["X-Trace"] == "run-42" and "User-Agent" not in sent and sent["X-JobAttempt"] == "4"
    assert job.headers == {"User-Agent": None, "X-Trace": "run-42"}


def test_a_body_path_the_answer_lacks_reads_missing_not_a_string(tmp_path, start_receiver):
    """expect.body on a path the answer does not have: the text and JUnit say (missing), unquoted; the JSON
    report has actual null with missing true, so it cannot be taken for the string "(missing)"."""
    server = start_receiver("accessrc", Auth("none"))
    path = tmp_path / "m.yaml"
    path.write_text(
        f"name: missing path\nplatform: accessrc\nurl: {server.url}/hook\nsteps:\n"
        "  - send: DELIVERY_REFUND_REQUESTED\n    expect: {body: {data.nothing.here: 1}}\n"
    )
    junit, report = tmp_path / "j.xml", tmp_path / "r.json"
    result = CliRunner().invoke(main, ["run", str(path), "--junit", str(junit), "--report", str(report)])
    assert result.exit_code == 1, result.output
    assert "body.data.nothing.here: expected 1, got (missing)" in result.output
    failure = ET.parse(junit).getroot().find(".//failure")
    assert "actual:   (missing)\n" in failure.text and '"(missing)"' not in failure.text
    step = json.loads(report.read_text())["scenarios"][0]["steps"][0]
    assert step["failures"][0] == {
        "check": "body.data.nothing.here",
        "expected": 1,
        "actual": None,
        "missing": True,
        "label": "",
    }


RULED = """\
name: Rules decide failure or advice
platform: accessrc
url: ${RECEIVER_URL}
steps:
  - send: DELIVERY_REFUND_REQUESTED
    name: acknowledged
    as: refund
    rule: accessrc.conformance.acknowledged
  - fault: duplicate
    name: duplicate answered 202 (inferred)
    of: refund
    rule: accessrc.conformance.idempotency
    expect: {status: 202}
  - expect: {of: refund, echo: true}
    name: data echoes deliveryId (documented)
    rule: accessrc.envelope.data.DELIVERY_REFUND_REQUESTED
"""


@pytest.mark.parametrize("strict", [False, True])
def test_a_failed_step_of_an_inferred_rule_warns_unless_strict(start_receiver, run, tmp_path, strict):
    srv = start_receiver("accessrc")
    path = write(tmp_path, "ruled.yaml", RULED)
    junit, report = tmp_path / "j.xml", tmp_path / "r.json"
    result = run(
        path, "--url", srv.url + "/hook", "--junit", junit, "--report", report, *(["--strict"] if strict else [])
    )
    lines = result.output.splitlines()
    data = json.loads(report.read_text())
    step = data["scenarios"][0]["steps"][1]
    assert step["rule"] == "accessrc.conformance.idempotency" and step["source"] == "inferred"
    assert step["passed"] is False and step["failures"][0]["expected"] == 202
    echo = data["scenarios"][0]["steps"][2]
    assert echo["passed"] is True and echo["source"] == "documented" and echo["warned"] is False
    case = ET.parse(junit).getroot().findall("testsuite/testcase")[1]
    if not strict:
        assert result.exit_code == 0, result.output
        assert any(line.startswith("  WARN  duplicate answered 202 (inferred)") for line in lines)
        assert "          status: expected 202, got 200" in lines
        assert any(
            line.startswith(
                "          advice: inferred (accessrc.conformance.idempotency): AccessRC documents no dedup id"
            )
            and line.endswith("a failure only with --strict")
            for line in lines
        )
        assert lines[-1] == "2 passed, 0 failed, 1 warned"
        assert step["warned"] is True and data["failed"] == 0 and data["warned"] == 1
        assert case.find("failure") is None  # a passing testcase: the advice is in system-out
        assert case.findtext("system-out").startswith("WARN status: expected 202, got 200\nadvice: inferred ")
        assert ET.parse(junit).getroot().get("failures") == "0"
    else:
        assert result.exit_code == 1, result.output
        assert any(line.startswith("  FAIL  duplicate answered 202 (inferred)") for line in lines)
        assert lines[-1] == "2 passed, 1 failed" and "advice:" not in result.output
        assert step["warned"] is False and data["failed"] == 1 and data["warned"] == 0
        assert case.find("failure") is not None


def test_a_failed_step_of_a_documented_rule_fails(start_receiver, run, tmp_path):
    """The echo of deliveryId is documented: a receiver answering `data: {}` fails, with or without --strict."""
    from flask import Flask, jsonify

    app = Flask("no_echo")
    app.add_url_rule(
        "/hook", "hook", lambda: jsonify({"status": "success", "message": "ok", "data": {}}), methods=["POST"]
    )
    srv = ServerThread(app).start()
    try:
        result = run(write(tmp_path, "ruled.yaml", RULED), "--url", srv.url + "/hook")
    finally:
        srv.stop()
    assert result.exit_code == 1, result.output
    assert any(line.startswith("  FAIL  data echoes deliveryId (documented)") for line in result.output.splitlines())
    assert "body.data.deliveryId: expected " in result.output and "got (missing)" in result.output
    assert result.output.rstrip().splitlines()[-1] == "1 passed, 1 failed, 1 warned"


@pytest.mark.parametrize(
    "rule, message",
    [
        (
            "accessrc.conformance.idempotenc",
            "rule: no rule 'accessrc.conformance.idempotenc' in the registry: did you "
            "mean 'accessrc.conformance.idempotency'?",
        ),
        (
            "nothing.like.it",
            "rule: no rule 'nothing.like.it' in the registry (`accessrc-sim rules --platform accessrc` lists them)",
        ),
        (
            "accredit.conformance.idempotency",
            "rule: accredit.conformance.idempotency is a rule of accredit; this scenario is accessrc",
        ),
        (
            "accessrc.envelope.data.DELIVERY_CHANNEL_STATUS_UPDATED",
            "rule: accessrc.envelope.data."
            "DELIVERY_CHANNEL_STATUS_UPDATED is about DELIVERY_CHANNEL_STATUS_UPDATED; this step sends "
            "DELIVERY_REFUND_REQUESTED",
        ),
    ],
)
def test_a_bad_rule_is_a_located_load_error_and_nothing_is_sent(run, tmp_path, rule, message):
    path = write(tmp_path, "bad.yaml", RULED.replace("rule: accessrc.conformance.idempotency", f"rule: {rule}"))
    result = run(path, "--url", "http://127.0.0.1:9/hook")
    assert result.exit_code == 2, result.output
    assert f"{path}:12:11: {message}" in result.output, result.output
    assert "nothing was sent" in result.output


def test_echo_is_refused_for_an_event_without_reply_data(run, tmp_path):
    path = write(
        tmp_path,
        "echo.yaml",
        "name: e\nplatform: accredit\nurl: http://127.0.0.1:9/x\nsteps:\n"
        "  - send: Entity.Event\n    expect: {echo: true}\n",
    )
    result = run(path)
    assert result.exit_code == 2
    assert f"{path}:6:20: expect.echo: Entity.Event documents no reply data to echo" in result.output


MIXED = {
    "accessrc": "DELIVERY_REFUND_REQUESTED",
    "accredit": "BadgeExportZipFile.Created",
    "reachfive": "END_JOB_NOTIFICATION",
}


def mixed_folder(tmp_path):
    """A folder of one scenario per platform (each file's url a port where nothing listens), and a conformance/
    set below it."""
    folder = tmp_path / "mixed"
    folder.mkdir()
    for platform, event in MIXED.items():
        write(
            folder,
            f"{platform}.yaml",
            f"name: {platform} one\nplatform: {platform}\nurl: http://127.0.0.1:9/nothing\n"
            f"steps:\n- send: {event}\n  expect: {{status: 2xx}}\n",
        )
    (folder / "conformance").mkdir()
    shutil.copy(SCENARIOS / "conformance" / "accessrc" / "credentials.yaml", folder / "conformance")
    return folder


def test_run_over_a_mixed_folder_takes_a_url_per_platform_and_skips_conformance(start_receiver, run, tmp_path):
    rx = {p: start_receiver(p) for p in MIXED}
    args = [f"--url-for={p}={rx[p].url}/hook" for p in MIXED]
    result = run(mixed_folder(tmp_path), *args)
    assert result.exit_code == 0, result.output
    assert summary(result.output) == (3, 0)
    assert {p: [r.event for r in rx[p].received] for p in MIXED} == {p: [e] for p, e in MIXED.items()}
    assert "1 conformance file(s) skipped" in result.output and "--include-conformance" in result.output


def test_run_includes_conformance_sets_when_asked(start_receiver, run, tmp_path):
    rx = {p: start_receiver(p) for p in MIXED}
    args = [f"--url-for={p}={rx[p].url}/hook" for p in MIXED]
    result = run(mixed_folder(tmp_path), *args, "--include-conformance")
    assert "skipped" not in result.output
    assert "AccessRC conformance - credentials" in result.output


def test_run_url_for_an_unknown_platform_is_a_usage_error(run, tmp_path):
    result = run(mixed_folder(tmp_path), "--url-for", "accrdit=http://127.0.0.1:9/x")
    assert result.exit_code == 2 and "PLATFORM must be one of accessrc, accredit, reachfive" in result.output


def test_run_when_nothing_answers_asks_whether_the_receiver_runs(run, tmp_path):
    url = refused_url()
    result = run(mixed_folder(tmp_path) / "accessrc.yaml", "--url", url)
    assert result.exit_code == 1
    assert f"Nothing answered at {url} (connection refused): is your receiver running at {url}?" in result.output
