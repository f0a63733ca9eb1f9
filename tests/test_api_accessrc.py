"""AccessRC's Subscribe/Unsubscribe/GetLookUpValues, with deliveries checked by a receiver using each auth type."""

from __future__ import annotations

import re

import pytest
from sim_helpers import BEARER, XKEY, count_rows, wait_job_final

from simulator import rules
from simulator.auth import Auth

RULE_ID = re.compile(r"\brule ((?:accessrc|accredit)\.[A-Za-z0-9_.-]*[A-Za-z0-9])")

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
    assert "rule accessrc.api.subscribe.planned" in resp.get_json()["error"]["message"]
    assert rules.get("accessrc.api.subscribe.planned").documented


def test_planned_event_is_accepted_with_allow_planned(make_app, tmp_path):
    client = make_app(ALLOW_PLANNED=True, DB_PATH=str(tmp_path / "other.db")).test_client()
    resp = subscribe(client, {"eventType": "program.eligibility_evaluated", "callbackUrl": "http://127.0.0.1:9/h"})
    assert resp.status_code == 200 and resp.get_json()["data"]["eventType"] == "PROGRAM_ELIGIBILITY_EVALUATED"


@pytest.mark.parametrize(
    "payload, field",
    [
        ({"eventType": 5, "callbackUrl": "http://127.0.0.1:9/h"}, "eventType"),
        ({"eventType": "", "callbackUrl": "http://127.0.0.1:9/h"}, "eventType"),
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
        ({"eventType": EVENT, "callbackUrl": "http://127.0.0.1:9/h", "auth": {"secret": "x"}}, "auth.type"),
    ],
)
def test_validation_errors_name_the_field_and_store_nothing(client, app, payload, field):
    resp = subscribe(client, payload)
    assert resp.status_code == 400
    body = resp.get_json()
    assert body["status"] == "failed" and body["data"] is None
    assert body["error"]["code"] == 400 and body["error"]["type"] == "BadRequest"
    assert body["error"]["field"] == field, body
    # a refusal applies a documented rule and names it
    cited = RULE_ID.search(body["error"]["message"])
    assert cited and rules.get(cited.group(1)).documented, body["error"]["message"]
    assert count_rows(app, "subscriptions") == 0


def test_unsubscribe_removes_it_and_a_second_unsubscribe_removes_nothing_with_advice(client, app):
    sub = subscribe(client, {"eventType": EVENT, "callbackUrl": "http://127.0.0.1:9/h"}).get_json()["data"]
    resp = client.post("/api/Event/Unsubscribe", headers=XKEY, json={"eventType": EVENT})
    assert resp.status_code == 200
    data = resp.get_json()["data"]
    assert data["message"] == "Webhook successfully unsubscribed" and data["subscriptionId"] == sub["subscriptionId"]
    assert count_rows(app, "subscriptions") == 0
    again = client.post("/api/Event/Unsubscribe", headers=XKEY, json={"eventType": EVENT})
    # undocumented: refusing it would apply an inferred rule (accessrc.api.unsubscribe.none), so it is advice
    assert again.status_code == 200, again.get_json()
    body = again.get_json()
    assert body["data"]["subscriptionId"] is None and body["data"]["eventType"] == EVENT
    assert any("accessrc.api.unsubscribe.none" in a for a in body["advice"])
    assert "advice" not in resp.get_json()  # a call with nothing to say has the documented keys only


def test_lookup_values_list_event_types_with_availability(client):
    for resp in (
        client.get("/api/LookUp/GetLookUpValues?data=EventType", headers=XKEY),
        client.post("/api/LookUp/GetLookUpValues", headers=XKEY, json={"data": "EventType"}),
    ):
        values = {v["value"]: v["availability"] for v in resp.get_json()["data"]}
        assert values[EVENT] == "live" and values["APPLICATIONS_IMPORT_RESULT"] == "planned"
    other = client.get("/api/LookUp/GetLookUpValues?data=Country", headers=XKEY)
    assert other.status_code == 200 and other.get_json()["data"] == []
    assert any("accessrc.api.lookup.path" in a for a in other.get_json()["advice"])


@pytest.mark.parametrize("headers", [{}, BEARER, {"x-api-key": "wrong"}])
def test_x_api_key_is_required(client, headers):
    resp = client.post(
        "/api/Event/Subscribe", headers=headers, json={"eventType": EVENT, "callbackUrl": "http://127.0.0.1:9/h"}
    )
    assert resp.status_code == 401
    assert resp.get_json()["error"]["type"] == "Unauthorized" and resp.get_json()["status"] == "failed"


# -- issue 12: the Subscribe API's rules; inferred ones advise, never refuse -------------------------------------------
def advice_of(resp) -> list[str]:
    assert resp.status_code == 200, resp.get_json()
    return resp.get_json().get("advice") or []


def cited(advice: list[str]) -> set[str]:
    ids = {m.group(1) for a in advice for m in RULE_ID.finditer(a)}
    assert all(not rules.get(i).documented for i in ids), ids  # advice cites inferred rules only
    return ids


def test_an_unknown_field_is_ignored_with_advice_kept_in_the_call_log(client, app):
    body = {"eventType": EVENT, "callbackUrl": "http://127.0.0.1:9/h", "extra": 1, "callbackURL": "x"}
    resp = subscribe(client, body)
    advice = advice_of(resp)
    assert cited(advice) == {"accessrc.api.subscribe.unknown-fields"}
    assert any("'extra'" in a for a in advice) and any("'callbackURL'" in a for a in advice)
    assert resp.get_json()["data"]["callbackUrl"] == "http://127.0.0.1:9/h" and count_rows(app, "subscriptions") == 1
    calls = client.get("/api/calls", headers=XKEY).get_json()["data"]
    [call] = [c for c in calls if c["path"] == "/api/Event/Subscribe"]
    assert "accessrc.api.subscribe.unknown-fields" in str(call), call  # the dashboard's call log shows the advice


def test_an_unknown_auth_field_is_ignored_with_advice_and_the_documented_ones_still_apply(client, app):
    resp = subscribe(
        client,
        {"eventType": EVENT, "callbackUrl": "http://127.0.0.1:9/h", "auth": {"type": "hmac", "secret": "s", "algo": 1}},
    )
    assert cited(advice_of(resp)) == {"accessrc.api.subscribe.unknown-fields"}
    assert "'auth.algo'" in resp.get_json()["advice"][0]
    sub = client.get("/api/subscriptions", headers=XKEY).get_json()["data"][0]
    assert sub["auth"]["kind"] == "hmac"


@pytest.mark.parametrize("event_type", ["NULL", None], ids=["NULL", "absent"])
def test_the_documented_null_event_type_subscribes_nothing_with_advice(client, app, event_type):
    body = {"callbackUrl": "http://127.0.0.1:9/h"} | ({"eventType": event_type} if event_type else {})
    resp = subscribe(client, body)
    assert cited(advice_of(resp)) == {"accessrc.api.subscribe.null-event"}
    data = resp.get_json()["data"]
    assert data["subscriptionId"] is None and data["eventType"] == "NULL" and "Nothing subscribed" in data["message"]
    assert count_rows(app, "subscriptions") == 0
    gone = client.post("/api/Event/Unsubscribe", headers=XKEY, json={"eventType": "NULL"})
    assert cited(advice_of(gone)) == {"accessrc.api.subscribe.null-event"}
    # NULL is documented, but a documented limit still applies to the rest of the call
    long = subscribe(client, {"eventType": "NULL", "callbackUrl": "http://127.0.0.1:9/" + "a" * 260})
    assert long.status_code == 400 and "accessrc.api.subscribe.callback-url" in long.get_json()["error"]["message"]


def test_credentials_dropped_is_said_when_a_subscription_moves_without_auth(client):
    first = subscribe(
        client, {"eventType": EVENT, "callbackUrl": "http://127.0.0.1:9/a", "auth": {"type": "hmac", "secret": "x"}}
    ).get_json()["data"]
    assert first["credentialsDropped"] is False
    moved = subscribe(client, {"eventType": EVENT, "callbackUrl": "http://127.0.0.1:9/b"}).get_json()["data"]
    assert moved["credentialsDropped"] is True and moved["subscriptionId"] == first["subscriptionId"]
    assert client.get("/api/subscriptions", headers=XKEY).get_json()["data"][0]["auth"]["kind"] == "none"


def test_unsubscribe_and_lookup_ignore_unknown_fields_with_advice(client):
    subscribe(client, {"eventType": EVENT, "callbackUrl": "http://127.0.0.1:9/h"})
    gone = client.post("/api/Event/Unsubscribe", headers=XKEY, json={"eventType": EVENT, "why": "done"})
    assert cited(advice_of(gone)) == {"accessrc.api.subscribe.unknown-fields"}
    assert gone.get_json()["data"]["message"] == "Webhook successfully unsubscribed"
    look = client.post("/api/LookUp/GetLookUpValues", headers=XKEY, json={"data": "EventType", "page": 2})
    assert cited(advice_of(look)) == {"accessrc.api.subscribe.unknown-fields"} and look.get_json()["data"]


def test_the_subscription_api_rules_are_in_the_registry_with_their_sources():
    expected = {
        "accessrc.api.subscribe.event-type": "documented",
        "accessrc.api.subscribe.planned": "documented",
        "accessrc.api.subscribe.callback-url": "documented",
        "accessrc.api.subscribe.auth-fields": "documented",
        "accessrc.api.subscribe.answer": "documented",
        "accessrc.api.unsubscribe.answer": "documented",
        "accessrc.api.subscribe.null-event": "inferred",
        "accessrc.api.subscribe.unknown-fields": "inferred",
        "accessrc.api.subscribe.replaces": "inferred",
        "accessrc.api.subscribe.credentials": "inferred",
        "accessrc.api.unsubscribe.none": "inferred",
        "accessrc.api.lookup.path": "inferred",
    }
    assert {rule_id: rules.get(rule_id).source for rule_id in expected} == expected
    limits = rules.get("accessrc.api.subscribe.auth-fields").quote
    from simulator.platforms.accessrc import AUTH_LIMITS

    for name, limit in AUTH_LIMITS.items():  # the code's limits are the quoted rows'
        assert (
            f"| `auth.{name}` | string |" in limits
            and f"| {limit} |" in limits.split(f"`auth.{name}`")[1].split("\n")[0]
        )
