import json

import pytest
import requests

from simulator import catalogue, signing
from simulator.auth import Auth
from simulator.delivery import Deliverer, new_job


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


def test_wrong_content_type_is_refused(start_receiver):
    srv = start_receiver("accessrc")
    body = catalogue.body_bytes(catalogue.generate("DELIVERY_REFUND_REQUESTED", seed=1))
    r = requests.post(srv.url, data=body, headers={"Content-Type": "text/plain"}, timeout=5)
    assert r.status_code == 400


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
