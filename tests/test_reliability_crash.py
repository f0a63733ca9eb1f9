"""Crash durability (issue 7, item 1): 1,000 jobs through the real `accessrc-sim serve`, a receiver that fails
each job's first two requests, and SIGKILL at ten random moments (while jobs are being created and delivered),
each followed by a restart on the same SQLite file.

Afterwards: every job the API accepted is acknowledged by the receiver, none is lost, none took more than 6
attempts, X-JobAttempt numbers are gap-free, and every request the receiver got twice was an attempt in flight
at one of the kills (so duplicates <= jobs in flight at each kill).
"""

from __future__ import annotations

import random
import sqlite3
import threading
import time
import uuid
from collections import Counter

import pytest
import requests
from reliability_helpers import XKEY, CountingReceiver, ServeProcess, wait_until

JOBS = 1000
KILLS = 10
CREATORS = 4
SEED = 20261125  # the kill moments are random, and reproducible


def _job_with_marker(db_path, marker: str) -> str | None:
    db = sqlite3.connect(db_path, timeout=30)
    try:
        row = db.execute("SELECT id FROM jobs WHERE instr(CAST(body AS TEXT), ?) > 0", (marker,)).fetchone()
        return row[0] if row else None
    finally:
        db.close()


class Creators:
    """CREATORS threads post JOBS jobs, each with a unique deliveryId (its marker). A POST that gets no answer
    because the server was killed is settled after the restart by looking for its marker in the database: if
    the job was stored it counts (it must then be delivered), if not it is posted again."""

    def __init__(self, served: ServeProcess, target_url: str):
        self.served, self.target_url = served, target_url
        self.up = threading.Event()
        self.lock = threading.Lock()
        self.accepted: dict[str, str] = {}  # job id -> marker
        self.settled_after_kill = Counter()  # "stored" / "not stored"
        self.errors: list[str] = []
        self.threads = [threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(CREATORS)]

    def start(self):
        for t in self.threads:
            t.start()

    def done(self) -> bool:
        return not any(t.is_alive() for t in self.threads)

    def _run(self, index: int) -> None:
        session = requests.Session()
        try:
            for n in range(index, JOBS, CREATORS):
                marker = str(uuid.UUID(int=random.Random(n).getrandbits(128)))
                while True:
                    self.up.wait()
                    url = self.served.url
                    try:
                        resp = session.post(
                            url + "/api/send",
                            headers=XKEY,
                            timeout=10,
                            json={
                                "event": "DELIVERY_REFUND_REQUESTED",
                                "url": self.target_url,
                                "overrides": {"deliveryId": marker},
                                "profile": "accredit-like",
                            },
                        )  # the receiver counts attempts per X-JobId
                    except requests.RequestException:
                        session = requests.Session()
                        wait_until(lambda url=url: self.up.is_set() and self.served.url != url, 60, what="restart")
                        stored = _job_with_marker(self.served.db, marker)
                        self.settled_after_kill["stored" if stored else "not stored"] += 1
                        if stored:
                            with self.lock:
                                self.accepted[stored] = marker
                            break
                        continue
                    if resp.status_code != 201:
                        raise AssertionError(f"POST /api/send answered {resp.status_code}: {resp.text[:300]}")
                    with self.lock:
                        self.accepted[resp.json()["data"]["id"]] = marker
                    break
        except Exception as exc:  # surfaced by the test
            self.errors.append(repr(exc))


def _states(db_path) -> tuple[Counter, dict[str, int]]:
    """After a kill: job counts per state and the attempt number in flight of each `delivering` job."""
    db = sqlite3.connect(db_path, timeout=30)
    try:
        counts = Counter(dict(db.execute("SELECT state, COUNT(*) FROM jobs GROUP BY state").fetchall()))
        in_flight = dict(db.execute("SELECT id, attempts_made FROM jobs WHERE state = 'delivering'").fetchall())
        return counts, in_flight
    finally:
        db.close()


@pytest.mark.slow
def test_sigkill_ten_times_loses_nothing(tmp_path, keys_dir):
    rng = random.Random(SEED)
    started = time.monotonic()
    with CountingReceiver(fail_first=2, delay=0.005) as receiver:
        served = ServeProcess(tmp_path, keys_dir, "--retry-delays", "0.3,0.3,0.3,0.3,0.3")
        creators = Creators(served, receiver.url)
        kills = []
        try:
            served.start()
            creators.up.set()
            creators.start()
            for k in range(KILLS):
                time.sleep(rng.uniform(0.3, 1.6))  # a random moment of this run's uptime
                creators.up.clear()
                served.kill()
                counts, in_flight = _states(served.db)
                kills.append(
                    {
                        "kill": k + 1,
                        "jobs": sum(counts.values()),
                        "in_flight": in_flight,
                        "unfinished": counts["pending"] + counts["delivering"],
                        "acked": len(receiver.acknowledged()),
                    }
                )
                served.start()
                creators.up.set()
            wait_until(creators.done, 120, what="all jobs created")
            assert not creators.errors, creators.errors
            wait_until(
                lambda: len(receiver.acknowledged()) >= JOBS and _states(served.db)[0]["succeeded"] >= JOBS,
                120,
                what="every job acknowledged",
            )
            served.terminate()
        finally:
            creators.up.set()
            served.stop()
        elapsed = time.monotonic() - started

        seen = receiver.snapshot()
        accepted = creators.accepted
        db = sqlite3.connect(served.db)
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        jobs = {row[0]: row[1:] for row in db.execute("SELECT id, state, attempts_made, body FROM jobs")}
        attempts: dict[str, list[int]] = {}
        for job_id, number in db.execute("SELECT job_id, number FROM attempts ORDER BY job_id, number"):
            attempts.setdefault(job_id, []).append(number)
        db.close()

    # Every job the API accepted is in the table, and nothing else is.
    assert len(accepted) == JOBS and set(jobs) == set(accepted)
    # All acknowledged by the receiver (a 2xx it sent back), and the store agrees: 0 lost.
    assert receiver.acknowledged() >= set(accepted)
    assert {state for state, _, _ in jobs.values()} == {"succeeded"}
    # Each job carried its own body to the receiver.
    assert [j for j in accepted if receiver.bodies[j] != bytes(jobs[j][2])] == []
    # No job over 6 attempts; X-JobAttempt numbers 0..n-1 without gaps, in the log and at the receiver.
    assert max(made for _, made, _ in jobs.values()) <= 6
    for job_id, (_, made, _) in jobs.items():
        assert attempts[job_id] == list(range(made)), job_id
        assert sorted({n for n, _ in seen[job_id]}) == list(range(made)), job_id
    # Duplicates: a request seen twice is an attempt that was in flight at a kill, at most once per such kill.
    in_flight_pairs = Counter((job_id, number) for k in kills for job_id, number in k["in_flight"].items())
    duplicates = Counter()
    for job_id, requests_seen in seen.items():
        for number, times in Counter(n for n, _ in requests_seen).items():
            if times > 1:
                duplicates[(job_id, number)] = times - 1
    for pair, extra in duplicates.items():
        assert extra <= in_flight_pairs[pair], (
            f"{pair} sent {extra + 1} times, in flight at {in_flight_pairs[pair]} kill(s)"
        )
    assert sum(duplicates.values()) <= sum(len(k["in_flight"]) for k in kills)
    # The ten kills fell on a busy simulator, not an idle one.
    assert sum(1 for k in kills if k["unfinished"]) >= KILLS - 2, kills
    assert elapsed < 180

    print(
        f"\n{JOBS} jobs, {KILLS} SIGKILLs, {elapsed:.1f} s: 0 lost, max attempts "
        f"{max(m for _, m, _ in jobs.values())}, attempts {sum(len(v) for v in attempts.values())}, "
        f"requests received {sum(len(v) for v in seen.values())}, duplicates {sum(duplicates.values())} "
        f"(in flight at the kills: {sum(len(k['in_flight']) for k in kills)}), "
        f"POSTs cut by a kill: {dict(creators.settled_after_kill)}"
    )
    for k in kills:
        print(
            f"  kill {k['kill']}: {k['jobs']} jobs stored, {k['unfinished']} unfinished, "
            f"{len(k['in_flight'])} in flight, {k['acked']} acknowledged"
        )
