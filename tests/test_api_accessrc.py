"""AccessRC's Subscribe/Unsubscribe/GetLookUpValues, with deliveries checked by a receiver using each auth type."""

from __future__ import annotations

import pytest
from sim_helpers import BEARER, XKEY, count_rows, wait_job_final

from simulator.auth import Auth

EVENT = "DELIVERY_CHANNEL_STATUS_UPDATED"


def subscribe(client, body):
    return client.post("/api/Event/Subscribe", headers=XKEY, json=body)


@pytest.mark.parametrize(
    "auth_json, auth",
    [
        (None, Auth("none")),
        (
            {"type": "header", "headerName": "X-API-Key", "headerValue": "k-123"},
            Auth("header", header_name="X-API-Key", header_value="k-123"),
        ),
        (
            {"type": "basic", "username": "webhook-user", "password": "s3cr3t"},
            Auth("basic", username="webhook-user", password="s3cr3t"),
        ),
        ({"type": "hmac", "secret": "abcd1234"}, Auth("hmac", secret="abcd1234")),
    ],
)
def test_each_documented_auth_reaches_a_verifying_receiver(client, receiver, auth_json, auth):
    target = receiver("accessrc", auth=auth)
    resp = subscribe(client, {"eventType": EVENT, "callbackUrl": target.url + "/hooks/arc", "auth": auth_json})
    assert resp.status_code == 200
    body = resp.get_json()
    assert body["status"] == "success" and body["error"] is None
    data = body["data"]
    assert data["message"] == "Webhook successfully subscribed" and data["eventType"] == EVENT
    assert data["callbackUrl"] == target.url + "/hooks/arc" and data["date"].endswith("Z")
    job = client.post(f"/api/subscriptions/{data['subscriptionId']}/fire", headers=XKEY).get_json()["data"]
    job = wait_job_final(client, job["id"])
    assert job["state"] == "succeeded", job
    assert [r.outcome for r in target.received] == ["accepted"]


def test_the_documented_json_patch_content_type_is_accepted(client):
    resp = client.post(
        "/api/Event/Subscribe",
        headers={**XKEY, "Content-Type": "application/json-patch+json"},
        data='{"eventType": "DELIVERY_REFUND_REQUESTED", "callbackUrl": "http://127.0.0.1:9/h", "auth": null}',
    )
    assert resp.status_code == 200 and resp.get_json()["data"]["eventType"] == "DELIVERY_REFUND_REQUESTED"


def test_secrets_are_masked_in_the_log(client, receiver):
    target = receiver("accessrc", auth=Auth("basic", username="u", password="pw-secret"))
    sub = subscribe(
        client,
        {
            "eventType": EVENT,
            "callbackUrl": target.url + "/h",
            "auth": {"type": "basic", "username": "u", "password": "pw-secret"},
        },
    ).get_json()
    job = client.post(f"/api/subscriptions/{sub['data']['subscriptionId']}/fire", headers=XKEY).get_json()["data"]
    job = wait_job_final(client, job["id"])
    assert job["attempts"][0]["request_headers"]["Authorization"] == "***"
    # a finished job keeps no credentials at all (issue 14, item 12): only their kind
    assert "pw-secret" not in str(job) and job["credentials_cleared"] is True
    assert job["auth"]["kind"] == "basic" and "password" not in job["auth"]


def test_subscribing_again_replaces_url_and_keeps_the_id(client, app):
    first = subscribe(client, {"eventType": EVENT, "callbackUrl": "http://127.0.0.1:9/a"}).get_json()["data"]
    second = subscribe(
        client, {"eventType": EVENT, "callbackUrl": "http://127.0.0.1:9/b", "auth": {"type": "hmac", "secret": "x"}}
    ).get_json()["data"]
    assert second["subscriptionId"] == first["subscriptionId"] and second["callbackUrl"].endswith("/b")
    assert count_rows(app, "subscriptions") == 1


def test_planned_event_is_refused_by_default(client):
    resp = subscribe(client, {"eventType": "APPLICATIONS_IMPORT_RESULT", "callbackUrl": "http://127.0.0.1:9/h"})
    assert resp.status_code == 400
    assert resp.get_json()["error"]["field"] == "eventType" and "planned" in resp.get_json()["error"]["message"]


def test_planned_event_is_accepted_with_allow_planned(make_app, tmp_path):
    client = make_app(ALLOW_PLANNED=True, DB_PATH=str(tmp_path / "other.db")).test_client()
    resp = subscribe(client, {"eventType": "program.eligibility_evaluated", "callbackUrl": "http://127.0.0.1:9/h"})
    assert resp.status_code == 200 and resp.get_json()["data"]["eventType"] == "PROGRAM_ELIGIBILITY_EVALUATED"


@pytest.mark.parametrize(
    "payload, field",
    [
        ({"callbackUrl": "http://127.0.0.1:9/h"}, "eventType"),
        ({"eventType": "NULL", "callbackUrl": "http://127.0.0.1:9/h"}, "eventType"),
        ({"eventType": "BadgeExportZipFile.Created", "callbackUrl": "http://127.0.0.1:9/h"}, "eventType"),
        ({"eventType": EVENT}, "callbackUrl"),
        ({"eventType": EVENT, "callbackUrl": "http://127.0.0.1:9/" + "a" * 260}, "callbackUrl"),
        ({"eventType": EVENT, "callbackUrl": "mailto:x@y"}, "callbackUrl"),
        ({"eventType": EVENT, "callbackUrl": "http://127.0.0.1:9/h", "auth": "hmac"}, "auth"),
        ({"eventType": EVENT, "callbackUrl": "http://127.0.0.1:9/h", "auth": {"type": "oauth"}}, "auth.type"),
        ({"eventType": EVENT, "callbackUrl": "http://127.0.0.1:9/h", "auth": {"type": "hmac"}}, "auth.secret"),
        (
            {"eventType": EVENT, "callbackUrl": "http://127.0.0.1:9/h", "auth": {"type": "header", "headerValue": "v"}},
            "auth.headerName",
        ),
        (
            {"eventType": EVENT, "callbackUrl": "http://127.0.0.1:9/h", "auth": {"type": "basic", "username": "u"}},
            "auth.password",
        ),
        (
            {"eventType": EVENT, "callbackUrl": "http://127.0.0.1:9/h", "auth": {"type": "hmac", "secret": "s" * 513}},
            "auth.secret",
        ),
        ({"eventType": EVENT, "callbackUrl": "http://127.0.0.1:9/h", "extra": 1}, "extra"),
    ],
)
def test_validation_errors_name_the_field_and_store_nothing(client, app, payload, field):
    resp = subscribe(client, payload)
    assert resp.status_code == 400
    body = resp.get_json()
    assert body["status"] == "failed" and body["data"] is None
    assert body["error"]["code"] == 400 and body["error"]["type"] == "BadRequest"
    assert body["error"]["field"] == field, body
    assert count_rows(app, "subscriptions") == 0


def test_unsubscribe_removes_it_and_a_second_unsubscribe_is_400(client, app):
    sub = subscribe(client, {"eventType": EVENT, "callbackUrl": "http://127.0.0.1:9/h"}).get_json()["data"]
    resp = client.post("/api/Event/Unsubscribe", headers=XKEY, json={"eventType": EVENT})
    assert resp.status_code == 200
    data = resp.get_json()["data"]
    assert data["message"] == "Webhook successfully unsubscribed" and data["subscriptionId"] == sub["subscriptionId"]
    assert count_rows(app, "subscriptions") == 0
    again = client.post("/api/Event/Unsubscribe", headers=XKEY, json={"eventType": EVENT})
    assert again.status_code == 400 and again.get_json()["error"]["field"] == "eventType"


def test_lookup_values_list_event_types_with_availability(client):
    for resp in (
        client.get("/api/LookUp/GetLookUpValues?data=EventType", headers=XKEY),
        client.post("/api/LookUp/GetLookUpValues", headers=XKEY, json={"data": "EventType"}),
    ):
        values = {v["value"]: v["availability"] for v in resp.get_json()["data"]}
        assert values[EVENT] == "live" and values["APPLICATIONS_IMPORT_RESULT"] == "planned"
    assert client.get("/api/LookUp/GetLookUpValues?data=Country", headers=XKEY).status_code == 400


@pytest.mark.parametrize("headers", [{}, BEARER, {"x-api-key": "wrong"}])
def test_x_api_key_is_required(client, headers):
    resp = client.post(
        "/api/Event/Subscribe", headers=headers, json={"eventType": EVENT, "callbackUrl": "http://127.0.0.1:9/h"}
    )
    assert resp.status_code == 401
    assert resp.get_json()["error"]["type"] == "Unauthorized" and resp.get_json()["status"] == "failed"
