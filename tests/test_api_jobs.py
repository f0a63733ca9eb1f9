"""The delivery log API: filters, paging, one job with attempts, redeliver, the exhausted state, actions, SSE."""

from __future__ import annotations

import json
import threading

import pytest
import requests
from sim_helpers import BEARER, XKEY, count_rows, wait_job_final, wait_until

EVENT = "DELIVERY_CHANNEL_STATUS_UPDATED"


def send(client, url, **body):
    body.setdefault("event", EVENT)
    resp = client.post("/api/send", headers=XKEY, json={"url": url, **body})
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()["data"]


def test_one_job_shows_every_attempt_with_request_and_response(client, receiver):
    target = receiver("accessrc", fail_first=2)
    job = wait_job_final(client, send(client, target.url + "/h", seed=3)["id"])
    assert job["state"] == "succeeded" and job["attempts_made"] == 3
    numbers = [a["number"] for a in job["attempts"]]
    assert numbers == [0, 1, 2]
    for a in job["attempts"]:
        assert "X-JobId" not in a["request_headers"] and "X-JobAttempt" not in a["request_headers"]  # documented
        assert a["number"] == numbers.index(a["number"])
        assert a["request_body"] == job["body"] and a["duration_ms"] >= 0 and a["started_at"] > 0
    assert [a["status"] for a in job["attempts"]] == [500, 500, 200]
    assert json.loads(job["attempts"][0]["response_body"])["error"]["code"] == 500
    assert job["attempts"][0]["error"] == "HTTP 500" and job["attempts"][2]["error"] is None
    assert json.loads(job["attempts"][2]["response_body"])["status"] == "success"


def test_exhausted_when_retries_run_out(client, receiver):
    target = receiver("accessrc", fail_first=99)
    job = wait_job_final(client, send(client, target.url + "/h", retry_delays=[0, 0])["id"])
    assert job["state"] == "exhausted" and job["attempts_made"] == 3 and job["last_status"] == 500
    listed = client.get("/api/jobs?status=exhausted", headers=XKEY).get_json()
    assert [j["id"] for j in listed["data"]] == [job["id"]] and listed["meta"]["counts"]["exhausted"] == 1


def test_redeliver_sends_the_same_body_and_x_job_id_again(client, receiver):
    target = receiver("accessrc", fail_first=99)
    original = wait_job_final(client, send(client, target.url + "/h", retry_delays=[], profile="accredit-like")["id"])
    assert original["state"] == "exhausted"
    resp = client.post(f"/api/jobs/{original['id']}/redeliver", headers=XKEY)
    assert resp.status_code == 201
    again = wait_job_final(client, resp.get_json()["data"]["id"])
    assert again["redelivery_of"] == original["id"] and again["x_job_id"] == original["id"]
    assert again["body"] == original["body"] and again["source"] == "redeliver"
    assert [a["request_headers"]["X-JobId"] for a in again["attempts"]] == [original["id"]]
    assert again["attempts"][0]["request_headers"]["X-JobAttempt"] == "0"
    assert [(r.job_id, r.body) for r in target.received] == [(original["id"], original["body"])] * 2


def test_reachfive_redelivery_is_linked_without_a_job_id_header(client, receiver):
    target = receiver("reachfive")
    original = wait_job_final(client, send(client, target.url + "/jobs", event="END_JOB_NOTIFICATION")["id"])
    again = client.post(f"/api/jobs/{original['id']}/redeliver", headers=XKEY).get_json()["data"]
    assert again["redelivery_of"] == original["id"] and again["x_job_id"] is None
    twice = client.post(f"/api/jobs/{wait_job_final(client, again['id'])['id']}/redeliver", headers=XKEY).get_json()[
        "data"
    ]
    assert twice["redelivery_of"] == original["id"]
    done = wait_job_final(client, twice["id"])
    assert "X-JobId" not in done["attempts"][0]["request_headers"] and done["body"] == original["body"]
    assert [r.body for r in target.received] == [original["body"]] * 3


def test_redeliver_of_an_unfinished_job_is_409_and_unknown_is_404(client, receiver):
    target = receiver("accessrc", fail_first=99)
    job = send(client, target.url + "/h", retry_delays=[60])
    wait_until(lambda: client.get(f"/api/jobs/{job['id']}", headers=XKEY).get_json()["data"]["attempts_made"] == 1)
    resp = client.post(f"/api/jobs/{job['id']}/redeliver", headers=XKEY)
    assert resp.status_code == 409 and resp.get_json()["error"]["type"] == "Conflict"
    assert client.post("/api/jobs/nope/redeliver", headers=XKEY).status_code == 404
    assert client.get("/api/jobs/nope", headers=XKEY).get_json()["error"]["code"] == 404


def test_filters_and_paging(client, receiver):
    target = receiver("accessrc")
    ids = [send(client, target.url + "/h")["id"] for _ in range(5)]
    refund = send(client, target.url + "/r", event="DELIVERY_REFUND_REQUESTED")["id"]
    wait_until(
        lambda: client.get("/api/jobs?status=succeeded", headers=XKEY).get_json()["meta"]["counts"]["succeeded"] == 6
    )
    newest = client.get("/api/jobs?limit=4", headers=XKEY).get_json()
    assert newest["status"] == "success" and newest["error"] is None
    assert [j["id"] for j in newest["data"]] == [refund, *ids[::-1][:3]]
    older = client.get(f"/api/jobs?limit=4&before_id={newest['meta']['page']['next_before_id']}", headers=XKEY)
    older = older.get_json()
    assert [j["id"] for j in older["data"]] == ids[1::-1] and "next_before_id" not in older["meta"]["page"]
    since = client.get(f"/api/jobs?since_id={newest['data'][1]['seq']}", headers=XKEY).get_json()["data"]
    assert [j["id"] for j in since] == [refund]
    by_event = client.get("/api/jobs?event=DELIVERY_REFUND_REQUESTED", headers=BEARER).get_json()["data"]
    assert [j["id"] for j in by_event] == [refund]
    assert client.get("/api/jobs?platform=accredit", headers=XKEY).get_json()["data"] == []


@pytest.mark.parametrize(
    "query, field",
    [("status=done", "status"), ("limit=0", "limit"), ("limit=x", "limit"), ("since_id=1&before_id=2", "since_id")],
)
def test_bad_filters_are_400(client, query, field):
    resp = client.get(f"/api/jobs?{query}", headers=XKEY)
    assert resp.status_code == 400 and resp.get_json()["error"]["field"] == field


@pytest.mark.parametrize(
    "body, field",
    [
        ({"event": EVENT}, "url"),
        ({"url": "http://127.0.0.1:9/h"}, "event"),
        ({"event": "NOPE", "url": "http://127.0.0.1:9/h"}, "event"),
        ({"event": EVENT, "url": "http://127.0.0.1:9/h", "overrides": {"status": 5}}, "overrides"),
        ({"event": EVENT, "url": "http://127.0.0.1:9/h", "overrides": "status=x"}, "overrides"),
        ({"event": EVENT, "url": "http://127.0.0.1:9/h", "count": 3}, "overrides"),
        ({"event": EVENT, "url": "http://127.0.0.1:9/h", "retry_delays": "1,2"}, "retry_delays"),
        ({"event": EVENT, "url": "http://127.0.0.1:9/h", "auth": {"type": "hmac"}}, "auth.secret"),
    ],
)
def test_bad_send_is_400_and_stores_no_job(client, app, body, field):
    resp = client.post("/api/send", headers=XKEY, json=body)
    assert resp.status_code == 400 and resp.get_json()["error"]["field"] == field, resp.get_json()
    assert count_rows(app, "jobs") == 0


def test_send_with_hmac_auth_seed_and_overrides(client, receiver):
    from simulator.auth import Auth

    target = receiver("accessrc", auth=Auth("hmac", secret="abcd1234"))
    job = send(
        client, target.url + "/h", seed=7, overrides={"status": "Approved"}, auth={"type": "hmac", "secret": "abcd1234"}
    )
    job = wait_job_final(client, job["id"])
    assert job["state"] == "succeeded" and job["attempts"][0]["request_headers"]["x-signature"].startswith("sha256=")


def test_send_override_adding_a_field_is_sent_with_a_note_of_its_inferred_rule(client, receiver):
    """Issue 12: a field the documents do not show is advice (accessrc.payload.no-extra-fields), never a 400."""
    target = receiver("accessrc")
    resp = client.post(
        "/api/send", headers=XKEY, json={"event": EVENT, "url": target.url + "/h", "overrides": {"extraField": 1}}
    )
    assert resp.status_code == 201, resp.get_json()
    assert resp.get_json()["meta"]["notes"] == [
        "extraField: extra field 'extraField', not in the documents (inferred rule accessrc.payload.no-extra-fields)"
    ]
    job = wait_job_final(client, resp.get_json()["data"]["id"])
    assert job["state"] == "succeeded" and json.loads(target.received[0].body)["extraField"] == 1
    plain = client.post("/api/send", headers=XKEY, json={"event": EVENT, "url": target.url + "/h", "seed": 1})
    assert plain.status_code == 201 and "meta" not in plain.get_json()  # nothing to advise: no notes
    nested = client.post(
        "/api/send", headers=XKEY, json={"event": EVENT, "url": target.url + "/h", "overrides": {"no.such": 1}}
    )
    assert nested.status_code == 400 and nested.get_json()["error"]["field"] == "overrides"  # through no object


def test_actions_reach_every_active_subscription(client, receiver):
    target = receiver("accessrc")
    paused_target = receiver("accessrc")
    client.post("/api/Event/Subscribe", headers=XKEY, json={"eventType": EVENT, "callbackUrl": target.url + "/h"})
    paused = client.post(
        "/api/subscriptions", headers=XKEY, json={"event": EVENT, "url": paused_target.url + "/h", "paused": True}
    ).get_json()["data"]
    assert paused["paused"]
    resp = client.post(
        "/api/actions/reject-delivery-channel", headers=XKEY, json={"message": "Description is not clear enough"}
    )
    assert resp.status_code == 201
    [job] = resp.get_json()["data"]["jobs"]
    job = wait_job_final(client, job["id"])
    payload = json.loads(job["body"])
    assert payload["status"] == "Rejected" and payload["message"] == "Description is not clear enough"
    assert job["source"] == "action:reject-delivery-channel" and len(target.received) == 1
    assert paused_target.received == []


def test_an_action_answers_the_notes_of_the_fields_its_subscriptions_add(client, receiver):
    """Issue 12: a subscription's override adding a field is sent by an action too, its note in `meta.notes`, as
    /api/send answers it (the documented Success and Notes schemas)."""
    from jsonschema import Draft202012Validator

    from simulator.api.openapi import document

    added, plain = receiver("accessrc"), receiver("accessrc")
    for target, overrides in ((added, {"extraField": 1}), (plain, {})):
        resp = client.post(
            "/api/subscriptions", headers=XKEY, json={"event": EVENT, "url": target.url + "/h", "overrides": overrides}
        )
        assert resp.status_code == 201, resp.get_json()
    resp = client.post("/api/actions/approve-delivery-channel", headers=XKEY, json={})
    assert resp.status_code == 201, resp.get_json()
    answer = resp.get_json()
    assert answer["meta"]["notes"] == [
        "extraField: extra field 'extraField', not in the documents (inferred rule accessrc.payload.no-extra-fields)"
    ]
    doc = document()
    schema = doc["paths"]["/api/actions/{name}"]["post"]["responses"]["201"]["content"]["application/json"]["schema"]
    validator = Draft202012Validator({**schema, "components": doc["components"]})
    assert [e.message for e in validator.iter_errors(answer)] == []
    assert [e.message for e in validator.iter_errors({**answer, "meta": {"notes": []}})] != []  # the check can fail
    bodies = {wait_job_final(client, j["id"])["url"]: json.loads(j["body"]) for j in answer["data"]["jobs"]}
    assert bodies[added.url + "/h"]["extraField"] == 1 and "extraField" not in bodies[plain.url + "/h"]
    alone = client.post("/api/actions/approve-delivery-channel", headers=XKEY, json={"url": plain.url + "/h"})
    assert alone.status_code == 201 and "meta" not in alone.get_json()  # nothing to advise: no notes


def test_finish_import_action_with_records_and_failures(client, receiver):
    from simulator.auth import Auth

    target = receiver("accessrc", auth=Auth("hmac", secret="abcd1234"))
    resp = client.post(
        "/api/actions/finish-import",
        headers=XKEY,
        json={
            "records": 120,
            "failures": 5,
            "url": target.url + "/import",
            "auth": {"type": "hmac", "secret": "abcd1234"},
        },
    )
    job = wait_job_final(client, resp.get_json()["data"]["jobs"][0]["id"])
    payload = json.loads(job["body"])
    assert payload["summary"] == {"totalRecords": 120, "successCount": 115, "failureCount": 5}
    assert 1 <= len(payload["errors"]) <= 5  # at times fewer entries than failures, as seed 000 itself shows
    assert payload["status"] == "PARTIAL_SUCCESS" and job["state"] == "succeeded"


def test_sync_eligibility_action_for_a_program(client, receiver):
    target = receiver("accessrc")
    program = "d0c1a7e2-1111-4e0a-9b3c-5a6f7e8d9c01"
    resp = client.post(
        "/api/actions/sync-eligibility",
        headers=XKEY,
        json={"programId": program, "applications": 3, "url": target.url + "/elig"},
    )
    job = wait_job_final(client, resp.get_json()["data"]["jobs"][0]["id"])
    payload = json.loads(job["body"])
    assert payload["programId"] == program and len(payload["applications"]) == 3 and job["state"] == "succeeded"


@pytest.mark.parametrize(
    "name, body, status, field",
    [
        ("approve-delivery-channel", {}, 400, "url"),  # no subscription and no url
        ("finish-import", {"records": 10, "failures": 20, "url": "http://127.0.0.1:9/h"}, 400, None),
        ("finish-import", {"colour": 1}, 400, "colour"),
        ("finish-import", {"auth": {"type": "hmac", "secret": "x"}}, 400, "auth"),
        ("finish-import", {"url": "http://127.0.0.1:9/h", "auth": {"type": "hmac"}}, 400, "auth.secret"),
        ("no-such-action", {}, 404, "name"),
    ],
)
def test_bad_actions(client, app, name, body, status, field):
    resp = client.post(f"/api/actions/{name}", headers=XKEY, json=body)
    assert resp.status_code == status
    if field:
        assert resp.get_json()["error"]["field"] == field
    assert count_rows(app, "jobs") == 0


def test_actions_are_listed(client):
    names = {a["name"] for a in client.get("/api/actions", headers=XKEY).get_json()["data"]}
    assert {"approve-delivery-channel", "reject-delivery-channel", "sync-eligibility", "finish-import"} <= names


def test_stream_reports_jobs_and_attempts_within_a_second(app, receiver):
    from waitress.server import create_server

    target = receiver("accessrc")
    server = create_server(app, host="127.0.0.1", port=0, threads=4)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.effective_port}"
    try:
        events = []

        def read():
            with requests.get(f"{base}/api/stream?max_seconds=3", headers=XKEY, stream=True, timeout=10) as resp:
                assert resp.headers["Content-Type"].startswith("text/event-stream")
                kind = None
                for line in resp.iter_lines(decode_unicode=True):
                    if line.startswith("event: "):
                        kind = line[7:]
                    elif line.startswith("data: "):
                        events.append((kind, json.loads(line[6:])))

        reader = threading.Thread(target=read)
        reader.start()
        wait_until(lambda: any(k == "hello" for k, _ in events), timeout=5)
        job = requests.post(f"{base}/api/send", headers=XKEY, json={"event": EVENT, "url": target.url + "/h"}).json()[
            "data"
        ]
        wait_until(lambda: any(k == "attempt" and d["job"]["id"] == job["id"] for k, d in events), timeout=1.0)
        kinds = [k for k, d in events if k != "hello" and (d.get("id") or d["job"]["id"]) == job["id"]]
        assert kinds[0] == "job" and kinds[-1] == "attempt" and set(kinds[1:-1]) <= {"job"}, kinds  # + state changes
        attempt = [d for k, d in events if k == "attempt"][0]
        assert attempt["attempt"]["status"] == 200 and attempt["job"]["state"] == "succeeded"
        reader.join(10)
        assert not reader.is_alive()
        assert requests.get(f"{base}/api/stream", timeout=5).status_code == 401
        assert requests.get(f"{base}/api/stream?api_key=wrong", timeout=5).status_code == 401
        with requests.get(f"{base}/api/stream?api_key=test-admin-key&max_seconds=0.5", stream=True, timeout=5) as ok:
            assert ok.status_code == 200 and b"event: hello" in ok.raw.read()
    finally:
        server.close()


def _sse(text: str) -> list[dict]:
    events = []
    for block in text.split("\n\n"):
        event = dict(line.split(": ", 1) for line in block.split("\n") if line[:1].isalpha() and ": " in line)
        if event.get("event") not in (None, "hello"):
            events.append({"id": event["id"], "event": event["event"], "data": json.loads(event["data"])})
    return events


def test_stream_ids_resume_right_after_each_event_with_whole_records(client, receiver):
    """Reconnecting with the id of the first event replays every later one (an id is the cursor as of its own
    event, not of its batch), and the API's records carry their bodies (the dashboard's do not)."""
    target = receiver("accessrc", fail_first=1)
    ids = [wait_job_final(client, send(client, target.url + "/h", retry_delays=[0])["id"])["id"] for _ in range(2)]
    first = _sse(client.get("/api/stream?since=0:0&max_seconds=0.3", headers=XKEY).get_data(as_text=True))
    assert [e["event"] for e in first] == ["job", "job", "attempt", "attempt", "attempt", "attempt"]
    assert [e["data"]["id"] for e in first[:2]] == ids and first[0]["data"]["body"]
    assert first[2]["data"]["attempt"]["request_body"] and first[2]["data"]["job"]["body"]
    for cut in range(len(first)):
        again = client.get("/api/stream?max_seconds=0.3", headers={**XKEY, "Last-Event-ID": first[cut]["id"]})
        assert _sse(again.get_data(as_text=True)) == first[cut + 1 :]
