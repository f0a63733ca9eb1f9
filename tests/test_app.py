"""create_app: defaults then overrides, the admin key, one start per app, and errors as envelopes."""

from __future__ import annotations

import pytest
from sim_helpers import API_KEY, XKEY, sql

from simulator.app import create_app


def test_config_overrides_defaults(make_app, tmp_path):
    app = make_app(START_WORKERS=False, ALLOW_PLANNED=True)
    services = app.extensions["accessrc_sim"]
    assert app.config["DB_PATH"] == str(tmp_path / "sim.db") and services.settings.allow_planned
    assert not services.queue.running and not services.scheduler.running
    assert app.test_client().get("/healthz").get_json()["data"]["queue"] is False


def test_start_is_once_per_app(app):
    services = app.extensions["accessrc_sim"]
    thread = services.queue._thread
    services.start()
    assert services.queue._thread is thread and services.scheduler.running


def test_generated_key_is_kept_in_the_database(make_app, monkeypatch):
    monkeypatch.delenv("ACCESSRC_SIM_API_KEY", raising=False)
    first = make_app(API_KEY=None, START_WORKERS=False).extensions["accessrc_sim"].settings
    second_app = make_app(API_KEY=None, START_WORKERS=False)
    second = second_app.extensions["accessrc_sim"].settings
    assert first.api_key_generated and not second.api_key_generated and len(first.api_key) > 30
    assert second.api_key is None  # only the key's hash is kept: the next start accepts it without knowing it
    client = second_app.test_client()
    assert client.get("/api/events", headers={"x-api-key": first.api_key}).status_code == 200
    assert client.get("/api/events", headers={"x-api-key": first.api_key[:-1]}).status_code == 401


def test_environment_key_wins(tmp_path, keys_dir, monkeypatch):
    monkeypatch.setenv("ACCESSRC_SIM_API_KEY", "from-env")
    app = create_app({"DB_PATH": str(tmp_path / "e.db"), "KEYS_DIR": str(keys_dir), "START_WORKERS": False})
    client = app.test_client()
    assert client.get("/api/events", headers={"x-api-key": "from-env"}).status_code == 200
    assert client.get("/api/events", headers={"Authorization": "Bearer from-env"}).status_code == 200
    assert client.get("/api/events", headers={"x-api-key": "from-en"}).status_code == 401


def test_healthz_needs_no_key_and_management_routes_do(client):
    assert client.get("/healthz").status_code == 200
    for path in ("/api/events", "/api/jobs", "/api/subscriptions", "/api/actions", "/api/attempts"):
        resp = client.get(path)
        assert resp.status_code == 401 and resp.get_json()["error"]["type"] == "Unauthorized", path


def test_unknown_route_and_method_use_the_envelope(client):
    resp = client.get("/api/nothing-here", headers=XKEY)
    assert resp.status_code == 404
    assert resp.get_json() == {
        "error": {"code": 404, "message": "no route GET /api/nothing-here", "type": "NotFound"},
        "data": None,
        "status": "failed",
    }
    wrong = client.delete("/api/events", headers=XKEY)
    assert wrong.status_code == 405 and wrong.get_json()["error"]["type"] == "MethodNotAllowed"
    assert "GET" in wrong.headers["Allow"]
    acr = client.get("/api/webhookSubscription/a/b/c", headers={"Authorization": f"Bearer {API_KEY}"})
    assert acr.status_code == 404 and acr.get_json()["code"].startswith("ACR_")


def test_an_unexpected_error_is_a_500_envelope_without_a_stack_trace(make_app):
    app = make_app(START_WORKERS=False)
    sql(app.extensions["accessrc_sim"].store.path, "DROP TABLE subscriptions")
    resp = app.test_client().get("/api/subscriptions", headers=XKEY)
    assert resp.status_code == 500
    assert resp.get_json() == {
        "error": {"code": 500, "message": "Internal Server Error", "type": "Exception"},
        "data": None,
        "status": "failed",
    }
    assert b"Traceback" not in resp.data and b"sqlite" not in resp.data.lower()


def test_oversized_body_is_413(client):
    resp = client.post("/api/send", headers={**XKEY, "Content-Type": "application/json"}, data=b"{" + b" " * (2 << 20))
    assert resp.status_code == 413 and resp.get_json()["status"] == "failed"


@pytest.mark.parametrize("raw", [b"{not json", b"[]", b"", b"\xff\xfe"])
def test_bad_json_on_simulator_routes_names_the_body(client, raw):
    resp = client.post("/api/subscriptions", headers={**XKEY, "Content-Type": "application/json"}, data=raw)
    assert resp.status_code == 400 and resp.get_json()["error"]["field"] == "body"


def test_the_simulators_own_routes_answer_one_success_envelope(client):
    """Issue 15: every own route answers `{"status": "success", "data": …, "error": null}` (a list is `data`, its
    paging and counts `meta`); POST /api/subscriptions and POST /api/scenario-runs alike."""
    sub = client.post(
        "/api/subscriptions", headers=XKEY, json={"event": "DELIVERY_REFUND_REQUESTED", "url": "http://127.0.0.1:9/h"}
    )
    run = client.post(
        "/api/scenario-runs",
        headers=XKEY,
        json={"file": "accessrc/delivery-refund-requested.yaml", "url": "http://127.0.0.1:9/h"},
    )
    answers = [sub, run] + [
        client.get(path, headers=XKEY)
        for path in (
            "/healthz",
            "/api/events",
            "/api/events/DELIVERY_REFUND_REQUESTED",
            "/api/subscriptions",
            f"/api/subscriptions/{sub.get_json()['data']['id']}",
            "/api/jobs",
            "/api/attempts",
            "/api/actions",
            "/api/scenarios",
            "/api/scenario-runs",
            "/dashboard/api/sample?event=DELIVERY_REFUND_REQUESTED",
        )
    ]
    for resp in answers:
        body = resp.get_json()
        assert resp.status_code in (200, 201, 202) and body["status"] == "success", (resp.request.path, body)
        assert body["error"] is None and body["data"] is not None, resp.request.path
        assert set(body) <= {"status", "data", "error", "meta"}, resp.request.path
    assert sub.status_code == 201 and run.status_code == 202, run.get_json()
    jobs = client.get("/api/jobs", headers=XKEY).get_json()
    assert isinstance(jobs["data"], list) and set(jobs["meta"]) == {"page", "counts"}
    assert set(client.get("/api/attempts", headers=XKEY).get_json()["meta"]) == {"last_id"}
    # the platforms' stand-ins keep their own shapes: Accredit's list is a bare array
    accredit = client.get("/api/webhookSubscription", headers={"Authorization": f"Bearer {API_KEY}"}).get_json()
    assert isinstance(accredit, list)
