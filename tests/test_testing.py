"""simulator.testing and the accessrc_sender pytest plugin: signed platform requests for a receiver's own test suite.

The docs' Flask, FastAPI and Django test files are cut out of docs/receivers.md and run by pytest in a fresh folder,
as a stranger would run them with the package installed."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from simulator import signing
from simulator.testing import FAULTS, Sender, SenderError, SignedRequest, VerificationError

GUIDE = Path(__file__).resolve().parent.parent / "docs" / "receivers.md"
SECRET = "abcd1234"


def guide_test_files() -> dict[str, str]:
    """file name → code for every fenced block whose first line is `# test file: NAME`."""
    found = {}
    for code in re.findall(r"^```python\n(.*?)^```", GUIDE.read_text("utf-8"), re.S | re.M):
        match = re.match(r"# test file: (\S+)", code)
        if match:
            found[match.group(1)] = code
    return found


def test_the_guide_has_a_test_file_per_framework():
    assert set(guide_test_files()) == {"test_flask_receiver.py", "test_fastapi_receiver.py", "test_django_receiver.py"}
    assert "## Test it in your own suite" in GUIDE.read_text("utf-8")
    readme = (GUIDE.parent.parent / "README.md").read_text("utf-8")
    assert "docs/receivers.md#test-it-in-your-own-suite" in readme


@pytest.mark.parametrize("name", ["test_flask_receiver.py", "test_fastapi_receiver.py", "test_django_receiver.py"])
def test_each_docs_snippet_passes_in_a_strangers_folder(name, tmp_path):
    """Run as a stranger runs it; the fixture keeps Accredit's keys in each test's tmp_path, never in the
    simulator's data folder (ACCESSRC_SIM_HOME here, so a key pair made there would be seen)."""
    code = guide_test_files()[name]
    (tmp_path / name).write_text(code, "utf-8")
    home, basetemp = tmp_path / "home", tmp_path / "basetemp"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "ACCESSRC_SIM_KEYS_DIR")}
    env["ACCESSRC_SIM_HOME"] = str(home)
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", name, "-p", "no:cacheprovider", f"--basetemp={basetemp}"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert re.search(r"\b([4-9]|\d\d+) passed\b", done.stdout), done.stdout
    assert not home.exists(), sorted(home.rglob("*"))  # nothing in the simulator's data folder
    made = list(basetemp.rglob(signing.PUBLIC_FILE))  # Accredit's pairs: in the tests' temporary folders
    assert len(made) >= 2 if '"accredit"' in code else made == [], made


def test_importing_simulator_testing_loads_no_server_stack():
    code = (
        "import simulator.testing, sys; loaded = {'flask', 'waitress', 'apscheduler', 'requests', 'urllib3'} "
        "& set(sys.modules); assert not loaded, loaded"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_using_a_sender_of_every_platform_loads_no_server_stack_or_http_client():
    code = textwrap.dedent(
        """
        import sys, tempfile
        from simulator.testing import Sender, VerificationError
        assert "requests" not in sys.modules, "importing simulator.testing loaded requests"
        keys = tempfile.mkdtemp()
        for platform, auth, event in (
            ("accredit", {}, "BadgeExportZipFile.Created"),
            ("accessrc", {"hmac_secret": "s"}, "DELIVERY_REQUEST_SENT"),
            ("reachfive", {"authorization": "Bearer t"}, "END_JOB_NOTIFICATION"),
        ):
            sender = Sender(platform, keys_dir=keys, **auth)
            req = sender.request(event, seed=1)
            sender.verify(req.headers, req.body)
            for a in sender.attempts(event):
                sender.verify(a.headers, a.body)
            bad = sender.fault("bad_signature", event)
            try:
                sender.verify(bad.headers, bad.body)
                raise SystemExit("a bad signature verified")
            except VerificationError:
                pass
            sender.fault("oversized_body", event, size=4096)
            sender.examples(event)
            if platform == "accredit":
                assert sender.public_key_pem.startswith("-----BEGIN PUBLIC KEY-----")
        loaded = sorted({"flask", "waitress", "apscheduler", "werkzeug", "requests"} & set(sys.modules))
        assert not loaded, loaded
        print("clean")
        """
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "clean" in done.stdout, done.stdout + done.stderr


# -- the fixture ------------------------------------------------------------------------------------------------
def test_the_fixture_keeps_accredit_keys_in_the_tests_tmp_path(accessrc_sender, tmp_path):
    sender = accessrc_sender("accredit")
    assert sender.public_key_pem == (tmp_path / "accessrc-sim-keys" / signing.PUBLIC_FILE).read_text("ascii")
    assert accessrc_sender("accredit").public_key_pem == sender.public_key_pem  # one pair per test
    other = accessrc_sender("accredit", keys_dir=tmp_path / "mine")
    assert other.public_key_pem != sender.public_key_pem and (tmp_path / "mine" / signing.PRIVATE_FILE).exists()
    assert accessrc_sender().platform == "accessrc"


# -- requests and attempts --------------------------------------------------------------------------------------
def test_a_request_is_what_the_platform_sends(accessrc_sender):
    req = accessrc_sender("accessrc", hmac_secret=SECRET).request("DELIVERY_REQUEST_SENT", seed=3)
    assert isinstance(req, SignedRequest) and req.event == "DELIVERY_REQUEST_SENT"
    assert json.loads(req.body) == req.payload
    assert req.headers["Content-Type"] == "application/json"
    assert req.headers["x-signature"] == signing.hmac_signature(SECRET, req.body)
    assert "X-JobId" not in req.headers and "X-JobAttempt" not in req.headers  # AccessRC documents none
    again = accessrc_sender("accessrc", hmac_secret=SECRET).request("DELIVERY_REQUEST_SENT", seed=3)
    assert again.body == req.body  # seeded: reproducible bytes
    example = accessrc_sender("accessrc").request(
        "PROGRAM_ELIGIBILITY_EVALUATED", example="seed-001", set={"programId": "00000000-0000-4000-8000-000000000042"}
    )
    assert (
        example.payload["programId"].endswith("42")
        and example.payload["applications"][0]["fullNameLocal"] == "John Doe"
    )


def test_accredit_attempts_are_one_job_retried(accessrc_sender):
    sender = accessrc_sender("accredit")
    attempts = sender.attempts("BadgeExportZipFile.Created")
    assert [a.headers["X-JobAttempt"] for a in attempts] == ["0", "1", "2", "3", "4", "5"]
    assert {a.body for a in attempts} == {attempts[0].body}
    assert {a.headers["X-JobId"] for a in attempts} == {attempts[0].job_id}
    assert [a.attempt for a in attempts] == list(range(6))
    for a in attempts:
        sender.verify(a.headers, a.body)


def test_accessrc_attempts_carry_no_job_headers_unless_accredit_like(accessrc_sender):
    documented = accessrc_sender("accessrc", hmac_secret=SECRET).attempts("DELIVERY_REFUND_REQUESTED")
    assert len(documented) == 6 and {a.body for a in documented} == {documented[0].body}
    assert not any(h.lower() in ("x-jobid", "x-jobattempt") for a in documented for h in a.headers)
    like = accessrc_sender("accessrc", hmac_secret=SECRET, profile="accredit-like").attempts(
        "DELIVERY_REFUND_REQUESTED", n=3
    )
    assert [(a.headers["X-JobId"], a.headers["X-JobAttempt"]) for a in like] == [
        (like[0].job_id, str(n)) for n in range(3)
    ]


def test_reachfive_never_retries(accessrc_sender):
    sender = accessrc_sender("reachfive", authorization="Bearer t0k")
    (only,) = sender.attempts("END_JOB_NOTIFICATION")  # by default: every attempt the platform makes
    assert sender.attempts("END_JOB_NOTIFICATION", n=1)[0].headers == only.headers
    assert only.headers["Authorization"] == "Bearer t0k" and "X-JobId" not in only.headers
    with pytest.raises(SenderError, match="never retries"):
        sender.attempts("END_JOB_NOTIFICATION", n=2)


# -- verify -----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "platform, auth, event",
    [
        ("accredit", {}, "Entity.Event"),
        ("accredit", {"rsa_padding": "pss"}, "Entity.Event"),
        ("accessrc", {"hmac_secret": SECRET}, "DELIVERY_REQUEST_SENT"),
        ("accessrc", {"api_key_header": "X-API-Key", "api_key": "k-1"}, "DELIVERY_REQUEST_SENT"),
        ("accessrc", {"basic": "user:pa:ss"}, "DELIVERY_REQUEST_SENT"),
        ("reachfive", {"authorization": "Bearer t0k"}, "END_JOB_NOTIFICATION"),
    ],
)
def test_verify_round_trips_and_rejects_a_tampered_body(accessrc_sender, platform, auth, event):
    sender = accessrc_sender(platform, **auth)
    req = sender.request(event, seed=5)
    sender.verify(req.headers, req.body)
    sender.verify({k.lower(): v for k, v in req.headers.items()}, req.body)  # header names are case-insensitive
    if platform == "accredit" or "hmac_secret" in auth:
        with pytest.raises(VerificationError):
            sender.verify(req.headers, req.body.replace(b"{", b"{ ", 1))
    forged = sender.fault("missing_signature", event)
    with pytest.raises(VerificationError):
        sender.verify(forged.headers, forged.body)


def test_verify_rejects_another_senders_key_and_secret(accessrc_sender, tmp_path):
    mine = accessrc_sender("accredit")
    theirs = accessrc_sender("accredit", keys_dir=tmp_path / "theirs").request("Entity.Event")
    with pytest.raises(VerificationError, match="does not match"):
        mine.verify(theirs.headers, theirs.body)
    other = accessrc_sender("accessrc", hmac_secret="other").request("DELIVERY_REQUEST_SENT")
    with pytest.raises(VerificationError):
        accessrc_sender("accessrc", hmac_secret=SECRET).verify(other.headers, other.body)


# -- faults -----------------------------------------------------------------------------------------------------
def _without_job(headers: dict) -> dict:
    return {k: v for k, v in headers.items() if k not in ("X-JobId", "X-JobAttempt")}


@pytest.mark.parametrize(
    "platform, auth, event, credential",
    [
        ("accredit", {}, "BadgeExportZipFile.Created", "X-Signature"),
        ("accessrc", {"hmac_secret": SECRET}, "DELIVERY_CHANNEL_STATUS_UPDATED", "x-signature"),
    ],
)
def test_each_fault_differs_from_the_genuine_request_as_described(accessrc_sender, platform, auth, event, credential):
    sender = accessrc_sender(platform, **auth)
    genuine = sender.request(event, seed=11)
    made = {name: sender.fault(name, event, seed=11) for name in FAULTS}
    for name, req in made.items():
        assert req.fault == name and req.event == event and req != genuine
    rest = {k: v for k, v in _without_job(genuine.headers).items() if k != credential}

    def same_but_credential(req):
        assert {k: v for k, v in _without_job(req.headers).items() if k != credential} == rest

    for name in ("bad_signature", "wrong_key"):  # same body, a well-formed but wrong credential
        req = made[name]
        assert req.body == genuine.body and same_but_credential(req) is None
        assert req.headers[credential] != genuine.headers[credential]
        assert len(req.headers[credential]) == len(genuine.headers[credential])
        with pytest.raises(VerificationError):
            sender.verify(req.headers, req.body)
    assert credential not in made["missing_signature"].headers and made["missing_signature"].body == genuine.body
    same_but_credential(made["missing_signature"])

    tampered = made["tampered_body"]  # the genuine signature over other bytes that still fit the schema
    assert tampered.body != genuine.body and _without_job(tampered.headers) == _without_job(genuine.headers)
    assert json.loads(tampered.body) == tampered.payload and set(tampered.payload) == set(genuine.payload)
    with pytest.raises(VerificationError):
        sender.verify(tampered.headers, tampered.body)

    for name in ("malformed_json", "missing_required_field", "oversized_body"):  # re-signed: reach the parser
        sender.verify(made[name].headers, made[name].body)
        same_but_credential(made[name])
    assert made["malformed_json"].body == genuine.body[:-1] and made["malformed_json"].payload is None
    with pytest.raises(json.JSONDecodeError):
        json.loads(made["malformed_json"].body)
    missing = made["missing_required_field"]
    assert set(genuine.payload) - set(missing.payload) and json.loads(missing.body) == missing.payload
    assert len(made["oversized_body"].body) == 2 * 1024 * 1024

    wrong_type = made["wrong_content_type"]
    assert wrong_type.headers["Content-Type"] == "text/plain" and wrong_type.body == genuine.body
    assert {k: v for k, v in _without_job(wrong_type.headers).items() if k != "Content-Type"} == {
        k: v for k, v in _without_job(genuine.headers).items() if k != "Content-Type"
    }
    assert (
        sender.fault("wrong_content_type", event, content_type="application/xml").headers["Content-Type"]
        == "application/xml"
    )
    assert len(sender.fault("oversized_body", event, size=4096).body) == 4096


# -- bad input --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "build, message",
    [
        (lambda s: Sender("stripe"), "platform must be one of"),
        (lambda s: Sender("accredit", hmac_secret="x"), "does not apply to accredit"),
        (lambda s: Sender("accessrc", hmac_secret="x", basic="u:p"), "choose one auth"),
        (lambda s: Sender("accessrc", api_key_header="X-Key"), "needs api_key"),
        (lambda s: Sender("accessrc", basic="no-colon"), "USER:PASS"),
        (lambda s: Sender("accredit", rsa_padding="oaep"), "padding"),
        (lambda s: Sender("reachfive", profile="accredit-like"), "accessrc only"),
        (lambda s: s.request("Entity.Event"), "unknown event"),
        (lambda s: s.request("DELIVERY_REQUEST_SENT", example="nope"), "no example"),
        (lambda s: s.request("DELIVERY_REQUEST_SENT", set={"no.such": 1}), "does not exist"),
        (lambda s: s.attempts("DELIVERY_REQUEST_SENT", n=7), "at most 6"),
        (lambda s: s.attempts("DELIVERY_REQUEST_SENT", n=0), "n must be"),
        (lambda s: s.fault("slow_answer", "DELIVERY_REQUEST_SENT"), "fault must be one of"),
        (lambda s: Sender("accessrc").fault("bad_signature", "DELIVERY_REQUEST_SENT"), "needs credentials"),
        (lambda s: s.public_key_pem, "only accredit"),
        # wrong types: a clear message, never an internal TypeError/AttributeError
        (lambda s: Sender("accessrc", hmac_secret=123), "hmac_secret must be a string, got int"),  # type: ignore
        (lambda s: Sender("accessrc", basic=("u",)), "basic takes"),  # type: ignore
        (lambda s: Sender("accessrc", basic=42), "basic must be a string"),  # type: ignore
        (lambda s: Sender("accredit", keys_dir=3), "keys_dir must be a path"),  # type: ignore
        (lambda s: Sender(None), "platform must be one of"),  # type: ignore
        (lambda s: s.request(None), "event must be an event name"),
        (lambda s: s.request("DELIVERY_REQUEST_SENT", seed="x"), "seed must be an integer, got str"),
        (lambda s: s.request("DELIVERY_REQUEST_SENT", seed=True), "seed must be an integer, got bool"),
        (lambda s: s.request("DELIVERY_REQUEST_SENT", example=3), "example must be a string"),
        (lambda s: s.request("DELIVERY_REQUEST_SENT", set=[("a", 1)]), "set must be a mapping"),
        (lambda s: s.request("DELIVERY_REQUEST_SENT", set={3: 1}), "a path must be a string"),
        (lambda s: s.request("DELIVERY_REQUEST_SENT", set={"programId": object()}), "not a JSON value"),
        (lambda s: s.request("DELIVERY_REQUEST_SENT", force="yes"), "force must be True or False"),
        (lambda s: s.attempts("DELIVERY_REQUEST_SENT", n="3"), "n must be an integer, got str"),
        (lambda s: s.verify({"x-signature": "a"}, "a str body"), "body must be the raw bytes"),
        (lambda s: s.verify(None, b"{}"), "headers must be a mapping"),
        (lambda s: s.verify({"x-signature": 3}, b"{}"), "headers must be a mapping"),
        # fault options: a path of the payload, the fault's own option, a value that makes the fault
        (lambda s: s.fault("missing_required_field", "DELIVERY_REQUEST_SENT", field="nope"), "field: path 'nope'"),
        (lambda s: s.fault("missing_required_field", "DELIVERY_REQUEST_SENT", field="a..b"), "field: path 'a..b'"),
        (lambda s: s.fault("tampered_body", "DELIVERY_REQUEST_SENT", tamper="nope"), "tamper: path 'nope' does not"),
        (lambda s: s.fault("tampered_body", "DELIVERY_REQUEST_SENT", tamper=""), "tamper must not be empty"),
        (lambda s: s.fault("bad_signature", "DELIVERY_REQUEST_SENT", size=5000), "size: only for the oversized_body"),
        (lambda s: s.fault("malformed_json", "DELIVERY_REQUEST_SENT", tamper="a"), "tamper: only for the tampered_b"),
        (lambda s: s.fault("oversized_body", "DELIVERY_REQUEST_SENT", field="a"), "field: only for the missing_req"),
        (lambda s: s.fault("oversized_body", "DELIVERY_REQUEST_SENT", size=-5), "size must be 1024..67108864"),
        (lambda s: s.fault("oversized_body", "DELIVERY_REQUEST_SENT", size="5"), "size must be an integer"),
        (lambda s: s.fault("wrong_content_type", "DELIVERY_REQUEST_SENT", content_type="application/json"), "right"),
        (
            lambda s: s.fault("wrong_content_type", "DELIVERY_REQUEST_SENT", content_type="Application/JSON; q=1"),
            "is the right Content-Type",
        ),
        (lambda s: s.fault("wrong_content_type", "DELIVERY_REQUEST_SENT", content_type="a\r\nb"), "control char"),
        (lambda s: s.fault(None, "DELIVERY_REQUEST_SENT"), "fault must be one of"),  # type: ignore
    ],
)
def test_bad_input_is_a_clear_value_error(build, message):
    sender = Sender("accessrc", hmac_secret=SECRET)
    with pytest.raises(SenderError, match=message) as caught:
        build(sender)
    assert isinstance(caught.value, ValueError)


def test_a_sender_never_shows_its_secret():
    assert SECRET not in repr(Sender("accessrc", hmac_secret=SECRET))


def test_a_sender_on_the_simulators_own_keys_warns_once_when_it_generates_a_pair(tmp_path, monkeypatch):
    """Issue 15: a new pair in the shared data folder is news (receivers holding the old key answer 401)."""
    import stat
    import warnings

    home = tmp_path / "home"
    monkeypatch.setenv("ACCESSRC_SIM_HOME", str(home))
    monkeypatch.delenv("ACCESSRC_SIM_KEYS_DIR", raising=False)
    with pytest.warns(UserWarning, match=r"generated a new RSA key pair in .*; its public key: accessrc-sim keys show"):
        pem = Sender("accredit").public_key_pem
    assert (home / "keys" / signing.PUBLIC_FILE).read_text() == pem
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert Sender("accredit").public_key_pem == pem  # the same pair, no warning
        assert Sender("accredit", keys_dir=tmp_path / "own").public_key_pem  # a folder of its own: quiet


# -- more bad input: keys, tampered_body without a body signature, schema problems -------------------------------
@pytest.mark.parametrize("garbage", ["a file", "garbage pem"])
def test_an_unusable_keys_dir_is_a_sender_error(tmp_path, garbage):
    if garbage == "a file":
        keys_dir = tmp_path / "passwd"
        keys_dir.write_text("root:x:0:0::/root:/bin/sh\n")
        message = "cannot create the keys folder"
    else:
        keys_dir = tmp_path / "keys"
        keys_dir.mkdir()
        (keys_dir / signing.PRIVATE_FILE).write_text(
            "-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n"
        )
        message = "not an unencrypted PEM private key"
    sender = Sender("accredit", keys_dir=keys_dir)
    for use in (
        lambda: sender.public_key_pem,
        lambda: sender.request("Entity.Event"),
        lambda: sender.attempts("Entity.Event"),
        lambda: sender.fault("bad_signature", "Entity.Event"),
        lambda: sender.verify({"X-Signature": "AAAA"}, b"{}"),
    ):
        with pytest.raises(SenderError, match=f"keys_dir .*{message}"):
            use()


@pytest.mark.parametrize(
    "platform, auth, event",
    [
        ("accessrc", {}, "DELIVERY_REQUEST_SENT"),
        ("accessrc", {"api_key_header": "X-API-Key", "api_key": "k-1"}, "DELIVERY_REQUEST_SENT"),
        ("accessrc", {"basic": "user:pass"}, "DELIVERY_REQUEST_SENT"),
        ("reachfive", {"authorization": "Bearer t0k"}, "END_JOB_NOTIFICATION"),
        ("reachfive", {}, "END_JOB_NOTIFICATION"),
    ],
)
def test_tampered_body_needs_an_auth_that_covers_the_body(accessrc_sender, platform, auth, event):
    """A static credential does not cover the body: a correct receiver accepts a changed one, so there is no such
    fault to send. The message is the scenario loader's (one function says it: faults.body_not_covered)."""
    sender = accessrc_sender(platform, **auth)
    kind = sender.auth.kind
    with pytest.raises(SenderError) as caught:
        sender.fault("tampered_body", event)
    assert str(caught.value) == (
        f"tampered_body: {kind} auth does not cover the body, so a changed body cannot be detected; "
        "it needs rsa or hmac"
    )


def test_the_scenario_loader_says_the_same_about_tampered_body():
    from simulator.scenarios.loader import ScenarioFileError, load_text

    text = (
        "name: t\nplatform: accessrc\nurl: http://127.0.0.1:1/\n"
        "auth: {kind: header, header_name: X-Key, header_value: k}\n"
        "steps:\n  - fault: tampered_body\n    event: DELIVERY_REQUEST_SENT\n"
        "  - fault: bad_signature\n    event: DELIVERY_REQUEST_SENT\n    size: 5000\n"
    )
    with pytest.raises(ScenarioFileError) as caught:
        load_text(text, "t.yaml")
    message = str(caught.value)
    assert "fault tampered_body: header auth does not cover the body" in message
    assert "size: only for the oversized_body fault" in message


def test_a_schema_error_lists_each_problem_and_force_builds_it_anyway(accessrc_sender):
    sender = accessrc_sender("accessrc", hmac_secret=SECRET)
    with pytest.raises(SenderError) as caught:
        sender.request("DELIVERY_CHANNEL_STATUS_UPDATED", set={"status": "Bogus"})
    assert "\n  - status: 'Bogus' is not one of ['Approved', 'Rejected']" in str(caught.value)
    assert "force=True" in str(caught.value)
    forced = sender.request("DELIVERY_CHANNEL_STATUS_UPDATED", set={"status": "Bogus", "extra.field": 1}, force=True)
    assert (
        forced.payload is not None and forced.payload["status"] == "Bogus" and forced.payload["extra"] == {"field": 1}
    )
    assert json.loads(forced.body) == forced.payload
    sender.verify(forced.headers, forced.body)  # still signed: only the receiver's validation can refuse it
    assert len(sender.attempts("DELIVERY_CHANNEL_STATUS_UPDATED", set={"status": "Bogus"}, force=True, n=2)) == 2


def test_strict_refuses_values_that_break_an_inferred_rule(accessrc_sender):
    sender = accessrc_sender("accessrc", hmac_secret=SECRET)
    approved_with_reason = {"status": "Approved", "message": "why"}
    assert sender.request("DELIVERY_CHANNEL_STATUS_UPDATED", set=approved_with_reason).payload is not None
    with pytest.raises(SenderError, match=r"(?s)--strict.*accessrc\.dcsu\.message-by-status"):
        sender.request("DELIVERY_CHANNEL_STATUS_UPDATED", set=approved_with_reason, strict=True)


def test_fault_options_change_what_they_name(accessrc_sender):
    sender = accessrc_sender("accessrc", hmac_secret=SECRET)
    genuine = sender.request("DELIVERY_CHANNEL_STATUS_UPDATED", seed=4)
    tampered = sender.fault("tampered_body", "DELIVERY_CHANNEL_STATUS_UPDATED", seed=4, tamper="message")
    assert tampered.payload is not None and genuine.payload is not None
    assert {k for k in genuine.payload if genuine.payload[k] != tampered.payload[k]} == {"message"}
    missing = sender.fault("missing_required_field", "DELIVERY_CHANNEL_STATUS_UPDATED", seed=4, field="status")
    assert missing.payload is not None and set(genuine.payload) - set(missing.payload) == {"status"}
    sender.verify(missing.headers, missing.body)


# -- events, examples, User-Agent -------------------------------------------------------------------------------
def test_events_and_examples_list_what_a_request_can_name(accessrc_sender):
    from simulator import catalogue

    for platform in ("accessrc", "accredit", "reachfive"):
        sender = accessrc_sender(platform)
        assert sender.events() == [e.name for e in catalogue.EVENTS if e.platform == platform]
        for event in sender.events():
            for name in sender.examples(event):
                assert sender.request(event, example=name).payload == catalogue.example(event, name)
    assert "seed-001" in accessrc_sender("accessrc").examples("PROGRAM_ELIGIBILITY_EVALUATED")
    with pytest.raises(SenderError, match="unknown event"):
        accessrc_sender("accessrc").examples("Entity.Event")


def test_the_user_agent_is_the_wire_one_and_an_inferred_rule(accessrc_sender):
    from simulator import delivery, rules

    for platform, event in (
        ("accessrc", "DELIVERY_REQUEST_SENT"),
        ("accredit", "Entity.Event"),
        ("reachfive", "END_JOB_NOTIFICATION"),
    ):
        assert accessrc_sender(platform).request(event).headers["User-Agent"] == delivery.USER_AGENT
        rule = rules.get(f"{platform}.headers.user-agent")
        assert rule.source == "inferred" and "User-Agent: accessrc-sim/" in rule.text


# -- the new-key warning points at the caller's line ------------------------------------------------------------
def test_the_new_key_warning_points_at_the_callers_line_for_every_use(tmp_path, monkeypatch):
    import inspect
    import warnings

    monkeypatch.delenv("ACCESSRC_SIM_KEYS_DIR", raising=False)
    uses = {
        "public_key_pem": lambda s: s.public_key_pem,
        "request": lambda s: s.request("Entity.Event"),
        "attempts": lambda s: s.attempts("Entity.Event", n=2),
        "fault": lambda s: s.fault("wrong_key", "Entity.Event"),
        "verify": lambda s: s.verify({"X-Signature": "AAAA"}, b"{}"),
    }
    for i, (name, use) in enumerate(uses.items()):
        monkeypatch.setenv("ACCESSRC_SIM_HOME", str(tmp_path / f"home{i}"))
        sender = Sender("accredit")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                use(sender)
            except VerificationError:
                pass  # verify: the pair is made, then the made-up signature is refused
        (warning,) = [w for w in caught if "generated a new RSA key pair" in str(w.message)]
        assert (warning.filename, warning.lineno) == (__file__, inspect.getsourcelines(use)[1]), name


def test_set_may_add_a_field_the_documents_do_not_show_with_a_note_and_strict_refuses_it():
    """Issue 12: as `send --set`, an added field is built and signed, listed in `notes`; strict=True refuses it."""
    sender = Sender("accessrc", hmac_secret="x")
    req = sender.request("DELIVERY_CHANNEL_STATUS_UPDATED", seed=1, set={"extraField": 1})
    assert req.payload["extraField"] == 1 and b'"extraField":1' in req.body
    assert req.notes == (
        "extraField: extra field 'extraField', not in the documents (inferred rule accessrc.payload.no-extra-fields)",
    )
    sender.verify(req.headers, req.body)
    assert sender.request("DELIVERY_CHANNEL_STATUS_UPDATED", seed=1).notes == ()
    with pytest.raises(SenderError, match=r"inferred rule accessrc\.payload\.no-extra-fields"):
        sender.request("DELIVERY_CHANNEL_STATUS_UPDATED", seed=1, set={"extraField": 1}, strict=True)
