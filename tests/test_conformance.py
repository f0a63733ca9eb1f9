"""`accessrc-sim conformance`: the reference receiver is READY on every platform; each row FAILS against a
receiver broken in exactly that way, and only that row; rows that do not apply are shown as N/A with the reason.
A check of an inferred rule that fails is advice (row WARN, `advice:` lines, still READY) unless --strict; AccessRC
is tested per event with --url-for, and no check posts an event to another event's URL."""

import hashlib
import hmac
import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import broken_receivers
import pytest
from click.testing import CliRunner

from simulator import envelopes
from simulator.auth import Auth
from simulator.cli import main
from simulator.receiver import ServerThread
from simulator.store import Store

HMAC = Auth("hmac", secret="abcd1234")
BEARER = Auth("authorization", authorization="Bearer mF_9.B5f-4.1JqM")
AUTH_ARGS = {
    "accredit": [],
    "accessrc": ["--hmac-secret", "abcd1234"],
    "reachfive": ["--authorization", "Bearer mF_9.B5f-4.1JqM"],
}
AUTHS = {"accredit": Auth("rsa"), "accessrc": HMAC, "reachfive": BEARER}
PATHS = {"accredit": "/baseWebhookNotification", "accessrc": "/hook", "reachfive": "/jobs"}
APPLICABLE = {
    "accredit": {"credentials", "validation", "idempotency", "timeout", "retries"},
    "accessrc": {"credentials", "validation", "idempotency", "envelope", "timeout", "retries"},
    "reachfive": {"credentials", "validation", "timeout"},
}


@pytest.fixture
def serve(keys):
    servers = []

    def start(app):
        server = ServerThread(app).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def conformance(tmp_path, keys_dir):
    def invoke(platform, url, *extra, auth_args=None):
        report = tmp_path / f"verdict-{platform}.json"
        args = [
            "conformance",
            *(["--url", url] if url else []),
            "--platform",
            platform,
            *(AUTH_ARGS[platform] if auth_args is None else auth_args),
            "--db",
            str(tmp_path / "conf.db"),
            "--keys-dir",
            str(keys_dir),
            "--report",
            str(report),
            "--junit",
            str(tmp_path / f"junit-{platform}.xml"),
            *extra,
        ]
        result = CliRunner().invoke(main, args, catch_exceptions=False)
        verdict = json.loads(report.read_text()) if report.exists() else None
        return result, verdict

    return invoke


def states(verdict):
    return {row["id"]: row["state"] for row in verdict["rows"]}


@pytest.mark.parametrize("platform", ["accredit", "accessrc", "reachfive"])
def test_reference_receiver_is_ready(platform, start_receiver, conformance, tmp_path):
    srv = start_receiver(platform, AUTHS[platform])
    result, verdict = conformance(platform, srv.url + PATHS[platform])
    assert result.exit_code == 0, result.output
    assert "Verdict: READY" in result.output
    assert verdict["ready"] is True
    # The reference receiver refuses only what the documents rule out: ReachFive documents no required field, so
    # a report without one is accepted, and that inferred check is advice (WARN), not a failure.
    advised = {"validation"} if platform == "reachfive" else set()
    assert {k for k, v in states(verdict).items() if v == "warn"} == advised
    assert verdict["ready_strict"] is (not advised)
    assert {k for k, v in states(verdict).items() if v == "pass"} == APPLICABLE[platform] - advised
    assert {k for k, v in states(verdict).items() if v == "n/a"} == {
        "credentials",
        "validation",
        "idempotency",
        "envelope",
        "timeout",
        "retries",
    } - APPLICABLE[platform]
    suites = ET.parse(tmp_path / f"junit-{platform}.xml").getroot()
    assert {s.get("name").split(" - ")[1] for s in suites.findall("testsuite")} == APPLICABLE[platform]
    assert suites.get("failures") == "0" and int(suites.get("tests")) >= 2 * len(APPLICABLE[platform])
    # every probe is recorded in the store as a scenario job
    jobs = [job for _, job in Store(tmp_path / "conf.db").query_jobs(limit=1000)]
    assert jobs and {j.source for j in jobs} == {"scenario"}
    assert len(jobs) == len(srv.received)


# (broken receiver, platform, the rows that must fail: a documented check of each fails, extra CLI args)
BREAKS = [
    ("skips_signature_check", "accredit", {"credentials"}, []),
    ("skips_signature_check", "accessrc", {"credentials"}, []),
    ("accepts_malformed_json", "accredit", {"validation"}, []),
    ("accepts_malformed_json", "accessrc", {"validation"}, []),
    ("fails_duplicates", "accredit", {"idempotency"}, []),
    ("wrong_envelope", "accessrc", {"envelope"}, []),
    ("too_slow", "reachfive", {"timeout"}, ["--timeout", "0.15"]),  # ReachFive's console Timeout: documented
    # idempotency resends as retry 1: a 400 is handled (documented part), only the inferred 2xx check warns
    ("refuses_retries", "accredit", {"retries"}, []),
]


@pytest.mark.parametrize("broken,platform,rows,extra", BREAKS, ids=[f"{b}-{p}" for b, p, _, _ in BREAKS])
def test_each_row_fails_against_a_receiver_broken_in_exactly_that_way(
    broken, platform, rows, extra, keys, serve, conformance
):
    factory = broken_receivers.BROKEN[broken]
    kwargs = {"delay": 0.3} if broken == "too_slow" else {}
    srv = serve(factory(platform, AUTHS[platform], keys.public_pem, **kwargs))
    result, verdict = conformance(platform, srv.url + PATHS[platform], *extra)
    assert result.exit_code == 1, result.output
    assert "Verdict: NOT READY" in result.output
    assert verdict["ready"] is False and verdict["ready_strict"] is False
    got = states(verdict)
    failed = {k for k, v in got.items() if v == "fail"}
    assert failed == rows, result.output  # broken in exactly that way
    for row in rows:
        failing = next(r for r in verdict["rows"] if r["id"] == row)
        assert any("expected" in line for line in failing["evidence"])  # the evidence says what was wrong
        assert any(c["state"] == "fail" and c["source"] == "documented" and c["quote"] for c in failing["checks"])


def test_a_too_slow_receiver_gets_advice_on_the_inferred_timeout_and_fails_what_it_is_too_slow_for(
    keys, serve, conformance
):
    """Accredit documents no timeout: the timeout row is advice (WARN); but --timeout bounds every request, so the
    documented acknowledgements of the other rows time out and fail."""
    srv = serve(broken_receivers.too_slow("accredit", AUTHS["accredit"], keys.public_pem, delay=0.3))
    result, verdict = conformance("accredit", srv.url + PATHS["accredit"], "--timeout", "0.15")
    assert result.exit_code == 1, result.output
    got = states(verdict)
    assert got["timeout"] == "warn" and got["credentials"] == "fail"
    for r in verdict["rows"]:
        if r["state"] in ("fail", "warn"):
            assert any("timeout after 0.15 s" in line for line in r["evidence"]), r
    assert re.search(
        r"\nadvice: Answers within the timeout: answered within the timeout \[1/3\]: answer: expected "
        r"an answer \(any status\), got timeout after 0\.15 s .*inferred \(accredit\.conformance\.timeout\): Accredit "
        r"documents no request timeout",
        result.output,
    )


def answers_400(environ, start_response):
    """A receiver that refuses everything at once: 400 in the documented envelope, within a millisecond."""
    return broken_receivers._json(400, envelopes.failed(400))(environ, start_response)


@pytest.mark.parametrize("platform", ["accredit", "accessrc", "reachfive"])
def test_the_timeout_row_judges_lateness_only_not_the_status(platform, serve, conformance):
    """A fast 400 is answered in time: the timeout row passes, and the rows that judge statuses fail (before: the
    timeout row said "status: expected 2xx, got 400")."""
    srv = serve(answers_400)
    result, verdict = conformance(platform, srv.url + PATHS[platform])
    # ReachFive documents no meaning for the answer: a 400 breaks only inferred checks (advice, still READY)
    assert result.exit_code == (0 if platform == "reachfive" else 1), result.output
    timeout = next(r for r in verdict["rows"] if r["id"] == "timeout")
    got = {c["rule"]: c["state"] for c in timeout["checks"]}
    assert got[f"{platform}.conformance.timeout"] == "pass", timeout
    assert not any(f"{platform}.conformance.timeout" in line and "400" in line for line in timeout["evidence"])
    assert {"fail", "warn"} & set(states(verdict).values())  # the status is judged, by the rows that judge it


def test_table_shows_evidence_and_na_reasons_honestly(start_receiver, conformance):
    srv = start_receiver("reachfive", BEARER)
    result, _ = conformance("reachfive", srv.url + "/jobs")
    out = result.output
    assert "PASS  Signature or credentials verified" in out
    assert "missing Authorization refused: -> 401" in out
    assert "N/A   Retries survived" in out and "fire-and-forget: no retries" in out
    assert "N/A   Idempotency" in out and "no X-JobId" in out
    assert "N/A   Documented response envelopes" in out
    assert "WARN  Payload validation" in out  # no ReachFive field is documented as required: advice only
    assert "Verdict: READY - every documented check passed (3 not applicable); 1 inferred check(s) failed" in out
    # each row says what its checks rest on: ReachFive documents its Timeout, not what an answer means
    assert "PASS  Answers within the timeout  [documented + inferred]" in out
    assert "PASS  Signature or credentials verified  [inferred]" in out


def test_no_auth_configured_makes_credentials_not_applicable_not_passed(start_receiver, conformance):
    srv = start_receiver("accessrc", Auth("none"))
    result, verdict = conformance("accessrc", srv.url + "/hook", auth_args=[])
    assert result.exit_code == 0, result.output
    assert states(verdict)["credentials"] == "n/a"
    assert "no auth configured" in result.output
    envelope = next(r for r in verdict["rows"] if r["id"] == "envelope")
    assert any("not checked (only with hmac, header, basic auth" in e for e in envelope["evidence"])


@pytest.mark.parametrize("strict", [False, True])
def test_reachfive_authorization_not_enforced_is_advice_unless_strict(keys, serve, conformance, strict):
    """ReachFive documents no answer to a wrong Authorization: refusing it with 401/403 is our advice."""
    srv = serve(broken_receivers.reference("reachfive", Auth("none"), None))
    result, verdict = conformance("reachfive", srv.url + "/jobs", *(["--strict"] if strict else []))
    assert "WARN missing Authorization refused: status: expected [401, 403], got 200" in result.output or strict
    if strict:
        assert result.exit_code == 1 and "Verdict: NOT READY" in result.output
        assert states(verdict)["credentials"] == "fail" and verdict["ready"] is False and verdict["strict"] is True
        assert "advice:" not in result.output
    else:
        assert result.exit_code == 0, result.output
        assert states(verdict)["credentials"] == "warn"
        assert verdict["ready"] is True and verdict["ready_strict"] is False
        assert re.search(
            r"\nadvice: Signature or credentials verified: bad credential refused: status: expected "
            r"\[401, 403\], got 200 - inferred \(reachfive\.conformance\.credentials\)",
            result.output,
        )
        assert (
            "Verdict: READY - every documented check passed (3 not applicable); 4 inferred check(s) failed: "
            "see advice (NOT READY with --strict)" in result.output
        )


def test_wrong_secret_given_to_conformance_is_not_ready(start_receiver, conformance):
    srv = start_receiver("accessrc", HMAC)
    result, verdict = conformance("accessrc", srv.url + "/hook", auth_args=["--hmac-secret", "not-the-secret"])
    assert result.exit_code == 1
    assert states(verdict)["credentials"] == "fail"  # the genuine delivery is refused: nothing proves anything


def test_bad_usage_exits_2(conformance):
    result, _ = conformance("accredit", "http://127.0.0.1:9/x", auth_args=["--hmac-secret", "x"])
    assert result.exit_code == 2
    assert "does not apply to accredit" in result.output


def test_a_target_outside_loopback_is_refused_before_anything_is_sent(conformance):
    result, verdict = conformance("accredit", "http://192.0.2.10/hook")
    assert result.exit_code == 2 and verdict is None
    assert "192.0.2.10" in result.output


def test_scenarios_dir_from_the_environment(conformance, tmp_path, monkeypatch):
    monkeypatch.setenv("ACCESSRC_SIM_SCENARIOS_DIR", str(tmp_path / "elsewhere"))
    result, verdict = conformance("accredit", "http://127.0.0.1:9/x")
    assert result.exit_code == 2 and verdict is None
    assert f"no conformance set at {tmp_path / 'elsewhere' / 'conformance' / 'accredit'}" in result.output


def test_table_keeps_each_evidence_on_one_line_and_names_a_dead_port(tmp_path):
    """A receiver that is not running: one plain hint, and no row spilling an answer over many lines."""
    from click.testing import CliRunner
    from scripted_server import refused_url

    from simulator.cli import main

    url = refused_url()
    out = CliRunner().invoke(
        main,
        [
            "conformance",
            "--url",
            url,
            "--platform",
            "accessrc",
            "--hmac-secret",
            "s",
            "--db",
            str(tmp_path / "c.db"),
            "--timeout",
            "1",
        ],
    )
    assert out.exit_code == 1
    assert f"Nothing answered at {url} (connection refused)" in out.output
    evidence = [line for line in out.output.splitlines() if line.startswith("        ")]
    assert evidence and all(len(line) <= 8 + 5 + 401 for line in evidence)
    assert all(line[8:13] in ("ok   ", "FAIL ", "WARN ", "skip ") for line in evidence), evidence


def test_genuine_deliveries_refused_with_401_point_at_the_credentials(start_receiver, conformance):
    """A receiver with another HMAC secret: every genuine delivery gets 401; the table says which option to check,
    and each evidence line says whether its step passed (a refused forgery is `ok`, a refused delivery `FAIL`)."""
    srv = start_receiver("accessrc", Auth("hmac", secret="the-receivers-secret"))
    result, verdict = conformance("accessrc", srv.url + "/hook")
    assert result.exit_code == 1
    assert (
        "Genuine deliveries were refused with 401: does the receiver expect the credentials this run sends? "
        "(--hmac-secret must be the receiver's secret)" in result.output
    )
    assert re.search(r"\n        FAIL genuine delivery accepted: status: expected 2xx, got 401", result.output)
    assert re.search(r"\n        ok   bad signature refused: -> 401", result.output)


# -- AccessRC per event: one callback URL per event type ---------------------------------------------------------
DCSU, REFUND = "DELIVERY_CHANNEL_STATUS_UPDATED", "DELIVERY_REFUND_REQUESTED"
DCSU_FIELDS = {"providerDeliveryChannelId", "status", "message", "requestType", "requestedDate"}
ROOT = Path(__file__).resolve().parents[1]


def per_event_receiver(
    secret: str,
    *,
    duplicates: str = "acknowledge",
    echo: bool = True,
    check_required: bool = True,
    echo_drs: bool = True,
):
    """An AccessRC receiver written from the documents alone, one route per subscribed event: HMAC
    `x-signature: sha256=<hex>` over the raw body (401), a body missing a required field refused with 400, the
    documented envelopes, `data` echoing the documented id, X-Job* headers ignored, exact duplicates acknowledged.
    `duplicates="refuse"` answers 409 to a body already processed (fails only an inferred check)."""
    from flask import Flask, jsonify, request

    app = Flask("per_event_accessrc")
    routes = {
        "dcsu": ("providerDeliveryChannelId", DCSU_FIELDS),
        "refund": ("deliveryId", {"deliveryId"}),
        "drs": ("deliveryRequestId", {"deliveryRequestId", "providerDeliveryChannelId", "description", "delivery"}),
    }
    processed: dict[bytes, dict] = {}
    app.extensions["seen"] = seen = []

    def failed(code, message, kind):
        return jsonify({"status": "failed", "error": {"code": code, "message": message, "type": kind}}), code

    @app.post("/<name>")
    def hook(name):
        raw = request.get_data()
        seen.append((name, raw, dict(request.headers)))
        if name not in routes:
            return failed(404, "Not Found", "NotFound")
        expected = "sha256=" + hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(request.headers.get("x-signature", ""), expected):
            return failed(401, "Verification failed", "Unauthorized")
        try:
            body = json.loads(raw)
        except ValueError:
            return failed(400, "Validation failed. Please check your input.", "BadRequest")
        key, required = routes[name]
        if not isinstance(body, dict) or (check_required and not required <= set(body)):
            return failed(400, "Validation failed. Please check your input.", "BadRequest")
        if raw in processed and duplicates == "refuse":
            return failed(409, "Already processed", "Conflict")
        data = {key: body.get(key)} if echo and (name != "drs" or echo_drs) else {}
        processed.setdefault(raw, data)
        return jsonify({"status": "success", "message": "Callback successfully received", "data": processed[raw]})

    return app


def per_event_args(srv, *names):
    events = {"dcsu": DCSU, "refund": REFUND, "drs": "DELIVERY_REQUEST_SENT"}
    return [arg for name in names for arg in ("--url-for", f"{events[name]}={srv.url}/{name}")]


def assert_each_event_went_to_its_own_url(srv, db):
    """No request reached /dcsu with a refund body or /refund with a status update; the store agrees."""
    seen = srv.seen
    assert {name for name, _, _ in seen} <= {"dcsu", "refund", "drs"}
    for name, raw, headers in seen:
        assert not any(h.lower().startswith("x-job") for h in headers), headers  # AccessRC sends no X-Job*
        try:
            body = json.loads(raw)
        except ValueError:
            continue  # the malformed-JSON probe: a cut-short body of this route's own event
        if name == "dcsu":
            assert set(body) <= DCSU_FIELDS and "deliveryId" not in body, body
        if name == "refund":
            assert set(body) <= {"deliveryId"}, body
    jobs = [job for _, job in Store(db).query_jobs(limit=1000)]
    assert jobs
    for job in jobs:
        assert (
            job.url.rsplit("/", 1)[1] == {DCSU: "dcsu", REFUND: "refund", "DELIVERY_REQUEST_SENT": "drs"}[job.event]
        ), (job.event, job.url)


@pytest.fixture
def per_event(serve):
    def start(**options):
        app = per_event_receiver("abcd1234", **options)
        srv = serve(app)
        srv.seen = app.extensions["seen"]
        return srv

    return start


def test_a_per_event_accessrc_receiver_is_ready_with_url_for(per_event, conformance, tmp_path):
    srv = per_event()
    result, verdict = conformance("accessrc", None, *per_event_args(srv, "dcsu", "refund"))
    assert result.exit_code == 0, result.output
    assert "Verdict: READY - all 6 applicable checks passed" in result.output
    assert "advice:" not in result.output
    assert verdict["ready"] is True and verdict["ready_strict"] is True
    assert verdict["targets"] == [
        {"event": DCSU, "url": f"{srv.url}/dcsu"},
        {"event": REFUND, "url": f"{srv.url}/refund"},
    ]
    assert f"  {DCSU} at {srv.url}/dcsu" in result.output
    assert f"ok   [{REFUND}] data as documented for {REFUND}" in result.output
    assert f"ok   [{REFUND}] body without deliveryId refused: -> 400" in result.output
    for row in verdict["rows"]:  # every row ran for both events
        assert {c["event"] for c in row["checks"]} == {DCSU, REFUND}, row
    assert_each_event_went_to_its_own_url(srv, tmp_path / "conf.db")
    suites = ET.parse(tmp_path / "junit-accessrc.xml").getroot()
    assert f"AccessRC conformance - idempotency [{REFUND}]" in {s.get("name") for s in suites}


def test_the_report_gives_each_check_its_source_and_quote(per_event, conformance):
    srv = per_event()
    result, verdict = conformance("accessrc", None, *per_event_args(srv, "dcsu", "refund"))
    assert result.exit_code == 0, result.output
    checks = {(row["id"], c["event"], c["name"]): c for row in verdict["rows"] for c in row["checks"]}
    for check in checks.values():
        assert {"name", "state", "source", "quote", "rule", "reason"} <= set(check)
        # its own rule, or the envelope rule it checks
        assert check["source"] in ("documented", "inferred") and check["rule"].startswith("accessrc.")
        if check["source"] == "documented":  # the documents' own words
            text = (ROOT / "docs" / "sources" / check["where"].split("#")[0]).read_text()
            assert check["quote"] in text, check  # verbatim, line breaks included: the JSON is not folded
        else:
            assert check["quote"] is None and check["reason"], check
    bad = checks[("credentials", DCSU, "bad signature refused")]
    assert bad["source"] == "documented" and bad["quote"].startswith(
        'If the verification fails, the response will be:\n{\n    "status": "failed",\n'
        '    "error": {\n        "code": 401'
    )
    required = checks[("validation", DCSU, "body without providerDeliveryChannelId refused")]
    assert (
        required["quote"] == "The providerDeliveryChannelId is a required field in both the request and the response."
    )
    assert checks[("validation", REFUND, "body without deliveryId refused")]["source"] == "inferred"
    duplicate = checks[("idempotency", REFUND, "exact duplicate acknowledged")]
    assert duplicate["source"] == "inferred" and "no dedup" in duplicate["reason"]
    assert checks[("envelope", REFUND, f"data as documented for {REFUND}")]["source"] == "documented"


@pytest.mark.parametrize("strict", [False, True])
def test_a_receiver_failing_only_inferred_checks_is_ready_with_advice_unless_strict(
    per_event, conformance, tmp_path, strict
):
    """409 to an exact duplicate: AccessRC documents no dedup and no retry, so this is advice, not a failure."""
    srv = per_event(duplicates="refuse")
    result, verdict = conformance(
        "accessrc", None, *per_event_args(srv, "dcsu", "refund"), *(["--strict"] if strict else [])
    )
    got = states(verdict)
    if not strict:
        assert result.exit_code == 0, result.output
        assert got == {
            "credentials": "pass",
            "validation": "pass",
            "idempotency": "warn",
            "envelope": "pass",
            "timeout": "pass",
            "retries": "warn",
        }
        assert verdict["ready"] is True and verdict["ready_strict"] is False
        assert "  WARN  Idempotency" in result.output
        advice = [line for line in result.output.splitlines() if line.startswith("advice: ")]
        assert len(advice) == 6 == len(verdict["advice"])  # per event: 1 duplicate and 2 resends
        assert advice[0].startswith(
            f"advice: Idempotency (a duplicate delivery acknowledged without error): [{DCSU}] "
            "exact duplicate acknowledged: status: expected 2xx, got 409 - inferred "
            "(accessrc.conformance.idempotency): AccessRC documents no dedup id"
        )
        assert (
            "Verdict: READY - every documented check passed; 6 inferred check(s) failed: see advice (NOT READY "
            "with --strict)" in result.output
        )
        junit = ET.parse(tmp_path / "junit-accessrc.xml").getroot()
        assert junit.get("failures") == "0"
        warned = [c for c in junit.iter("testcase") if c.get("name") == "exact duplicate acknowledged"]
        assert warned and all(
            c.find("failure") is None and "advice: inferred" in c.find("system-out").text for c in warned
        )
    else:
        assert result.exit_code == 1, result.output
        assert got["idempotency"] == got["retries"] == "fail" and got["credentials"] == "pass"
        assert verdict["ready"] is False and verdict["ready_strict"] is False and verdict["strict"] is True
        assert "Verdict: NOT READY - 2 of 6 applicable checks failed" in result.output
        assert "advice:" not in result.output
        assert ET.parse(tmp_path / "junit-accessrc.xml").getroot().get("failures") == "6"
    assert_each_event_went_to_its_own_url(srv, tmp_path / "conf.db")


@pytest.mark.parametrize(
    "options, row, check",
    [
        ({"echo": False}, "envelope", f"data as documented for {DCSU}"),
        ({"check_required": False}, "validation", "body without providerDeliveryChannelId refused"),
    ],
)
def test_a_documented_check_failing_per_event_is_not_ready(per_event, conformance, options, row, check):
    srv = per_event(**options)
    result, verdict = conformance("accessrc", None, *per_event_args(srv, "dcsu", "refund"))
    assert result.exit_code == 1, result.output
    assert {k for k, v in states(verdict).items() if v == "fail"} == {row}
    failing = next(r for r in verdict["rows"] if r["id"] == row)
    assert any(
        c["name"] == check and c["event"] == DCSU and c["state"] == "fail" and c["source"] == "documented"
        for c in failing["checks"]
    )
    assert f"FAIL [{DCSU}] {check}" in result.output


def test_the_inferred_delivery_request_echo_is_advice(per_event, conformance):
    """DELIVERY_REQUEST_SENT's reply was lost from the stored page: echoing deliveryRequestId is our guess."""
    srv = per_event(echo_drs=False)
    result, verdict = conformance("accessrc", f"{srv.url}/dcsu", *per_event_args(srv, "drs"))
    assert result.exit_code == 0, result.output
    assert states(verdict)["envelope"] == "warn"
    assert (
        "WARN [DELIVERY_REQUEST_SENT] data as documented for DELIVERY_REQUEST_SENT: body.data.deliveryRequestId: "
        "expected" in result.output
    )
    assert verdict["targets"][0] == {"event": DCSU, "url": f"{srv.url}/dcsu"}  # --url: the default event


@pytest.mark.parametrize(
    "platform, args, message",
    [
        (
            "accredit",
            ["--url-for", "BadgeExportZipFile.Created=http://127.0.0.1:9/x"],
            "tested with one event at --url",
        ),
        ("accessrc", ["--url-for", "NO_SUCH_EVENT=http://127.0.0.1:9/x"], "unknown event 'NO_SUCH_EVENT'"),
        ("accessrc", ["--url-for", f"{REFUND}=http://192.0.2.10/refund"], "192.0.2.10"),
        ("accessrc", ["--url-for", f"{REFUND}"], "--url-for takes EVENT=URL"),
        (
            "accessrc",
            ["--url", "http://127.0.0.1:9/a", "--url-for", f"{DCSU}=http://127.0.0.1:9/b"],
            "drop one of them",
        ),
        ("accessrc", [], "give the receiver's URL with --url or one --url-for EVENT=URL per event"),
    ],
)
def test_url_for_usage_errors_exit_2_before_anything_is_sent(conformance, platform, args, message):
    result, verdict = conformance(platform, None, *args, auth_args=AUTH_ARGS[platform])
    assert result.exit_code == 2, result.output
    assert message in result.output and verdict is None


def test_a_conformance_check_without_a_rule_is_refused_with_its_position(conformance, tmp_path):
    """Each check's source decides failure or advice, so a set whose step names no rule cannot be run."""
    import shutil

    base = tmp_path / "scenarios"
    shutil.copytree(ROOT / "scenarios" / "conformance" / "accredit", base / "conformance" / "accredit")
    path = base / "conformance" / "accredit" / "timeout.yaml"
    path.write_text(path.read_text().replace("      rule: accredit.conformance.timeout\n", ""))
    result, verdict = conformance("accredit", "http://127.0.0.1:9/x", "--scenarios-dir", str(base))
    assert result.exit_code == 2 and verdict is None
    assert f"{path}:13:7: a conformance check needs `rule:`" in result.output, result.output
