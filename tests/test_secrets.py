"""Secrets never leak (issue 7, item 5). A full run through the real `accessrc-sim serve`: subscriptions of every
auth kind through both platform APIs and the simulator's own, firings, a schedule, actions, one-off sends,
dashboard sends (forged ones too), redeliveries, a conformance run from the dashboard, a scenario run through
the server's API and one from the CLI into the same database. Then a sweep of the server's stdout/stderr, every API
answer (body and headers),
the dashboard's HTML/JS/CSS, the scenario run's output and reports, and the SQLite delivery log, for every secret:
HMAC secrets, API-key header values, Basic passwords and their Authorization values, ReachFive Authorization
values, the admin API key and the private key PEM.

The sweep looks for every 8-character piece of each secret, so a prefix or a fragment is caught too, not only
the whole value. What may hold secrets, and is checked to hold only what it must: the admin key is printed once
at generation and written into the dashboard page for a loopback browser (documented in the dashboard section);
the subscriptions table, and jobs until they finish, keep the credentials a delivery (or a retry after a restart)
must sign with, in a database file only its owner can read; the admin key is kept as its SHA-256 only.
"""

from __future__ import annotations

import base64
import json
import secrets
import sqlite3
import stat
import subprocess

import pytest
import requests
from reliability_helpers import CLI, ServeProcess, wait_until

from simulator import signing
from simulator.auth import Auth
from simulator.receiver import ReceiverConfig, ServerThread, create_receiver

WINDOW = 8


def _secret(tag: str) -> str:
    return f"{tag}-{secrets.token_urlsafe(18)}"


class Recorder(requests.Session):
    """A session that keeps every answer (status, headers, body) for the sweep."""

    def __init__(self, base: str, key: str):
        super().__init__()
        self.base, self.answers = base, []
        self.headers.update({"x-api-key": key})

    def request(self, method, url, *args, **kwargs):
        kwargs.setdefault("timeout", 20)
        resp = super().request(method, url if url.startswith("http") else self.base + url, *args, **kwargs)
        self.answers.append((f"{method} {url}", resp.status_code, dict(resp.headers), resp.content))
        return resp


def _fragments(value: str, window: int | None) -> set[str]:
    if window is None:
        return {value}
    return {value[i : i + window] for i in range(0, max(1, len(value) - window + 1))}


def _leaks(text: str, secret_values: dict) -> list[str]:
    """Names of the secrets with a piece in `text`. A value is a string (any WINDOW-character piece of it counts)
    or (string, window) with its own window (None: only the whole string)."""
    found = []
    for name, value in secret_values.items():
        value, window = value if isinstance(value, tuple) else (value, WINDOW)
        if any(f in text for f in _fragments(value, window)):
            found.append(name)
    return found


def _private_key_material(keys_dir) -> dict:
    """The private key as it could leak: the PEM, each of its lines that is not public (the modulus is in the
    public key too), and the private numbers d, p, q in hex, decimal and base64 (16-character pieces)."""
    private_pem = (keys_dir / signing.PRIVATE_FILE).read_text()
    public_b64 = "".join(signing.load_keys(keys_dir).public_pem.splitlines()[1:-1])
    lines = [line for line in private_pem.splitlines() if line and not line.startswith("-----")]
    material = {"private key PEM": (private_pem, None), "private key PEM header": ("BEGIN PRIVATE KEY", None)}
    material.update({f"private key line {i}": (line, None) for i, line in enumerate(lines) if line not in public_b64})
    numbers = signing.load_keys(keys_dir).private_key.private_numbers()
    for name, n in (("d", numbers.d), ("p", numbers.p), ("q", numbers.q)):
        raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
        material[f"private key {name} (hex)"] = (format(n, "x"), 16)
        material[f"private key {name} (decimal)"] = (str(n), 16)
        material[f"private key {name} (base64)"] = (base64.b64encode(raw).decode(), 16)
    return material


def _receiver(platform, auth, pem=None):
    app = create_receiver(ReceiverConfig(platform, auth, pem))
    server = ServerThread(app).start()
    server.received = app.extensions["received"]
    return server


@pytest.mark.slow
def test_a_full_run_leaks_no_secret(tmp_path):
    keys_dir = tmp_path / "keys"
    signing.generate_keys(keys_dir)

    hmac_secret, hmac_secret_2, header_value = _secret("hm"), _secret("hm2"), _secret("hv")
    basic_user, basic_password = "svc-user", _secret("pw")
    basic_password_2 = _secret("pw2")
    bearer = "Bearer " + _secret("r5")
    send_header_value, send_hmac = _secret("sh"), _secret("sm")
    scenario_hmac, readiness_password, api_scenario_hmac = _secret("sc"), _secret("rd"), _secret("as")
    credentials = {
        "hmac secret": hmac_secret,
        "hmac secret (patched in)": hmac_secret_2,
        "api-key header value": header_value,
        "basic password": basic_password,
        "basic password (one-off send)": basic_password_2,
        "basic Authorization": (signing.basic_value(basic_user, basic_password).split(" ", 1)[1], None),
        "basic Authorization (send)": (signing.basic_value(basic_user, basic_password_2).split(" ", 1)[1], None),
        "reachfive Authorization": bearer.split(" ", 1)[1],
        "send header value": send_header_value,
        "send hmac secret": send_hmac,
        "scenario hmac secret": scenario_hmac,
        "scenario (API) hmac secret": api_scenario_hmac,
        "readiness basic password": readiness_password,
        "readiness basic Authorization": (signing.basic_value(basic_user, readiness_password).split(" ", 1)[1], None),
    }
    # (Basic values: whole only; their first characters encode the user name, which is no secret.)
    credentials.update(_private_key_material(keys_dir))

    served = ServeProcess(tmp_path, keys_dir, "--retry-delays", "0.1,0.1", "--allow-planned", api_key=None)
    served.start()
    admin_key = served.api_key = wait_until(
        lambda: next(
            (
                line.rsplit(": ", 1)[1].strip()
                for line in served.output.splitlines()
                if line.startswith("admin API key (generated now")
            ),
            None,
        ),
        5,
        what="generated key",
    )
    api = Recorder(served.url, admin_key)
    bearer_auth = {"x-api-key": "", "Authorization": f"Bearer {admin_key}"}

    pem = api.get("/api/webhookSubscription", headers=bearer_auth)  # Accredit list (empty) through Bearer
    assert pem.status_code == 200
    public_pem = signing.load_keys(keys_dir).public_pem
    receivers = {
        "hmac": _receiver("accessrc", Auth("hmac", secret=hmac_secret)),
        "hmac2": _receiver("accessrc", Auth("hmac", secret=hmac_secret_2)),
        "header": _receiver("accessrc", Auth("header", header_name="X-Partner-Key", header_value=header_value)),
        "basic": _receiver("accessrc", Auth("basic", username=basic_user, password=basic_password)),
        "none": _receiver("accessrc", Auth("none")),
        "rsa": _receiver("accredit", Auth("rsa"), public_pem),
        "r5": _receiver("reachfive", Auth("authorization", authorization=bearer)),
        "send_header": _receiver(
            "accessrc", Auth("header", header_name="X-Partner-Key", header_value=send_header_value)
        ),
        "send_basic": _receiver("accessrc", Auth("basic", username=basic_user, password=basic_password_2)),
        "send_hmac": _receiver("accessrc", Auth("hmac", secret=send_hmac)),
        "scenario": _receiver("accessrc", Auth("hmac", secret=scenario_hmac)),
        "api_scenario": _receiver("accessrc", Auth("hmac", secret=api_scenario_hmac)),
        "readiness": _receiver("accessrc", Auth("basic", username=basic_user, password=readiness_password)),
    }
    try:
        # -- subscriptions of every auth kind, through each platform's API -------------------------------------
        def subscribe(event, url, auth):
            resp = api.post("/api/Event/Subscribe", json={"eventType": event, "callbackUrl": url, "auth": auth})
            assert resp.status_code == 200, resp.text
            return resp.json()["data"]["subscriptionId"]

        subs = [
            subscribe(
                "DELIVERY_CHANNEL_STATUS_UPDATED", receivers["hmac"].url + "/h", {"type": "hmac", "secret": hmac_secret}
            ),
            subscribe(
                "DELIVERY_REQUEST_SENT",
                receivers["header"].url + "/h",
                {"type": "header", "headerName": "X-Partner-Key", "headerValue": header_value},
            ),
            subscribe(
                "DELIVERY_REFUND_REQUESTED",
                receivers["basic"].url + "/h",
                {"type": "basic", "username": basic_user, "password": basic_password},
            ),
            subscribe("APPLICATIONS_IMPORT_RESULT", receivers["none"].url + "/h", None),
        ]
        accredit = api.post(
            "/api/webhookSubscription",
            headers=bearer_auth,
            json={
                "event": "BadgeExportZipFile.Created",
                "callbackUrl": receivers["rsa"].url + "/baseWebhookNotification",
            },
        )
        assert accredit.status_code == 200, accredit.text
        subs.append(accredit.json()["id"])
        reach = api.post(
            "/api/subscriptions",
            json={
                "event": "END_JOB_NOTIFICATION",
                "url": receivers["r5"].url + "/j",
                "auth": {"authorization": bearer},
            },
        )
        assert reach.status_code == 201, reach.text
        subs.append(reach.json()["data"]["id"])

        # -- firing: on demand, on a schedule, actions; the AccessRC subscription re-keyed ---------------------
        for sub_id in subs:
            assert api.post(f"/api/subscriptions/{sub_id}/fire").status_code == 201
        assert api.put(f"/api/subscriptions/{subs[0]}/schedule", json={"interval_seconds": 0.3}).status_code == 200
        for action, body in (
            ("approve-delivery-channel", {}),
            ("request-refund", {}),
            ("finish-import", {"records": 120, "failures": 5}),
            ("finish-reachfive-job", {}),
            ("create-badge-export", {}),
        ):
            assert api.post(f"/api/actions/{action}", json=body).status_code == 201, action
        accredit_sample = api.post(
            "/api/webhookSubscription/triggerSampleEventNotification",
            headers=bearer_auth,
            json={
                "event": "BadgeExportZipFile.Created",
                "callbackUrl": receivers["rsa"].url + "/baseWebhookNotification",
            },
        )
        assert accredit_sample.status_code == 200, accredit_sample.text
        wait_until(lambda: len(receivers["hmac"].received) >= 3, 10, what="scheduled firings")
        patched = api.patch(
            f"/api/subscriptions/{subs[0]}",
            json={"url": receivers["hmac2"].url + "/h", "auth": {"type": "hmac", "secret": hmac_secret_2}},
        )
        assert patched.status_code == 200
        wait_until(lambda: len(receivers["hmac2"].received) >= 2, 10, what="firings with the new secret")
        assert api.delete(f"/api/subscriptions/{subs[0]}/schedule").status_code == 200

        # -- one-off sends of every kind, failing ones too (wrong credentials: retried, exhausted) -------------
        sends = [
            (
                "DELIVERY_REFUND_REQUESTED",
                receivers["send_header"].url,
                {"type": "header", "headerName": "X-Partner-Key", "headerValue": send_header_value},
            ),
            (
                "DELIVERY_REFUND_REQUESTED",
                receivers["send_basic"].url,
                {"type": "basic", "username": basic_user, "password": basic_password_2},
            ),
            ("DELIVERY_CHANNEL_STATUS_UPDATED", receivers["send_hmac"].url, {"type": "hmac", "secret": send_hmac}),
            ("DELIVERY_CHANNEL_STATUS_UPDATED", receivers["hmac"].url, {"type": "hmac", "secret": send_hmac}),  # 401
            ("END_JOB_NOTIFICATION", receivers["r5"].url, {"authorization": bearer}),
            ("BadgeExportZipFile.Created", receivers["rsa"].url, None),
        ]
        for event, url, auth in sends:
            resp = api.post("/api/send", json={"event": event, "url": url + "/s", "auth": auth})
            assert resp.status_code == 201, resp.text
        for forge in (False, True):
            for event, url, auth in sends[:3] + sends[4:5]:
                payload = api.get("/dashboard/api/sample", params={"event": event}).json()["data"]["payload"]
                resp = api.post(
                    "/dashboard/api/send",
                    json={
                        "event": event,
                        "url": url + "/d",
                        "auth": auth,
                        "payload": payload,
                        "forge_signature": forge,
                    },
                )
                assert resp.status_code == 201, resp.text
        # Bad requests that carry a secret: the refusal must not echo it.
        refusals = [
            (
                "/api/Event/Subscribe",
                {
                    "eventType": "DELIVERY_REQUEST_SENT",
                    "callbackUrl": "http://127.0.0.1:9/x",
                    "auth": {"type": "header", "headerValue": header_value},
                },
            ),
            (
                "/api/Event/Subscribe",
                {
                    "eventType": "DELIVERY_REQUEST_SENT",
                    "callbackUrl": "http://127.0.0.1:9/x",
                    "auth": {"type": "basic", "password": basic_password},
                },
            ),
            (
                "/api/Event/Subscribe",
                {
                    "eventType": "DELIVERY_REQUEST_SENT",
                    "callbackUrl": "http://127.0.0.1:9/x",
                    "auth": {"type": "hmac", "secret": hmac_secret * 20, "extra": hmac_secret},  # over 512: refused
                },
            ),
            (
                "/api/send",
                {
                    "event": "END_JOB_NOTIFICATION",
                    "url": "http://127.0.0.1:9/x",
                    "auth": {"authorization": bearer, "type": "x"},
                },
            ),
            (
                "/api/send",
                {
                    "event": "DELIVERY_REFUND_REQUESTED",
                    "url": "http://127.0.0.1:9/x",
                    "auth": {"type": "hmac", "secret": hmac_secret * 20},
                },
            ),
        ]
        for path, body in refusals:
            assert api.post(path, json=body).status_code == 400, (path, body)

        # -- a conformance run from the dashboard and a scenario run from the CLI, into the same database ------
        run = api.post(
            "/dashboard/api/readiness",
            json={
                "platform": "accessrc",
                "url": receivers["readiness"].url + "/r",
                "auth": {"type": "basic", "username": basic_user, "password": readiness_password},
                "timeout": 5,
            },
        )
        assert run.status_code == 202, run.text
        run_id = run.json()["data"]["id"]
        wait_until(
            lambda: api.get(f"/dashboard/api/readiness/{run_id}").json()["data"]["status"] != "running",
            90,
            interval=0.3,
            what="readiness run",
        )
        api_run = api.post(
            "/api/scenario-runs",
            json={
                "file": "accessrc/receiver-defences.yaml",
                "vars": {"RECEIVER_URL": receivers["api_scenario"].url + "/as", "HMAC_SECRET": api_scenario_hmac},
            },
        )
        assert api_run.status_code == 202, api_run.text
        api_run_id = api_run.json()["data"]["id"]
        wait_until(
            lambda: api.get(f"/api/scenario-runs/{api_run_id}").json()["data"]["status"] == "finished",
            60,
            interval=0.3,
            what="scenario run through the API",
        )
        assert api.get(f"/api/scenario-runs/{api_run_id}").json()["data"]["result"] == "passed"
        api.get("/api/scenario-runs")
        api.get("/api/scenarios")
        scenario_out = subprocess.run(
            [
                *CLI,
                "run",
                "scenarios/accessrc/delivery-channel-approved.yaml",
                "--var",
                f"RECEIVER_URL={receivers['scenario'].url}/sc",
                "--var",
                f"HMAC_SECRET={scenario_hmac}",
                "--db",
                str(served.db),
                "--keys-dir",
                str(keys_dir),
                "--junit",
                str(tmp_path / "junit.xml"),
                "--report",
                str(tmp_path / "report.json"),
            ],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=_repo(),
        )
        assert scenario_out.returncode == 0, scenario_out.stdout + scenario_out.stderr

        # -- everything finishes; redeliver what finished ----------------------------------------------------
        def all_final():
            counts = api.get("/api/jobs", params={"limit": 1}).json()["meta"]["counts"]
            return counts["pending"] == 0 and counts["delivering"] == 0

        wait_until(all_final, 30, what="every job final")
        jobs = api.get("/api/jobs", params={"limit": 500}).json()["data"]
        assert {j["state"] for j in jobs} == {"succeeded", "exhausted"}
        redelivered = 0
        for job in jobs:
            if redelivered == 40:
                break
            resp = api.post(f"/api/jobs/{job['id']}/redeliver")
            if resp.status_code == 409:  # a finished job keeps no credentials; a scenario body over 64 KiB is cut
                assert ("credentials were cleared" in resp.text and job["credentials_cleared"]) or (
                    "cannot be redelivered" in resp.text and job["source"] == "scenario"
                ), resp.text
            else:
                assert resp.status_code == 201, resp.text
                redelivered += 1
        assert redelivered >= 10
        wait_until(all_final, 30, what="redeliveries final")

        # -- read everything back through the API and the dashboard ------------------------------------------
        api.get("/healthz")
        api.get("/api/openapi.json")
        api.get("/api/subscriptions")
        api.get("/api/webhookSubscription", headers=bearer_auth)
        api.get("/api/LookUp/GetLookUpValues", params={"data": "EventType"})
        for sub_id in subs:
            api.get(f"/api/subscriptions/{sub_id}")
        api.get(f"/api/webhookSubscription/{subs[4]}", headers=bearer_auth)
        page, before = 0, None
        while True:
            listing = api.get("/api/jobs", params={"limit": 100, **({"before_id": before} if before else {})}).json()
            for job in listing["data"]:
                detail = api.get(f"/api/jobs/{job['id']}")
                assert detail.status_code == 200
            before = listing["meta"]["page"].get("next_before_id")
            page += 1
            if not before:
                break
        api.get("/api/attempts", params={"limit": 500})
        api.get("/api/stream", params={"since": "0:0", "max_seconds": 1.5})
        api.get("/dashboard/api/stream", params={"since": "0", "max_seconds": 1.5})
        api.get(f"/dashboard/api/readiness/{run_id}")
        dashboard = requests.get(served.url + "/", timeout=10)  # a loopback browser, not logged in
        assets = [
            requests.get(served.url + f"/dashboard/static/{name}", timeout=10)
            for name in ("dashboard.js", "dashboard.css", "favicon.svg")
        ]
        assert dashboard.status_code == 200 and all(a.status_code == 200 for a in assets)
        served.terminate()
    finally:
        served.stop()
        for receiver in receivers.values():
            receiver.stop()

    # Sanity: the run exercised what it claims (deliveries accepted with each credential, forgeries refused).
    total_attempts = sum(
        len(json.loads(a[3])["data"]["attempts"])
        for a in api.answers
        if a[0].startswith("GET /api/jobs/") and a[0].count("/") == 3
    )
    assert total_attempts > 75  # (over 100 while finished jobs kept their credentials and all 40 could be resent)
    for name in (
        "hmac",
        "hmac2",
        "header",
        "basic",
        "rsa",
        "r5",
        "send_header",
        "send_basic",
        "send_hmac",
        "scenario",
        "api_scenario",
        "readiness",
    ):
        assert any(r.outcome == "accepted" for r in receivers[name].received), name
    for name in ("send_header", "send_basic", "send_hmac", "r5"):
        assert any(r.status == 401 for r in receivers[name].received), f"{name}: no forgery was refused"

    every_secret = dict(credentials, **{"admin API key": admin_key})
    problems = []

    # 1. Logs: the server's stdout and stderr; the admin key only in its one line at generation.
    log_text = served.output
    assert sum(line.count(admin_key) for line in log_text.splitlines()) == 1
    log_without_key_line = "\n".join(
        line for line in log_text.splitlines() if not line.startswith("admin API key (generated")
    )
    problems += [f"server output: {n}" for n in _leaks(log_without_key_line, every_secret)]
    # 2. Every API answer, body and headers (the key the client sent is not echoed back either).
    for what, status, headers, body in api.answers:
        text = body.decode("utf-8", "replace") + json.dumps(headers)
        problems += [f"{what} ({status}): {n}" for n in _leaks(text, every_secret)]
    # 3. The dashboard: assets hold nothing; the page never holds the key (issue 14: not even for loopback).
    for asset in assets:
        problems += [f"{asset.url}: {n}" for n in _leaks(asset.text + json.dumps(dict(asset.headers)), every_secret)]
    html = dashboard.text
    boot = json.loads(html.split('<script id="boot" type="application/json">', 1)[1].split("</script>", 1)[0])
    assert "api_key" not in boot and boot["session"] is False
    problems += [f"dashboard page: {n}" for n in _leaks(html, every_secret)]
    # 4. The scenario run's console, JUnit and JSON reports.
    for name, text in (
        ("scenario console", scenario_out.stdout + scenario_out.stderr),
        ("junit.xml", (tmp_path / "junit.xml").read_text()),
        ("report.json", (tmp_path / "report.json").read_text()),
    ):
        problems += [f"{name}: {n}" for n in _leaks(text, every_secret)]
    # 5. The SQLite file: the delivery log (attempts) holds no secret at all; subscriptions hold credentials only in
    #    their auth column; jobs, all finished by now, hold none (issue 14, item 12); the admin key nowhere (a hash).
    db = sqlite3.connect(served.db)
    db.row_factory = sqlite3.Row
    tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    assert db.execute("SELECT COUNT(*) FROM jobs WHERE state IN ('pending', 'delivering')").fetchone()[0] == 0
    allowed_columns = {("subscriptions", "auth_json")}
    for table in tables:
        for row in db.execute(f"SELECT * FROM {table}"):
            for column in row.keys():
                value = row[column]
                text = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
                found = _leaks(text, every_secret)
                if (table, column) in allowed_columns:  # the delivery credentials, never the key or the PEM
                    found = [n for n in found if n == "admin API key" or n.startswith("private key")]
                problems += [f"sqlite {table}.{column}: {n}" for n in found]
    assert db.execute("SELECT COUNT(*) FROM attempts").fetchone()[0] == total_attempts
    db.close()
    # The database holds credentials: only its owner may read it (as the private key file).
    for suffix in ("", "-wal", "-shm"):
        path = served.db.with_name(served.db.name + suffix)
        if path.exists():
            assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0, f"{path.name} is readable by others"
    assert problems == [], "\n".join(problems)


def _repo():
    from pathlib import Path

    return Path(__file__).resolve().parent.parent


def test_the_cli_prints_no_secret(tmp_path, keys_dir):
    """`send` (plain and --json, accepted and refused) and `conformance` (console, JSON and JUnit reports) with
    credentials given on the command line: what they print and write holds no piece of them."""
    hmac_secret, header_value, password, bearer = _secret("ch"), _secret("cv"), _secret("cp"), _secret("cb")
    secret_values = {
        "hmac": hmac_secret,
        "header": header_value,
        "password": password,
        "bearer": bearer,
        "basic value": (signing.basic_value("cli-user", password).split(" ", 1)[1], None),
    }
    receivers = [
        _receiver("accessrc", Auth("hmac", secret=hmac_secret)),
        _receiver("accessrc", Auth("header", header_name="X-Partner-Key", header_value=header_value)),
        _receiver("accessrc", Auth("basic", username="cli-user", password=password)),
        _receiver("reachfive", Auth("authorization", authorization="Bearer " + bearer)),
    ]
    common = ["--db", str(tmp_path / "cli.db"), "--keys-dir", str(keys_dir)]
    runs = []
    try:
        sends = [
            ("DELIVERY_REFUND_REQUESTED", receivers[0], ["--hmac-secret", hmac_secret]),
            (
                "DELIVERY_REFUND_REQUESTED",
                receivers[1],
                ["--api-key-header", "X-Partner-Key", "--api-key", header_value],
            ),
            ("DELIVERY_REFUND_REQUESTED", receivers[2], ["--basic", f"cli-user:{password}"]),
            ("END_JOB_NOTIFICATION", receivers[3], ["--authorization", "Bearer " + bearer]),
            ("DELIVERY_REFUND_REQUESTED", receivers[1], ["--hmac-secret", hmac_secret]),
        ]  # refused: 401
        for event, receiver, auth in sends:
            for extra in ([], ["--json"]):
                runs.append(
                    subprocess.run(
                        [
                            *CLI,
                            "send",
                            event,
                            "--url",
                            receiver.url + "/c",
                            *auth,
                            *extra,
                            "--retry-delays",
                            "0",
                            *common,
                        ],
                        capture_output=True,
                        text=True,
                        timeout=60,
                        cwd=tmp_path,
                    )
                )
        assert [r.returncode for r in runs] == [0] * 8 + [1, 1]
        report, junit = tmp_path / "verdict.json", tmp_path / "verdict.xml"
        runs.append(
            subprocess.run(
                [
                    *CLI,
                    "conformance",
                    "--url",
                    receivers[2].url + "/r",
                    "--platform",
                    "accessrc",
                    "--basic",
                    f"cli-user:{password}",
                    "--timeout",
                    "5",
                    "--report",
                    str(report),
                    "--junit",
                    str(junit),
                    "--verbose",
                    *common,
                ],
                capture_output=True,
                text=True,
                timeout=120,
                cwd=_repo(),
            )
        )
        assert runs[-1].returncode in (0, 1), runs[-1].stdout + runs[-1].stderr
        assert "credentials" in runs[-1].stdout.lower()
    finally:
        for receiver in receivers:
            receiver.stop()
    texts = [r.stdout + r.stderr for r in runs] + [report.read_text(), junit.read_text()]
    assert [(i, _leaks(t, secret_values)) for i, t in enumerate(texts) if _leaks(t, secret_values)] == []
