"""Delivery profiles (issue 12, item 4): AccessRC sends only what its documents say unless asked for accredit-like.

AccessRC documents no X-JobId/X-JobAttempt (platforms/accessrc.md, "Delivery rules"); Accredit documents both and
"returning a 400 triggers a retry" (seed 003). Every trigger is checked at a real server on 127.0.0.1: CLI send, the
server's queue (send, subscription, action, redeliver), scenario steps, load mode; and the profile survives a reopen
of the store, including a database file written before profiles existed.
"""

from __future__ import annotations

import json
import sqlite3

import pytest
from click.testing import CliRunner
from scripted_server import ScriptedServer
from sim_helpers import XKEY, wait_job_final

from simulator import catalogue, delivery, platforms, rules
from simulator.auth import Auth
from simulator.cli import main
from simulator.delivery import Deliverer, DeliveryError
from simulator.load import LoadError, LoadPlan, LoadRun, run_load
from simulator.scenarios.loader import ScenarioFileError, load_text
from simulator.scenarios.runner import Runner
from simulator.store import Store
from simulator.subscriptions import Subscription, SubscriptionRepo

OK = (200, b'{"status":"success","message":"Callback successfully received","data":{}}', 0, {})
BAD = (400, b'{"status":"failed"}', 0, {})
JOB_HEADERS = ("X-JobId", "X-JobAttempt")
REFUND = "DELIVERY_REFUND_REQUESTED"


def job_headers(headers: dict) -> dict:
    return {k: v for k, v in headers.items() if k in JOB_HEADERS}


# -- the profiles as data ----------------------------------------------------------------------------------------------
def test_profiles_per_platform_and_their_rules():
    names = {p: tuple(profile.name for profile in platforms.get(p).profiles) for p in platforms.NAMES}
    assert names == {
        "accessrc": ("documented", "accredit-like"),
        "accredit": ("documented",),
        "reachfive": ("documented",),
    }
    assert not delivery.get_profile("accessrc").job_headers
    assert delivery.get_profile("accessrc", "accredit-like").job_headers
    assert delivery.get_profile("accredit").job_headers and not delivery.get_profile("reachfive").retries
    for name in ("accredit", "reachfive"):
        with pytest.raises(DeliveryError, match="accredit-like is for accessrc only"):
            delivery.get_profile(name, "accredit-like")
    with pytest.raises(DeliveryError, match="profile must be one of"):
        delivery.get_profile("accessrc", "loud")
    for profile in (
        profile for p in platforms.PLATFORMS.values() for profile in p.profiles
    ):  # each choice points at the rule that says where it is from
        assert rules.get(profile.retry_rule).platform == profile.platform
        assert rules.get(profile.header_rule).platform == profile.platform
    assert rules.get(delivery.get_profile("accessrc").retry_rule).source == "inferred"
    assert rules.get(delivery.get_profile("accessrc").header_rule).source == "inferred"  # a [I] row of the fact sheet
    assert rules.get(delivery.get_profile("accredit").retry_rule).source == "documented"
    assert rules.get("accredit.retries.on-400").source == "documented"


# -- CLI send ----------------------------------------------------------------------------------------------------------
@pytest.fixture
def run(tmp_path, keys_dir):
    def invoke(*args):
        env = {"ACCESSRC_SIM_DB": str(tmp_path / "cli.db"), "ACCESSRC_SIM_KEYS_DIR": str(keys_dir)}
        return CliRunner().invoke(main, list(map(str, args)), env=env, catch_exceptions=False)

    return invoke


def test_cli_send_accessrc_carries_no_job_headers_by_default(run):
    with ScriptedServer([BAD, OK]) as srv:
        out = run("send", REFUND, "--url", srv.url + "/hook", "--hmac-secret", "abcd1234", "--retry-delays", "0,0")
    assert out.exit_code == 0, out.output
    assert len(srv.requests) == 2  # still retried: our (inferred) policy
    assert all(job_headers(r["headers"]) == {} for r in srv.requests)
    assert "are our choice (accessrc documents no retry policy" in out.output
    assert "--profile accredit-like adds them" in out.output


def test_cli_send_accredit_like_adds_both_headers(run):
    with ScriptedServer([BAD, OK]) as srv:
        out = run(
            "send", REFUND, "--url", srv.url + "/hook", "--retry-delays", "0", "--profile", "accredit-like", "--json"
        )
    assert out.exit_code == 0, out.output
    job = json.loads(out.output)
    assert job["profile"] == "accredit-like"
    assert [job_headers(r["headers"]) for r in srv.requests] == [
        {"X-JobId": job["id"], "X-JobAttempt": "0"},
        {"X-JobId": job["id"], "X-JobAttempt": "1"},
    ]


@pytest.mark.parametrize("event", ["BadgeExportZipFile.Created", "END_JOB_NOTIFICATION"])
def test_cli_send_refuses_accredit_like_off_accessrc(run, event):
    with ScriptedServer([OK]) as srv:
        out = run("send", event, "--url", srv.url + "/hook", "--profile", "accredit-like")
    assert out.exit_code == 2 and "accredit-like is for accessrc only" in out.output
    assert srv.requests == []
    unknown = run("send", REFUND, "--url", "http://127.0.0.1:9/h", "--profile", "loud")
    assert unknown.exit_code == 2 and "loud" in unknown.output


def test_cli_send_accredit_still_sends_both_headers_and_retries_a_400(run):
    with ScriptedServer([BAD, OK]) as srv:
        out = run(
            "send",
            "BadgeExportZipFile.Created",
            "--url",
            srv.url + "/baseWebhookNotification",
            "--retry-delays",
            "0",
            "--json",
        )
        text = run("send", "BadgeExportZipFile.Created", "--url", srv.url + "/b", "--retry-delays", "")
    assert out.exit_code == 0, out.output
    job_id = json.loads(out.output)["id"]
    assert [job_headers(r["headers"]) for r in srv.requests[:2]] == [
        {"X-JobId": job_id, "X-JobAttempt": "0"},
        {"X-JobId": job_id, "X-JobAttempt": "1"},
    ]
    assert text.exit_code == 0 and "our choice" not in text.output  # its retries and headers are documented


# -- the server: /api/send, subscriptions, actions, redeliver ----------------------------------------------------------
def sent_headers(client, job_id):
    return [job_headers(a["request_headers"]) for a in wait_job_final(client, job_id)["attempts"]]


def test_api_send_follows_the_profile(client, receiver):
    target = receiver("accessrc")
    plain = client.post("/api/send", headers=XKEY, json={"event": REFUND, "url": target.url + "/r"}).get_json()["data"]
    assert plain["profile"] == "documented" and plain["x_job_id"] is None
    assert sent_headers(client, plain["id"]) == [{}]
    like = client.post(
        "/api/send", headers=XKEY, json={"event": REFUND, "url": target.url + "/r", "profile": "accredit-like"}
    ).get_json()["data"]
    assert like["profile"] == "accredit-like" and like["x_job_id"] == like["id"]
    assert sent_headers(client, like["id"]) == [{"X-JobId": like["id"], "X-JobAttempt": "0"}]
    assert [r.job_id for r in target.received] == [None, like["id"]]


@pytest.mark.parametrize(
    "body, message",
    [
        ({"event": "BadgeExportZipFile.Created", "profile": "accredit-like"}, "accredit-like is for accessrc only"),
        ({"event": "END_JOB_NOTIFICATION", "profile": "accredit-like"}, "accredit-like is for accessrc only"),
        ({"event": REFUND, "profile": "loud"}, "profile must be one of"),
        ({"event": REFUND, "profile": 1}, "profile must be a string"),
    ],
)
def test_api_refuses_a_profile_the_platform_has_not(client, body, message):
    resp = client.post("/api/send", headers=XKEY, json={"url": "http://127.0.0.1:9/h", **body})
    assert resp.status_code == 400
    error = resp.get_json()
    assert error["status"] == "failed" and error["data"] is None  # the simulator's routes: the AccessRC envelope
    assert error["error"]["field"] == "profile" and message in error["error"]["message"]
    sub = client.post("/api/subscriptions", headers=XKEY, json={"url": "http://127.0.0.1:9/h", **body})
    assert sub.status_code == 400 and sub.get_json()["error"]["field"] == "profile"


def test_subscription_profile_is_kept_patched_and_followed(client, receiver):
    target = receiver("accessrc")
    sub = client.post(
        "/api/subscriptions", headers=XKEY, json={"event": REFUND, "url": target.url + "/r", "profile": "accredit-like"}
    ).get_json()["data"]
    assert sub["profile"] == "accredit-like"
    fired = client.post(f"/api/subscriptions/{sub['id']}/fire", headers=XKEY).get_json()["data"]
    assert fired["profile"] == "accredit-like"
    assert sent_headers(client, fired["id"]) == [{"X-JobId": fired["id"], "X-JobAttempt": "0"}]
    patched = client.patch(f"/api/subscriptions/{sub['id']}", headers=XKEY, json={"profile": "documented"})
    assert patched.status_code == 200 and patched.get_json()["data"]["profile"] == "documented"
    again = client.post(f"/api/subscriptions/{sub['id']}/fire", headers=XKEY).get_json()["data"]
    assert sent_headers(client, again["id"]) == [{}]
    default = client.post("/api/subscriptions", headers=XKEY, json={"event": REFUND, "url": target.url + "/d"})
    assert default.get_json()["data"]["profile"] == "documented"
    bad = client.patch(f"/api/subscriptions/{sub['id']}", headers=XKEY, json={"profile": "loud"})
    assert bad.status_code == 400 and bad.get_json()["error"]["field"] == "profile"


def test_accessrc_resubscribe_keeps_the_profile_set_on_the_simulator_api(client, receiver):
    target = receiver("accessrc")
    subscribe = {"eventType": REFUND, "callbackUrl": target.url + "/r", "auth": None}
    sub_id = client.post("/api/Event/Subscribe", headers=XKEY, json=subscribe).get_json()["data"]["subscriptionId"]
    assert client.get(f"/api/subscriptions/{sub_id}", headers=XKEY).get_json()["data"]["profile"] == "documented"
    client.patch(f"/api/subscriptions/{sub_id}", headers=XKEY, json={"profile": "accredit-like"})
    client.post("/api/Event/Subscribe", headers=XKEY, json={**subscribe, "callbackUrl": target.url + "/r2"})
    kept = client.get(f"/api/subscriptions/{sub_id}", headers=XKEY).get_json()["data"]
    assert kept["profile"] == "accredit-like" and kept["url"] == target.url + "/r2"


def test_actions_use_each_subscriptions_profile_or_the_one_given_with_url(client, receiver):
    target = receiver("accessrc")
    client.post("/api/subscriptions", headers=XKEY, json={"event": REFUND, "url": target.url + "/plain"})
    client.post(
        "/api/subscriptions",
        headers=XKEY,
        json={"event": REFUND, "url": target.url + "/like", "profile": "accredit-like"},
    )
    jobs = client.post("/api/actions/request-refund", headers=XKEY, json={}).get_json()["data"]["jobs"]
    by_url = {j["url"].rsplit("/", 1)[1]: sent_headers(client, j["id"]) for j in jobs}
    assert by_url["plain"] == [{}] and by_url["like"][0]["X-JobAttempt"] == "0"
    one = client.post(
        "/api/actions/request-refund", headers=XKEY, json={"url": target.url + "/one", "profile": "accredit-like"}
    ).get_json()["data"]["jobs"][0]
    assert sent_headers(client, one["id"]) == [{"X-JobId": one["id"], "X-JobAttempt": "0"}]
    alone = client.post("/api/actions/request-refund", headers=XKEY, json={"profile": "accredit-like"})
    assert alone.status_code == 400 and alone.get_json()["error"]["field"] == "profile"
    listed = {a["name"]: a["params"] for a in client.get("/api/actions", headers=XKEY).get_json()["data"]}
    assert "profile" in listed["request-refund"] and "profile" not in listed["create-badge-export"]


def test_redelivery_keeps_the_profile(client, receiver):
    target = receiver("accessrc")
    plain = wait_job_final(
        client,
        client.post("/api/send", headers=XKEY, json={"event": REFUND, "url": target.url + "/r"}).get_json()["data"][
            "id"
        ],
    )
    again = client.post(f"/api/jobs/{plain['id']}/redeliver", headers=XKEY).get_json()["data"]
    assert again["profile"] == "documented" and again["x_job_id"] is None
    assert sent_headers(client, again["id"]) == [{}]


def test_dashboard_send_takes_the_profile(client, receiver):
    target = receiver("accessrc")
    payload = catalogue.generate(REFUND, seed=1)
    sent = client.post(
        "/dashboard/api/send",
        headers=XKEY,
        json={"event": REFUND, "url": target.url + "/h", "payload": payload, "profile": "accredit-like"},
    )
    assert sent.status_code == 201, sent.get_json()
    job = sent.get_json()["data"]
    assert sent_headers(client, job["id"]) == [{"X-JobId": job["id"], "X-JobAttempt": "0"}]
    refused = client.post(
        "/dashboard/api/send",
        headers=XKEY,
        json={
            "event": "BadgeExportZipFile.Created",
            "url": target.url + "/h",
            "payload": catalogue.generate("BadgeExportZipFile.Created", seed=1),
            "profile": "accredit-like",
        },
    )
    assert refused.status_code == 400 and refused.get_json()["error"]["field"] == "profile"


def test_accredit_through_the_queue_sends_both_headers_and_retries_after_a_400(client):
    with ScriptedServer([BAD, OK]) as srv:
        job = client.post(
            "/api/send",
            headers=XKEY,
            json={"event": "BadgeExportZipFile.Created", "url": srv.url + "/baseWebhookNotification"},
        ).get_json()["data"]
        done = wait_job_final(client, job["id"])
    assert done["state"] == "succeeded" and [a["status"] for a in done["attempts"]] == [400, 200]
    assert [job_headers(r["headers"]) for r in srv.requests] == [
        {"X-JobId": job["id"], "X-JobAttempt": "0"},
        {"X-JobId": job["id"], "X-JobAttempt": "1"},
    ]


# -- the store: the profile survives a reopen; old database files are migrated -----------------------------------------
def test_profile_survives_a_store_reopen_and_a_resumed_job_keeps_its_headers(tmp_path):
    path = tmp_path / "sim.db"
    store = Store(path)
    body = catalogue.body_bytes(catalogue.generate(REFUND, seed=2))
    with ScriptedServer([OK]) as srv:
        like = delivery.new_job(
            REFUND, "accessrc", srv.url + "/r", body, Auth("none"), profile="accredit-like", source="api"
        )
        plain = delivery.new_job(REFUND, "accessrc", srv.url + "/r", body, Auth("none"), source="api")
        store.add_job(like)
        store.add_job(plain)
        store.close()
        reopened = Store(path)  # as after kill -9: a fresh process reads the rows
        assert reopened.migrated == []
        assert (
            reopened.get_job(like.id).profile == "accredit-like" and reopened.get_job(plain.id).profile == "documented"
        )
        Deliverer(reopened, None).run_to_end(reopened.get_job(like.id))
        reopened.close()
    assert job_headers(srv.requests[0]["headers"]) == {"X-JobId": like.id, "X-JobAttempt": "0"}


OLD_JOBS = """CREATE TABLE jobs (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, event TEXT NOT NULL,
    platform TEXT NOT NULL, url TEXT NOT NULL, body BLOB NOT NULL, auth_json TEXT NOT NULL,
    headers_json TEXT NOT NULL DEFAULT '{}', retry_delays_json TEXT NOT NULL, timeout REAL NOT NULL,
    state TEXT NOT NULL, attempts_made INTEGER NOT NULL DEFAULT 0, next_attempt_at REAL, created_at REAL NOT NULL,
    updated_at REAL NOT NULL, last_status INTEGER, last_error TEXT, subscription_id TEXT,
    source TEXT NOT NULL DEFAULT 'cli');
CREATE TABLE subscriptions (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, platform TEXT NOT NULL,
    event TEXT NOT NULL, url TEXT NOT NULL, auth_json TEXT NOT NULL, seed INTEGER,
    overrides_json TEXT NOT NULL DEFAULT '{}', schedule_json TEXT, paused INTEGER NOT NULL DEFAULT 0,
    retry_delays_json TEXT, timeout REAL, meta_json TEXT NOT NULL DEFAULT '{}',
    fired_count INTEGER NOT NULL DEFAULT 0, last_fired_at REAL, created_at REAL NOT NULL, updated_at REAL NOT NULL);
"""


def test_a_database_file_from_before_profiles_is_migrated(tmp_path):
    path = tmp_path / "old.db"
    db = sqlite3.connect(path)
    db.executescript(OLD_JOBS)
    for job_id, platform, event in (
        ("a1", "accessrc", REFUND),
        ("c1", "accredit", "Entity.Event"),
        ("r1", "reachfive", "END_JOB_NOTIFICATION"),
    ):
        db.execute(
            "INSERT INTO jobs (id, event, platform, url, body, auth_json, retry_delays_json, timeout, state, "
            "created_at, updated_at, source) VALUES (?, ?, ?, 'http://127.0.0.1:9/h', x'7b7d', ?, '[0]', 5, "
            "'pending', 1, 1, 'api')",
            (job_id, event, platform, json.dumps(Auth("none").to_dict())),
        )
    db.execute(
        "INSERT INTO subscriptions (id, platform, event, url, auth_json, created_at, updated_at) "
        "VALUES ('s1', 'accessrc', ?, 'http://127.0.0.1:9/h', ?, 1, 1)",
        (REFUND, json.dumps(Auth().to_dict())),
    )
    db.commit()
    db.close()
    store = Store(path)
    assert store.migrated == [
        "jobs.profile",
        "jobs.owner",
        "jobs.lease_until",
        "jobs.body_length",
        "jobs.body_sha256",
        "subscriptions.profile",
        "jobs.fault",
    ]  # one schema: the Store migrates every table
    # the old code sent job headers on AccessRC: a job resumed after the upgrade keeps sending them
    assert {j: store.get_job(j).profile for j in ("a1", "c1", "r1")} == {
        "a1": "accredit-like",
        "c1": "documented",
        "r1": "documented",
    }
    repo = SubscriptionRepo(store)
    assert repo.get("s1").profile == "documented"  # later firings follow the new default
    repo.add(Subscription("accessrc", REFUND, "http://127.0.0.1:9/x", Auth(), profile="accredit-like"))
    store.close()
    again = Store(path)
    assert again.migrated == []
    assert [s.profile for s in SubscriptionRepo(again).list()] == ["documented", "accredit-like"]


# -- scenario files ----------------------------------------------------------------------------------------------------
SCENARIO = """\
name: profiles
platform: {platform}
url: {url}
{profile}steps:
  - send: {event}
    as: first
  - send: {event}
    job_attempt: 3
"""


def scenario_text(platform="accessrc", event=REFUND, url="http://127.0.0.1:9/h", profile=None):
    return SCENARIO.format(platform=platform, event=event, url=url, profile=f"profile: {profile}\n" if profile else "")


def test_loader_refuses_job_attempt_on_accessrc_unless_accredit_like():
    with pytest.raises(ScenarioFileError) as err:
        load_text(scenario_text(), "p.yaml")
    assert err.value.problems == [
        "p.yaml:8:18: job_attempt: accessrc sends no X-JobAttempt header under the documented profile "
        "(X-JobId/X-JobAttempt are not in its documents; add `profile: accredit-like` to the scenario to send them)"
    ]
    assert load_text(scenario_text(profile="accredit-like"), "p.yaml").profile == "accredit-like"
    assert load_text(scenario_text(platform="accredit", event="Entity.Event"), "a.yaml").profile == "documented"


@pytest.mark.parametrize("platform, event", [("accredit", "Entity.Event"), ("reachfive", "END_JOB_NOTIFICATION")])
def test_loader_refuses_accredit_like_off_accessrc(platform, event):
    text = (
        f"name: x\nplatform: {platform}\nurl: http://127.0.0.1:9/h\nprofile: accredit-like\nsteps:\n  - send: {event}\n"
    )
    with pytest.raises(ScenarioFileError) as err:
        load_text(text, "x.yaml")
    assert err.value.problems == [
        f"x.yaml:4:10: profile: profile accredit-like is for accessrc only; {platform} "
        "delivers as its documents say (profile: documented)"
    ]


def run_scenario(text, store, keys=None):
    scenario = load_text(text, "run.yaml")
    [result] = Runner(store, keys).run([scenario])
    return result


def test_scenario_steps_follow_the_profile(store):
    plain = (
        "name: x\nplatform: accessrc\nurl: {url}\nsteps:\n  - send: DELIVERY_REFUND_REQUESTED\n"
        "  - fault: duplicate\n    event: DELIVERY_REFUND_REQUESTED\n"
    )
    with ScriptedServer(default=OK) as srv:
        result = run_scenario(plain.format(url=srv.url + "/h"), store)
        assert result.failed == 0 and len(srv.requests) == 3
        assert all(job_headers(r["headers"]) == {} for r in srv.requests)
        srv.requests.clear()
        result = run_scenario(scenario_text(url=srv.url + "/h", profile="accredit-like"), store)
    assert result.failed == 0
    first, second = (job_headers(r["headers"]) for r in srv.requests)
    assert first["X-JobAttempt"] == "0" and second["X-JobAttempt"] == "3" and first["X-JobId"] != second["X-JobId"]
    assert {j.profile for _, j in store.query_jobs(limit=10)} == {"documented", "accredit-like"}


def test_accredit_scenario_still_sends_both_headers(store, keys):
    with ScriptedServer(default=OK) as srv:
        result = run_scenario(scenario_text("accredit", "Entity.Event", srv.url + "/b"), store, keys)
    assert result.failed == 0
    assert [job_headers(r["headers"])["X-JobAttempt"] for r in srv.requests] == ["0", "3"]


# -- load mode ---------------------------------------------------------------------------------------------------------
def load_headers(event, auth, profile=None, keys=None):
    with ScriptedServer(default=OK) as srv:
        run = LoadRun(
            LoadPlan(
                event, srv.url + "/h", rate=20, duration=0.2, concurrency=1, auth=auth, signers=0, profile=profile
            ),
            keys,
        )
        try:
            run_load(run)
        finally:
            run.close()
        return [job_headers(r["headers"]) for r in srv.requests]


def test_load_follows_the_profile(keys):
    assert load_headers(REFUND, Auth("none")) == [{}] * 4
    like = load_headers(REFUND, Auth("none"), "accredit-like")
    assert len(like) == 4 and all(h["X-JobAttempt"] == "0" for h in like) and len({h["X-JobId"] for h in like}) == 4
    accredit = load_headers("Entity.Event", Auth("rsa"), keys=keys)
    assert len(accredit) == 4 and all(set(h) == set(JOB_HEADERS) for h in accredit)
    with pytest.raises(LoadError, match="accredit-like is for accessrc only"):
        LoadRun(
            LoadPlan(
                "Entity.Event", "http://127.0.0.1:9/h", rate=1, duration=1, auth=Auth("rsa"), profile="accredit-like"
            ),
            keys,
        )


def test_load_cli_profile_option(keys_dir):
    with ScriptedServer(default=OK) as srv:
        out = CliRunner().invoke(
            main,
            [
                "load",
                REFUND,
                "--url",
                srv.url + "/h",
                "--rate",
                "20",
                "--duration",
                "0.1",
                "--profile",
                "accredit-like",
                "--json",
            ],
            env={"ACCESSRC_SIM_KEYS_DIR": str(keys_dir)},
        )
    assert out.exit_code == 0, out.output
    assert [job_headers(r["headers"])["X-JobAttempt"] for r in srv.requests] == ["0", "0"]
    refused = CliRunner().invoke(
        main,
        [
            "load",
            "Entity.Event",
            "--url",
            "http://127.0.0.1:9/h",
            "--rate",
            "1",
            "--duration",
            "1",
            "--profile",
            "accredit-like",
        ],
        env={"ACCESSRC_SIM_KEYS_DIR": str(keys_dir)},
    )
    assert refused.exit_code == 2 and "accredit-like is for accessrc only" in refused.output
