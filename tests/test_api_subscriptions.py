"""The simulator's subscription routes: CRUD, schedules (interval, cron), pause/resume, seeded firings."""

from __future__ import annotations

import json
import time
from datetime import UTC

import pytest
from sim_helpers import BEARER, XKEY, count_rows, wait_job_final, wait_until

from simulator.auth import Auth

EVENT = "DELIVERY_CHANNEL_STATUS_UPDATED"


def create(client, **body):
    body.setdefault("event", EVENT)
    return client.post("/api/subscriptions", headers=XKEY, json=body)


def test_crud_with_either_key_header(client):
    resp = create(client, url="http://127.0.0.1:9/h", auth={"type": "hmac", "secret": "abc"})
    assert resp.status_code == 201
    sub = resp.get_json()["data"]
    assert sub["platform"] == "accessrc" and sub["auth"] == {"kind": "hmac", "secret": "***"}
    assert client.get(f"/api/subscriptions/{sub['id']}", headers=BEARER).get_json()["data"]["id"] == sub["id"]
    patched = client.patch(
        f"/api/subscriptions/{sub['id']}",
        headers=XKEY,
        json={"url": "http://127.0.0.1:9/other", "overrides": {"status": "Rejected"}},
    ).get_json()["data"]
    assert patched["url"].endswith("/other") and patched["overrides"] == {"status": "Rejected"}
    assert [s["id"] for s in client.get("/api/subscriptions", headers=XKEY).get_json()["data"]] == [sub["id"]]
    assert client.delete(f"/api/subscriptions/{sub['id']}", headers=XKEY).status_code == 200
    assert client.get(f"/api/subscriptions/{sub['id']}", headers=XKEY).status_code == 404


def test_interval_schedule_fires_fresh_payloads_until_paused(client, receiver):
    target = receiver("accessrc")
    sub = create(client, url=target.url + "/h", schedule={"interval_seconds": 0.3}).get_json()["data"]
    assert sub["schedule"] == {"kind": "interval", "seconds": 0.3} and sub["next_fire_at"] is not None
    wait_until(lambda: len(target.received) >= 3, timeout=10)
    assert all(r.outcome == "accepted" for r in target.received)
    bodies = {r.body for r in target.received}
    assert len(bodies) == len(target.received)  # a fresh payload per firing
    paused = client.post(f"/api/subscriptions/{sub['id']}/pause", headers=XKEY).get_json()["data"]
    assert paused["paused"] and paused["next_fire_at"] is None
    time.sleep(0.4)  # a firing already started may still land
    settled = len(target.received)
    time.sleep(1.0)
    assert len(target.received) == settled
    resumed = client.post(f"/api/subscriptions/{sub['id']}/resume", headers=XKEY).get_json()["data"]
    assert not resumed["paused"]
    wait_until(lambda: len(target.received) > settled, timeout=5)
    jobs = client.get(f"/api/jobs?subscription_id={sub['id']}&source=schedule", headers=XKEY).get_json()["data"]
    assert len(jobs) >= 4


def test_cron_schedule_fires_through_its_cron_job_and_rearms_on_the_minute(app, client, receiver):
    """A cron firing end to end without waiting for the clock: the subscription's APScheduler job (its CronTrigger)
    is made due now; it fires, the receiver gets a fresh payload, and the job re-arms at the next minute."""
    from datetime import datetime

    from apscheduler.triggers.cron import CronTrigger

    target = receiver("accessrc")
    sub = create(client, url=target.url + "/h", schedule={"cron": "* * * * *"}).get_json()["data"]
    assert int(sub["next_fire_at"]) % 60 == 0 and sub["next_fire_at"] > time.time()
    aps = app.extensions["accessrc_sim"].scheduler._scheduler
    job = aps.get_job(sub["id"])
    assert isinstance(job.trigger, CronTrigger)
    job.modify(next_run_time=datetime.now(UTC))
    aps.wakeup()
    wait_until(lambda: len(target.received) >= 1, timeout=10)
    assert {r.outcome for r in target.received} == {"accepted"}  # (a minute boundary may add a real firing)
    jobs = client.get(f"/api/jobs?subscription_id={sub['id']}&source=schedule", headers=XKEY).get_json()["data"]
    assert len(jobs) >= 1
    rearmed = client.get(f"/api/subscriptions/{sub['id']}", headers=XKEY).get_json()["data"]["next_fire_at"]
    assert rearmed > time.time() and int(rearmed) % 60 == 0


def test_schedule_put_and_delete(client):
    sub = create(client, url="http://127.0.0.1:9/h").get_json()["data"]
    assert sub["schedule"] is None and sub["next_fire_at"] is None
    resp = client.put(f"/api/subscriptions/{sub['id']}/schedule", headers=XKEY, json={"cron": "*/5 * * * *"})
    assert resp.status_code == 200
    body = resp.get_json()["data"]
    assert body["schedule"] == {"kind": "cron", "cron": "*/5 * * * *"}
    assert body["next_fire_at"] > time.time() and int(body["next_fire_at"]) % 300 == 0
    cleared = client.delete(f"/api/subscriptions/{sub['id']}/schedule", headers=XKEY).get_json()["data"]
    assert cleared["schedule"] is None and cleared["next_fire_at"] is None


@pytest.mark.parametrize(
    "schedule, field",
    [
        ({"cron": "61 * * * *"}, "schedule.cron"),
        ({"cron": "every day"}, "schedule.cron"),
        ({"cron": 5}, "schedule.cron"),
        ({"interval_seconds": 0}, "schedule.interval_seconds"),
        ({"interval_seconds": "10"}, "schedule.interval_seconds"),
        ({"interval_seconds": 10, "cron": "* * * * *"}, "schedule"),
        ({}, "schedule"),
        ({"every": 3}, "schedule.every"),
        ("hourly", "schedule"),
    ],
)
def test_bad_schedule_is_400_naming_the_field_and_stores_nothing(client, app, schedule, field):
    resp = create(client, url="http://127.0.0.1:9/h", schedule=schedule)
    assert resp.status_code == 400 and resp.get_json()["error"]["field"] == field, resp.get_json()
    assert count_rows(app, "subscriptions") == 0


def test_bad_schedule_on_put_leaves_the_subscription_unchanged(client):
    sub = create(client, url="http://127.0.0.1:9/h", schedule={"interval_seconds": 60}).get_json()["data"]
    resp = client.put(f"/api/subscriptions/{sub['id']}/schedule", headers=XKEY, json={"cron": "99 * * * *"})
    assert resp.status_code == 400 and resp.get_json()["error"]["field"] == "schedule.cron"
    assert client.get(f"/api/subscriptions/{sub['id']}", headers=XKEY).get_json()["data"]["schedule"]["seconds"] == 60


@pytest.mark.parametrize(
    "body, field",
    [
        ({"url": "http://127.0.0.1:9/h", "event": "NOPE"}, "event"),
        ({"url": "http://127.0.0.1:9/h", "event": "BadgeExportZipFile.Created", "platform": "accessrc"}, "platform"),
        ({"url": "http://127.0.0.1:9/h", "overrides": {"nosuch.path": 1}}, "overrides"),
        ({"url": "http://127.0.0.1:9/h", "overrides": {"status": 7}}, "overrides"),
        ({"url": "http://127.0.0.1:9/h", "retry_delays": [1, 2, 3, 4, 5, 6]}, "retry_delays"),
        ({"url": "http://127.0.0.1:9/h", "timeout": 0}, "timeout"),
        ({"url": "http://127.0.0.1:9/h", "seed": -1}, "seed"),
        ({"url": "http://127.0.0.1:9/h", "paused": "yes"}, "paused"),
        (
            {"url": "http://127.0.0.1:9/h", "event": "END_JOB_NOTIFICATION", "auth": {"type": "hmac"}},
            "auth.authorization",
        ),
        ({"url": "http://127.0.0.1:9/h", "event": "BadgeExportZipFile.Created", "auth": {"type": "hmac"}}, "auth"),
        ({"url": "http://127.0.0.1:9/h", "event": "PROGRAM_PULL_FORM"}, "eventType"),
        ({}, "url"),
    ],
)
def test_bad_subscription_is_400_naming_the_field(client, app, body, field):
    body.setdefault("event", EVENT)
    resp = client.post("/api/subscriptions", headers=XKEY, json=body)
    assert resp.status_code == 400 and resp.get_json()["error"]["field"] == field, resp.get_json()
    assert count_rows(app, "subscriptions") == 0


def test_seeded_subscription_fires_reproducible_but_different_payloads(client, receiver):
    target = receiver("accessrc")
    sub = create(client, url=target.url + "/h", seed=42, overrides={"status": "Rejected"}).get_json()["data"]
    bodies = []
    for _ in range(2):
        job = client.post(f"/api/subscriptions/{sub['id']}/fire", headers=XKEY).get_json()["data"]
        bodies.append(wait_job_final(client, job["id"])["body"])
    assert bodies[0] != bodies[1]
    assert all(json.loads(b)["status"] == "Rejected" for b in bodies)
    again = create(client, url=target.url + "/again", seed=42, overrides={"status": "Rejected"}).get_json()["data"]
    job = client.post(f"/api/subscriptions/{again['id']}/fire", headers=XKEY).get_json()["data"]
    assert wait_job_final(client, job["id"])["body"] == bodies[0]


def test_fire_with_overrides_and_bad_overrides(client, app):
    sub = create(client, url="http://127.0.0.1:9/h").get_json()["data"]
    job = client.post(
        f"/api/subscriptions/{sub['id']}/fire",
        headers=XKEY,
        json={"overrides": {"message": "Description is not clear enough", "status": "Rejected"}},
    )
    assert (
        job.status_code == 201
        and json.loads(job.get_json()["data"]["body"])["message"] == "Description is not clear enough"
    )
    before = count_rows(app, "jobs")
    assert "meta" not in job.get_json()  # documented fields, documented values: nothing to advise
    added = client.post(f"/api/subscriptions/{sub['id']}/fire", headers=XKEY, json={"overrides": {"nope": 1}})
    assert added.status_code == 201 and json.loads(added.get_json()["data"]["body"])["nope"] == 1  # advice only
    assert added.get_json()["meta"]["notes"] == [  # named, as /api/send names it (issue 12)
        "nope: extra field 'nope', not in the documents (inferred rule accessrc.payload.no-extra-fields)"
    ]
    before = count_rows(app, "jobs")
    bad = client.post(f"/api/subscriptions/{sub['id']}/fire", headers=XKEY, json={"overrides": {"no.pe": 1}})
    assert bad.status_code == 400 and bad.get_json()["error"]["field"] == "overrides"
    assert count_rows(app, "jobs") == before
    assert client.get(f"/api/subscriptions/{sub['id']}", headers=XKEY).get_json()["data"]["fired_count"] == 2


def test_firing_a_subscription_whose_overrides_add_a_field_answers_their_note(client):
    """Issue 12: the subscription's own stored override, like one given to fire, is advice named in `meta.notes`."""
    sub = create(client, url="http://127.0.0.1:9/h", overrides={"kept": 1})
    assert sub.status_code == 201, sub.get_json()
    fired = client.post(f"/api/subscriptions/{sub.get_json()['data']['id']}/fire", headers=XKEY)
    assert fired.status_code == 201 and json.loads(fired.get_json()["data"]["body"])["kept"] == 1
    assert fired.get_json()["meta"] == {
        "notes": ["kept: extra field 'kept', not in the documents (inferred rule accessrc.payload.no-extra-fields)"]
    }


def test_reachfive_end_job_target_sends_the_authorization_and_never_retries(client, receiver):
    target = receiver("reachfive", auth=Auth("authorization", authorization="Bearer mF_9.B5f-4.1JqM"), fail_first=1)
    sub = create(
        client,
        event="END_JOB_NOTIFICATION",
        url=target.url + "/jobs",
        timeout=5,
        auth={"authorization": "Bearer mF_9.B5f-4.1JqM"},
        overrides={"definition_name": "Nightly CRM import"},
    ).get_json()["data"]
    assert sub["platform"] == "reachfive" and sub["auth"]["authorization"] == "***"
    job = client.post(f"/api/subscriptions/{sub['id']}/fire", headers=XKEY).get_json()["data"]
    job = wait_job_final(client, job["id"])
    assert job["state"] == "exhausted" and job["attempts_made"] == 1 and job["max_attempts"] == 1
    assert "X-JobId" not in job["attempts"][0]["request_headers"]
    assert [r.status for r in target.received] == [500]
    assert json.loads(job["body"])["definition_name"] == "Nightly CRM import"


def test_scheduled_subscriptions_resume_after_a_restart(make_app, receiver):
    target = receiver("accessrc")
    first = make_app()
    sub = create(first.test_client(), url=target.url + "/h", schedule={"interval_seconds": 0.3}).get_json()["data"]
    wait_until(lambda: len(target.received) >= 1)
    first.extensions["accessrc_sim"].stop(5)
    time.sleep(0.3)
    count = len(target.received)
    restarted_at = time.time()
    second = make_app()
    ready_at = time.time()
    next_fire = (
        second.test_client().get(f"/api/subscriptions/{sub['id']}", headers=XKEY).get_json()["data"]["next_fire_at"]
    )
    # Firings missed while down are not made up in a burst: the next one is the next time on the schedule's grid
    # (whole intervals since the Unix epoch, the same on every server sharing a database), in the future.
    assert restarted_at < next_fire <= ready_at + 0.3 + 0.05
    assert round(next_fire / 0.3, 3) % 1 in (0.0, 1.0)
    wait_until(lambda: len(target.received) >= count + 2)
    time.sleep(0.2)
    assert len(target.received) <= count + 2 + int((time.time() - restarted_at) / 0.3) + 1
    assert (
        second.test_client().get(f"/api/subscriptions/{sub['id']}", headers=XKEY).get_json()["data"]["fired_count"] >= 3
    )


def test_the_stored_auth_form_sent_back_is_refused_with_the_subscribe_name(client, app):
    resp = create(client, url="http://127.0.0.1:9/h", auth={"kind": "hmac", "secret": "abc"})
    error = resp.get_json()["error"]
    assert resp.status_code == 400 and error["field"] == "auth.kind"
    assert "AccessRC's Subscribe auth object names it `type`" in error["message"]
    assert count_rows(app, "subscriptions") == 0


# -- a new callback URL does not take the stored credentials along (issue 14, item 1) -----------------------------
CREDENTIALS = [  # (event, auth as the API takes it, the secret values it holds)
    (EVENT, {"type": "basic", "username": "partner", "password": "basic-pw-7781"}, ["basic-pw-7781"]),
    (EVENT, {"type": "header", "headerName": "X-Partner-Key", "headerValue": "hdr-value-5512"}, ["hdr-value-5512"]),
    (EVENT, {"type": "hmac", "secret": "hmac-secret-9034"}, ["hmac-secret-9034"]),
    ("END_JOB_NOTIFICATION", {"authorization": "Bearer r5-token-4471"}, ["r5-token-4471"]),
]


def _fire_to_collector(client, sub_id):
    from reliability_helpers import CountingReceiver

    with CountingReceiver() as collector:
        patched = client.patch(f"/api/subscriptions/{sub_id}", headers=XKEY, json={"url": collector.url})
        job = client.post(f"/api/subscriptions/{sub_id}/fire", headers=XKEY).get_json()["data"]
        wait_job_final(client, job["id"])
        return patched, collector.headers


@pytest.mark.parametrize("event, auth, secrets", CREDENTIALS, ids=["basic", "header", "hmac", "reachfive"])
def test_patching_the_url_drops_the_stored_credentials(client, event, auth, secrets):
    """The trial: with the admin key, PATCH a subscription's URL to your own receiver and fire it to collect the
    provider's credentials. Now the credentials stay behind, and the answer says so."""
    sub = create(client, event=event, url="http://127.0.0.1:9/provider", auth=auth).get_json()["data"]
    patched, seen = _fire_to_collector(client, sub["id"])
    assert patched.status_code == 200 and len(seen) == 1
    sent = json.dumps(seen)
    assert (
        not any(s in sent for s in secrets)
        and "Authorization" not in seen[0]
        and "x-signature" not in {k.lower() for k in seen[0]}
    ), f"the collector got the credentials: {seen[0]}"
    body = patched.get_json()["data"]
    assert body["credentials_dropped"] is True and body["auth"] == {"kind": "none"}
    assert client.get(f"/api/subscriptions/{sub['id']}", headers=XKEY).get_json()["data"]["auth"] == {"kind": "none"}


@pytest.mark.parametrize("event, auth, secrets", CREDENTIALS, ids=["basic", "header", "hmac", "reachfive"])
def test_a_url_change_that_repeats_the_credentials_keeps_them(client, event, auth, secrets):
    sub = create(client, event=event, url="http://127.0.0.1:9/provider", auth=auth).get_json()["data"]
    moved = client.patch(
        f"/api/subscriptions/{sub['id']}", headers=XKEY, json={"url": "http://127.0.0.1:9/moved", "auth": auth}
    ).get_json()["data"]
    assert moved["credentials_dropped"] is False and moved["auth"] == sub["auth"] != {"kind": "none"}
    same = client.patch(
        f"/api/subscriptions/{sub['id']}", headers=XKEY, json={"url": "http://127.0.0.1:9/moved", "paused": True}
    ).get_json()["data"]
    assert same["credentials_dropped"] is False and same["auth"] == sub["auth"]  # the same URL: nothing moves
    other = client.patch(f"/api/subscriptions/{sub['id']}", headers=XKEY, json={"paused": False}).get_json()["data"]
    assert other["credentials_dropped"] is False and other["auth"] == sub["auth"]


def test_accredit_url_change_keeps_rsa_signing(client):
    sub = create(client, event="BadgeExportZipFile.Created", url="http://127.0.0.1:9/a").get_json()["data"]
    moved = client.patch(f"/api/subscriptions/{sub['id']}", headers=XKEY, json={"url": "http://127.0.0.1:9/b"})
    assert (
        moved.get_json()["data"]["credentials_dropped"] is False and moved.get_json()["data"]["auth"]["kind"] == "rsa"
    )


def test_accessrc_subscribe_with_another_url_says_the_credentials_were_dropped(client):
    first = {
        "eventType": EVENT,
        "callbackUrl": "http://127.0.0.1:9/provider",
        "auth": {"type": "basic", "username": "partner", "password": "basic-pw-7781"},
    }
    assert (
        client.post("/api/Event/Subscribe", headers=XKEY, json=first).get_json()["data"]["credentialsDropped"] is False
    )
    moved = client.post(
        "/api/Event/Subscribe", headers=XKEY, json={"eventType": EVENT, "callbackUrl": "http://127.0.0.1:9/collector"}
    ).get_json()["data"]
    assert moved["credentialsDropped"] is True
    sub = client.get(f"/api/subscriptions/{moved['subscriptionId']}", headers=XKEY).get_json()["data"]
    assert sub["auth"] == {"kind": "none"} and sub["url"].endswith("/collector")
    again = client.post("/api/Event/Subscribe", headers=XKEY, json={**first, "callbackUrl": "http://127.0.0.1:9/x"})
    assert again.get_json()["data"]["credentialsDropped"] is False  # repeated: kept
