"""Dashboard server side: the page and its log-in (never the key in the page), preset payloads, the send route
(exact bytes, forgeries),
the live stream over real HTTP, and the demo receivers. The browser tests are in test_dashboard_browser.py."""

from __future__ import annotations

import json
import threading
import time

import pytest
import requests
from sim_helpers import wait_until
from waitress.server import create_server

from simulator import catalogue, platforms, signing
from simulator.app import create_app
from simulator.dashboard import demo as demo_mod
from simulator.dashboard import presets

API_KEY = "dash-test-key"
XKEY = {"x-api-key": API_KEY}


@pytest.fixture
def app(tmp_path, keys_dir):
    app = create_app(
        {
            "DB_PATH": str(tmp_path / "sim.db"),
            "KEYS_DIR": str(keys_dir),
            "API_KEY": API_KEY,
            "RETRY_DELAYS": (0.1, 0.1, 0.1, 0.1, 0.1),
            "TIMEOUT": 5,
        }
    )
    yield app
    demo = app.extensions.get("accessrc_sim_demo")
    if demo:
        demo.stop()
    app.extensions["accessrc_sim"].stop(5)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def served(app):
    """The app on waitress on 127.0.0.1 (a random port), as `accessrc-sim serve` runs it."""
    server = create_server(app, host="127.0.0.1", port=0, threads=8)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.effective_port}"
    app.extensions["accessrc_sim"].stopping.set()
    time.sleep(0.5)  # open streams see `stopping` and end before the server closes
    server.close()
    thread.join(5)


def boot_of(html: str) -> dict:
    start = html.index('<script id="boot" type="application/json">') + len('<script id="boot" type="application/json">')
    return json.loads(html[start : html.index("</script>", start)])


def post_json(client, url, obj, headers=XKEY):
    """POST `obj` as JSON in its own key order (Flask's test client would sort the keys)."""
    return client.post(url, headers=headers, data=json.dumps(obj, ensure_ascii=False), content_type="application/json")


def job_of(client, job_id):
    return client.get(f"/api/jobs/{job_id}", headers=XKEY).get_json()["data"]


def final_job(client, job_id, timeout=10.0):
    return wait_until(
        lambda: (lambda j: j if j["state"] in ("succeeded", "exhausted") else None)(job_of(client, job_id)), timeout
    )


# -- the page and the admin key ------------------------------------------------------------------------
def test_page_serves_its_assets_from_the_package(client):
    page = client.get("/", environ_base={"REMOTE_ADDR": "127.0.0.1"})
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    for asset in ("/dashboard/static/dashboard.css", "/dashboard/static/dashboard.js", "/dashboard/static/favicon.svg"):
        assert asset in html
        assert client.get(asset.split("?")[0]).status_code == 200
    assert "http://" not in html.replace("http://127.0.0.1", "") and "https://" not in html  # no CDN
    assert "default-src 'self'" in page.headers["Content-Security-Policy"]
    assert page.headers["Cache-Control"] == "no-store"


LOCAL_AND_NOT = [
    ("127.0.0.1", "127.0.0.1:8080", True),
    ("127.0.0.1", "localhost:8080", True),
    ("::1", "[::1]:8080", True),
    ("192.168.1.20", "192.168.1.5:8080", False),  # another machine
    ("127.0.0.1", "rebound.example:8080", False),  # a page that rebound its name to 127.0.0.1
    ("10.0.0.7", "localhost:8080", False),
]


def login_url(app, path="/"):
    return f"{path}?token={app.extensions['accessrc_sim_sessions'].login_token}"


def cookie_header(response) -> str:
    return next(v for k, v in response.headers.items() if k == "Set-Cookie")


@pytest.mark.parametrize("remote, host, local", LOCAL_AND_NOT)
def test_the_page_never_carries_the_key(client, remote, host, local):
    """Issue 14, item 1: the page used to embed the key for any loopback browser, i.e. any local account."""
    page = client.get("/", environ_base={"REMOTE_ADDR": remote}, headers={"Host": host})
    html = page.get_data(as_text=True)
    boot = boot_of(html)
    assert API_KEY not in html and "api_key" not in boot
    assert boot["session"] is False and "Set-Cookie" not in page.headers
    assert "Open the login URL that <code>accessrc-sim serve</code> printed" in html and 'id="key-form"' in html


@pytest.mark.parametrize("path", ["/", "/dashboard"])
def test_the_login_url_opens_a_strict_httponly_session_and_drops_the_token(app, client, path):
    answer = client.get(login_url(app, path) + "&x=1")
    assert answer.status_code == 303 and answer.headers["Location"] == f"{path}?x=1"
    cookie = cookie_header(answer)
    assert cookie.startswith("accessrc_sim_session_80=") and "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert "Path=/" in cookie and "Expires" not in cookie and "Max-Age" not in cookie  # gone with the browser
    page = client.get(path)  # the test client keeps the cookie, as a browser does
    assert boot_of(page.get_data(as_text=True))["session"] is True and API_KEY not in page.get_data(as_text=True)
    assert client.get("/api/jobs").status_code == 200
    assert client.get("/api/subscriptions").status_code == 200
    assert client.get("/dashboard/api/sample?event=Entity.Event").status_code == 200


def test_a_wrong_or_old_token_opens_nothing(client):
    answer = client.get("/?token=not-the-token")
    assert answer.status_code == 200 and "Set-Cookie" not in answer.headers
    boot = boot_of(answer.get_data(as_text=True))
    assert boot["session"] is False and "not (or no longer) valid" in boot["login_error"]
    assert client.get("/api/jobs").status_code == 401


def test_the_login_url_works_once_and_then_says_how_to_log_in_again(app):
    """Issue 14: the printed link is a one-time link, as notebook servers' are; the admin key still logs in."""
    link = login_url(app)
    first, second = app.test_client(), app.test_client()
    assert first.get(link).status_code == 303 and first.get("/api/jobs").status_code == 200
    for again in (second.get(link), second.get(link.replace("/?", "/dashboard?")), first.get(link)):
        assert again.status_code == 200 and "Set-Cookie" not in again.headers
        boot = boot_of(again.get_data(as_text=True))
        assert "already been used" in boot["login_error"] and "paste the admin key" in boot["login_error"]
        assert 'id="key-form"' in again.get_data(as_text=True)
    assert second.get("/api/jobs").status_code == 401
    assert second.post("/dashboard/login", json={"key": API_KEY}).status_code == 200  # no restart needed
    assert second.get("/api/jobs").status_code == 200 and first.get("/api/jobs").status_code == 200
    fresh = app.extensions["accessrc_sim_sessions"].new_login_token()  # another link of the same server
    third = app.test_client()
    assert third.get(f"/?token={fresh}").status_code == 303 and third.get("/api/jobs").status_code == 200


def test_a_session_changes_things_only_with_the_header_no_other_site_can_send(app, client):
    client.get(login_url(app))
    body = {"event": "DELIVERY_REFUND_REQUESTED", "url": "http://127.0.0.1:9/h"}
    refused = client.post("/api/send", json=body)  # what a form or fetch from another site would look like
    assert refused.status_code == 401 and "X-Requested-With: accessrc-sim" in refused.get_json()["error"]["message"]
    assert client.post("/api/send", json=body, headers={"X-Requested-With": "accessrc-sim"}).status_code == 201
    sub = client.post("/api/subscriptions", json=body, headers={"X-Requested-With": "accessrc-sim"})
    assert sub.status_code == 201
    assert client.delete(f"/api/subscriptions/{sub.get_json()['data']['id']}").status_code == 401
    assert (
        client.delete(
            f"/api/subscriptions/{sub.get_json()['data']['id']}", headers={"X-Requested-With": "accessrc-sim"}
        ).status_code
        == 200
    )


def test_a_session_is_not_a_key_for_the_platform_stand_ins(app, client):
    client.get(login_url(app))
    header = {"X-Requested-With": "accessrc-sim"}
    assert client.get("/api/webhookSubscription", headers=header).status_code == 401
    assert (
        client.post(
            "/api/Event/Subscribe",
            headers=header,
            json={"eventType": "DELIVERY_REFUND_REQUESTED", "callbackUrl": "http://127.0.0.1:9/h"},
        ).status_code
        == 401
    )


def test_pasting_the_admin_key_opens_a_session(client):
    wrong = client.post("/dashboard/login", json={"key": "guess"})
    assert wrong.status_code == 401 and "Set-Cookie" not in wrong.headers
    assert client.get("/api/jobs").status_code == 401
    right = client.post("/dashboard/login", json={"key": API_KEY})
    assert right.status_code == 200 and right.get_json()["data"] == {"session": True}
    assert "HttpOnly" in cookie_header(right) and API_KEY not in cookie_header(right)
    assert client.get("/api/jobs").status_code == 200
    assert client.post("/dashboard/login", json={"key": API_KEY, "more": 1}).status_code == 400


@pytest.mark.parametrize("remote, host, local", LOCAL_AND_NOT)
def test_no_auth_local_opens_a_session_for_a_browser_on_this_machine_only(app, client, remote, host, local):
    app.config["NO_AUTH_LOCAL"] = True
    page = client.get("/", environ_base={"REMOTE_ADDR": remote}, headers={"Host": host})
    assert boot_of(page.get_data(as_text=True))["session"] is local
    assert ("Set-Cookie" in page.headers) is local
    assert API_KEY not in page.get_data(as_text=True)


def test_dashboard_routes_need_the_key(client):
    for url in ("/dashboard/api/sample?event=Entity.Event", "/dashboard/api/stream"):
        answer = client.get(url)
        assert answer.status_code == 401
        assert answer.get_json()["status"] == "failed"
    assert client.post("/dashboard/api/send", json={}).status_code == 401
    assert client.get("/dashboard/api/sample?event=Entity.Event", headers=XKEY).status_code == 200
    bearer = {"Authorization": f"Bearer {API_KEY}"}
    assert client.get("/dashboard/api/sample?event=Entity.Event", headers=bearer).status_code == 200


# -- presets -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("preset", presets.PRESETS, ids=lambda p: p.id)
def test_every_preset_makes_valid_payloads(preset):
    for seed in range(5):
        payload = presets.generate(preset, seed=seed)
        assert catalogue.validate(preset.event, payload) == []
        for path, value in preset.overrides.items():
            assert catalogue.paths.get(payload, path) == value


def test_presets_cover_the_documented_situations():
    ids = {p.id for p in presets.PRESETS}
    for status in ("approved", "rejected"):
        for kind in ("delivery-channel-create", "delivery-channel-update", "delivery-channel-update-status"):
            assert f"channel-{status}-{kind}" in ids
    assert {
        "import-success",
        "import-partial",
        "import-failed",
        "eligibility-n",
        "reachfive-import-success",
        "reachfive-import-failure",
    } <= ids
    partial = presets.generate(presets.get_preset("import-partial"), seed=3)
    assert partial["status"] == "PARTIAL_SUCCESS" and partial["summary"]["failureCount"] == 5
    assert 1 <= len(partial["errors"]) <= 5
    rejected = presets.generate(presets.get_preset("channel-rejected-delivery-channel-update"), seed=1)
    assert rejected["status"] == "Rejected" and rejected["message"]


def test_every_documented_example_is_a_preset_sent_as_written(client):
    examples = [p for p in presets.PRESETS if p.example]
    assert len(examples) == sum(len(spec.examples) for spec in catalogue.EVENTS)
    for preset in examples:
        answer = client.get(f"/dashboard/api/sample?event={preset.event}&preset={preset.id}", headers=XKEY)
        assert answer.status_code == 200
        assert answer.get_json()["data"]["payload"] == catalogue.example(preset.event, preset.example)
        assert "As written in " in preset.note


def test_sample_route_shapes_payloads_by_preset_and_count(client):
    answer = client.get(
        "/dashboard/api/sample?event=PROGRAM_ELIGIBILITY_EVALUATED&preset=eligibility-n&count=4", headers=XKEY
    )
    assert answer.status_code == 200
    assert len(answer.get_json()["data"]["payload"]["applications"]) == 4
    seeded = [
        client.get(
            "/dashboard/api/sample?event=END_JOB_NOTIFICATION&preset=reachfive-export-failure&seed=9", headers=XKEY
        ).get_json()["data"]["payload"]
        for _ in range(2)
    ]
    assert seeded[0] == seeded[1] and seeded[0]["status"] == "FAILURE" and seeded[0]["type"] == "export"


@pytest.mark.parametrize(
    "query, field",
    [
        ("event=NOPE", "event"),
        ("event=Entity.Event&preset=nope", "preset"),
        ("event=Entity.Event&preset=import-partial", "preset"),
        ("event=Entity.Event&preset=accredit-base&count=2", "count"),
        ("event=PROGRAM_ELIGIBILITY_EVALUATED&count=lots", "count"),
        ("event=PROGRAM_ELIGIBILITY_EVALUATED&count=100000", "count"),
        ("event=Entity.Event&seed=x", "seed"),
    ],
)
def test_sample_route_errors_name_the_field(client, query, field):
    answer = client.get(f"/dashboard/api/sample?{query}", headers=XKEY)
    assert answer.status_code == 400
    assert answer.get_json()["error"]["field"] == field


# -- the send route ------------------------------------------------------------------------------------
def test_send_delivers_the_edited_body_byte_for_byte(client, start_receiver):
    receiver = start_receiver("accessrc", fail_first=0)
    payload = catalogue.generate("DELIVERY_CHANNEL_STATUS_UPDATED", seed=4, overrides={"status": "Rejected"})
    payload["message"] = "Edited by the trainer: ünïcode kept"
    answer = post_json(
        client,
        "/dashboard/api/send",
        {"event": "DELIVERY_CHANNEL_STATUS_UPDATED", "url": receiver.url + "/hook", "payload": payload, "auth": None},
    )
    assert answer.status_code == 201, answer.get_json()
    job = final_job(client, answer.get_json()["data"]["id"])
    assert job["state"] == "succeeded"
    assert job["source"] == "dashboard"
    assert receiver.received[-1].body == catalogue.body_bytes(payload).decode("utf-8")


def test_send_with_hmac_is_signed_and_masks_nothing_secret(client, start_receiver):
    from simulator.auth import Auth

    receiver = start_receiver("accessrc", auth=Auth("hmac", secret="s3cret-value"))
    payload = catalogue.generate("DELIVERY_REFUND_REQUESTED", seed=1)
    answer = post_json(
        client,
        "/dashboard/api/send",
        {
            "event": "DELIVERY_REFUND_REQUESTED",
            "url": receiver.url + "/hook",
            "payload": payload,
            "auth": {"type": "hmac", "secret": "s3cret-value"},
        },
    )
    job = final_job(client, answer.get_json()["data"]["id"])
    assert job["state"] == "succeeded"
    headers = job["attempts"][0]["request_headers"]
    assert headers["x-signature"] == signing.hmac_signature("s3cret-value", catalogue.body_bytes(payload))
    assert "s3cret-value" not in json.dumps(job)


@pytest.mark.parametrize(
    "platform_event, auth",
    [
        ("Entity.Event", None),
        ("DELIVERY_REFUND_REQUESTED", {"type": "hmac", "secret": "s3cret-value"}),
        ("DELIVERY_REFUND_REQUESTED", {"type": "header", "headerName": "X-API-Key", "headerValue": "k-123456789"}),
        ("DELIVERY_REFUND_REQUESTED", {"type": "basic", "username": "u", "password": "p-secret"}),
        ("END_JOB_NOTIFICATION", {"authorization": "Bearer good-token"}),
    ],
)
def test_forged_credentials_are_rejected_by_the_reference_receiver(client, start_receiver, keys, platform_event, auth):
    from simulator.auth import Auth

    platform = catalogue.get_event(platform_event).platform
    if platform == "accredit":
        receiver_auth = Auth("rsa")
    elif platform == "reachfive":
        receiver_auth = Auth("authorization", authorization="Bearer good-token")
    else:
        receiver_auth = platforms.get("accessrc").auth_from_json(auth)
    receiver = start_receiver(platform, auth=receiver_auth)
    payload = catalogue.generate(platform_event, seed=2)
    base = {
        "event": platform_event,
        "url": receiver.url + "/hook",
        "payload": payload,
        "auth": auth,
        "retry_delays": [],
    }
    honest = post_json(client, "/dashboard/api/send", base)
    assert final_job(client, honest.get_json()["data"]["id"])["state"] == "succeeded"
    forged = post_json(client, "/dashboard/api/send", {**base, "forge_signature": True})
    assert forged.status_code == 201, forged.get_json()
    job = final_job(client, forged.get_json()["data"]["id"])
    assert job["source"] == "dashboard:forged-signature"
    assert {a["status"] for a in job["attempts"]} == {401}
    assert job["state"] == "exhausted"


def test_forging_needs_something_to_forge(client):
    answer = post_json(
        client,
        "/dashboard/api/send",
        {
            "event": "DELIVERY_REFUND_REQUESTED",
            "url": "http://127.0.0.1:9/hook",
            "payload": catalogue.generate("DELIVERY_REFUND_REQUESTED", seed=1),
            "auth": None,
            "forge_signature": True,
        },
    )
    assert answer.status_code == 400
    assert answer.get_json()["error"]["field"] == "forge_signature"


@pytest.mark.parametrize(
    "change, field",
    [
        ({"event": "NOPE"}, "event"),
        ({"url": "ftp://127.0.0.1/x"}, "url"),
        ({"url": None}, "url"),
        ({"payload": None}, "payload"),
        ({"surprise": 1}, "surprise"),
        ({"auth": {"type": "hmac"}}, "auth"),
        ({"auth": {"type": "magic"}}, "auth"),
        ({"retry_delays": [1, 2, 3, 4, 5, 6]}, "retry_delays"),
        ({"retry_delays": "1,2"}, "retry_delays"),
        ({"timeout": 0}, "timeout"),
        ({"timeout": "soon"}, "timeout"),
        ({"forge_signature": "yes"}, "forge_signature"),
    ],
)
def test_send_errors_name_the_field_and_store_nothing(app, client, change, field):
    request = {
        "event": "DELIVERY_REFUND_REQUESTED",
        "url": "http://127.0.0.1:9/hook",
        "payload": {"deliveryId": "x"},
        "auth": None,
    }
    request.update(change)
    request = {k: v for k, v in request.items() if not (k in ("url", "payload") and v is None)}
    answer = post_json(client, "/dashboard/api/send", request)
    assert answer.status_code == 400, answer.get_json()
    assert answer.get_json()["error"]["field"].startswith(field)
    assert app.extensions["accessrc_sim"].store.count_jobs() == 0


def test_send_refuses_bad_json(client, app):
    answer = client.post("/dashboard/api/send", headers={**XKEY, "Content-Type": "application/json"}, data="{nope")
    assert answer.status_code == 400
    assert answer.get_json()["error"]["field"] == "body"
    assert app.extensions["accessrc_sim"].store.count_jobs() == 0


# -- the live stream -------------------------------------------------------------------------------------
class EventReader:
    """Server-sent events from a streaming response, read until a condition holds (keeps what it over-read)."""

    def __init__(self, response):
        self.chunks = response.iter_content(chunk_size=None, decode_unicode=True)
        self.buffer = ""
        self.events: list[dict] = []

    def read_until(self, until, timeout=10.0) -> list[dict]:
        deadline = time.monotonic() + timeout
        while not until(self.events) and time.monotonic() < deadline:
            try:
                self.buffer += next(self.chunks)
            except StopIteration:
                break
            while "\n\n" in self.buffer:
                block, self.buffer = self.buffer.split("\n\n", 1)
                event = {"event": "message", "data": ""}
                for line in block.split("\n"):
                    key, _, value = line.partition(": ")
                    if key in ("event", "id", "data"):
                        event[key] = value
                if event["data"]:
                    event["data"] = json.loads(event["data"])
                    self.events.append(event)
        return self.events


def test_stream_tells_of_new_jobs_and_each_attempt_then_resumes_from_its_id(app, served, start_receiver):
    receiver = start_receiver("accessrc", fail_first=1)
    session = requests.Session()
    session.trust_env = False
    stream = session.get(served + "/dashboard/api/stream", headers=XKEY, stream=True, timeout=10)
    assert stream.status_code == 200
    assert stream.headers["Content-Type"].startswith("text/event-stream")
    reader = EventReader(stream)
    hello = reader.read_until(lambda ev: any(e["event"] == "hello" for e in ev))
    assert hello[0]["event"] == "hello"
    sent = session.post(
        served + "/dashboard/api/send",
        headers=XKEY,
        timeout=10,
        json={
            "event": "DELIVERY_REFUND_REQUESTED",
            "url": receiver.url + "/hook",
            "payload": catalogue.generate("DELIVERY_REFUND_REQUESTED", seed=5),
        },
    ).json()["data"]

    def done(events):
        return any(e["event"] == "attempt" and e["data"]["attempt"]["status"] == 200 for e in events)

    events = reader.read_until(done)
    stream.close()
    mine = [e for e in events if (e["data"].get("job") or e["data"]).get("id") == sent["id"]]
    assert mine[0]["event"] == "job"  # the new row, before its attempts
    assert mine[-1]["data"]["job"]["state"] == "succeeded"
    attempts = [e["data"]["attempt"] for e in mine if e["event"] == "attempt"]
    assert [(a["number"], a["status"]) for a in attempts] == [(0, 500), (1, 200)]
    assert "body" not in mine[0]["data"]  # rows only; the page fetches the job when opened
    # resuming from the id of the first attempt replays the second one, and nothing before it
    first_attempt_event = next(e for e in mine if e["event"] == "attempt")
    again = session.get(
        served + "/dashboard/api/stream?max_seconds=1",
        timeout=10,
        stream=True,
        headers={**XKEY, "Last-Event-ID": first_attempt_event["id"]},
    )
    replay = EventReader(again).read_until(lambda ev: False, timeout=3)
    numbers = [e["data"]["attempt"]["number"] for e in replay if e["event"] == "attempt"]
    assert numbers == [1]


def test_stream_ends_by_itself_and_refuses_a_bad_cursor(served):
    session = requests.Session()
    session.trust_env = False
    started = time.monotonic()
    answer = session.get(served + "/dashboard/api/stream?max_seconds=0.5", headers=XKEY, timeout=10)
    assert answer.status_code == 200 and "event: hello" in answer.text
    assert time.monotonic() - started < 5
    bad = session.get(served + "/dashboard/api/stream?since=x:y", headers=XKEY, timeout=10)
    assert bad.status_code == 400 and bad.json()["error"]["field"] == "since"


# -- demo ------------------------------------------------------------------------------------------------
def test_demo_receivers_accept_verify_retry_and_reject_forgeries(app, client):
    demo = demo_mod.start_demo(app)
    targets = {t["id"]: t for t in demo.to_dict()["targets"]}
    assert set(targets) == {"accredit", "accredit-flaky", "accessrc", "accessrc-flaky", "reachfive"}
    assert all(t["url"].startswith("http://127.0.0.1:") for t in targets.values())

    def send(target, event, forge=False, preset=None):
        auth = targets[target]["auth"]
        body_auth = {
            "hmac": {"type": "hmac", "secret": auth.get("secret")},
            "authorization": {"authorization": auth.get("authorization")},
        }.get(auth["kind"])
        payload = presets.generate(presets.get_preset(preset)) if preset else catalogue.generate(event)
        answer = post_json(
            client,
            "/dashboard/api/send",
            {
                "event": event,
                "url": targets[target]["url"],
                "payload": payload,
                "auth": body_auth,
                "forge_signature": forge,
            },
        )
        assert answer.status_code == 201, answer.get_json()
        return final_job(client, answer.get_json()["data"]["id"])

    assert send("accredit", "BadgeExportZipFile.Created")["state"] == "succeeded"
    assert (
        send("accessrc", "DELIVERY_CHANNEL_STATUS_UPDATED", preset="channel-rejected-delivery-channel-create")["state"]
        == "succeeded"
    )
    assert send("reachfive", "END_JOB_NOTIFICATION")["state"] == "succeeded"
    flaky = send("accessrc-flaky", "APPLICATIONS_IMPORT_RESULT", preset="import-partial")
    assert [a["status"] for a in flaky["attempts"]] == [500, 500, 200]
    flaky = send("accredit-flaky", "BadgeExportZipFile.Created")
    assert [a["status"] for a in flaky["attempts"]] == [500, 500, 200]
    forged = send("accredit", "BadgeExportZipFile.Created", forge=True)
    assert forged["state"] == "exhausted" and {a["status"] for a in forged["attempts"]} == {401}
    assert "Verification failed" in forged["attempts"][0]["response_body"]


def test_demo_subscriptions_are_replaced_at_each_start_and_fire(app, client):
    first = demo_mod.start_demo(app)
    first.stop()
    demo = demo_mod.start_demo(app)
    subs = client.get("/api/subscriptions", headers=XKEY).get_json()["data"]
    demo_subs = [s for s in subs if s["meta"].get("demo")]
    assert len(demo_subs) == len(demo_mod.DEMO_SUBSCRIPTIONS)
    assert all(s["url"].startswith(demo.url) for s in demo_subs)
    scheduled = [s for s in demo_subs if s["schedule"]]
    assert len(scheduled) == 1 and not scheduled[0]["paused"]  # life at once: one gentle schedule, active
    assert scheduled[0]["schedule"] == {"kind": "interval", "seconds": demo_mod.DEMO_SCHEDULE_SECONDS}
    assert demo.to_dict()["schedule"]["subscription_id"] == scheduled[0]["id"]
    for sub in demo_subs:
        fired = client.post(f"/api/subscriptions/{sub['id']}/fire", headers=XKEY)
        assert fired.status_code == 201
        done = final_job(client, fired.get_json()["data"]["id"])
        assert done["state"] == "succeeded" and done["origin"] == "demo"  # the log's Source filter: demo


def test_page_lists_the_demo_targets(app, client):
    demo = demo_mod.start_demo(app)
    boot = boot_of(client.get("/", environ_base={"REMOTE_ADDR": "127.0.0.1"}).get_data(as_text=True))
    assert boot["demo"]["receiver"] == demo.url
    assert {t["id"] for t in boot["demo"]["targets"]} == {t.id for t in demo_mod.TARGETS}


def test_serve_demo_runs_the_whole_loop_in_one_command(tmp_path, keys_dir):
    import os
    import re
    import signal
    import socket
    import subprocess
    import sys

    log = tmp_path / "serve.log"
    env = {**os.environ, "ACCESSRC_SIM_API_KEY": API_KEY}
    with socket.socket() as probe:  # a free port for --demo-port
        probe.bind(("127.0.0.1", 0))
        demo_port = probe.getsockname()[1]
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "from simulator.cli import main; main()",
                "serve",
                "--demo",
                "--demo-port",
                str(demo_port),
                "--port",
                "0",
                "--db",
                str(tmp_path / "demo.db"),
                "--keys-dir",
                str(keys_dir),
                "--retry-delays",
                "0.2,0.2,0.2,0.2,0.2",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
    try:
        text = wait_until(lambda: (lambda t: t if "demo: open" in t else None)(log.read_text()), 20)
        base = re.search(r"serving on (http://127\.0\.0\.1:\d+)/", text).group(1)
        receiver = re.search(r"demo: reference receivers on (http://127\.0\.0\.1:\d+)", text).group(1)
        login = re.search(r"dashboard: (http://127\.0\.0\.1:\d+/\?token=\S+)", text).group(1)
        session = requests.Session()
        session.trust_env = False
        page = session.get(login, timeout=10)
        assert page.url == base + "/" and API_KEY not in page.text  # redirected without the token
        boot = boot_of(page.text)
        assert boot["session"] is True and boot["demo"]["receiver"] == receiver
        subs = session.get(base + "/api/subscriptions", timeout=10).json()["data"]
        flaky = next(s for s in subs if s["url"].startswith(receiver + "/accessrc-flaky"))
        job = session.post(f"{base}/api/subscriptions/{flaky['id']}/fire", headers=XKEY, timeout=10).json()["data"]

        def finished():
            j = session.get(f"{base}/api/jobs/{job['id']}", headers=XKEY, timeout=10).json()["data"]
            return j if j["state"] in ("succeeded", "exhausted") else None

        done = wait_until(finished, 20)
        assert [a["status"] for a in done["attempts"]] == [500, 500, 200]  # a retry after a failure
        assert done["origin"] == "demo" and done["source"] == "api"
        # life at once: the demo schedule fired at start (not 15 s later), and says how to pause it
        assert receiver == f"http://127.0.0.1:{demo_port}"
        wait_until(lambda: "pause it on the dashboard" in log.read_text(), 10)
        scheduled = session.get(base + "/api/jobs?source=schedule", timeout=10).json()["data"]
        assert scheduled and all(j["origin"] == "demo" for j in scheduled)
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    text = log.read_text()
    assert "stopped" in text
    # the demo receivers' request lines, to a file: plain text, no colour codes (werkzeug colours a 500)
    assert '"POST /accessrc-flaky/hook HTTP/1.1" 500' in text and "\x1b[" not in text


# -- receiver readiness ------------------------------------------------------------------------------------
def readiness_result(client, run_id, timeout=60.0):
    def finished():
        run = client.get(f"/dashboard/api/readiness/{run_id}", headers=XKEY).get_json()["data"]
        return run if run["status"] == "finished" else None

    return wait_until(finished, timeout, 0.1)


def test_readiness_of_a_correct_receiver_is_ready_row_by_row(client, start_receiver):
    from simulator.auth import Auth

    receiver = start_receiver("accessrc", auth=Auth("hmac", secret="s3cret-value"))
    started = post_json(
        client,
        "/dashboard/api/readiness",
        {"platform": "accessrc", "url": receiver.url + "/hook", "auth": {"type": "hmac", "secret": "s3cret-value"}},
    )
    assert started.status_code == 202
    first = started.get_json()["data"]
    assert first["status"] == "running" and first["auth"]["secret"] == "***"
    assert [r["id"] for r in first["rows"]] == [
        "credentials",
        "validation",
        "idempotency",
        "envelope",
        "timeout",
        "retries",
    ]
    run = readiness_result(client, first["id"])
    assert run["ready"] is True, run
    assert {r["state"] for r in run["rows"]} == {"pass"}
    assert all(r["evidence"] for r in run["rows"])


def test_readiness_of_a_receiver_that_checks_nothing_is_not_ready(client, start_receiver):
    receiver = start_receiver("accessrc")  # accepts anything unsigned: the credentials row must fail
    started = post_json(
        client,
        "/dashboard/api/readiness",
        {"platform": "accessrc", "url": receiver.url + "/hook", "auth": {"type": "hmac", "secret": "s3cret-value"}},
    )
    run = readiness_result(client, started.get_json()["data"]["id"])
    states = {r["id"]: r["state"] for r in run["rows"]}
    assert run["ready"] is False and states["credentials"] == "fail"


def test_stopping_the_services_ends_a_readiness_run_with_no_verdict(app, client):
    """The run registry is the services': stop() ends a readiness run before its next step, not ready."""
    from scripted_server import ScriptedServer

    with ScriptedServer(default=(200, b'{"status":"success","message":"ok","data":{}}', 0.3, {})) as slow:
        started = post_json(client, "/dashboard/api/readiness", {"platform": "accessrc", "url": slow.url + "/hook"})
        run_id = started.get_json()["data"]["id"]
        wait_until(lambda: slow.requests, 10, 0.05)
        began = time.monotonic()
        app.extensions["accessrc_sim"].stop(5)
        assert time.monotonic() - began < 3
        run = client.get(f"/dashboard/api/readiness/{run_id}", headers=XKEY).get_json()["data"]
    assert run["status"] == "finished" and run["stopped"] is True and run["ready"] is False
    assert run["error"] == "stopped before every row was checked: the simulator is stopping"
    assert run["rows"][-1]["state"] == "pending"


@pytest.mark.parametrize("strict", [False, True])
def test_readiness_of_a_receiver_failing_only_inferred_checks_is_ready_with_advice(client, keys, strict):
    """409 to an exact duplicate: AccessRC documents no dedup, so the rows are WARN with advice and the run is
    ready, unless strict; each row's checks carry their rule's source and quote."""
    import broken_receivers

    from simulator.auth import Auth
    from simulator.receiver import ServerThread

    srv = ServerThread(
        broken_receivers.fails_repeated_bodies("accessrc", Auth("hmac", secret="s3cret-value"), None)
    ).start()
    try:
        started = post_json(
            client,
            "/dashboard/api/readiness",
            {
                "platform": "accessrc",
                "auth": {"type": "hmac", "secret": "s3cret-value"},
                "strict": strict,
                "url_for": {"DELIVERY_CHANNEL_STATUS_UPDATED": srv.url + "/hook"},
            },
        )
        assert started.status_code == 202, started.get_json()
        run = readiness_result(client, started.get_json()["data"]["id"])
    finally:
        srv.stop()
    states = {r["id"]: r["state"] for r in run["rows"]}
    assert run["targets"] == [{"event": "DELIVERY_CHANNEL_STATUS_UPDATED", "url": srv.url + "/hook"}]
    assert run["ready_strict"] is False and run["strict"] is strict
    if strict:
        assert run["ready"] is False and states["idempotency"] == states["retries"] == "fail" and not run["advice"]
    else:
        assert run["ready"] is True and states["idempotency"] == states["retries"] == "warn"
        assert {states[k] for k in ("credentials", "validation", "envelope", "timeout")} == {"pass"}
        assert len(run["advice"]) == 3 and run["advice"][0].startswith(
            "Idempotency (a duplicate delivery acknowledged without error): exact duplicate acknowledged: status: "
            "expected 2xx, got 409 - inferred (accessrc.conformance.idempotency)"
        )
    checks = [c for r in run["rows"] for c in r["checks"]]
    assert checks and all(c["source"] in ("documented", "inferred") for c in checks)
    assert all((c["quote"] is None) == (c["source"] == "inferred") for c in checks)


@pytest.mark.parametrize(
    "change, field",
    [
        ({"url_for": {"NO_SUCH_EVENT": "http://127.0.0.1:9/x"}}, "url_for"),
        ({"url_for": {"DELIVERY_REFUND_REQUESTED": "not a url"}}, "DELIVERY_REFUND_REQUESTED"),
        ({"strict": "yes"}, "strict"),
        ({"platform": "myspace"}, "platform"),
        ({"url": "not a url"}, "url"),
        ({"auth": {"type": "hmac"}}, "auth"),
        ({"timeout": -1}, "timeout"),
        ({"extra": True}, "extra"),
    ],
)
def test_readiness_errors_name_the_field(client, change, field):
    request = {"platform": "accessrc", "url": "http://127.0.0.1:9/hook", **change}
    answer = post_json(client, "/dashboard/api/readiness", request)
    assert answer.status_code == 400
    assert answer.get_json()["error"]["field"].startswith(field)
    assert client.get("/dashboard/api/readiness/nope", headers=XKEY).status_code == 404


def test_stream_tells_of_a_job_that_ends_without_an_attempt(app, served):
    """The queue ends a job it cannot deliver (a simulator error) with no attempt row: the page still learns it."""
    from simulator import delivery
    from simulator.auth import Auth

    store = app.extensions["accessrc_sim"].store
    session = requests.Session()
    session.trust_env = False
    stream = session.get(served + "/dashboard/api/stream", headers=XKEY, stream=True, timeout=10)
    reader = EventReader(stream)
    reader.read_until(lambda ev: ev)
    job = delivery.new_job("DELIVERY_REFUND_REQUESTED", "accessrc", "http://127.0.0.1:9/hook", b"{}", Auth("none"))
    job.next_attempt_at = time.time() + 3600  # not due: the queue leaves it alone
    store.add_job(job, now=time.time())
    states = lambda ev: [e["data"]["state"] for e in ev if e["event"] == "job" and e["data"]["id"] == job.id]  # noqa: E731
    reader.read_until(lambda ev: states(ev))
    store.mark_delivering(job, time.time())
    reader.read_until(lambda ev: "delivering" in states(ev))
    job.state, job.last_error, job.updated_at = "exhausted", "simulator error: test", time.time()
    store.update_job(job)
    events = reader.read_until(lambda ev: "exhausted" in states(ev))
    stream.close()
    assert states(events)[-2:] == ["delivering", "exhausted"]


def test_a_users_accessrc_subscribe_replaces_the_demo_row_and_survives_a_restart(app, client):
    """AccessRC keeps one subscription per event type: the user's Subscribe takes the demo's place, with none
    of the demo's fixed overrides, and the next demo start leaves it alone."""
    first = demo_mod.start_demo(app)
    target = "http://127.0.0.1:9/mine"
    resp = client.post(
        "/api/Event/Subscribe",
        headers=XKEY,
        json={
            "eventType": "DELIVERY_CHANNEL_STATUS_UPDATED",
            "callbackUrl": target,
            "auth": {"type": "hmac", "secret": "abcd1234"},
        },
    )
    assert resp.status_code == 200
    mine = resp.get_json()["data"]["subscriptionId"]
    first.stop()
    demo_mod.start_demo(app)
    subs = client.get("/api/subscriptions", headers=XKEY).get_json()["data"]
    same_event = [s for s in subs if s["platform"] == "accessrc" and s["event"] == "DELIVERY_CHANNEL_STATUS_UPDATED"]
    assert [(s["id"], s["url"], s["overrides"], s["meta"].get("demo")) for s in same_event] == [
        (mine, target, {}, None)
    ]


def test_serve_refuses_a_busy_demo_port_before_anything_is_made(tmp_path, keys_dir):
    import socket

    from click.testing import CliRunner

    from simulator.cli import main

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        db = tmp_path / "sim.db"
        result = CliRunner().invoke(main, ["serve", "--demo", "--demo-port", str(port), "--db", str(db)])
    assert result.exit_code == 2 and "choose another --demo-port" in result.output
    assert not db.exists()
