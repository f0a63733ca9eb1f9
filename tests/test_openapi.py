"""The OpenAPI 3.1 document: valid, served, covering every route of the serve blueprints, matching answers."""

from __future__ import annotations

import re

from jsonschema import Draft202012Validator
from openapi_spec_validator import validate
from sim_helpers import XKEY, wait_job_final

from simulator.api.openapi import document

OWN_BLUEPRINTS = {
    "readiness",
    "health",
    "events",
    "subscriptions",
    "send",
    "actions",
    "stream",
    "accredit",
    "accessrc",
    "provider_calls",
    "print_queue",
    "loop",
    "jobs",
    "openapi",
    "scenarios",
    "dashboard",
}


def test_document_is_valid_openapi_3_1():
    doc = document()
    assert doc["openapi"].startswith("3.1")
    validate(doc)


def test_served_without_a_key(client):
    resp = client.get("/api/openapi.json")
    assert resp.status_code == 200 and resp.get_json() == document()


def test_every_route_and_method_is_documented(app):
    paths = document()["paths"]
    missing = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint.split(".")[0] not in OWN_BLUEPRINTS or rule.endpoint.endswith(".static"):
            continue  # static files are files, not API routes
        path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule)
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            if method.lower() not in paths.get(path, {}):
                missing.append(f"{method} {path}")
    assert missing == []


def test_every_documented_path_exists(app):
    routes = {re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", r.rule) for r in app.url_map.iter_rules()}
    assert set(document()["paths"]) <= routes


def _check(schema_name: str, instance) -> None:
    doc = document()
    validator = Draft202012Validator({"$ref": f"#/components/schemas/{schema_name}", "components": doc["components"]})
    errors = [e.message for e in validator.iter_errors(instance)]
    assert errors == [], errors


def test_answers_match_their_schemas(client, receiver):
    target = receiver("accessrc")
    sub = client.post(
        "/api/subscriptions",
        headers=XKEY,
        json={"event": "DELIVERY_CHANNEL_STATUS_UPDATED", "url": target.url + "/h", "schedule": {"cron": "0 * * * *"}},
    ).get_json()["data"]
    _check("Subscription", sub)
    job = client.post(f"/api/subscriptions/{sub['id']}/fire", headers=XKEY).get_json()["data"]
    _check("Job", job)
    done = wait_job_final(client, job["id"])
    for attempt in done.pop("attempts"):
        _check("Attempt", attempt)
    _check("Job", done)
    _check("JobPage", client.get("/api/jobs", headers=XKEY).get_json())
    _check("Error", client.post("/api/send", headers=XKEY, json={}).get_json())
    _check(
        "AcrError",
        client.post("/api/webhookSubscription", headers={"Authorization": "Bearer test-admin-key"}, json={}).get_json(),
    )
    _check(
        "AccessrcSubscribed",
        client.post(
            "/api/Event/Subscribe",
            headers=XKEY,
            json={"eventType": "DELIVERY_REFUND_REQUESTED", "callbackUrl": target.url + "/r"},
        ).get_json(),
    )
    for event in client.get("/api/events", headers=XKEY).get_json()["data"]:
        _check("Event", event)


def test_dashboard_answers_match_their_schemas(client, receiver):
    target = receiver("accessrc")
    sample = client.get("/dashboard/api/sample?event=DELIVERY_REFUND_REQUESTED", headers=XKEY)
    assert sample.status_code == 200
    sent = client.post(
        "/dashboard/api/send",
        headers=XKEY,
        json={
            "event": "DELIVERY_REFUND_REQUESTED",
            "url": target.url + "/h",
            "payload": sample.get_json()["data"]["payload"],
        },
    )
    assert sent.status_code == 201
    _check("Job", sent.get_json()["data"])
    started = client.post(
        "/dashboard/api/readiness", headers=XKEY, json={"platform": "accessrc", "url": target.url + "/h", "timeout": 2}
    )
    assert started.status_code == 202
    _check("ReadinessRun", started.get_json()["data"])
    _check(
        "ReadinessRun",
        client.get(f"/dashboard/api/readiness/{started.get_json()['data']['id']}", headers=XKEY).get_json()["data"],
    )


def test_dropped_credentials_are_documented_and_answered(client):
    """Issue 14, item 1: a new URL drops stored credentials; both answers say so, as the document describes."""
    doc = document()
    assert doc["components"]["schemas"]["Subscription"]["properties"]["credentials_dropped"]["type"] == "boolean"
    subscribed = doc["components"]["schemas"]["AccessrcSubscribed"]["properties"]["data"]["properties"]
    assert subscribed["credentialsDropped"]["type"] == "boolean"
    sub = client.post(
        "/api/subscriptions",
        headers=XKEY,
        json={
            "event": "DELIVERY_CHANNEL_STATUS_UPDATED",
            "url": "http://127.0.0.1:9/a",
            "auth": {"type": "header", "headerName": "X-Key", "headerValue": "v-123456"},
        },
    ).get_json()["data"]
    patched = client.patch(f"/api/subscriptions/{sub['id']}", headers=XKEY, json={"url": "http://127.0.0.1:9/b"})
    _check("Subscription", patched.get_json()["data"])
    assert patched.get_json()["data"]["credentials_dropped"] is True
    moved = client.post(
        "/api/Event/Subscribe",
        headers=XKEY,
        json={"eventType": "DELIVERY_CHANNEL_STATUS_UPDATED", "callbackUrl": "http://127.0.0.1:9/c"},
    ).get_json()
    _check("AccessrcSubscribed", moved)
    assert moved["data"]["credentialsDropped"] is False  # the PATCH above already dropped them


def test_the_login_routes_are_documented(client):
    paths = document()["paths"]
    assert "303" in paths["/"]["get"]["responses"] and paths["/"]["get"]["parameters"][0]["name"] == "token"
    assert "/dashboard" in paths and "post" in paths["/dashboard/login"]
    assert client.post("/dashboard/login", json={"key": "wrong"}).status_code == 401


def test_every_own_success_answer_is_documented_in_the_shared_envelope():
    """Issue 15: the simulator's own routes' 2xx JSON answers all refer to components.schemas.Success."""
    platform = (
        "/api/webhookSubscription",
        "/api/Event/",
        "/api/LookUp/",
        "/api/openapi.json",
        "/api/DeliveryChannel/",  # the loop's platform stand-ins (issue 18) answer in their platform's shapes
        "/api/DeliveryRequest/",
        "/api/Delivery/",
        "/api/printQueue",
    )
    loose = []
    for path, item in document()["paths"].items():
        if path.startswith(platform):
            continue
        for method, op in item.items():
            for code, answer in op.get("responses", {}).items():
                schema = answer.get("content", {}).get("application/json", {}).get("schema")
                if code.startswith("2") and schema is not None and "Success" not in str(schema):
                    if schema.get("$ref", "").endswith("/JobPage"):
                        continue  # JobPage is itself Success + data + meta
                    loose.append(f"{method.upper()} {path} {code}")
    assert loose == []
