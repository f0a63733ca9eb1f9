"""Accredit's subscription API against a real receiver that verifies X-Signature with the returned signatureKey."""

from __future__ import annotations

import re

import pytest
from sim_helpers import BEARER, XKEY, count_rows, wait_job_final

from simulator import rules
from simulator.signing import rsa_verify

RULE_ID = re.compile(r"\brule (accredit\.[A-Za-z0-9_.-]*[A-Za-z0-9])")

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
    assert "rule accredit.api.webhook-subscription.duplicate" in resp.get_json()["message"]
    assert count_rows(app, "subscriptions") == 1
    # the same values: another tenant is another subscription
    assert client.post(BASE, headers=BEARER, json={**body, "tenantId": "t-1"}).status_code == 200
    again = client.post(BASE, headers=BEARER, json={**body, "tenantId": "t-1"})
    assert again.status_code == 400 and again.get_json()["code"] == "ACR_02.003.002"
    assert count_rows(app, "subscriptions") == 2


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
    ],
)
def test_bad_input_is_400_with_the_acr_code_and_field_and_stores_nothing(client, app, payload, code, field):
    resp = client.post(BASE, headers=BEARER, json=payload)
    assert resp.status_code == 400
    assert resp.get_json()["code"] == code and resp.get_json()["field"] == field
    cited = RULE_ID.search(resp.get_json()["message"])  # a refusal applies a documented rule and names it
    assert cited and rules.get(cited.group(1)).documented, resp.get_json()["message"]
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
        assert "rule accredit.api.webhook-subscription.no-subscription" in resp.get_json()["message"]


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


# -- issue 12: the webhookSubscription API's rules; inferred ones advise, never refuse -------------------------------
def advised(resp) -> set[str]:
    assert resp.status_code == 200, resp.get_json()
    ids = {m.group(1) for a in resp.get_json().get("advice") or [] for m in RULE_ID.finditer(a)}
    assert all(not rules.get(i).documented for i in ids), ids
    return ids


def test_an_unknown_field_is_ignored_with_advice_kept_in_the_call_log(client, app):
    body = {"event": EVENT, "callbackUrl": "http://127.0.0.1:9/h", "colour": "red"}
    resp = client.post(BASE, headers=BEARER, json=body)
    assert advised(resp) == {"accredit.api.webhook-subscription.unknown-fields"}
    assert "'colour'" in resp.get_json()["advice"][0] and count_rows(app, "subscriptions") == 1
    assert "advice" not in client.get(f"{BASE}/{resp.get_json()['id']}", headers=BEARER).get_json()
    calls = client.get("/api/calls", headers=XKEY).get_json()["data"]
    [call] = [c for c in calls if c["path"] == BASE and c["method"] == "POST"]
    assert "accredit.api.webhook-subscription.unknown-fields" in str(call), call


def test_a_long_or_odd_tenant_id_is_kept_or_ignored_with_advice(client):
    long = client.post(
        BASE, headers=BEARER, json={"event": EVENT, "callbackUrl": "http://127.0.0.1:9/a", "tenantId": "t" * 129}
    )
    assert advised(long) == {"accredit.api.webhook-subscription.tenant-id"} and long.get_json()["tenantId"] == "t" * 129
    number = client.post(
        BASE, headers=BEARER, json={"event": EVENT, "callbackUrl": "http://127.0.0.1:9/b", "TenantId": 42}
    )
    assert advised(number) == {"accredit.api.webhook-subscription.tenant-id"} and number.get_json()["tenantId"] == "42"
    odd = client.post(
        BASE, headers=BEARER, json={"event": EVENT, "callbackUrl": "http://127.0.0.1:9/c", "tenantId": []}
    )
    assert advised(odd) == {"accredit.api.webhook-subscription.tenant-id"} and odd.get_json()["tenantId"] is None
    fine = client.post(
        BASE, headers=BEARER, json={"event": EVENT, "callbackUrl": "http://127.0.0.1:9/d", "tenantId": "t"}
    )
    assert advised(fine) == set() and "advice" not in fine.get_json()


def test_trigger_sample_ignores_unknown_fields_with_advice(client):
    resp = client.post(
        f"{BASE}/triggerSampleEventNotification",
        headers=BEARER,
        json={"event": EVENT, "callbackUrl": "http://127.0.0.1:9/h", "seed": 3},
    )
    assert advised(resp) == {"accredit.api.webhook-subscription.unknown-fields"} and resp.get_json()["jobId"]


def test_the_webhook_subscription_rules_are_in_the_registry_with_their_sources():
    expected = {
        "accredit.api.webhook-subscription.create": "documented",
        "accredit.api.webhook-subscription.callback-url": "documented",
        "accredit.api.webhook-subscription.unknown-event": "documented",
        "accredit.api.webhook-subscription.duplicate": "documented",
        "accredit.api.webhook-subscription.no-subscription": "documented",
        "accredit.api.webhook-subscription.fields": "inferred",
        "accredit.api.webhook-subscription.unknown-fields": "inferred",
        "accredit.api.webhook-subscription.tenant-id": "inferred",
        "accredit.api.webhook-subscription.routes": "inferred",
    }
    assert {rule_id: rules.get(rule_id).source for rule_id in expected} == expected
    for rule_id, code in [
        ("unknown-event", "ACR_02.003.001"),
        ("duplicate", "ACR_02.003.002"),
        ("no-subscription", "ACR_02.003.000"),
    ]:
        rule = rules.get(f"accredit.api.webhook-subscription.{rule_id}")
        assert code in rule.quote and code in rule.text
