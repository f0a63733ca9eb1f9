"""Retry schedule honesty of the server's queue worker (issue 7, item 2), through the real `accessrc-sim serve`:
always 500 → exactly 6 attempts (X-JobAttempt 0..5), gaps within ±20% of the configured schedule, exhausted;
k failures then 200 → exactly k+1 attempts; while a job waits, its next attempt is a due time in the jobs table."""

from __future__ import annotations

import itertools
import sqlite3
import time

import pytest
import requests
from reliability_helpers import XKEY, CountingReceiver, ServeProcess, wait_until

DELAYS = [0.3, 0.6, 0.9, 1.2, 1.5]


@pytest.fixture
def served(tmp_path, keys_dir):
    server = ServeProcess(tmp_path, keys_dir)
    yield server.start()
    server.stop()


def _send(served, url, event="DELIVERY_REFUND_REQUESTED", delays=DELAYS, profile="accredit-like"):
    """accredit-like by default: the counting receiver tells jobs and attempts apart by X-JobId/X-JobAttempt."""
    body = {"event": event, "url": url, "retry_delays": delays}
    if profile:
        body["profile"] = profile
    resp = requests.post(served.url + "/api/send", headers=XKEY, timeout=10, json=body)
    assert resp.status_code == 201, resp.text
    return resp.json()["data"]["id"]


def _job(served, job_id):
    return requests.get(f"{served.url}/api/jobs/{job_id}", headers=XKEY, timeout=10).json()["data"]


def _final(served, job_id):
    return wait_until(
        lambda: (lambda j: j if j["state"] in ("succeeded", "exhausted") else None)(_job(served, job_id)),
        30,
        what=f"job {job_id} final",
    )


def test_schedule_is_kept_and_counted(served):
    always = CountingReceiver(status=500).__enter__()
    flaky = {k: CountingReceiver(fail_first=k).__enter__() for k in range(6)}
    try:
        doomed = _send(served, always.url)
        ids = {k: _send(served, r.url) for k, r in flaky.items()}

        # While it waits, the retry is a due time in the jobs table (not a sleeping thread).
        waiting = wait_until(
            lambda: (lambda j: j if j["state"] == "pending" and j["attempts_made"] >= 1 else None)(
                _job(served, doomed)
            ),
            10,
            interval=0.01,
            what="first retry pending",
        )
        last = waiting["attempts"][-1]
        expected_due = last["started_at"] + last["duration_ms"] / 1000 + DELAYS[waiting["attempts_made"] - 1]
        assert waiting["next_attempt_at"] == pytest.approx(expected_due, abs=0.05)
        db = sqlite3.connect(served.db)
        row = db.execute("SELECT state, next_attempt_at FROM jobs WHERE id = ?", (doomed,)).fetchone()
        db.close()
        assert row[0] in ("pending", "delivering") and row[1] >= last["started_at"]

        job = _final(served, doomed)
        assert job["state"] == "exhausted" and job["attempts_made"] == 6 and job["next_attempt_at"] is None
        assert [a["number"] for a in job["attempts"]] == [0, 1, 2, 3, 4, 5]
        assert [a["status"] for a in job["attempts"]] == [500] * 6
        assert [n for n, _ in always.seen[doomed]] == [0, 1, 2, 3, 4, 5]  # X-JobAttempt as sent
        arrivals = always.times[doomed]
        gaps = [b - a for a, b in itertools.pairwise(arrivals)]
        for gap, planned in zip(gaps, DELAYS, strict=False):
            assert planned * 0.8 <= gap <= planned * 1.2, (gaps, DELAYS)
        # The table's own record agrees: each attempt started its delay after the previous one ended.
        recorded = job["attempts"]
        for prev, cur, planned in zip(recorded, recorded[1:], DELAYS, strict=False):
            gap = cur["started_at"] - (prev["started_at"] + prev["duration_ms"] / 1000)
            assert planned * 0.8 <= gap <= planned * 1.2, (gap, planned)

        for k, job_id in ids.items():
            job = _final(served, job_id)
            assert job["state"] == "succeeded" and job["attempts_made"] == k + 1, (k, job)
            assert [a["status"] for a in job["attempts"]] == [500] * k + [200]
            assert [n for n, _ in flaky[k].seen[job_id]] == list(range(k + 1))
        time.sleep(DELAYS[0] * 1.5)  # nothing more arrives after success or exhaustion
        assert len(always.seen[doomed]) == 6 and all(len(flaky[k].seen[ids[k]]) == k + 1 for k in ids)
    finally:
        always.__exit__()
        for r in flaky.values():
            r.__exit__()


def test_reachfive_is_fire_and_forget(served):
    with CountingReceiver(status=500) as receiver:
        job_id = _send(served, receiver.url, event="END_JOB_NOTIFICATION", delays=None, profile=None)
        job = _final(served, job_id)
        assert job["state"] == "exhausted" and job["attempts_made"] == 1 and job["max_attempts"] == 1
        time.sleep(0.5)
        assert receiver.total() == 1 and "X-JobId" not in receiver.headers[0]
