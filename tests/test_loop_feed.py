"""Issue 18, the loop in the change feed: every call to the platforms' APIs is a `call` event of `GET /api/stream`
(with the job it follows) and of the dashboard's stream (without bodies); cursors gain a third part, and the
two-part cursors of older clients still resume. The dashboard page learns the review mode. Real app, real
reference receiver on 127.0.0.1."""

from __future__ import annotations

import json
import re
import uuid

import pytest
from sim_helpers import XKEY, wait_job_final


def _sse(text: str) -> list[dict]:
    """The events of a stream's text, `hello` left out."""
    events = []
    for block in text.split("\n\n"):
        event = dict(line.split(": ", 1) for line in block.split("\n") if line[:1].isalpha() and ": " in line)
        if event.get("event") not in (None, "hello"):
            events.append({"id": event["id"], "event": event["event"], "data": json.loads(event["data"])})
    return events


def _hello_id(text: str) -> str:
    return re.search(r"id: (\S+)\nevent: hello", text).group(1)


def _request_sent(client, url) -> tuple[dict, str, str]:
    """A DELIVERY_REQUEST_SENT delivered to `url`: (the job, its deliveryRequestId, its deliveryId)."""
    request_id, delivery_id = str(uuid.uuid4()), str(uuid.uuid4())
    overrides = {
        "deliveryRequestId": request_id,
        "delivery": [{"deliveryId": delivery_id, "beneficiaryId": "VR-558600001", "deliveryOptions": []}],
    }
    resp = client.post(
        "/api/send", headers=XKEY, json={"event": "DELIVERY_REQUEST_SENT", "url": url, "overrides": overrides}
    )
    assert resp.status_code == 201, resp.get_json()
    job = wait_job_final(client, resp.get_json()["data"]["id"])
    assert job["state"] == "succeeded", job
    return job, request_id, delivery_id


def _sync(client, request_id, delivery_id=None):
    body = {"deliveryRequestId": request_id, "providerDeliveryRequestId": "SP-REQ-1", "status": "APPROVED"}
    if delivery_id:
        body["providerDelivery"] = [
            {"providerDeliveryId": "SP-D-1", "deliveryId": delivery_id, "syncStatus": "SUCCESS"}
        ]
    return client.post("/api/DeliveryRequest/Sync", headers=XKEY, json=body)


@pytest.fixture
def synced(client, receiver):
    """A delivered DELIVERY_REQUEST_SENT, then a Sync that follows it (200) and one for an id never sent (200 with
    advice: the rule is inferred; it follows no job)."""
    job, request_id, delivery_id = _request_sent(client, receiver("accessrc").url + "/hook")
    assert _sync(client, request_id, delivery_id).status_code == 200
    unknown = str(uuid.uuid4())
    unlinked = _sync(client, unknown)
    assert unlinked.status_code == 200 and "delivery-request-sync.sent" in unlinked.get_json()["advice"][0]
    return job, request_id, unknown


def test_each_call_is_a_call_event_with_the_job_it_follows_and_ids_resume_right_after_it(client, synced):
    job, request_id, unknown = synced
    first = _sse(client.get("/api/stream?since=0:0:0&max_seconds=0.3", headers=XKEY).get_data(as_text=True))
    calls = [e for e in first if e["event"] == "call"]
    assert [(c["data"]["call"]["path"], c["data"]["call"]["status"]) for c in calls] == [
        ("/api/DeliveryRequest/Sync", 200),
        ("/api/DeliveryRequest/Sync", 200),
    ]
    linked, unlinked = (c["data"] for c in calls)
    assert linked["call"]["job_id"] == job["id"] and linked["job"]["id"] == job["id"]
    assert linked["job"]["event"] == "DELIVERY_REQUEST_SENT"
    assert request_id in linked["call"]["body"]  # the API's records carry their bodies
    assert linked["call"]["headers"]["X-Api-Key"] == "***"  # as GET /api/calls shows it: masked
    assert unlinked["call"]["job_id"] is None and unlinked["job"] is None
    assert unknown in unlinked["call"]["body"] and "delivery-request-sync.sent" in unlinked["call"]["response_body"]
    assert all(re.fullmatch(r"\d+:\d+:\d+", e["id"]) for e in first)
    assert first.index(calls[0]) > max(i for i, e in enumerate(first) if e["event"] == "attempt")
    listed = client.get("/api/calls", headers=XKEY).get_json()["data"]
    assert [c["call"] for c in (linked, unlinked)] == listed[::-1]  # one record, one shape: GET /api/calls's
    for cut in range(len(first)):
        again = client.get("/api/stream?max_seconds=0.3", headers={**XKEY, "Last-Event-ID": first[cut]["id"]})
        assert _sse(again.get_data(as_text=True)) == first[cut + 1 :]


def test_a_two_part_cursor_of_an_older_client_resumes_jobs_there_and_calls_from_now(client, synced):
    job, _, _ = synced
    text = client.get("/api/stream?since=0:0&max_seconds=0.3", headers=XKEY).get_data(as_text=True)
    events = _sse(text)
    assert {e["event"] for e in events} == {"job", "attempt"}  # the calls were before "now"
    assert events[0]["data"]["id"] == job["id"]
    last_call = client.get("/api/calls?limit=1", headers=XKEY).get_json()["data"][0]["id"]
    assert _hello_id(text) == f"0:0:{last_call}"
    assert all(e["id"].endswith(f":{last_call}") for e in events)


@pytest.mark.parametrize("cursor", ["1:2:3:4", "1:2:x", f"1:2:{2**64}", "::-"])
def test_a_bad_cursor_is_a_400_naming_since(client, cursor):
    resp = client.get(f"/api/stream?since={cursor}&max_seconds=0.3", headers=XKEY)
    assert resp.status_code == 400 and resp.get_json()["error"]["field"] == "since"
    resp = client.get("/dashboard/api/stream?max_seconds=0.3", headers={**XKEY, "Last-Event-ID": cursor})
    assert resp.status_code == 400


def test_the_dashboard_stream_tells_calls_without_their_bodies(client, synced):
    job, request_id, _ = synced
    events = _sse(client.get("/dashboard/api/stream?since=0:0:0&max_seconds=0.3", headers=XKEY).get_data(True))
    calls = [e["data"] for e in events if e["event"] == "call"]
    assert len(calls) == 2
    assert all("body" not in c["call"] and "response_body" not in c["call"] for c in calls)
    assert calls[0]["call"]["path"] == "/api/DeliveryRequest/Sync" and calls[0]["call"]["job_id"] == job["id"]
    assert "body" not in calls[0]["job"]
    assert request_id not in json.dumps(calls)  # only in the bodies: the page fetches them when it shows them


@pytest.mark.parametrize("mode", ["manual", "reject"])
def test_the_page_knows_the_review_mode_and_the_loop_routes(make_app, mode):
    app = make_app(REVIEW=mode, REVIEW_DELAY=2)
    page = app.test_client().get("/").get_data(as_text=True)
    boot = json.loads(re.search(r'<script id="boot" type="application/json">(.*?)</script>', page, re.S).group(1))
    assert boot["review"] == {"mode": mode, "delay": 2.0}
    assert boot["routes"]["calls"] == "/api/calls" and boot["routes"]["review"] == "/api/reviews/{id}"
