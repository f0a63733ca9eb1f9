"""`accessrc-sim serve` as a real subprocess: both subscription APIs, scheduled firings, SIGTERM, and kill -9."""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time

import pytest
import requests
from flask import Flask, request
from sim_helpers import wait_until

from simulator.auth import Auth
from simulator.receiver import ReceiverConfig, ServerThread, create_receiver

KEY = "serve-test-key"
XKEY = {"x-api-key": KEY}
CLI = [sys.executable, "-c", "import sys; from simulator.cli import main; sys.argv[0] = 'accessrc-sim'; main()"]
BEARER = {"Authorization": f"Bearer {KEY}"}


class Served:
    def __init__(self, proc, out_path, url, api_key):
        self.proc, self.out_path, self.url, self.api_key = proc, out_path, url, api_key

    @property
    def output(self) -> str:
        return self.out_path.read_text()


@pytest.fixture
def serve(tmp_path, keys_dir):
    """serve(*args, env_key=KEY, tag="a") -> Served: the real CLI on a free port, output in a file."""
    procs = []

    def start(*args, env_key=KEY, tag="a"):
        out = tmp_path / f"serve-{tag}-{len(procs)}.out"
        env = {k: v for k, v in os.environ.items() if k != "ACCESSRC_SIM_API_KEY"}
        if env_key:
            env["ACCESSRC_SIM_API_KEY"] = env_key
        cmd = [*CLI, "serve", "--port", "0", "--db", str(tmp_path / "sim.db"), "--keys-dir", str(keys_dir), *args]
        with open(out, "w") as fh:
            proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env, cwd=tmp_path)
        procs.append(proc)
        match = wait_until(
            lambda: (
                re.search(r"serving on (http://[\d.]+:\d+)/", out.read_text())
                or (proc.poll() is not None and pytest.fail(out.read_text()))
            ),
            timeout=20,
        )
        url = match.group(1)
        key_line = re.search(r"admin API key \(generated now.*\): (\S+)", out.read_text())
        api_key = key_line.group(1) if key_line else env_key
        wait_until(lambda: _healthy(url), timeout=10)
        return Served(proc, out, url, api_key)

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def _healthy(url):
    try:
        return requests.get(url + "/healthz", timeout=1).json()["data"]["status"] == "ok"
    except requests.RequestException:
        return False


def start_receiver(platform, auth=None, pem=None, fail_first=0):
    app = create_receiver(ReceiverConfig(platform, auth or Auth("none"), pem, None, fail_first))
    server = ServerThread(app).start()
    server.received = app.extensions["received"]
    return server


def test_health_and_usage_errors(serve, tmp_path):
    served = serve()
    health = requests.get(served.url + "/healthz", timeout=5).json()["data"]
    assert health == {"status": "ok", "queue": True, "scheduler": True, "pending": 0}
    assert "admin API key: from ACCESSRC_SIM_API_KEY" in served.output
    missing = requests.get(served.url + "/no/such/route", timeout=5)
    assert missing.status_code == 404 and missing.json()["error"]["type"] == "NotFound"
    bad = subprocess.run(
        [*CLI, "serve", "--retry-delays", "1,x"], capture_output=True, text=True, cwd=tmp_path, timeout=30
    )
    assert bad.returncode == 2 and "retry delays" in bad.stderr


def test_generated_key_is_printed_once_and_kept(serve):
    first = serve(env_key=None, tag="first")
    assert first.api_key.startswith("sim_") and first.output.count(first.api_key) == 1
    assert requests.get(first.url + "/api/events", headers={"x-api-key": first.api_key}, timeout=5).status_code == 200
    assert requests.get(first.url + "/api/events", headers={"x-api-key": "guess"}, timeout=5).status_code == 401
    first.proc.send_signal(signal.SIGTERM)
    assert first.proc.wait(30) == 0
    second = serve(env_key=None, tag="second")
    assert first.api_key not in second.output and "generated at first start" in second.output
    assert (
        requests.get(
            second.url + "/api/events", headers=BEARER | {"Authorization": f"Bearer {first.api_key}"}, timeout=5
        ).status_code
        == 200
    )


def test_both_platform_apis_and_scheduled_signed_firings(serve):
    served = serve("--retry-delays", "0.2,0.2,0.2,0.2,0.2")
    sub = requests.post(
        served.url + "/api/webhookSubscription",
        headers=BEARER,
        timeout=5,
        json={"event": "BadgeExportZipFile.Created", "callbackUrl": "http://127.0.0.1:9/placeholder"},
    )
    assert sub.status_code == 200
    accredit = start_receiver("accredit", Auth("rsa"), sub.json()["signatureKey"])
    hmac_receiver = start_receiver("accessrc", Auth("hmac", secret="abcd1234"))
    try:
        sub_id = sub.json()["id"]
        requests.delete(f"{served.url}/api/webhookSubscription/{sub_id}", headers=BEARER, timeout=5)
        sub = requests.post(
            served.url + "/api/webhookSubscription",
            headers=BEARER,
            timeout=5,
            json={"event": "BadgeExportZipFile.Created", "callbackUrl": accredit.url + "/baseWebhookNotification"},
        ).json()
        resp = requests.put(
            f"{served.url}/api/subscriptions/{sub['id']}/schedule",
            headers=XKEY,
            timeout=5,
            json={"interval_seconds": 0.5},
        )
        assert resp.status_code == 200
        arc = requests.post(
            served.url + "/api/Event/Subscribe",
            headers=XKEY,
            timeout=5,
            json={
                "eventType": "DELIVERY_CHANNEL_STATUS_UPDATED",
                "callbackUrl": hmac_receiver.url + "/hooks/arc",
                "auth": {"type": "hmac", "secret": "abcd1234"},
            },
        ).json()["data"]
        requests.put(
            f"{served.url}/api/subscriptions/{arc['subscriptionId']}/schedule",
            headers=XKEY,
            timeout=5,
            json={"interval_seconds": 0.5},
        )
        wait_until(lambda: len(accredit.received) >= 3 and len(hmac_receiver.received) >= 3, timeout=15)
        assert all(r.outcome == "accepted" and r.event == "BadgeExportZipFile.Created" for r in accredit.received)
        assert all(r.outcome == "accepted" for r in hmac_receiver.received)
        log = requests.get(served.url + f"/api/jobs?subscription_id={sub['id']}", headers=XKEY, timeout=5).json()[
            "data"
        ]
        assert len(log) >= 3 and {j["source"] for j in log} == {"schedule"}
    finally:
        accredit.stop()
        hmac_receiver.stop()


class SlowTarget:
    """Answers 200 after `delay` seconds; records each X-JobAttempt it sees."""

    def __init__(self, delay):
        self.seen, self.started = [], threading.Event()
        app = Flask("slow")

        @app.post("/slow")
        def slow():
            self.seen.append((request.headers.get("X-JobId"), request.headers.get("X-JobAttempt")))
            self.started.set()
            time.sleep(delay)
            return "", 200

        self.server = ServerThread(app).start()
        self.url = self.server.url + "/slow"


def test_sigterm_lets_the_attempt_in_flight_finish(serve, tmp_path):
    served = serve()
    slow = SlowTarget(1.0)
    stream = requests.get(served.url + "/api/stream", headers=XKEY, stream=True, timeout=30)  # holds a thread
    try:
        job = requests.post(
            served.url + "/api/send",
            headers=XKEY,
            timeout=5,
            json={"event": "DELIVERY_REFUND_REQUESTED", "url": slow.url},
        ).json()["data"]
        assert slow.started.wait(10)
        stopping = time.monotonic()
        served.proc.send_signal(signal.SIGTERM)
        assert served.proc.wait(30) == 0
        assert time.monotonic() - stopping < 8  # the open event stream does not hold the stop up
        assert "stopped" in served.output
        db = sqlite3.connect(tmp_path / "sim.db")
        assert db.execute("SELECT state, attempts_made FROM jobs WHERE id = ?", (job["id"],)).fetchone() == (
            "succeeded",
            1,
        )
    finally:
        stream.close()
        slow.server.stop()


@pytest.mark.slow
def test_kill_9_loses_nothing_and_x_job_attempt_continues(serve, tmp_path):
    """Jobs waiting for a retry and one attempt in flight at kill -9: after restart every job finishes, the
    attempt numbers continue, and only the in-flight attempt is sent twice."""
    served = serve("--retry-delays", "1.5,1.5,1.5,1.5,1.5")
    flaky = start_receiver("accessrc", fail_first=2)
    slow = SlowTarget(3.0)
    try:
        like = {"event": "DELIVERY_REFUND_REQUESTED", "profile": "accredit-like"}  # X-JobAttempt shows the numbers
        flaky_ids = [
            requests.post(
                served.url + "/api/send", headers=XKEY, timeout=5, json={**like, "url": flaky.url + "/h"}
            ).json()["data"]["id"]
            for _ in range(6)
        ]
        slow_id = requests.post(
            served.url + "/api/send", headers=XKEY, timeout=5, json={**like, "url": slow.url}
        ).json()["data"]["id"]

        def first_attempts_done():
            jobs = requests.get(served.url + "/api/jobs?limit=100", headers=XKEY, timeout=5).json()["data"]
            return all(j["attempts_made"] == 1 for j in jobs if j["id"] in flaky_ids)

        wait_until(first_attempts_done, timeout=10)
        assert slow.started.wait(10)
        served.proc.send_signal(signal.SIGKILL)
        served.proc.wait(10)

        db = sqlite3.connect(tmp_path / "sim.db")
        states = dict(db.execute("SELECT id, state FROM jobs").fetchall())
        assert {states[i] for i in flaky_ids} == {"pending"} and states[slow_id] == "delivering"
        assert db.execute("SELECT COUNT(*) FROM attempts WHERE job_id = ?", (slow_id,)).fetchone()[0] == 0
        db.close()
        time.sleep(2.0)  # the retries fall due while the simulator is down

        restarted = serve("--retry-delays", "1.5,1.5,1.5,1.5,1.5", tag="restart")
        assert "resumed 1 job(s)" in restarted.output

        def all_done():
            jobs = requests.get(restarted.url + "/api/jobs?limit=100", headers=XKEY, timeout=5).json()["data"]
            return len(jobs) == 7 and all(j["state"] == "succeeded" for j in jobs)

        wait_until(all_done, timeout=30)
        db = sqlite3.connect(tmp_path / "sim.db")
        for job_id in flaky_ids:
            numbers = [
                n for (n,) in db.execute("SELECT number FROM attempts WHERE job_id = ? ORDER BY number", (job_id,))
            ]
            assert numbers == [0, 1, 2]
            assert sorted(r.attempt for r in flaky.received if r.job_id == job_id) == ["0", "1", "2"]
        assert [n for (n,) in db.execute("SELECT number FROM attempts WHERE job_id = ?", (slow_id,))] == [0]
        assert slow.seen == [(slow_id, "0"), (slow_id, "0")]  # the in-flight attempt, sent again
    finally:
        flaky.stop()
        slow.server.stop()


def test_processes_starting_together_in_a_fresh_folder_share_one_key_pair(tmp_path):
    """serve and a receiver started at the same moment must not each generate (and keep) their own key."""
    code = "import sys; from simulator.signing import load_keys; print(load_keys(sys.argv[1]).public_pem, end='')"
    procs = [
        subprocess.Popen([sys.executable, "-c", code, str(tmp_path / "keys")], stdout=subprocess.PIPE, text=True)
        for _ in range(6)
    ]
    outputs = {proc.communicate(timeout=60)[0] for proc in procs}
    assert len(outputs) == 1 and next(iter(outputs)).startswith("-----BEGIN PUBLIC KEY-----")
    assert (tmp_path / "keys" / "accredit_public.pem").read_text() in outputs
    assert sorted(p.name for p in (tmp_path / "keys").iterdir()) == ["accredit_private.pem", "accredit_public.pem"]


def test_busy_port_fails_before_any_database_key_pair_or_admin_key_is_made(tmp_path):
    """Issue 15: a fresh home and a busy port: exit 2 naming the port, and nothing made (nor printed) in the home."""
    import socket

    home = tmp_path / "home"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ACCESSRC_SIM_")}
    env["ACCESSRC_SIM_HOME"] = str(home)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        done = subprocess.run(
            [*CLI, "serve", "--port", str(port)], capture_output=True, text=True, cwd=tmp_path, env=env, timeout=60
        )
    assert done.returncode == 2, done.stdout + done.stderr
    assert f"cannot listen on 127.0.0.1:{port}" in done.stderr and "choose another --port" in done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    assert "admin API key" not in done.stdout + done.stderr and "key pair" not in done.stdout + done.stderr
    assert not home.exists() and os.listdir(tmp_path) == []  # no home, no database, no keys, no lock file


# -- the dashboard's log-in (issue 14, item 1) ---------------------------------------------------------------------
def _login_url(served) -> str:
    return re.search(r"dashboard: (http://127\.0\.0\.1:\d+/\?token=[\w-]+) ", served.output).group(1)


def test_serve_prints_a_login_url_that_opens_a_session_and_the_page_never_holds_the_key(serve):
    served = serve()
    assert KEY not in requests.get(served.url + "/", timeout=5).text  # a loopback browser used to get it
    assert KEY not in requests.get(served.url + "/dashboard", timeout=5).text
    login = _login_url(served)
    browser = requests.Session()
    browser.trust_env = False
    answer = browser.get(login, allow_redirects=False, timeout=5)
    assert answer.status_code == 303 and answer.headers["Location"] == "/"
    cookie = answer.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and KEY not in cookie
    page = browser.get(served.url + "/", timeout=5)
    assert KEY not in page.text and '"session": true' in page.text
    assert browser.get(served.url + "/api/jobs", timeout=5).status_code == 200
    assert (
        browser.post(
            served.url + "/api/send",
            timeout=5,
            headers={"X-Requested-With": "accessrc-sim"},
            json={"event": "DELIVERY_REFUND_REQUESTED", "url": "http://127.0.0.1:9/h"},
        ).status_code
        == 201
    )
    dashboard = requests.Session()  # another browser (or the link opened again): a one-time link opens nothing
    dashboard.trust_env = False
    again = dashboard.get(login.replace("/?", "/dashboard?"), allow_redirects=False, timeout=5)
    assert again.status_code == 200 and "Set-Cookie" not in again.headers
    assert "This login link has already been used" in again.text and "paste the admin key" in again.text
    assert dashboard.get(served.url + "/api/jobs", timeout=5).status_code == 401
    logged_in = dashboard.post(served.url + "/dashboard/login", json={"key": KEY}, timeout=5)  # the page's form
    assert logged_in.status_code == 200 and "HttpOnly" in logged_in.headers["Set-Cookie"]
    assert dashboard.get(served.url + "/api/jobs", timeout=5).status_code == 200
    assert browser.get(served.url + "/api/jobs", timeout=5).status_code == 200  # the first session lives on
    assert requests.get(served.url + "/api/jobs", timeout=5).status_code == 401  # no session, no key
    assert requests.get(served.url + "/api/jobs", headers=XKEY, timeout=5).status_code == 200  # API clients
    assert requests.get(served.url + "/api/jobs", headers=BEARER, timeout=5).status_code == 200
    assert "--no-auth-local" not in served.output


def test_no_auth_local_is_asked_for_and_warned_about(serve):
    served = serve("--no-auth-local")
    assert "warning: --no-auth-local" in served.output and "every local account can act as the admin" in served.output
    browser = requests.Session()
    browser.trust_env = False
    page = browser.get(served.url + "/", timeout=5)
    assert KEY not in page.text and '"session": true' in page.text
    assert browser.get(served.url + "/api/jobs", timeout=5).status_code == 200


def _rotate(served, tmp_path) -> str:
    """`accessrc-sim admin-key --rotate` on the server's database, from a process of its own: the new key."""
    rotated = subprocess.run(
        [*CLI, "admin-key", "--rotate", "--db", str(tmp_path / "sim.db")],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert rotated.returncode == 0 and rotated.stdout.startswith("sim_"), rotated.stderr
    return rotated.stdout.strip()


def _browser() -> requests.Session:
    browser = requests.Session()
    browser.trust_env = False
    return browser


def test_rotating_the_admin_key_ends_every_dashboard_session_and_unused_login_link(serve, tmp_path):
    """Issue 14 "Hardening", item 1 (third pass): after `admin-key --rotate` beside the server, the old key got 401
    and the new one 200, but a dashboard session kept working, and the printed link still opened one. Sessions and
    links are bound to the key they were made under: a rotation ends them all (within the server's ~1 s re-read)."""
    served = serve(env_key=None)  # the key generated and stored: the one a rotation replaces
    old_key = served.api_key
    assert old_key and old_key.startswith("sim_")
    by_form = _browser()  # a session from the page's form (the admin key); the printed link stays unused
    logged_in = by_form.post(served.url + "/dashboard/login", json={"key": old_key}, timeout=5)
    assert logged_in.status_code == 200
    assert by_form.get(served.url + "/api/subscriptions", timeout=5).status_code == 200
    new_key = _rotate(served, tmp_path)

    def old_key_refused():
        return requests.get(served.url + "/api/subscriptions", headers={"x-api-key": old_key}, timeout=5).status_code

    # --rotate prints the key once the server uses it: no wait here, and a body (judged after the headers) goes in
    assert old_key_refused() == 401
    assert requests.get(served.url + "/api/subscriptions", headers={"x-api-key": new_key}, timeout=5).status_code == 200
    sent = requests.post(served.url + "/api/send", headers={"x-api-key": new_key}, json={"event": "nope"}, timeout=5)
    assert sent.status_code == 400, sent.text  # read and judged (an unknown event), not refused for its key
    assert by_form.get(served.url + "/api/subscriptions", timeout=5).status_code == 401  # the session ended
    assert '"session": false' in by_form.get(served.url + "/", timeout=5).text
    unused = _browser().get(_login_url(served), allow_redirects=False, timeout=5)  # the link printed at start
    assert unused.status_code == 200 and "Set-Cookie" not in unused.headers
    assert "has since been replaced" in unused.text and "admin-key --rotate" in unused.text
    again = by_form.post(served.url + "/dashboard/login", json={"key": old_key}, timeout=5)
    assert again.status_code == 401  # the old key opens nothing either
    by_new_key = _browser()
    assert by_new_key.post(served.url + "/dashboard/login", json={"key": new_key}, timeout=5).status_code == 200
    assert by_new_key.get(served.url + "/api/subscriptions", timeout=5).status_code == 200

    # a session the printed link opened (a restart prints a fresh link) ends the same way
    served.proc.kill()
    served.proc.wait(10)
    restarted = serve(env_key=None, tag="b")
    by_link = _browser()
    assert by_link.get(_login_url(restarted), allow_redirects=False, timeout=5).status_code == 303
    assert by_link.get(restarted.url + "/api/subscriptions", timeout=5).status_code == 200
    newest = _rotate(restarted, tmp_path)
    wait_until(
        lambda: by_link.get(restarted.url + "/api/subscriptions", timeout=5).status_code == 401,
        10,
        what="the link's session ended",
    )
    assert requests.get(restarted.url + "/api/jobs", headers={"Authorization": f"Bearer {newest}"}, timeout=5).ok


def test_with_a_configured_key_a_rotation_of_the_stored_one_ends_no_session(serve, tmp_path):
    """ACCESSRC_SIM_API_KEY is the key in force (the stored hash is not used): rotating the stored key changes
    nothing for this server, so its sessions go on."""
    served = serve()
    browser = _browser()
    assert browser.get(_login_url(served), allow_redirects=False, timeout=5).status_code == 303
    _rotate(served, tmp_path)
    time.sleep(2.5)  # two re-reads of the stored key's hash, had it been used
    assert browser.get(served.url + "/api/subscriptions", timeout=5).status_code == 200
    assert requests.get(served.url + "/api/subscriptions", headers=XKEY, timeout=5).status_code == 200


# -- Flask's default /static/ and templates/ (issue 14, item 7) ----------------------------------------------------
def test_a_static_folder_in_the_working_directory_is_not_served(serve, tmp_path):
    (tmp_path / "static").mkdir()
    (tmp_path / "static" / "secret.txt").write_text("not for the network\n")
    (tmp_path / "templates" / "dashboard").mkdir(parents=True)  # the auditor's: Jinja from the working directory
    (tmp_path / "templates" / "dashboard" / "index.html").write_text("<h1>PWNED {{ 7 * 7 }}</h1>\n")
    served = serve()  # its working directory is tmp_path
    answer = requests.get(served.url + "/static/secret.txt", timeout=5)
    assert answer.status_code == 404 and "not for the network" not in answer.text
    assert answer.json()["error"]["type"] == "NotFound"
    assert requests.get(served.url + "/dashboard/static/dashboard.js", timeout=5).status_code == 200
    for path in ("/", "/dashboard"):
        page = requests.get(served.url + path, timeout=5)
        assert page.status_code == 200 and "PWNED" not in page.text and "49" not in page.text.split("<body")[0]
        assert 'id="key-form"' in page.text  # the package's own page


def test_the_app_reads_nothing_from_the_working_directory(make_app, tmp_path, monkeypatch):
    """Flask roots an app named after no module at the working directory: its templates/ came first for Jinja."""
    import simulator

    (tmp_path / "templates" / "dashboard").mkdir(parents=True)
    (tmp_path / "templates" / "dashboard" / "index.html").write_text("<h1>PWNED</h1>\n")
    (tmp_path / "static").mkdir()
    (tmp_path / "static" / "x.txt").write_text("from the working directory\n")
    monkeypatch.chdir(tmp_path)
    app = make_app(START_WORKERS=False)
    package = os.path.dirname(os.path.abspath(simulator.__file__))
    assert app.root_path == package and app.jinja_loader is None and app.static_folder is None
    assert not os.path.abspath(app.instance_path).startswith(str(tmp_path))
    client = app.test_client()
    assert "PWNED" not in client.get("/").get_data(as_text=True)
    assert client.get("/static/x.txt").status_code == 404


# -- one server per database file (issue 14, item 5) ---------------------------------------------------------------
SCENARIO_BESIDE = """\
name: Beside a running server
platform: accessrc
url: ${RECEIVER_URL}
steps:
  - send: DELIVERY_REFUND_REQUESTED
"""


@pytest.mark.slow
def test_a_second_server_on_the_same_database_exits_2_and_a_killed_ones_lock_is_gone(tmp_path, keys_dir):
    """The trial: a second `serve` on the same SQLite file "recovered" the first one's attempts in flight (the
    receiver got each twice, jobs ended exhausted with UNIQUE constraint failed) and schedules fired on both. Now
    the second exits 2 with a clear message while the first keeps delivering; send, run and admin-key still work
    beside it; after kill -9 of the first, a new server starts at once."""
    from reliability_helpers import XKEY as RKEY
    from reliability_helpers import CountingReceiver, ServeProcess

    like = {"event": "DELIVERY_REFUND_REQUESTED", "profile": "accredit-like"}  # X-JobId tells jobs apart
    with CountingReceiver(delay=1.0) as rcv:
        first = ServeProcess(tmp_path, keys_dir)
        try:
            first.start()
            in_flight = requests.post(
                first.url + "/api/send", headers=RKEY, timeout=5, json={**like, "url": rcv.url}
            ).json()["data"]["id"]
            wait_until(lambda: rcv.total() == 1, 10, what="the first attempt in flight")
            second = subprocess.run(
                [*CLI, "serve", "--port", "0", "--db", str(first.db), "--keys-dir", str(keys_dir)],
                capture_output=True,
                text=True,
                timeout=60,
                cwd=tmp_path,
            )
            assert second.returncode == 2, second.stdout + second.stderr
            assert f"another accessrc-sim serve (pid {first.proc.pid}) is using {first.db}" in second.stderr
            assert "one server per database file" in second.stderr and "Traceback" not in second.stderr
            assert "serving on" not in second.stdout

            more = [
                requests.post(first.url + "/api/send", headers=RKEY, timeout=5, json={**like, "url": rcv.url}).json()[
                    "data"
                ]["id"]
                for _ in range(3)
            ]
            # the commands that only read or append work beside it, on the same file
            common = ["--db", str(first.db), "--keys-dir", str(keys_dir)]
            sent = subprocess.run(
                [
                    *CLI,
                    "send",
                    "DELIVERY_REFUND_REQUESTED",
                    "--url",
                    rcv.url,
                    "--profile",
                    "accredit-like",
                    "--retry-delays",
                    "",
                    *common,
                ],
                capture_output=True,
                text=True,
                timeout=60,
                cwd=tmp_path,
            )
            assert sent.returncode == 0, sent.stdout + sent.stderr
            (tmp_path / "beside.yaml").write_text(SCENARIO_BESIDE)
            ran = subprocess.run(
                [*CLI, "run", str(tmp_path / "beside.yaml"), "--var", f"RECEIVER_URL={rcv.url}", *common],
                capture_output=True,
                text=True,
                timeout=60,
                cwd=tmp_path,
            )
            assert ran.returncode == 0, ran.stdout + ran.stderr
            rotated = subprocess.run(
                [*CLI, "admin-key", "--rotate", "--db", str(first.db)],
                capture_output=True,
                text=True,
                timeout=60,
                cwd=tmp_path,
            )
            assert rotated.returncode == 0 and rotated.stdout.startswith("sim_"), rotated.stderr

            def all_done():
                jobs = requests.get(first.url + "/api/jobs?source=api", headers=RKEY, timeout=5).json()["data"]
                return len(jobs) == 4 and all(j["state"] == "succeeded" for j in jobs)

            wait_until(all_done, 20, what="the first server's jobs delivered")
            for job_id in [in_flight, *more]:  # each attempt once: nobody else took them
                assert rcv.snapshot()[job_id] == [(0, 200)], job_id
            db = sqlite3.connect(first.db)
            assert db.execute("SELECT COUNT(*) FROM attempts").fetchone()[0] == 6  # 4 queued + send + run
            db.close()

            first.kill()
            began = time.monotonic()
            first.start()  # the lock went with the killed process: no stale lock file to remove
            assert time.monotonic() - began < 15 and "another accessrc-sim serve" not in first.output
            after = requests.post(
                first.url + "/api/send", headers=RKEY, timeout=5, json={**like, "url": rcv.url}
            ).json()["data"]["id"]
            wait_until(lambda: rcv.snapshot().get(after) == [(0, 200)], 20, what="delivered by the new server")
        finally:
            first.stop()


# -- retention (issue 14, item 12) ---------------------------------------------------------------------------------
def test_serve_retention_deletes_old_finished_jobs_at_start(serve, tmp_path, keys_dir):
    """`serve --retention DAYS`: jobs that finished more than DAYS ago go (with their attempts) when it starts;
    newer ones, and unfinished ones however old, stay. Without --retention every job stays."""
    from simulator import catalogue, delivery
    from simulator.auth import Auth as A
    from simulator.store import Store

    store = Store(tmp_path / "sim.db")
    now = time.time()
    made = {}
    for name, state, age_days in (
        ("old-done", "succeeded", 40),
        ("old-failed", "exhausted", 31),
        ("recent", "succeeded", 2),
        ("old-waiting", "pending", 40),
    ):
        body = catalogue.body_bytes(catalogue.generate("DELIVERY_REFUND_REQUESTED", seed=1))
        job = delivery.new_job(
            "DELIVERY_REFUND_REQUESTED", "accessrc", "http://127.0.0.1:9/h", body, A("none"), delays=(), source="api"
        )
        job.state = state
        store.add_job(job, now=now - age_days * 86400)
        if state == "pending":
            job.next_attempt_at = now + 3600  # not due while this test runs
            store.update_job(job)
        made[name] = job.id
    store.close()

    kept_all = serve(tag="keep")
    kept_all.proc.send_signal(signal.SIGTERM)
    assert kept_all.proc.wait(30) == 0
    db = sqlite3.connect(tmp_path / "sim.db")
    assert db.execute("SELECT COUNT(*) FROM jobs").fetchone()[0] == 4
    db.close()

    served = serve("--retention", "30", tag="retention")
    assert "retention: jobs that finished more than 30 day(s) ago are deleted" in served.output

    def ids():
        return {j["id"] for j in requests.get(served.url + "/api/jobs", headers=XKEY, timeout=5).json()["data"]}

    wait_until(lambda: ids() == {made["recent"], made["old-waiting"]}, 10, what="old finished jobs deleted")
    bad = subprocess.run(
        [*CLI, "serve", "--retention", "0", "--db", str(tmp_path / "x.db")],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=30,
    )
    assert bad.returncode == 2 and "--retention" in bad.stderr
