"""`accessrc-sim conformance`: the reference receiver is READY on every platform; each row FAILS against a
receiver broken in exactly that way, and only that row; rows that do not apply are shown as N/A with the reason."""
import json
import re
import xml.etree.ElementTree as ET

import pytest
from click.testing import CliRunner

from simulator.auth import Auth
from simulator.cli import main
from simulator.receiver import ServerThread
from simulator.store import Store

import broken_receivers

HMAC = Auth("hmac", secret="abcd1234")
BEARER = Auth("authorization", authorization="Bearer mF_9.B5f-4.1JqM")
AUTH_ARGS = {"accredit": [], "accessrc": ["--hmac-secret", "abcd1234"],
             "reachfive": ["--authorization", "Bearer mF_9.B5f-4.1JqM"]}
AUTHS = {"accredit": Auth("rsa"), "accessrc": HMAC, "reachfive": BEARER}
PATHS = {"accredit": "/baseWebhookNotification", "accessrc": "/hook", "reachfive": "/jobs"}
APPLICABLE = {"accredit": {"credentials", "validation", "idempotency", "timeout", "retries"},
              "accessrc": {"credentials", "validation", "idempotency", "envelope", "timeout", "retries"},
              "reachfive": {"credentials", "validation", "timeout"}}


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
        args = ["conformance", "--url", url, "--platform", platform,
                *(AUTH_ARGS[platform] if auth_args is None else auth_args),
                "--db", str(tmp_path / "conf.db"), "--keys-dir", str(keys_dir), "--report", str(report),
                "--junit", str(tmp_path / f"junit-{platform}.xml"), *extra]
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
    assert {k for k, v in states(verdict).items() if v == "pass"} == APPLICABLE[platform]
    assert {k for k, v in states(verdict).items() if v == "n/a"} == \
        {"credentials", "validation", "idempotency", "envelope", "timeout", "retries"} - APPLICABLE[platform]
    suites = ET.parse(tmp_path / f"junit-{platform}.xml").getroot()
    assert {s.get("name").split(" - ")[1] for s in suites.findall("testsuite")} == APPLICABLE[platform]
    assert suites.get("failures") == "0" and int(suites.get("tests")) >= 2 * len(APPLICABLE[platform])
    # every probe is recorded in the store as a scenario job
    jobs = Store(tmp_path / "conf.db").list_jobs(limit=1000)
    assert jobs and {j.source for j in jobs} == {"scenario"}
    assert len(jobs) == len(srv.received)


# (broken receiver, platform, the one row that must fail, extra CLI args)
BREAKS = [
    ("skips_signature_check", "accredit", "credentials", []),
    ("skips_signature_check", "accessrc", "credentials", []),
    ("skips_signature_check", "reachfive", "credentials", []),
    ("accepts_malformed_json", "accredit", "validation", []),
    ("accepts_malformed_json", "accessrc", "validation", []),
    ("fails_duplicates", "accredit", "idempotency", []),
    ("fails_duplicates", "accessrc", "idempotency", []),
    ("wrong_envelope", "accessrc", "envelope", []),
    ("too_slow", "accredit", "timeout", ["--timeout", "0.15"]),
    ("refuses_retries", "accessrc", "retries", []),
]


@pytest.mark.parametrize("broken,platform,row,extra", BREAKS, ids=[f"{b}-{p}" for b, p, _, _ in BREAKS])
def test_each_row_fails_against_a_receiver_broken_in_exactly_that_way(broken, platform, row, extra, keys, serve,
                                                                      conformance):
    factory = broken_receivers.BROKEN[broken]
    kwargs = {"delay": 0.3} if broken == "too_slow" else {}
    srv = serve(factory(platform, AUTHS[platform], keys.public_pem, **kwargs))
    result, verdict = conformance(platform, srv.url + PATHS[platform], *extra)
    assert result.exit_code == 1, result.output
    assert "Verdict: NOT READY" in result.output
    assert verdict["ready"] is False
    got = states(verdict)
    assert got[row] == "fail", result.output
    failed = {k for k, v in got.items() if v == "fail"}
    if broken == "too_slow":  # --timeout is the wait for every delivery: each row says it timed out
        for r in verdict["rows"]:
            if r["id"] in failed:
                assert any("timeout after 0.15 s" in line for line in r["evidence"]), r
    else:
        assert failed == {row}, result.output  # broken in exactly that way
    failing = next(r for r in verdict["rows"] if r["id"] == row)
    assert any("expected" in line for line in failing["evidence"])  # the evidence says what was wrong


def test_table_shows_evidence_and_na_reasons_honestly(start_receiver, conformance):
    srv = start_receiver("reachfive", BEARER)
    result, _ = conformance("reachfive", srv.url + "/jobs")
    out = result.output
    assert "PASS  Signature or credentials verified" in out
    assert "missing Authorization refused: -> 401" in out
    assert "N/A   Retries survived" in out and "fire-and-forget: no retries" in out
    assert "N/A   Idempotency" in out and "no X-JobId" in out
    assert "N/A   Documented response envelopes" in out
    assert "Verdict: READY - all 3 applicable checks passed (3 not applicable)" in out


def test_no_auth_configured_makes_credentials_not_applicable_not_passed(start_receiver, conformance):
    srv = start_receiver("accessrc", Auth("none"))
    result, verdict = conformance("accessrc", srv.url + "/hook", auth_args=[])
    assert result.exit_code == 0, result.output
    assert states(verdict)["credentials"] == "n/a"
    assert "no auth configured" in result.output
    envelope = next(r for r in verdict["rows"] if r["id"] == "envelope")
    assert any("not checked (only with hmac, header, basic auth" in e for e in envelope["evidence"])


def test_reachfive_authorization_not_enforced_fails_credentials(keys, serve, conformance):
    srv = serve(broken_receivers.reference("reachfive", Auth("none"), None))
    result, verdict = conformance("reachfive", srv.url + "/jobs")
    assert result.exit_code == 1
    assert states(verdict)["credentials"] == "fail"
    assert "missing Authorization refused: status: expected [401, 403], got 200" in result.output


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

    from simulator.cli import main
    from scripted_server import refused_url

    url = refused_url()
    out = CliRunner().invoke(main, ["conformance", "--url", url, "--platform", "accessrc", "--hmac-secret", "s",
                                    "--db", str(tmp_path / "c.db"), "--timeout", "1"])
    assert out.exit_code == 1
    assert f"Nothing answered at {url} (connection refused)" in out.output
    evidence = [line for line in out.output.splitlines() if line.startswith("        ")]
    assert evidence and all(len(line) <= 8 + 5 + 401 for line in evidence)
    assert all(line[8:13] in ("ok   ", "FAIL ", "skip ") for line in evidence), evidence


def test_genuine_deliveries_refused_with_401_point_at_the_credentials(start_receiver, conformance):
    """A receiver with another HMAC secret: every genuine delivery gets 401; the table says which option to check,
    and each evidence line says whether its step passed (a refused forgery is `ok`, a refused delivery `FAIL`)."""
    srv = start_receiver("accessrc", Auth("hmac", secret="the-receivers-secret"))
    result, verdict = conformance("accessrc", srv.url + "/hook")
    assert result.exit_code == 1
    assert "Genuine deliveries were refused with 401: does the receiver expect the credentials this run sends? " \
           "(--hmac-secret must be the receiver's secret)" in result.output
    assert re.search(r"\n        FAIL genuine delivery accepted: status: expected 2xx, got 401", result.output)
    assert re.search(r"\n        ok   bad signature refused: -> 401", result.output)
