"""The store under pressure (issue 14, items 5, 9, 11, 12): leases on jobs in flight, the stored request-body cap,
a full disk, credentials dropped when a job ends, retention. Real SQLite files, real receivers on 127.0.0.1."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import subprocess
import threading
import time

import pytest
from flask import Flask, request
from reliability_helpers import CLI, CountingReceiver
from sim_helpers import XKEY, sql, wait_until
from test_openapi import _check

from simulator import catalogue, delivery
from simulator.auth import Auth
from simulator.models import DELIVERING, EXHAUSTED, PENDING, SUCCEEDED
from simulator.queue import QueueWorker
from simulator.receiver import ServerThread
from simulator.store import Store

STORED_BODY_CAP = 64 * 1024  # docs/operations.md's number (Guarantees)


def _job(url, event="DELIVERY_REFUND_REQUESTED", delays=(), auth=None, source="api", count=None):
    spec = catalogue.get_event(event)
    body = catalogue.body_bytes(catalogue.generate(spec.name, seed=1, count=count))
    return delivery.new_job(
        spec.name,
        spec.platform,
        url,
        body,
        auth or Auth("none"),
        delays=delays,
        timeout=5,
        source=source,
        profile="accredit-like",
    )


class Target:
    """A receiver on 127.0.0.1 that records (X-JobId, X-JobAttempt, body) and runs `on_request` before it
    answers (after `delay` seconds) with the next of `statuses` (the last one again once they run out)."""

    def __init__(self, statuses=(200,), delay=0.0, on_request=None):
        self.got: list[tuple[str, str, bytes]] = []
        self.started = threading.Event()
        app = Flask("target")

        @app.post("/h")
        def hook():
            self.got.append((request.headers.get("X-JobId"), request.headers.get("X-JobAttempt"), request.get_data()))
            self.started.set()
            if on_request:
                on_request()
            time.sleep(delay)
            return {"status": "success"}, statuses[min(len(self.got), len(statuses)) - 1]

        self.server = ServerThread(app).start()
        self.url = self.server.url + "/h"

    def stop(self):
        self.server.stop()


@pytest.fixture
def target():
    made = []

    def make(**kw):
        made.append(Target(**kw))
        return made[-1]

    yield make
    for t in made:
        t.stop()


# -- item 5: leases -------------------------------------------------------------------------------------------------
@pytest.fixture
def store(backend_store):
    """The lease tests run on a SQLite file and on a PostgreSQL database (issue 16)."""
    return backend_store


def test_a_second_worker_on_the_file_never_takes_an_attempt_in_flight(store, keys, target):
    """The trial: a second server's start "recovered" the first one's jobs in flight, so the receiver got each attempt
    twice and the first one's record failed (UNIQUE constraint) and ended the job exhausted. Now the owner's lease,
    renewed while its attempt runs (3 lease lengths here), keeps the job its own."""
    slow = target(delay=1.5)
    first = QueueWorker(store, keys, poll=0.05, lease=0.5).start()
    second = None
    try:
        job = store.add_job(_job(slow.url))
        first.wake()
        assert slow.started.wait(5)
        second = QueueWorker(Store(store.path), keys, poll=0.05, lease=0.5).start()  # as a second process would
        # seen as interrupted (a SQLite file has one server: a job left delivering was its own), yet not taken: its
        # lease is alive; on a shared database a live lease is another server delivering, not an interruption
        assert second.recovered == ([] if store.shared else [job.id])
        wait_until(lambda: store.get_job(job.id).state == SUCCEEDED, 10)
        time.sleep(0.6)
    finally:
        first.stop(5)
        if second:
            second.stop(5)
    assert [(j, n) for j, n, _ in slow.got] == [(job.id, "0")]
    assert [a.number for a in store.attempts(job.id)] == [0]
    assert store.get_job(job.id).last_error is None


def test_a_job_left_delivering_by_a_dead_owner_is_sent_again_only_once_its_lease_runs_out(store, keys, target):
    ok = target()
    job = store.add_job(_job(ok.url))
    claimed_at = time.time()
    [taken] = store.claim_due(claimed_at, owner="server-killed-with-9", lease=1.5)
    assert taken.id == job.id
    worker = QueueWorker(store, keys, poll=0.05).start()
    try:
        assert worker.recovered == ([] if store.shared else [job.id])
        time.sleep(0.8)
        assert ok.got == [] and store.get_job(job.id).state == DELIVERING
        wait_until(lambda: store.get_job(job.id).state == SUCCEEDED, 10)
    finally:
        worker.stop(5)
    assert [n for _, n, _ in ok.got] == ["0"]
    assert store.attempts(job.id)[0].started_at >= claimed_at + 1.5


def test_an_attempt_finished_after_its_lease_was_taken_over_is_not_recorded_twice(store, keys, target):
    """Fencing: a late owner's record is refused (nothing written), so the log never holds a duplicate number."""
    from simulator.store import LeaseLost

    ok = target()
    job = store.add_job(_job(ok.url))
    [late] = store.claim_due(time.time(), owner="a", lease=0.01)
    time.sleep(0.02)
    [current] = store.claim_due(time.time(), owner="b")
    delivery.Deliverer(store, keys, owner="b").run_once(current)
    with pytest.raises(LeaseLost):
        delivery.Deliverer(store, keys, owner="a").run_once(late)
    assert [a.number for a in store.attempts(job.id)] == [0] and store.get_job(job.id).state == SUCCEEDED


# -- item 9: the stored request-body cap ------------------------------------------------------------------------------
SCENARIO = """\
name: Oversized bodies
platform: accessrc
url: ${RECEIVER_URL}
steps:
  - fault: oversized_body
    event: DELIVERY_REFUND_REQUESTED
    size: 67108864
  - fault: oversized_body
    event: DELIVERY_REFUND_REQUESTED
    size: 67108864
  - fault: oversized_body
    event: DELIVERY_REFUND_REQUESTED
    size: 67108864
"""


@pytest.mark.slow
def test_three_64_mib_scenario_bodies_store_64_kib_each_with_length_and_sha256(tmp_path, keys_dir, make_app):
    """The trial: 3 steps `oversized_body size: 67108864` made a 454 MB database and a 194 MB WAL. Now each attempt
    (and each scenario job) keeps the first 64 KiB, the whole length and the SHA-256; the API shows them."""
    db = tmp_path / "sim.db"
    (tmp_path / "big.yaml").write_text(SCENARIO)
    with CountingReceiver(status=413) as rcv:
        done = subprocess.run(
            [
                *CLI,
                "run",
                str(tmp_path / "big.yaml"),
                "--var",
                f"RECEIVER_URL={rcv.url}",
                "--db",
                str(db),
                "--keys-dir",
                str(keys_dir),
            ],
            capture_output=True,
            text=True,
            timeout=300,
            cwd=tmp_path,
        )
        digests = list(rcv.digests)
    assert done.returncode == 0, done.stdout + done.stderr
    assert [n for n, _ in digests] == [67108864] * 3
    size = sum(p.stat().st_size for p in tmp_path.glob("sim.db*"))
    assert size < 4 * 1024 * 1024, f"{size} bytes on disk"
    conn = sqlite3.connect(db)
    rows = conn.execute(
        "SELECT job_id, length(request_body), request_body_length, request_body_sha256 FROM attempts ORDER BY id"
    ).fetchall()
    jobs = dict(conn.execute("SELECT id, length(body) FROM jobs").fetchall())
    conn.close()
    assert [(r[1], r[2], r[3]) for r in rows] == [(STORED_BODY_CAP, n, sha) for n, sha in digests]
    assert set(jobs.values()) == {STORED_BODY_CAP}

    client = make_app(DB_PATH=str(db), START_WORKERS=False).test_client()
    job = client.get(f"/api/jobs/{rows[0][0]}", headers=XKEY).get_json()["data"]
    [attempt] = job.pop("attempts")
    _check("Attempt", attempt)
    _check("Job", job)
    assert attempt["request_body_truncated"] is True and attempt["request_body_length"] == 67108864
    assert attempt["request_body_sha256"] == digests[0][1] and len(attempt["request_body"]) == STORED_BODY_CAP
    assert job["body_truncated"] is True and job["body_length"] == 67108864 and job["body_sha256"] == digests[0][1]
    again = client.post(f"/api/jobs/{rows[0][0]}/redeliver", headers=XKEY)
    assert again.status_code == 409
    message = again.get_json()["error"]["message"]
    assert "cannot be redelivered" in message and "run the scenario step again" in message


def test_a_queued_body_over_64_kib_is_sent_whole_on_retry_and_redelivery(make_app, target):
    """Only the attempt rows are cut: the job keeps the bytes it sends, so its retry and its redelivery send them
    all."""
    flaky_then_ok = target(statuses=(500, 200))
    app = make_app(RETRY_DELAYS=(0.1,))
    client = app.test_client()
    sent = client.post(
        "/api/send",
        headers=XKEY,
        json={"event": "DELIVERY_REQUEST_SENT", "count": 400, "url": flaky_then_ok.url, "profile": "accredit-like"},
    )
    assert sent.status_code == 201, sent.get_json()
    job_id = sent.get_json()["data"]["id"]
    body = app.extensions["accessrc_sim"].store.get_job(job_id).body
    assert len(body) > STORED_BODY_CAP and sent.get_json()["data"]["body_length"] == len(body)
    wait_until(lambda: client.get(f"/api/jobs/{job_id}", headers=XKEY).get_json()["data"]["state"] == SUCCEEDED, 10)
    redo = client.post(f"/api/jobs/{job_id}/redeliver", headers=XKEY)
    assert redo.status_code == 201
    wait_until(lambda: len(flaky_then_ok.got) == 3, 10)
    assert [b for _, _, b in flaky_then_ok.got] == [body] * 3
    view = client.get(f"/api/jobs/{job_id}", headers=XKEY).get_json()["data"]
    assert view["body_truncated"] is True and view["body_length"] == len(body)  # the view shows 64 KiB of it
    for a in view["attempts"]:
        assert a["request_body_truncated"] and a["request_body_length"] == len(body)
        assert a["request_body_sha256"] == hashlib.sha256(body).hexdigest()


def test_an_older_database_gains_the_new_columns_and_its_rows_read_as_whole(tmp_path):
    db = tmp_path / "old.db"
    conn = sqlite3.connect(db)
    conn.executescript("""
    CREATE TABLE jobs (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, event TEXT NOT NULL,
        platform TEXT NOT NULL, url TEXT NOT NULL, body BLOB NOT NULL, auth_json TEXT NOT NULL,
        headers_json TEXT NOT NULL DEFAULT '{}', retry_delays_json TEXT NOT NULL, timeout REAL NOT NULL,
        state TEXT NOT NULL, attempts_made INTEGER NOT NULL DEFAULT 0, next_attempt_at REAL, created_at REAL NOT NULL,
        updated_at REAL NOT NULL, last_status INTEGER, last_error TEXT, subscription_id TEXT,
        source TEXT NOT NULL DEFAULT 'cli', profile TEXT NOT NULL DEFAULT 'documented');
    CREATE TABLE attempts (id INTEGER PRIMARY KEY AUTOINCREMENT, job_id TEXT NOT NULL, number INTEGER NOT NULL,
        started_at REAL NOT NULL, duration_ms REAL NOT NULL, url TEXT NOT NULL, request_headers_json TEXT NOT NULL,
        request_body BLOB NOT NULL, status INTEGER, response_headers_json TEXT NOT NULL DEFAULT '{}',
        response_body BLOB NOT NULL DEFAULT x'', error TEXT, UNIQUE(job_id, number));
    """)
    conn.execute(
        "INSERT INTO jobs (id, event, platform, url, body, auth_json, retry_delays_json, timeout, state, "
        "created_at, updated_at) VALUES ('j1', 'E', 'accessrc', 'http://127.0.0.1/', ?, ?, '[]', 5, "
        "'succeeded', 1, 1)",
        (b'{"a":1}', json.dumps({"kind": "hmac", "secret": "kept-forever"})),
    )
    conn.execute(
        "INSERT INTO attempts (job_id, number, started_at, duration_ms, url, request_headers_json, "
        "request_body) VALUES ('j1', 0, 1, 1, 'http://127.0.0.1/', '{}', ?)",
        (b'{"a":1}',),
    )
    conn.commit()
    conn.close()
    store = Store(db)
    assert {"jobs.owner", "jobs.lease_until", "attempts.request_body_length"} <= set(store.migrated)
    [attempt] = store.attempts("j1")
    assert not attempt.request_body_truncated and attempt.full_request_body_length == 7
    assert attempt.full_request_body_sha256 == hashlib.sha256(b'{"a":1}').hexdigest()
    job = store.get_job("j1")
    assert job.auth == Auth("hmac") and job.auth.cleared  # a finished job's credentials went with the upgrade
    assert Store(db).migrated == []


# -- item 11: a full disk -----------------------------------------------------------------------------------------
# Rows that use up the room left in each table's pages (marked "filler", deleted again by _free).
FILLERS = (
    ("filler", "INSERT INTO filler VALUES (zeroblob(?))"),
    (
        "subscriptions",
        "INSERT INTO subscriptions (id, platform, event, url, auth_json, created_at, updated_at) "
        "VALUES (lower(hex(randomblob(16))), 'accredit', 'filler', hex(zeroblob(?)), '{}', 0, 0)",
    ),
    (
        "jobs",
        "INSERT INTO jobs (id, event, platform, url, body, auth_json, retry_delays_json, timeout, state, "
        "created_at, updated_at, source) VALUES (lower(hex(randomblob(16))), 'filler', 'accessrc', 'filler', "
        "zeroblob(?), '{}', '[]', 1, 'succeeded', 0, 0, 'filler')",
    ),
    (
        "attempts",
        "INSERT INTO attempts (job_id, number, started_at, duration_ms, url, request_headers_json, "
        "request_body) VALUES (lower(hex(randomblob(16))), 0, 0, 0, 'filler', '{}', zeroblob(?))",
    ),
)


def _fill(db_path, store: Store) -> None:
    """Make the database full as a full disk does, without filling the real disk: the simulator's connections may
    not add a page (SQLite max_page_count, Store.max_pages) and the room left in the file is used up."""
    conn = sqlite3.connect(db_path, timeout=30)
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    conn.execute(f"PRAGMA max_page_count = {pages}")
    store.max_pages = pages
    for _, filler in FILLERS:
        for size in (65536, 4096, 512, 64, 8, 0):
            while True:
                try:
                    conn.execute(filler, (size,))
                    conn.commit()
                except sqlite3.OperationalError as exc:
                    assert "database or disk is full" in str(exc)
                    conn.rollback()
                    break
    conn.close()


def _free(db_path, store: Store) -> None:
    conn = sqlite3.connect(db_path, timeout=30)
    for table, _ in FILLERS:
        conn.execute(
            f"DELETE FROM {table}"
            + (
                ""
                if table == "filler"
                else " WHERE event = 'filler'"
                if table == "subscriptions"
                else " WHERE url = 'filler'"
            )
        )
    conn.commit()
    conn.close()
    store.max_pages = None


def test_disk_full_answers_503_and_a_delivered_job_is_never_ended_for_it(tmp_path, make_app, target):
    """The trial: sends got a generic 500, and a job the receiver did get ended `exhausted` with no attempt row.
    Now: 503 "database or disk is full" in each API family's envelope; the job whose attempt could not be
    recorded stays due (same attempt number) and succeeds once there is room again."""
    db = tmp_path / "sim.db"
    app = make_app(RETRY_DELAYS=(0.1,))
    services = app.extensions["accessrc_sim"]
    client = app.test_client()
    sql(db, "CREATE TABLE filler (b BLOB)")
    filled = threading.Event()

    def disk_fills_up():  # the receiver has the request: now the simulator cannot record anything
        if not filled.is_set():
            _fill(db, services.store)
            filled.set()

    hook = target(on_request=disk_fills_up)
    sent = client.post(
        "/api/send",
        headers=XKEY,
        json={"event": "DELIVERY_REFUND_REQUESTED", "url": hook.url, "profile": "accredit-like"},
    )
    assert sent.status_code == 201
    job_id = sent.get_json()["data"]["id"]
    assert filled.wait(10)
    wait_until(lambda: services.store.get_job(job_id).state == PENDING, 10, what="the job given back to the queue")
    job = services.store.get_job(job_id)
    assert job.attempts_made == 0 and services.store.attempts(job_id) == [] and job.state != EXHAUSTED

    refused = client.post("/api/send", headers=XKEY, json={"event": "DELIVERY_REFUND_REQUESTED", "url": hook.url})
    assert refused.status_code == 503 and refused.headers["Retry-After"]
    error = refused.get_json()
    _check("Error", error)
    assert error["error"]["code"] == 503 and error["error"]["type"] == "ServiceUnavailable"
    assert error["error"]["message"].startswith("database or disk is full")
    accredit = client.post(
        "/api/webhookSubscription",
        headers={"Authorization": "Bearer " + XKEY["x-api-key"]},
        json={"event": "BadgeExportZipFile.Created", "callbackUrl": hook.url},
    )
    assert accredit.status_code == 503
    _check("AcrError", accredit.get_json())
    assert "database or disk is full" in accredit.get_json()["message"]
    assert client.get(f"/api/jobs/{job_id}", headers=XKEY).status_code == 200  # reading still works

    _free(db, services.store)
    wait_until(lambda: services.store.get_job(job_id).state == SUCCEEDED, 15, what="delivered once there is room")
    assert [a.number for a in services.store.attempts(job_id)] == [0]
    assert [n for j, n, _ in hook.got if j == job_id] == ["0", "0"]  # the unrecorded attempt, sent again


# -- item 12: credentials kept only while a job can be sent; retention ----------------------------------------------
def test_a_finished_job_keeps_no_credentials_and_redelivery_takes_the_subscriptions(make_app, receiver):
    secret = "hmac-secret-9f8e7d6c"
    old, new = Auth("hmac", secret=secret), Auth("hmac", secret="rotated-secret-1a2b3c")
    target = receiver("accessrc", new)
    app = make_app()
    client = app.test_client()
    store = app.extensions["accessrc_sim"].store
    sub = client.post(
        "/api/subscriptions",
        headers=XKEY,
        json={
            "event": "DELIVERY_REFUND_REQUESTED",
            "url": target.url + "/h",
            "auth": {"type": "hmac", "secret": old.secret},
        },
    ).get_json()["data"]
    fired = client.post(f"/api/subscriptions/{sub['id']}/fire", headers=XKEY).get_json()["data"]
    wait_until(lambda: store.get_job(fired["id"]).finished)
    [(row,)] = sql(store.path, "SELECT auth_json FROM jobs WHERE id = ?", (fired["id"],))
    assert json.loads(row) == {"kind": "hmac", "rsa_padding": "pkcs1v15"} and secret not in row
    view = client.get(f"/api/jobs/{fired['id']}", headers=XKEY).get_json()["data"]
    assert view["credentials_cleared"] is True and view["state"] == EXHAUSTED  # the receiver wants the new secret

    patched = client.patch(
        f"/api/subscriptions/{sub['id']}", headers=XKEY, json={"auth": {"type": "hmac", "secret": new.secret}}
    )
    assert patched.status_code == 200
    again = client.post(f"/api/jobs/{fired['id']}/redeliver", headers=XKEY)
    assert again.status_code == 201
    wait_until(
        lambda: store.get_job(again.get_json()["data"]["id"]).state == SUCCEEDED
    )  # signed with the current secret
    assert [r.outcome for r in target.received][-1] == "accepted"


def test_redelivering_a_finished_job_whose_credentials_are_gone_is_a_clear_409(make_app, receiver):
    target = receiver("accessrc", Auth("basic", username="u", password="pw-0b5e2c"))
    app = make_app()
    client = app.test_client()
    store = app.extensions["accessrc_sim"].store
    sent = client.post(
        "/api/send",
        headers=XKEY,
        json={
            "event": "DELIVERY_REFUND_REQUESTED",
            "url": target.url + "/h",
            "auth": {"type": "basic", "username": "u", "password": "pw-0b5e2c"},
        },
    ).get_json()["data"]
    wait_until(lambda: store.get_job(sent["id"]).state == SUCCEEDED)
    assert "pw-0b5e2c" not in sql(store.path, "SELECT auth_json FROM jobs")[0][0]
    refused = client.post(f"/api/jobs/{sent['id']}/redeliver", headers=XKEY)
    assert refused.status_code == 409
    message = refused.get_json()["error"]["message"]
    assert "credentials were cleared" in message and "POST /api/send" in message
    assert store.count_jobs() == 1  # nothing queued


def test_retention_deletes_old_finished_jobs_and_their_attempts_periodically(make_app, receiver):
    """RETENTION_DAYS (serve --retention): jobs that finished more than that long ago go, with their attempts, at
    each purge (at start, then every `retention_check` seconds: an hour; 0.2 s here); unfinished ones stay."""
    target = receiver("accessrc")
    app = make_app(RETENTION_DAYS=7, START_WORKERS=False)
    services = app.extensions["accessrc_sim"]
    services.settings.retention_check = 0.2
    store = services.store
    client = app.test_client()
    services.start()
    ids = [
        client.post(
            "/api/send", headers=XKEY, json={"event": "DELIVERY_REFUND_REQUESTED", "url": target.url + "/h"}
        ).get_json()["data"]["id"]
        for _ in range(3)
    ]
    wait_until(lambda: all(store.get_job(i).state == SUCCEEDED for i in ids))
    redo = client.post(f"/api/jobs/{ids[2]}/redeliver", headers=XKEY).get_json()["data"]["id"]
    wait_until(lambda: store.get_job(redo).state == SUCCEEDED)
    waiting = store.add_job(_job(target.url + "/h"), now=time.time() + 3600)  # pending: never deleted
    old = time.time() - 8 * 86400
    assert sql(store.path, "SELECT job_id FROM redeliveries") == [(redo,)]
    sql(store.path, "UPDATE jobs SET updated_at = ? WHERE id IN (?, ?, ?)", (old, ids[0], ids[1], redo))
    sql(store.path, "UPDATE jobs SET updated_at = ?, created_at = ? WHERE id = ?", (old, old, waiting.id))
    wait_until(
        lambda: {r[0] for r in sql(store.path, "SELECT id FROM jobs")} == {ids[2], waiting.id},
        5,
        what="the periodic purge",
    )
    assert {r[0] for r in sql(store.path, "SELECT DISTINCT job_id FROM attempts")} == {ids[2]}
    assert sql(store.path, "SELECT job_id FROM redeliveries") == []  # the redelivery's link went too
    assert services.purge_finished() == 0


# -- second pass (issue 14): one server per file, by the file's identity ---------------------------------------------
HOLD = (
    "import sys, time; from simulator.store import lock_for_serving; lock_for_serving(sys.argv[1]); "
    "print('held', flush=True); time.sleep(120)"
)


@pytest.fixture
def held_db(tmp_path, keys_dir):
    """A database file whose one-server lock another process holds (as a running `serve` does)."""
    import sys

    db = tmp_path / "real" / "accessrc-sim.db"
    Store(db).close()
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(db)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        yield db, holder.pid
    finally:
        holder.kill()
        holder.wait(10)


def _serve_on(db_arg, tmp_path, keys_dir):
    return subprocess.run(
        [*CLI, "serve", "--port", "0", "--db", str(db_arg), "--keys-dir", str(keys_dir)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )


@pytest.mark.parametrize("link", ["hard", "symbolic"])
def test_a_second_server_through_another_path_to_the_same_file_exits_2(held_db, tmp_path, keys_dir, link):
    """The trial: a hard link to the database file got its own `.lock` (the lock was keyed on the path): two
    servers, two -wal files, one database. The lock is now on the file itself."""
    import os

    db, pid = held_db
    other = tmp_path / "elsewhere" / "alias.db"
    other.parent.mkdir()
    (os.link if link == "hard" else os.symlink)(db, other)
    second = _serve_on(other, tmp_path, keys_dir)
    assert second.returncode == 2, second.stdout + second.stderr
    assert f"another accessrc-sim serve (pid {pid}) is using {other}" in second.stderr
    # the path the running server opened, not the link (the trial's hard link named itself here)
    assert f"(the same file as {os.path.realpath(db)}, however it is named)" in second.stderr
    assert f"the same file as {other}" not in second.stderr
    assert "Traceback" not in second.stderr and "serving on" not in second.stdout


def test_a_file_uri_as_db_is_refused_with_exit_2(held_db, tmp_path, keys_dir):
    """The trial: `--db file:/path/accessrc-sim.db` opened the file (SQLite reads `file:` URIs) while the lock went
    to `./file:/path….lock`. A `file:` name is refused, before anything is made."""
    db, _ = held_db
    for spelling in (f"file:{db}", f"FILE:{db}?mode=rwc"):
        second = _serve_on(spelling, tmp_path, keys_dir)
        assert second.returncode == 2, second.stdout + second.stderr
        assert "a SQLite `file:` URI is not taken as the database" in second.stderr
        assert "Traceback" not in second.stderr
    assert not [p for p in tmp_path.iterdir() if p.name.lower().startswith("file:")]
    with pytest.raises(Exception, match="URI is not taken as the database"):
        Store(f"file:{db}")


def test_the_file_lock_leaves_sqlite_its_own_locks(held_db):
    """flock on the database file and SQLite's POSIX byte-range locks are separate: a writer beside the server
    works, and SQLite still keeps two writers apart."""
    db, _ = held_db
    beside = Store(db)
    job = beside.add_job(_job("http://127.0.0.1:9/h"))
    assert Store(db).get_job(job.id).id == job.id
    conn = sqlite3.connect(db, timeout=0.2)
    conn.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            other = sqlite3.connect(db, timeout=0.2)
            other.execute("BEGIN IMMEDIATE")
    finally:
        conn.rollback()


# -- second pass: a job whose attempt and give-back both failed is not stuck with its own server ---------------------
def test_a_job_whose_record_and_give_back_both_fail_is_delivered_by_the_same_server_once_there_is_room(
    tmp_path, keys, target, caplog
):
    """The trial (a real full disk): the receiver had the attempt, recording it failed, giving the job back failed
    too (3 tracebacks), and the server never claimed its own expired lease again: still `delivering` 650 s later.
    The attempt's INSERT fails for real (SQLite max_page_count, the room used up); an in-place UPDATE never needs
    a page there, so the give-back's failure is what a full disk gives it (its WAL append refused), raised at the
    store boundary. Once there is room, the same worker delivers and records the job within its lease + a few s."""
    import logging

    db = tmp_path / "sim.db"
    store = Store(db)
    sql(db, "CREATE TABLE filler (b BLOB)")
    filled = threading.Event()
    real_release = store.release

    def release(job, due, owner=None):
        if store.max_pages is not None:  # the disk is full
            raise sqlite3.OperationalError("database or disk is full")
        return real_release(job, due, owner)

    store.release = release

    def disk_fills_up():
        if not filled.is_set():
            _fill(db, store)
            filled.set()

    hook = target(on_request=disk_fills_up)
    job = store.add_job(_job(hook.url))
    caplog.set_level(logging.INFO, logger="accessrc_sim")
    worker = QueueWorker(store, keys, poll=0.05, lease=1.0).start()
    try:
        worker.wake()
        assert filled.wait(10)
        wait_until(lambda: "back to the queue" in caplog.text, 10, what="the give-back failed")
        stuck = store.get_job(job.id)
        assert stuck.state == DELIVERING and stuck.attempts_made == 0 and store.attempts(job.id) == []
        _free(db, store)
        wait_until(lambda: store.get_job(job.id).state == SUCCEEDED, 1.0 + 5, what="the same server delivers it")
    finally:
        worker.stop(5)
    assert [a.number for a in store.attempts(job.id)] == [0]
    assert {j for j, _, _ in hook.got} == {job.id} and len(hook.got) >= 2  # the unrecorded attempt, sent again
    queue_records = [r for r in caplog.records if r.name.startswith("accessrc_sim")]
    assert not [r for r in queue_records if r.exc_info], "no tracebacks for a full disk"
    assert "could not give 1 job(s) back to the queue (database or disk is full)" in caplog.text


# -- second pass: cleared credentials leave the WAL file too ---------------------------------------------------------
@pytest.mark.parametrize(
    "auth, secret",
    [
        (Auth("hmac", secret="hmac-secret-wal-5e4d3c2b"), "hmac-secret-wal-5e4d3c2b"),
        (Auth("basic", username="u", password="basic-pass-wal-9a8b7c6d"), "basic-pass-wal-9a8b7c6d"),
    ],
    ids=["hmac", "basic"],
)
def test_a_finished_jobs_credentials_are_in_neither_the_database_nor_its_wal(tmp_path, keys, target, auth, secret):
    db = tmp_path / "sim.db"
    store = Store(db)
    ok = target()
    job = _job(ok.url, auth=auth)
    job.platform = "accessrc" if auth.kind == "hmac" else job.platform
    job = store.add_job(job)
    wal = tmp_path / "sim.db-wal"
    assert secret.encode() in wal.read_bytes()  # the job, while it can be sent, keeps its credentials
    worker = QueueWorker(store, keys, poll=0.05).start()
    try:
        worker.wake()
        wait_until(lambda: store.get_job(job.id).finished, 10)
    finally:
        worker.stop(5)

    def nowhere():
        files = [db, wal]
        return all(secret.encode() not in f.read_bytes() for f in files if f.exists())

    wait_until(nowhere, 5, what="the secret gone from the database file and its -wal")
    assert store.get_job(job.id).state == SUCCEEDED
