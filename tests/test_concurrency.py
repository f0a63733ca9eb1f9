"""Concurrency (issue 7, item 7): many writers on one simulator's SQLite store, nothing lost, nothing doubled.

1. 20 concurrent scenario runs started through the server's API (POST /api/scenario-runs, 200 sends each =
   4,000 jobs): the runs execute inside the server next to its queue worker, recording into its store.
2. 20 concurrent `accessrc-sim run` processes (100 sends each) recording into a live server's database with
   `--db`: writers in separate processes on one SQLite file (busy timeouts), the server's queue on it too.
3. 20 concurrent API clients posting 2,000 jobs to a server (each failing once at the receiver, so the queue
   worker retries every one) while the clients still post.

Both: every job reaches the receiver exactly once per attempt, the store and the receiver agree, and the
database passes SQLite's integrity check in WAL mode.
"""

from __future__ import annotations

import sqlite3
import subprocess
import threading
import time
from collections import Counter

import pytest
import requests
from reliability_helpers import CLI, XKEY, CountingReceiver, ServeProcess, wait_until

RUNS = 20
PER_RUN = 200
PER_PROCESS = 100  # the two tests that add 20 process starts or a retry per job send half as many (CI time)

SCENARIO = """\
name: concurrency run {n}
platform: accessrc
url: ${{RECEIVER_URL}}
auth: {{kind: hmac, secret: "${{HMAC_SECRET}}"}}
profile: accredit-like  # X-JobId: the counting receiver tells the requests apart by it
steps:
  - repeat: {per_run}
    steps:
      - send: DELIVERY_REFUND_REQUESTED
        name: refund {n}
        expect: {{status: 200}}
"""


def _check_store(db_path) -> sqlite3.Connection:
    db = sqlite3.connect(db_path, timeout=30)
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    orphans = db.execute("SELECT COUNT(*) FROM attempts WHERE job_id NOT IN (SELECT id FROM jobs)").fetchone()[0]
    assert orphans == 0
    return db


@pytest.mark.slow
def test_twenty_concurrent_scenario_runs_into_one_servers_store(tmp_path, keys_dir):
    served = ServeProcess(tmp_path, keys_dir, "--retry-delays", "0,0")
    with CountingReceiver() as receiver:
        try:
            served.start()
            files = []
            for n in range(RUNS):
                path = tmp_path / f"run-{n}.yaml"
                path.write_text(SCENARIO.format(n=n, per_run=PER_PROCESS))
                files.append(path)
            started = time.monotonic()
            procs = [
                subprocess.Popen(
                    [
                        *CLI,
                        "run",
                        str(f),
                        "--var",
                        f"RECEIVER_URL={receiver.url}",
                        "--var",
                        "HMAC_SECRET=concurrency-secret",
                        "--db",
                        str(served.db),
                        "--keys-dir",
                        str(keys_dir),
                    ],
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    text=True,
                    cwd=tmp_path,
                )
                for f in files
            ]
            outputs = [p.communicate(timeout=240)[0] for p in procs]
            elapsed = time.monotonic() - started
            assert [p.returncode for p in procs] == [0] * RUNS, "\n".join(o[-500:] for o in outputs)
            assert all(f"{PER_PROCESS} passed, 0 failed" in o for o in outputs)
            assert served.healthy()
            time.sleep(1.0)  # give the server's queue every chance to (wrongly) pick something up
        finally:
            served.stop()

        seen = receiver.snapshot()
    db = _check_store(served.db)
    jobs = dict(db.execute("SELECT id, state FROM jobs WHERE source = 'scenario'").fetchall())
    attempts = Counter(job_id for (job_id,) in db.execute("SELECT job_id FROM attempts"))
    db.close()
    # 0 lost: every send of every run is a job in the store and arrived at the receiver.
    assert len(seen) == RUNS * PER_PROCESS == len(jobs) and set(seen) == set(jobs)
    assert set(jobs.values()) == {"succeeded"}
    # 0 duplicated: each arrived once, each has one attempt row (the server's queue never took one).
    assert all(len(requests_) == 1 for requests_ in seen.values())
    assert set(attempts.values()) == {1} and len(attempts) == len(jobs)
    assert "database is locked" not in served.output and "Traceback" not in served.output
    print(f"\n{RUNS} concurrent scenario runs, {len(jobs)} jobs in {elapsed:.1f} s: 0 lost, 0 duplicated")


@pytest.mark.slow
def test_twenty_concurrent_api_clients(tmp_path, keys_dir):
    served = ServeProcess(tmp_path, keys_dir, "--retry-delays", "0.05,0.05", "--delivery-threads", "8")
    accepted: list[list[str]] = [[] for _ in range(RUNS)]
    errors: list[str] = []
    with CountingReceiver(fail_first=1) as receiver:
        try:
            served.start()

            def client(n):
                session = requests.Session()
                try:
                    for _ in range(PER_PROCESS):
                        resp = session.post(
                            served.url + "/api/send",
                            headers=XKEY,
                            timeout=30,
                            json={
                                "event": "DELIVERY_REFUND_REQUESTED",
                                "url": receiver.url,
                                "profile": "accredit-like",
                            },
                        )  # counted per X-JobId
                        assert resp.status_code == 201, resp.text
                        accepted[n].append(resp.json()["data"]["id"])
                except Exception as exc:
                    errors.append(repr(exc))

            started = time.monotonic()
            threads = [threading.Thread(target=client, args=(n,)) for n in range(RUNS)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(240)
            assert not errors, errors[:3]
            ids = {job_id for ids_ in accepted for job_id in ids_}
            wait_until(lambda: receiver.acknowledged() >= ids, 240, interval=0.2, what="all acknowledged")
            elapsed = time.monotonic() - started

            def recorded():  # the answer is recorded just after the receiver sent it
                counts = requests.get(served.url + "/api/jobs?limit=1", headers=XKEY, timeout=10).json()["meta"][
                    "counts"
                ]
                return counts if counts["succeeded"] >= len(ids) else None

            counts = wait_until(recorded, 30, what="all recorded")
            served.terminate()
        finally:
            served.stop()
        seen = receiver.snapshot()

    assert len(ids) == RUNS * PER_PROCESS and counts["succeeded"] == RUNS * PER_PROCESS
    db = _check_store(served.db)
    rows = dict(db.execute("SELECT id, attempts_made FROM jobs").fetchall())
    numbers = Counter((job_id, n) for job_id, n in db.execute("SELECT job_id, number FROM attempts"))
    db.close()
    assert set(rows) == ids and set(rows.values()) == {2}
    assert set(numbers.values()) == {1} and len(numbers) == 2 * len(ids)
    # Each job: attempt 0 (failed on purpose) and attempt 1 (acknowledged), each sent exactly once.
    assert all(sorted(n for n, _ in seen[job_id]) == [0, 1] for job_id in ids)
    assert "database is locked" not in served.output and "Traceback" not in served.output
    print(
        f"\n{RUNS} concurrent API clients, {len(ids)} jobs ({2 * len(ids)} attempts) in {elapsed:.1f} s: "
        "0 lost, 0 duplicated"
    )


@pytest.mark.slow
def test_twenty_concurrent_scenario_runs_through_the_servers_api(tmp_path, keys_dir):
    """The same 20 × 200 scenario sends, started at once with POST /api/scenario-runs: the runs execute inside
    the server, next to its queue worker, recording into its store."""
    served = ServeProcess(tmp_path, keys_dir, "--retry-delays", "0,0")
    with CountingReceiver() as receiver:
        try:
            served.start()
            started = time.monotonic()

            def start(n):
                resp = requests.post(
                    served.url + "/api/scenario-runs",
                    headers=XKEY,
                    timeout=30,
                    json={
                        "scenario": SCENARIO.format(n=n, per_run=PER_RUN),
                        "vars": {"RECEIVER_URL": receiver.url, "HMAC_SECRET": "concurrency-secret"},
                    },
                )
                assert resp.status_code == 202, resp.text
                return resp.json()["data"]["id"]

            run_ids = [start(n) for n in range(RUNS)]

            def finished():
                runs = requests.get(served.url + "/api/scenario-runs", headers=XKEY, timeout=30).json()["data"]
                mine = [r for r in runs if r["id"] in run_ids]
                return mine if len(mine) == RUNS and all(r["status"] == "finished" for r in mine) else None

            runs = wait_until(finished, 240, interval=0.5, what="20 scenario runs finished")
            elapsed = time.monotonic() - started
            assert {r["summary"] for r in runs} == {f"{PER_RUN} passed, 0 failed"}, runs
            assert all(r["error"] is None and r["result"] == "passed" for r in runs)
            assert served.healthy()
            time.sleep(1.0)
        finally:
            served.stop()
        seen = receiver.snapshot()
    db = _check_store(served.db)
    jobs = dict(db.execute("SELECT id, state FROM jobs WHERE source = 'scenario'").fetchall())
    attempts = Counter(job_id for (job_id,) in db.execute("SELECT job_id FROM attempts"))
    db.close()
    assert len(seen) == RUNS * PER_RUN == len(jobs) and set(seen) == set(jobs)
    assert set(jobs.values()) == {"succeeded"}
    assert all(len(requests_) == 1 for requests_ in seen.values())
    assert set(attempts.values()) == {1} and len(attempts) == len(jobs)
    assert "database is locked" not in served.output and "Traceback" not in served.output
    print(
        f"\n{RUNS} concurrent scenario runs through the API, {len(jobs)} jobs in {elapsed:.1f} s: 0 lost, 0 duplicated"
    )
