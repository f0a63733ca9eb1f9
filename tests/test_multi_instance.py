"""Several servers on one PostgreSQL database (issue 16): three real `accessrc-sim serve` processes share a new
database of a real PostgreSQL server; 2,000 jobs (AccessRC HMAC and Accredit RSA, each signature verified by the
receiver) are created through two of them while all three deliver; one is SIGKILLed mid-delivery and restarted.
Afterwards: 0 jobs lost, every job final, X-JobAttempt numbers gap-free, no (job, attempt) received twice unless it
was in flight at the kill (the killed server's jobs move to another only once its lease runs out); a schedule that
every server runs fired once per due time."""

from __future__ import annotations

import threading
import time
from collections import Counter

import psycopg
import pytest
import requests
from reliability_helpers import XKEY, CountingReceiver, ServeProcess, wait_until

from simulator import signing

JOBS = 2000
INTERVAL = 0.5  # the schedule every server runs
SECRET = "multi-instance-secret"


def _verifier(public_pem: str):
    def verify(path: str, headers, body: bytes) -> bool:
        try:
            if path.endswith("/arc"):
                signing.hmac_verify(SECRET, body, headers.get("x-signature"))
            else:
                signing.rsa_verify(public_pem, body, headers.get("X-Signature"))
        except signing.VerificationError:
            return False
        return True

    return verify


def _post_jobs(servers, target: str, count: int, offset: int, accepted: list, errors: list) -> None:
    session = requests.Session()
    for n in range(offset, offset + count):
        served = servers[n % len(servers)]
        if n % 2:
            body = {"event": "DELIVERY_REFUND_REQUESTED", "url": target + "/arc", "profile": "accredit-like"}
            body["auth"] = {"type": "hmac", "secret": SECRET}
        else:
            body = {"event": "BadgeExportZipFile.Created", "url": target + "/acc"}
        resp = session.post(served.url + "/api/send", headers=XKEY, json=body, timeout=30)
        if resp.status_code != 201:
            errors.append(f"{resp.status_code}: {resp.text[:200]}")
            return
        accepted.append(resp.json()["data"]["id"])


@pytest.mark.slow
def test_three_servers_one_killed_lose_nothing_and_send_nothing_twice(tmp_path, keys_dir, pg_url):
    keys = signing.load_keys(keys_dir)
    with CountingReceiver(fail_first=1, delay=0.002, verify=_verifier(keys.public_pem)) as receiver:
        servers = []
        for i in range(3):
            (tmp_path / f"s{i}").mkdir()
            served = ServeProcess(tmp_path / f"s{i}", keys_dir, "--retry-delays", "0.2,0.2,0.2,0.2,0.2")
            served.db = pg_url
            servers.append(served)
        try:
            for served in servers:
                served.start(60)
            sub = requests.post(
                servers[0].url + "/api/subscriptions",
                headers=XKEY,
                json={
                    "event": "DELIVERY_REFUND_REQUESTED",
                    "url": receiver.url + "/arc",
                    "auth": {"type": "hmac", "secret": SECRET},
                    "profile": "accredit-like",
                    "schedule": {"interval_seconds": INTERVAL},
                },
                timeout=10,
            )
            assert sub.status_code == 201, sub.text
            sub_id = sub.json()["data"]["id"]
            scheduled_from = time.time()

            accepted: list[str] = []
            errors: list[str] = []
            creators = [
                threading.Thread(
                    target=_post_jobs,
                    args=([servers[0], servers[2]], receiver.url, JOBS // 4, k * JOBS // 4, accepted, errors),
                )
                for k in range(4)
            ]
            for t in creators:
                t.start()
            wait_until(lambda: len(receiver.acknowledged()) >= JOBS // 3, 120, what="a third acknowledged")
            victim = servers[1]
            victim.kill()  # SIGKILL: its claims stay in the database, under its lease
            with psycopg.connect(pg_url) as db:
                in_flight = dict(
                    db.execute(
                        "SELECT id, attempts_made FROM jobs WHERE state = 'delivering' AND owner LIKE %s",
                        (f"%:{victim.proc.pid}:%",),
                    ).fetchall()
                )
            victim.start(60)
            for t in creators:
                t.join(300)
            assert errors == [] and len(accepted) == JOBS

            def finished():
                with psycopg.connect(pg_url) as db:
                    open_jobs = db.execute("SELECT COUNT(*) FROM jobs WHERE state IN ('pending', 'delivering')")
                    return open_jobs.fetchone()[0] == 0 and set(accepted) <= receiver.acknowledged()

            wait_until(finished, 180, what="every job final and acknowledged")
            requests.patch(
                servers[0].url + f"/api/subscriptions/{sub_id}", headers=XKEY, json={"paused": True}, timeout=10
            ).raise_for_status()
            scheduled_until = time.time()
            time.sleep(1.5)  # every server has read the pause (SCHEDULE_SYNC = 1 s)
            wait_until(finished, 60, what="the last scheduled jobs final")
        finally:
            for served in servers:
                served.stop()

        with psycopg.connect(pg_url) as db:
            jobs = {r[0]: (r[1], r[2]) for r in db.execute("SELECT id, state, attempts_made FROM jobs").fetchall()}
            attempts: dict[str, list[int]] = {}
            for job_id, number in db.execute("SELECT job_id, number FROM attempts ORDER BY job_id, number"):
                attempts.setdefault(job_id, []).append(number)
            scheduled = [
                r[0]
                for r in db.execute(
                    "SELECT created_at FROM jobs WHERE subscription_id = %s ORDER BY created_at", (sub_id,)
                ).fetchall()
            ]
            firings = db.execute("SELECT COUNT(*) FROM firings WHERE subscription_id = %s", (sub_id,)).fetchone()[0]
        seen = receiver.snapshot()

    assert receiver.bad_signatures == 0
    # 0 lost: every accepted job is stored, final, and acknowledged by the receiver
    assert set(accepted) <= set(jobs) and {state for state, _ in jobs.values()} == {"succeeded"}
    assert set(jobs) <= receiver.acknowledged()
    # X-JobAttempt gap-free, in the log and at the receiver
    for job_id, (_, made) in jobs.items():
        assert attempts[job_id] == list(range(made)), job_id
        assert sorted({n for n, _ in seen[job_id]}) == list(range(made)), job_id
    # A request received twice is an attempt that was in flight at the kill
    duplicates = {
        (job_id, number): times - 1
        for job_id, got in seen.items()
        for number, times in Counter(n for n, _ in got).items()
        if times > 1
    }
    assert all((job_id, number) in in_flight.items() for job_id, number in duplicates), (duplicates, in_flight)
    assert sum(duplicates.values()) <= len(in_flight)
    # The schedule fired once per due time: one job per firing taken, spaced by the interval, about as many as
    # the time it ran allows (not three times as many)
    # (a firing taken in the moment the pause landed makes no job: at most one such)
    assert 0 <= firings - len(scheduled) <= 1
    assert all(b - a > INTERVAL / 2 for a, b in zip(scheduled, scheduled[1:], strict=False)), scheduled
    expected = (scheduled_until - scheduled_from) / INTERVAL
    assert expected * 0.5 <= len(scheduled) <= expected + 4, (len(scheduled), expected)
    print(
        f"\n{JOBS} jobs on 3 servers, one SIGKILLed with {len(in_flight)} in flight: 0 lost, "
        f"{sum(len(v) for v in attempts.values())} attempts, {sum(duplicates.values())} sent twice, "
        f"{len(scheduled)} scheduled firings over {scheduled_until - scheduled_from:.1f} s"
    )
