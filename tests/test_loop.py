"""Issue 18, first slice: the platform APIs a receiver calls back (AccessRC DeliveryChannel/Create,
DeliveryRequest/Sync, Delivery/Sync; Accredit's Print Queue), the review that answers a Create, and the calls log.
Real app, real reference receivers on 127.0.0.1."""

from __future__ import annotations

import io
import json
import re
import zipfile

import pytest
from sim_helpers import BEARER, XKEY, wait_job_final, wait_until

from simulator import rules
from simulator.auth import Auth
from simulator.platforms import badges
from simulator.signing import hmac_signature

CHANNEL = "9d1f4a2b-6c3e-4f70-8b25-1e9a7c0d3f44"
REQUEST = "2c6a9f1e-4b7d-4e55-a1c3-7f0e2d9b8a66"
DELIVERY = "3f2b8c1e-7a41-4d2e-9c55-0b6e1d7a9f10"
ZIP = "5e0c2d7a-91b4-4f3e-8a6d-2b7c1f09e4d3"


def data_of(resp):
    """The job (or list) of an own route's answer, in the success envelope or bare."""
    body = resp.get_json()
    return body["data"] if isinstance(body, dict) and "error" in body and "data" in body else body


def sent(client, event, url, overrides):
    """Send `event` with `overrides` to `url` through the one delivery path and wait until it is delivered."""
    resp = client.post("/api/send", headers=XKEY, json={"event": event, "url": url, "overrides": overrides})
    assert resp.status_code == 201, resp.get_json()
    job = wait_job_final(client, data_of(resp)["id"])
    assert job["state"] == "succeeded", job
    return job


def sent_request(client, receiver_url):
    return sent(
        client,
        "DELIVERY_REQUEST_SENT",
        receiver_url,
        {
            "deliveryRequestId": REQUEST,
            "delivery": [{"deliveryId": DELIVERY, "beneficiaryId": "VR-558600001", "deliveryOptions": []}],
        },
    )


def subscribe(client, url, auth=None):
    resp = client.post(
        "/api/Event/Subscribe",
        headers=XKEY,
        json={"eventType": "DELIVERY_CHANNEL_STATUS_UPDATED", "callbackUrl": url, "auth": auth},
    )
    assert resp.status_code == 200, resp.get_json()


def create_channel(client, channel_id=CHANNEL, **extra):
    body = {
        "providerDeliveryChannelId": channel_id,
        "name": "IBAN transfer",
        "deliveryOptions": [{"fieldName": "iban", "fieldLabel": "IBAN", "dataType": "string", "isRequired": True}],
        **extra,
    }
    return client.post("/api/DeliveryChannel/Create", headers=XKEY, json=body)


def received_status(target, channel_id=CHANNEL):
    found = [json.loads(r.body) for r in target.received if r.status == 200 and channel_id in r.body]
    return found[0] if found else None


# -- DeliveryChannel/Create → review → DELIVERY_CHANNEL_STATUS_UPDATED ----------------------------------------------
def test_a_create_is_approved_and_answered_signed_at_the_subscribed_callback(make_app, start_receiver):
    """The done-when: --review approve --review-delay 1 answers a Create with a signed Approved event, same id."""
    app = make_app(REVIEW="approve", REVIEW_DELAY=1)
    client = app.test_client()
    target = start_receiver("accessrc", Auth("hmac", secret="abcd1234"), event="DELIVERY_CHANNEL_STATUS_UPDATED")
    subscribe(client, target.url + "/hooks/arc", {"type": "hmac", "secret": "abcd1234"})
    resp = create_channel(client)
    assert resp.status_code == 200
    body = resp.get_json()
    assert body["status"] == "success" and body["error"] is None
    assert body["data"]["providerDeliveryChannelId"] == CHANNEL
    event = wait_until(lambda: received_status(target), timeout=8, what="DELIVERY_CHANNEL_STATUS_UPDATED")
    assert event["status"] == "Approved" and event["message"] == ""
    assert event["requestType"] == "Delivery Channel Create"
    assert re.fullmatch(r"\d{2}/\d{2}/\d{4} \d{2}:\d{2}:\d{2}", event["requestedDate"])
    jobs = data_of(client.get("/api/jobs", headers=XKEY))
    job = next(j for j in (jobs["jobs"] if isinstance(jobs, dict) else jobs) if j["source"] == "review")
    attempt = wait_job_final(client, job["id"])["attempts"][0]
    signature = attempt["request_headers"].get("x-signature") or attempt["request_headers"].get("X-Signature")
    assert signature == hmac_signature("abcd1234", attempt["request_body"].encode())
    review = data_of(client.get("/api/reviews", headers=XKEY))[0]
    assert review["status"] == "Approved" and review["jobs"] == [job["id"]]


def test_reject_sends_the_reason(make_app, start_receiver):
    app = make_app(REVIEW="reject", REVIEW_DELAY=0.2)
    client = app.test_client()
    target = start_receiver("accessrc", event="DELIVERY_CHANNEL_STATUS_UPDATED")
    subscribe(client, target.url + "/h")
    assert create_channel(client).status_code == 200
    event = wait_until(lambda: received_status(target), timeout=8, what="rejection")
    assert event["status"] == "Rejected" and event["message"] == "Description is not clear enough"


def test_manual_review_waits_for_the_trainer(make_app, start_receiver):
    app = make_app(REVIEW="manual", REVIEW_DELAY=0)
    client = app.test_client()
    target = start_receiver("accessrc", event="DELIVERY_CHANNEL_STATUS_UPDATED")
    subscribe(client, target.url + "/h")
    assert create_channel(client).status_code == 200
    pending = data_of(client.get("/api/reviews?status=pending", headers=XKEY))
    assert [p["providerDeliveryChannelId"] for p in pending] == [CHANNEL] and pending[0]["due_at"] is None
    no_reason = client.post(f"/api/reviews/{CHANNEL}", headers=XKEY, json={"decision": "reject"})
    assert no_reason.status_code == 400 and no_reason.get_json()["error"]["field"] == "reason"
    decided = client.post(f"/api/reviews/{CHANNEL}", headers=XKEY, json={"decision": "reject", "reason": "No budget"})
    assert decided.status_code == 200 and data_of(decided)["status"] == "Rejected"
    event = wait_until(lambda: received_status(target), timeout=8, what="rejection")
    assert event["status"] == "Rejected" and event["message"] == "No budget"
    again = client.post(f"/api/reviews/{CHANNEL}", headers=XKEY, json={"decision": "approve"})
    assert again.status_code == 409
    unknown = client.post("/api/reviews/nope", headers=XKEY, json={"decision": "approve"})
    assert unknown.status_code == 404
    assert client.post(f"/api/reviews/{CHANNEL}", json={"decision": "approve"}).status_code == 401


def test_create_refuses_a_missing_id_and_advises_on_a_non_uuid_id_and_a_duplicate(make_app):
    client = make_app(REVIEW="manual").test_client()
    missing = client.post("/api/DeliveryChannel/Create", headers=XKEY, json={"name": "x"})
    assert missing.status_code == 400
    body = missing.get_json()
    assert body["status"] == "failed" and body["data"] is None
    assert body["error"]["field"] == "providerDeliveryChannelId" and body["error"]["type"] == "BadRequest"
    assert "accessrc.api.delivery-channel-create.fields" in body["error"]["message"]
    loose = create_channel(client, "chan-1")  # the UUID rule is inferred: accepted as the channel's id, with advice
    assert loose.status_code == 200 and loose.get_json()["data"]["providerDeliveryChannelId"] == "chan-1"
    assert "(inferred rule accessrc.api.delivery-channel-create.uuid)" in loose.get_json()["advice"][0]
    [proposed] = [
        c for c in data_of(client.get("/api/reviews", headers=XKEY)) if c["providerDeliveryChannelId"] == "chan-1"
    ]
    assert proposed["status"] == "pending"
    options = client.post(
        "/api/DeliveryChannel/Create",
        headers=XKEY,
        json={"providerDeliveryChannelId": CHANNEL, "deliveryOptions": ["iban"]},
    )
    assert options.status_code == 400 and options.get_json()["error"]["field"] == "deliveryOptions[0]"
    first = create_channel(client)
    assert first.status_code == 200 and "advice" not in first.get_json()
    dup = create_channel(client)  # already pending: changes nothing, said in advice
    assert dup.status_code == 200 and "delivery-channel-create.duplicate" in dup.get_json()["advice"][0]
    assert (
        len([c for c in data_of(client.get("/api/reviews", headers=XKEY)) if c["providerDeliveryChannelId"] == CHANNEL])
        == 1
    )
    assert client.post("/api/DeliveryChannel/Create", json={}).status_code == 401


def test_with_strict_the_inferred_rules_of_a_create_refuse(make_app):
    client = make_app(REVIEW="manual", STRICT=True).test_client()
    bad = create_channel(client, "chan-1")
    assert bad.status_code == 400 and "delivery-channel-create.uuid, inferred" in bad.get_json()["error"]["message"]
    assert create_channel(client).status_code == 200
    dup = create_channel(client)
    assert dup.status_code == 400 and "delivery-channel-create.duplicate" in dup.get_json()["error"]["message"]


# -- DeliveryRequest/Sync and Delivery/Sync ------------------------------------------------------------------------
@pytest.mark.parametrize(
    "body, field",
    [
        ({}, "deliveryRequestId"),
        ({"deliveryRequestId": "x" * 65}, "deliveryRequestId"),
        ({"deliveryRequestId": REQUEST, "providerDeliveryRequestId": "p" * 65}, "providerDeliveryRequestId"),
        ({"deliveryRequestId": REQUEST, "status": "DONE"}, "status"),
        ({"deliveryRequestId": REQUEST, "message": "m" * 1025}, "message"),
        ({"deliveryRequestId": REQUEST, "providerStatus": "s" * 65}, "providerStatus"),
        ({"deliveryRequestId": REQUEST, "providerDelivery": {}}, "providerDelivery"),
        ({"deliveryRequestId": REQUEST, "providerDelivery": [{"syncStatus": "OK"}]}, "providerDelivery[0].syncStatus"),
    ],
)
def test_bad_delivery_request_sync_bodies_get_400_in_the_envelope(client, body, field):
    resp = client.post("/api/DeliveryRequest/Sync", headers=XKEY, json=body)
    assert resp.status_code == 400
    answer = resp.get_json()
    assert answer["status"] == "failed" and answer["data"] is None and answer["error"]["code"] == 400
    assert answer["error"]["field"] == field
    rule = re.search(r"\(rule ([a-z0-9.-]+)", answer["error"]["message"]).group(1)
    assert rules.get(rule).platform == "accessrc"


def test_a_sync_for_an_id_never_sent_is_accepted_with_advice_and_links_nothing(client, receiver):
    resp = client.post("/api/DeliveryRequest/Sync", headers=XKEY, json={"deliveryRequestId": REQUEST})
    assert resp.status_code == 200
    body = resp.get_json()
    assert body["status"] == "success" and body["data"]["message"] == "Delivery Request is synced successfully"
    assert "(inferred rule accessrc.api.delivery-request-sync.sent)" in body["advice"][0]
    assert rules.get("accessrc.api.delivery-request-sync.sent").source == "inferred"
    unsent = client.post("/api/Delivery/Sync", headers=XKEY, json={"deliveryList": [{"deliveryId": DELIVERY}]})
    assert unsent.status_code == 200 and unsent.get_json()["data"]["deliveryIds"] == []
    assert "accessrc.api.delivery-sync.sent" in unsent.get_json()["advice"][0]
    empty = client.post("/api/Delivery/Sync", headers=XKEY, json={})  # deliveryList's required-ness is inferred
    assert empty.status_code == 200 and empty.get_json()["data"]["deliveryIds"] == []
    assert "accessrc.api.delivery-sync.list-required" in empty.get_json()["advice"][0]
    calls = data_of(client.get("/api/calls?path=/api/DeliveryRequest/Sync", headers=XKEY))
    assert [(c["status"], c["job_id"]) for c in calls] == [(200, None)]  # recorded, following no job
    assert "delivery-request-sync.sent" in calls[0]["response_body"]


@pytest.mark.parametrize(
    "path, body, rule, field",
    [
        ("/api/DeliveryRequest/Sync", {"deliveryRequestId": REQUEST}, "delivery-request-sync.sent",
         "deliveryRequestId"),
        ("/api/Delivery/Sync", {"deliveryList": [{"deliveryId": DELIVERY}]}, "delivery-sync.sent",
         "deliveryList[0].deliveryId"),
        ("/api/Delivery/Sync", {"deliveryList": [{"providerDeliveryId": "SP-X"}]}, "delivery-sync.mapped",
         "deliveryList[0].providerDeliveryId"),
        ("/api/Delivery/Sync", {}, "delivery-sync.list-required", "deliveryList"),
    ],
)  # fmt: skip
def test_with_strict_a_sync_breaking_an_inferred_rule_is_refused(make_app, path, body, rule, field):
    client = make_app(STRICT=True).test_client()
    resp = client.post(path, headers=XKEY, json=body)
    assert resp.status_code == 400, resp.get_json()
    error = resp.get_json()["error"]
    assert error["field"] == field and f"accessrc.api.{rule}, inferred" in error["message"]


def test_the_sync_loop_after_a_delivery_request_was_sent(client, receiver):
    target = receiver("accessrc")
    job = sent_request(client, target.url + "/dr")
    other = client.post(
        "/api/DeliveryRequest/Sync",
        headers=XKEY,
        json={"deliveryRequestId": REQUEST, "providerDelivery": [{"providerDeliveryId": "P1", "deliveryId": "x"}]},
    )
    assert other.status_code == 200  # not a delivery of that request: not mapped, said in advice
    assert "delivery-request-sync.delivery-of-request" in other.get_json()["advice"][0]
    synced = client.post(
        "/api/DeliveryRequest/Sync",
        headers=XKEY,
        json={
            "deliveryRequestId": REQUEST,
            "providerDeliveryRequestId": "SP-REQ-1",
            "providerDelivery": [{"providerDeliveryId": "SP-D-1", "deliveryId": DELIVERY, "syncStatus": "SUCCESS"}],
            "status": "APPROVED",
        },
    )
    assert synced.status_code == 200, synced.get_json()
    data = synced.get_json()["data"]
    assert data["message"] == "Delivery Request is synced successfully"
    assert data["providerDeliveryRequestId"] == "SP-REQ-1" and re.fullmatch(
        r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", data["date"]
    )
    by_mapping = client.post(
        "/api/Delivery/Sync",
        headers=XKEY,
        json={"deliveryList": [{"providerDeliveryId": "SP-D-1", "deliveryId": None, "deliveryAmount": 50,
                                "deliveryUnit": "EUR", "status": "DELIVERED"}]},
    )  # fmt: skip
    assert by_mapping.status_code == 200, by_mapping.get_json()
    assert by_mapping.get_json()["data"]["deliveryIds"] == [DELIVERY]
    unmapped = client.post(
        "/api/Delivery/Sync", headers=XKEY, json={"deliveryList": [{"providerDeliveryId": "SP-X", "deliveryId": None}]}
    )
    assert unmapped.status_code == 200 and unmapped.get_json()["data"]["deliveryIds"] == []
    assert "delivery-sync.mapped" in unmapped.get_json()["advice"][0]
    foreign = client.post("/api/Delivery/Sync", headers=XKEY, json={"deliveryList": [{"providerDeliveryId": "P1"}]})
    assert "delivery-sync.mapped" in foreign.get_json()["advice"][0]  # P1 named a foreign delivery: never mapped
    bad_status = client.post(
        "/api/Delivery/Sync", headers=XKEY, json={"deliveryList": [{"deliveryId": DELIVERY, "status": "PAID"}]}
    )
    assert bad_status.status_code == 400 and bad_status.get_json()["error"]["field"] == "deliveryList[0].status"
    amount = client.post(
        "/api/Delivery/Sync", headers=XKEY, json={"deliveryList": [{"deliveryId": DELIVERY, "deliveryAmount": "50"}]}
    )
    assert amount.status_code == 400 and amount.get_json()["error"]["field"] == "deliveryList[0].deliveryAmount"

    calls = data_of(client.get(f"/api/calls?job={job['id']}", headers=XKEY))
    assert {c["path"] for c in calls} == {"/api/DeliveryRequest/Sync", "/api/Delivery/Sync"}
    assert all(c["job_id"] == job["id"] for c in calls)


# -- Accredit Print Queue ----------------------------------------------------------------------------------------
def test_the_print_queue_downloads_a_real_zip_of_pdfs_and_takes_a_print_status(client, receiver):
    target = receiver("accredit")
    job = sent(
        client,
        "BadgeExportZipFile.Created",
        target.url + "/baseWebhookNotification",
        {"BadgeExportZipFileId": ZIP, "Badges": ["Ana Petrova", {"Name": "Jo Smith"}]},
    )
    listed = client.get("/api/printQueue", headers=BEARER)
    assert listed.status_code == 200
    assert [(i["badgeExportZipFileId"], i["printStatus"]) for i in listed.get_json()] == [(ZIP, "Pending")]
    resp = client.get(f"/api/printQueue/{ZIP}/download", headers=BEARER)
    assert resp.status_code == 200 and resp.mimetype == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(resp.data))
    assert archive.testzip() is None
    assert archive.namelist() == ["001-Ana-Petrova.pdf", "002-Jo-Smith.pdf"]
    for name in archive.namelist():
        pdf = archive.read(name)
        assert pdf.startswith(b"%PDF-") and pdf.rstrip().endswith(b"%%EOF")
        xref = int(pdf.rsplit(b"startxref\n", 1)[1].split()[0])
        assert pdf[xref:].startswith(b"xref")
        for number, line in enumerate(pdf[xref:].split(b"\n")[3:8], 1):  # every object where the table says
            assert pdf[int(line[:10]) :].startswith(f"{number} 0 obj".encode())
    updated = client.put(f"/api/printQueue/{ZIP}/printStatus", headers=BEARER, json={"printStatus": "Printed"})
    assert updated.status_code == 200 and updated.get_json()["printStatus"] == "Printed"
    assert client.get(f"/api/printQueue/{ZIP}", headers=BEARER).get_json()["printStatus"] == "Printed"
    other = client.put(f"/api/printQueue/{ZIP}/printStatus", headers=BEARER, json={"printStatus": "Done"})
    assert other.status_code == 200 and other.get_json()["printStatus"] == "Done"  # the values are ours: advice
    assert "(inferred rule accredit.api.print-queue.statuses)" in other.get_json()["advice"][0]
    calls = data_of(client.get("/api/calls?path=/api/printQueue", headers=XKEY))
    download = next(c for c in calls if c["path"].endswith("/download"))
    assert download["job_id"] == job["id"] and download["status"] == 200 and download["response_length"] > 0
    assert download["headers"]["Authorization"] == "***"


def test_the_print_queue_refuses_unknown_ids_with_the_documented_codes(client):
    unknown = client.get("/api/printQueue/00000000-0000-4000-8000-000000000000/download", headers=BEARER)
    assert unknown.status_code == 400 and unknown.get_json()["code"] == "ACR_02.004.000"
    meta = client.get("/api/printQueue/00000000-0000-4000-8000-000000000000", headers=BEARER)
    assert meta.status_code == 400 and meta.get_json()["code"] == "ACR_02.004.001"
    status = client.put("/api/printQueue/nope/printStatus", headers=BEARER, json={"printStatus": "Printed"})
    assert status.get_json()["code"] == "ACR_02.004.000"
    no_key = client.get("/api/printQueue")
    assert no_key.status_code == 401 and no_key.get_json()["code"].startswith("ACR_00.001")


def test_with_strict_a_print_status_outside_our_list_is_refused(make_app, receiver):
    client = make_app(STRICT=True).test_client()
    target = receiver("accredit")
    sent(client, "BadgeExportZipFile.Created", target.url + "/baseWebhookNotification", {"BadgeExportZipFileId": ZIP})
    invalid = client.put(f"/api/printQueue/{ZIP}/printStatus", headers=BEARER, json={"printStatus": "Done"})
    assert invalid.status_code == 400 and invalid.get_json()["code"] == "ACR_02.004.002"
    assert "accredit.api.print-queue.statuses, inferred" in invalid.get_json()["message"]
    assert client.get(f"/api/printQueue/{ZIP}", headers=BEARER).get_json()["printStatus"] == "Pending"


def test_badge_names_fall_back_to_numbered_badges():
    data, names = badges.badge_zip(ZIP, {"BadgeExportZipFileId": ZIP})
    assert names == ["001-Badge-1.pdf", "002-Badge-2.pdf", "003-Badge-3.pdf"]
    assert zipfile.ZipFile(io.BytesIO(data)).read(names[0]).startswith(b"%PDF")
    assert data == badges.badge_zip(ZIP, {})[0]  # the same id gives the same bytes


# -- the calls log ------------------------------------------------------------------------------------------------
def test_calls_are_listed_with_masked_credentials_and_filters(client):
    client.post("/api/DeliveryRequest/Sync", headers=XKEY, json={"deliveryRequestId": REQUEST})
    client.post("/api/Event/Subscribe", json={})  # no key: recorded too
    resp = client.get("/api/calls", headers=XKEY)
    assert resp.status_code == 200
    body = resp.get_json()
    assert body["status"] == "success" and body["error"] is None
    calls = body["data"]
    assert [c["path"] for c in calls] == ["/api/Event/Subscribe", "/api/DeliveryRequest/Sync"]
    sync = calls[1]
    assert sync["method"] == "POST" and sync["status"] == 200 and sync["headers"]["X-Api-Key"] == "***"
    assert json.loads(sync["body"]) == {"deliveryRequestId": REQUEST}
    answer = json.loads(sync["response_body"])  # an id never sent: accepted, the advice kept in the log
    assert answer["status"] == "success" and "delivery-request-sync.sent" in answer["advice"][0]
    assert sync["duration_ms"] >= 0
    assert sync["job_id"] is None and calls[0]["status"] == 401
    assert [c["path"] for c in data_of(client.get("/api/calls?path=/api/Delivery", headers=XKEY))] == [
        "/api/DeliveryRequest/Sync"
    ]
    assert data_of(client.get(f"/api/calls?since={sync['started_at'] + 3600}", headers=XKEY)) == []
    assert len(data_of(client.get("/api/calls?since=2000-01-01T00:00:00Z", headers=XKEY))) == 2
    assert client.get("/api/calls?since=yesterday", headers=XKEY).status_code == 400
    assert client.get("/api/calls").status_code == 401
    assert all(c["path"] != "/api/calls" for c in data_of(client.get("/api/calls", headers=XKEY)))


def test_a_pending_review_survives_a_restart(make_app, start_receiver):
    app = make_app(REVIEW="approve", REVIEW_DELAY=30)
    client = app.test_client()
    target = start_receiver("accessrc", event="DELIVERY_CHANNEL_STATUS_UPDATED")
    subscribe(client, target.url + "/h")
    assert create_channel(client).status_code == 200
    app.extensions["accessrc_sim"].stop(5)
    services = make_app(REVIEW="approve", REVIEW_DELAY=30).extensions["accessrc_sim"]
    channel = services.store.get_provider_object("accessrc", "delivery_channel", CHANNEL)
    assert channel.status == "pending" and channel.due_at is not None
    assert CHANNEL in services._review_timers  # rescheduled at start for its stored due time


def test_hmac_helper_is_the_documented_vector():
    body = b'{"deliveryId":"3f2b8c1e-7a41-4d2e-9c55-0b6e1d7a9f10"}'
    assert hmac_signature("abcd1234", body) == "sha256=e08c47f29a5b3f990629281b650e6f0d88de97c5a63006f5f6504451ee0b43bf"


def test_answers_match_the_openapi_document(client, receiver):
    from jsonschema import Draft202012Validator

    from simulator.api.openapi import document

    def check(name, instance):
        doc = document()
        validator = Draft202012Validator({"$ref": f"#/components/schemas/{name}", "components": doc["components"]})
        assert [e.message for e in validator.iter_errors(instance)] == []

    target = receiver("accredit")
    sent(client, "BadgeExportZipFile.Created", target.url + "/n", {"BadgeExportZipFileId": ZIP})
    check("PrintQueueItem", client.get(f"/api/printQueue/{ZIP}", headers=BEARER).get_json())
    assert create_channel(client).status_code == 200
    check("Review", data_of(client.get("/api/reviews", headers=XKEY))[0])
    for call in data_of(client.get("/api/calls", headers=XKEY)):
        check("Call", call)
