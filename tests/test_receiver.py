import hashlib
import hmac
import json
from pathlib import Path

import pytest
import requests

from simulator import catalogue, rules, services, signing
from simulator.auth import Auth
from simulator.delivery import Deliverer, new_job
from simulator.receiver import (
    MAX_BODY,
    STRICT_MAX_BODY,
    body_limit_rule,
    content_type_rule,
)

HMAC = Auth("hmac", secret="abcd1234")


def post(url, body, headers):
    return requests.post(url, data=body, headers={"Content-Type": "application/json", **headers}, timeout=5)


def signed(keys, body):
    return {"X-Signature": signing.rsa_sign(keys.private_key, body), "X-JobId": "j-1", "X-JobAttempt": "0"}


def test_accredit_valid_signature_is_accepted_with_the_success_envelope(start_receiver, keys):
    srv = start_receiver("accredit")
    body = catalogue.body_bytes(catalogue.generate("BadgeExportZipFile.Created", seed=1))
    r = post(srv.url + "/baseWebhookNotification", body, signed(keys, body))
    assert r.status_code == 200
    assert r.json() == {"status": "success", "message": "Callback successfully received", "data": {}}


def test_bad_or_missing_signature_answers_401_envelope(start_receiver, keys):
    srv = start_receiver("accredit")
    body = catalogue.body_bytes(catalogue.generate("Entity.Event", seed=1))
    tampered = body.replace(b"Entity", b"Entitx")
    r = post(srv.url, tampered, signed(keys, body))
    assert r.status_code == 401
    assert r.json() == {
        "status": "failed",
        "error": {"code": 401, "message": "Verification failed", "type": "Unauthorized"},
    }
    assert post(srv.url, body, {}).status_code == 401


def test_invalid_body_answers_400_envelope(start_receiver, keys):
    srv = start_receiver("accredit")
    for body in (b'{"Event": "BadgeExportZipFile.Created"', b'{"Event":"BadgeExportZipFile.Created"}'):
        r = post(srv.url, body, signed(keys, body))
        assert r.status_code == 400
        assert r.json()["error"] == {
            "code": 400,
            "message": "Validation failed. Please check your input.",
            "type": "BadRequest",
        }


@pytest.mark.parametrize("body", [b"[" * 100_000, b'{"a":' * 5000 + b"1" + b"}" * 5000], ids=["100k [", "5000 deep"])
def test_a_body_nested_deeper_than_64_is_a_400_not_a_500(start_receiver, keys, body):
    """Issue 14, item 8: json.loads recursed once per level; the reference receiver answered 500 with a traceback."""
    srv = start_receiver("accredit")
    r = post(srv.url, body, signed(keys, body))
    assert r.status_code == 400 and r.json()["error"]["type"] == "BadRequest"
    assert srv.received[-1].outcome == "JSON nested deeper than 64 levels (the limit)"


def test_accessrc_reply_echoes_the_documented_data_and_dedupes_job_ids(start_receiver):
    auth = Auth("hmac", secret="abcd1234")
    srv = start_receiver("accessrc", auth)
    payload = catalogue.generate("DELIVERY_CHANNEL_STATUS_UPDATED", seed=9)
    body = catalogue.body_bytes(payload)
    headers = {**auth.headers(body), "X-JobId": "job-7", "X-JobAttempt": "0"}
    first = post(srv.url + "/hook", body, headers)
    assert first.status_code == 200
    assert first.json()["data"] == {"providerDeliveryChannelId": payload["providerDeliveryChannelId"]}
    again = post(srv.url + "/hook", body, {**headers, "X-JobAttempt": "1"})
    assert again.status_code == 200 and again.json() == first.json()
    outcomes = [r.outcome for r in srv.received]
    assert outcomes[0] == "accepted" and outcomes[1].startswith("duplicate")


def test_accessrc_event_is_told_from_the_body_shape(start_receiver):
    srv = start_receiver("accessrc")
    for name in (
        "DELIVERY_REFUND_REQUESTED",
        "APPLICATIONS_IMPORT_RESULT",
        "PROGRAM_ELIGIBILITY_EVALUATED",
        "DELIVERY_REQUEST_SENT",
        "PROGRAM_PULL_FORM",
    ):
        body = catalogue.body_bytes(catalogue.generate(name, seed=2))
        assert post(srv.url, body, {"X-JobId": name}).status_code == 200
    assert [r.event for r in srv.received] == [
        "DELIVERY_REFUND_REQUESTED",
        "APPLICATIONS_IMPORT_RESULT",
        "PROGRAM_ELIGIBILITY_EVALUATED",
        "DELIVERY_REQUEST_SENT",
        "PROGRAM_PULL_FORM",
    ]


def test_fail_first_then_success_through_the_real_deliverer(start_receiver, keys, store):
    srv = start_receiver("accredit", fail_first=2)
    body = catalogue.body_bytes(catalogue.generate("Entity.Event", seed=4))
    job = new_job("Entity.Event", "accredit", srv.url, body, Auth("rsa"), delays=(0, 0, 0, 0, 0))
    Deliverer(store, keys).submit(job)
    assert job.state == "succeeded" and job.attempts_made == 3
    assert [(r.attempt, r.status) for r in srv.received] == [("0", 500), ("1", 500), ("2", 200)]
    assert json.loads(store.attempts(job.id)[0].response_body)["error"]["type"] == "Exception"


def test_reachfive_authorization_enforced(start_receiver):
    srv = start_receiver("reachfive", Auth("authorization", authorization="Bearer abc"))
    body = catalogue.body_bytes(catalogue.generate("END_JOB_NOTIFICATION", seed=1))
    assert post(srv.url, body, {"Authorization": "Bearer abc"}).status_code == 200
    assert post(srv.url, body, {"Authorization": "Bearer abd"}).status_code == 401


@pytest.fixture
def hmac_receiver(start_receiver):
    """hmac_receiver(strict) -> the reference receiver for AccessRC with HMAC (secret abcd1234), `.received`."""
    return lambda strict: start_receiver("accessrc", auth=HMAC, strict=strict)


def hmac_post(url, body, content_type):
    headers = {"X-Signature": "sha256=" + hmac.new(b"abcd1234", body, hashlib.sha256).hexdigest()}
    if content_type is not None:
        headers["Content-Type"] = content_type
    return requests.post(url, data=body, headers=headers, timeout=10)


@pytest.mark.parametrize("content_type", ["text/plain", None])
@pytest.mark.parametrize("strict", [False, True])
def test_a_signed_json_body_under_another_content_type_is_advice_unless_strict(hmac_receiver, strict, content_type):
    """Issue 12: no document states the Content-Type (`*.headers.content-type` is inferred), so refusing a JSON body
    for it is our choice (accessrc.conformance.content-type): logged as advice, refused only with --strict."""
    srv = hmac_receiver(strict)
    body = catalogue.body_bytes(catalogue.generate("DELIVERY_REFUND_REQUESTED", seed=1))
    r = hmac_post(srv.url + "/hook", body, content_type)
    [got] = srv.received
    shown = "'text/plain'" if content_type else "(none)"
    if strict:
        assert r.status_code == 400 and r.json()["status"] == "failed"
        assert got.outcome == (
            f"content type {shown} is not JSON (--strict; inferred rule accessrc.conformance.content-type)"
        )
    else:
        assert r.status_code == 200 and r.json()["data"] == {"deliveryId": json.loads(body)["deliveryId"]}
        assert got.outcome == "accepted" and got.advice == [
            f"content type {shown} is not JSON; read as JSON all the same "
            "(inferred rule accessrc.conformance.content-type)"
        ]
    assert hmac_post(srv.url + "/hook", b"not json", "text/plain").status_code == 400  # not JSON at all: refused


@pytest.mark.parametrize("strict", [False, True])
def test_a_body_the_simulator_generates_is_taken_unless_strict_refuses_it_over_256_kib(hmac_receiver, strict):
    """Issue 12: the documents set no size limit; 256 KiB is our choice (accessrc.conformance.body-limit): by default
    the receiver takes up to 1 MiB, the most the simulator generates; past that, 413 always."""
    srv = hmac_receiver(strict)
    body = catalogue.body_bytes(catalogue.generate("PROGRAM_ELIGIBILITY_EVALUATED", seed=3, count=200))
    assert STRICT_MAX_BODY < len(body) < MAX_BODY
    r = hmac_post(srv.url + "/hook", body, "application/json")
    [got] = srv.received
    if strict:
        assert r.status_code == 413 and r.json()["error"]["type"] == "PayloadTooLarge"
        assert got.outcome == (
            f"too large: {len(body)} bytes (limit {STRICT_MAX_BODY}, --strict; "
            "inferred rule accessrc.conformance.body-limit)"
        )
    else:
        assert r.status_code == 200 and got.outcome == "accepted"
        assert got.advice[0] == (
            f"body of {len(body)} bytes is over {STRICT_MAX_BODY} (--strict: 413) "
            "(inferred rule accessrc.conformance.body-limit)"
        )
    huge = b'{"pad":"' + b"x" * MAX_BODY + b'"}'
    r = hmac_post(srv.url + "/hook", huge, "application/json")
    assert r.status_code == 413 and srv.received[-1].outcome.startswith(f"too large: {len(huge)} bytes (limit ")


def test_the_default_body_limit_is_the_simulators_own_generated_body_cap():
    assert MAX_BODY == services.MAX_GENERATED_BODY and STRICT_MAX_BODY == 256 * 1024
    for platform in catalogue.PLATFORMS:
        for rule_id in (body_limit_rule(platform), content_type_rule(platform)):
            assert rules.get(rule_id).source == "inferred" and rules.get(rule_id).reason


AUTH_FOR = {
    "accredit": Auth("rsa"),
    "accessrc": Auth("hmac", secret="abcd1234"),
    "reachfive": Auth("authorization", authorization="Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="),
}


@pytest.mark.parametrize("spec", catalogue.EVENTS, ids=lambda s: s.name)
def test_every_event_is_accepted_by_the_reference_receiver(spec, start_receiver, keys, store):
    srv = start_receiver(spec.platform, AUTH_FOR[spec.platform])
    body = catalogue.body_bytes(catalogue.generate(spec.name))
    job = new_job(spec.name, spec.platform, srv.url + "/hook", body, AUTH_FOR[spec.platform], delays=(0,))
    Deliverer(store, keys).submit(job)
    assert job.state == "succeeded", store.attempts(job.id)[-1].response_body
    [got] = srv.received
    assert got.event == spec.name and got.outcome == "accepted"


@pytest.mark.parametrize("strict", [False, True])
def test_receiver_defences_against_the_reference_receiver_warns_by_default_and_passes_strict(
    hmac_receiver, tmp_path, keys_dir, strict
):
    """The shipped receiver-defences scenario: the default receiver takes a JSON body under text/plain (an inferred
    check: WARN, still 0 failed); `receiver --strict` refuses it, so `run --strict` passes every step."""
    from click.testing import CliRunner

    from simulator.cli import main

    srv = hmac_receiver(strict)
    scenario = Path(__file__).resolve().parents[1] / "scenarios" / "accessrc" / "receiver-defences.yaml"
    args = ["run", str(scenario), "--var", f"RECEIVER_URL={srv.url}/hook", "--db", str(tmp_path / "r.db")]
    result = CliRunner().invoke(main, [*args, "--keys-dir", str(keys_dir), *(["--strict"] if strict else [])])
    assert result.exit_code == 0, result.output
    if strict:
        assert "12 passed, 0 failed\n" in result.output
    else:
        assert "11 passed, 0 failed, 1 warned" in result.output
        assert "WARN  wrong_content_type" in result.output and "accessrc.conformance.content-type" in result.output
    assert [r.status for r in srv.received if r.outcome.startswith("too large")] == [413]  # 2 MiB: refused always


@pytest.mark.parametrize("strict", [False, True])
def test_an_accredit_timestamp_without_a_zone_is_advice_unless_strict(start_receiver, keys, strict):
    """.NET's zone-less DateTime (2025-03-18T14:02:45.9133333) is ISO 8601 (documented); that it carries Z or an
    offset is our reading of "UTC" (accredit.payload.timestamp-zone, inferred): accepted with advice, 400 strict."""
    srv = start_receiver("accredit", strict=strict)
    payload = {**catalogue.generate("BadgeExportZipFile.Created", seed=1), "Timestamp": "2025-03-18T14:02:45.9133333"}
    body = catalogue.body_bytes(payload)
    r = post(srv.url + "/baseWebhookNotification", body, signed(keys, body))
    [seen] = srv.received
    assert rules.get("accredit.payload.timestamp-zone").source == "inferred"
    if strict:
        assert r.status_code == 400 and seen.status == 400, r.text  # the documented envelope
        assert any(
            "timestamp-zone" in p for p in catalogue.validate("BadgeExportZipFile.Created", payload, strict=True)
        )
    else:
        assert r.status_code == 200, r.text
        assert any("(inferred rule accredit.payload.timestamp-zone)" in a for a in seen.advice), seen.advice
    assert catalogue.validate("BadgeExportZipFile.Created", payload) == []  # the documented rule: ISO 8601
    assert catalogue.validate("BadgeExportZipFile.Created", {**payload, "Timestamp": "18/03/2025 14:02"})
    zoned = {**payload, "Timestamp": "2025-03-18T14:02:45.913+01:00"}
    assert not any(a.rule.endswith("timestamp-zone") for a in catalogue.advise("BadgeExportZipFile.Created", zoned))
