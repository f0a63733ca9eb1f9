"""Accredit's subscription API against a real receiver that verifies X-Signature with the returned signatureKey."""

from __future__ import annotations

import pytest
from sim_helpers import BEARER, XKEY, count_rows, wait_job_final

from simulator.signing import rsa_verify

BASE = "/api/webhookSubscription"
EVENT = "BadgeExportZipFile.Created"


def test_events_lists_the_accredit_catalogue(client):
    resp = client.get(f"{BASE}/events", headers=BEARER)
    assert resp.status_code == 200
    assert {e["event"] for e in resp.get_json()} == {"Entity.Event", EVENT}


def test_create_answers_id_event_url_and_the_public_key_as_pem(client, keys):
    resp = client.post(BASE, headers=BEARER, json={"event": EVENT, "callbackUrl": "http://127.0.0.1:9/hook"})
    assert resp.status_code == 200
    body = resp.get_json()
    assert body["event"] == EVENT and body["callbackUrl"] == "http://127.0.0.1:9/hook"
    assert body["signatureKey"] == keys.public_pem and body["signatureKey"].startswith("-----BEGIN PUBLIC KEY-----")
    assert client.get(f"{BASE}/{body['id']}", headers=BEARER).get_json()["id"] == body["id"]
    assert [s["id"] for s in client.get(BASE, headers=BEARER).get_json()] == [body["id"]]


def test_pascal_case_fields_are_accepted(client):
    resp = client.post(BASE, headers=BEARER, json={"Event": EVENT, "CallbackUrl": "http://127.0.0.1:9/p"})
    assert resp.status_code == 200 and resp.get_json()["callbackUrl"] == "http://127.0.0.1:9/p"


def test_duplicate_subscription_is_acr_02_003_002(client, app):
    body = {"event": EVENT, "callbackUrl": "http://127.0.0.1:9/hook"}
    assert client.post(BASE, headers=BEARER, json=body).status_code == 200
    resp = client.post(BASE, headers=BEARER, json=body)
    assert resp.status_code == 400 and resp.get_json()["code"] == "ACR_02.003.002"
    assert count_rows(app, "subscriptions") == 1


@pytest.mark.parametrize(
    "payload, code, field",
    [
        ({"event": "Nope.Event", "callbackUrl": "http://127.0.0.1:9/h"}, "ACR_02.003.001", "event"),
        (
            {"event": "DELIVERY_CHANNEL_STATUS_UPDATED", "callbackUrl": "http://127.0.0.1:9/h"},
            "ACR_02.003.001",
            "event",
        ),
        ({"callbackUrl": "http://127.0.0.1:9/h"}, "ACR_01.000.001", "event"),
        ({"event": EVENT}, "ACR_01.000.001", "callbackUrl"),
        ({"event": EVENT, "callbackUrl": "ftp://127.0.0.1/h"}, "ACR_01.000.003", "callbackUrl"),
        ({"event": EVENT, "callbackUrl": "not a url"}, "ACR_01.000.003", "callbackUrl"),
        ({"event": EVENT, "callbackUrl": "http://192.0.2.10/h"}, "ACR_01.000.003", "callbackUrl"),
        ({"event": EVENT, "callbackUrl": "http://127.0.0.1:9/h", "colour": "red"}, "ACR_01.000.000", "colour"),
    ],
)
def test_bad_input_is_400_with_the_acr_code_and_field_and_stores_nothing(client, app, payload, code, field):
    resp = client.post(BASE, headers=BEARER, json=payload)
    assert resp.status_code == 400
    assert resp.get_json()["code"] == code and resp.get_json()["field"] == field
    assert count_rows(app, "subscriptions") == 0


@pytest.mark.parametrize("raw", ["{bad", "[1, 2]", ""])
def test_bad_json_is_acr_01_000_000(client, app, raw):
    resp = client.post(BASE, headers={**BEARER, "Content-Type": "application/json"}, data=raw)
    assert resp.status_code == 400 and resp.get_json()["code"] == "ACR_01.000.000"
    assert resp.get_json()["field"] == "body"
    assert count_rows(app, "subscriptions") == 0


def test_unknown_subscription_is_acr_02_003_000(client):
    for method in (client.get, client.delete):
        resp = method(f"{BASE}/no-such-id", headers=BEARER)
        assert resp.status_code == 400 and resp.get_json()["code"] == "ACR_02.003.000"


def test_delete_removes_the_subscription(client):
    sub = client.post(BASE, headers=BEARER, json={"event": EVENT, "callbackUrl": "http://127.0.0.1:9/h"}).get_json()
    assert client.delete(f"{BASE}/{sub['id']}", headers=BEARER).status_code == 200
    assert client.get(BASE, headers=BEARER).get_json() == []


@pytest.mark.parametrize("headers", [{}, XKEY, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic eDp5"}])
def test_bearer_key_is_required(client, headers):
    resp = client.get(f"{BASE}/events", headers=headers)
    assert resp.status_code == 401 and resp.get_json()["code"] == "ACR_00.001.002"


def test_sample_notification_arrives_signed_with_the_subscription_key(client, receiver):
    sub = client.post(BASE, headers=BEARER, json={"event": EVENT, "callbackUrl": "http://127.0.0.1:9/h"}).get_json()
    target = receiver("accredit", public_key_pem=sub["signatureKey"])
    resp = client.post(
        f"{BASE}/triggerSampleEventNotification",
        headers=BEARER,
        json={"event": EVENT, "callbackUrl": target.url + "/baseWebhookNotification"},
    )
    assert resp.status_code == 200
    job = wait_job_final(client, resp.get_json()["jobId"])
    assert job["state"] == "succeeded" and job["source"] == "sample"
    [attempt] = job["attempts"]
    assert attempt["request_headers"]["X-JobId"] == job["id"] and attempt["request_headers"]["X-JobAttempt"] == "0"
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    rsa_verify(
        load_pem_public_key(sub["signatureKey"].encode()),
        attempt["request_body"].encode(),
        attempt["request_headers"]["X-Signature"],
    )
    assert [(r.status, r.outcome) for r in target.received] == [(200, "accepted")]
