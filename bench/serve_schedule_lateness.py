"""How late scheduled firings run inside `serve` while the queue delivers a flood of one-off sends.

Run: python bench/serve_schedule_lateness.py [--subs 20] [--interval 1] [--seconds 20] [--flood 400]
Starts the app (queue worker + APScheduler) on a temp database and a waitress receiver on 127.0.0.1, schedules
`--subs` subscriptions every `--interval` s, and meanwhile keeps `--flood` jobs queued through POST /api/send.
Prints firings expected vs made, and p50/p99/max lateness (run time minus scheduled time), plus jobs delivered/s.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from pathlib import Path

from apscheduler.events import EVENT_JOB_EXECUTED, EVENT_JOB_SUBMITTED
from flask import Flask
from waitress.server import create_server

from simulator.app import create_app


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--subs", type=int, default=20)
    ap.add_argument("--interval", type=float, default=1.0)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--flood", type=int, default=400, help="one-off sends kept in the queue")
    args = ap.parse_args()

    sink = Flask("sink")
    sink.add_url_rule("/h", "h", lambda: ("", 200), methods=["POST"])
    receiver = create_server(sink, host="127.0.0.1", port=0, threads=8)
    threading.Thread(target=receiver.run, daemon=True).start()
    target = f"http://127.0.0.1:{receiver.effective_port}/h"

    tmp = Path(tempfile.mkdtemp())
    app = create_app(
        {"DB_PATH": str(tmp / "b.db"), "KEYS_DIR": str(tmp / "keys"), "API_KEY": "k", "RETRY_DELAYS": (0, 0, 0, 0, 0)}
    )
    services = app.extensions["accessrc_sim"]
    submitted: list[float] = []  # dispatch lateness: submitted to the executor minus scheduled time
    lateness: list[float] = []  # firing done (job row stored) minus scheduled time
    services.scheduler._scheduler.add_listener(
        lambda ev: submitted.extend(time.time() - t.timestamp() for t in ev.scheduled_run_times), EVENT_JOB_SUBMITTED
    )
    services.scheduler._scheduler.add_listener(
        lambda ev: lateness.append(time.time() - ev.scheduled_run_time.timestamp()), EVENT_JOB_EXECUTED
    )
    client = app.test_client()
    headers = {"x-api-key": "k"}
    for _ in range(args.subs):
        client.post(
            "/api/subscriptions",
            headers=headers,
            json={
                "event": "DELIVERY_CHANNEL_STATUS_UPDATED",
                "url": target,
                "schedule": {"interval_seconds": args.interval},
            },
        )
    started = time.time()
    sent = 0
    while time.time() - started < args.seconds:
        backlog = services.store.count_jobs("pending")
        for _ in range(max(0, args.flood - backlog) // 10):
            client.post("/api/send", headers=headers, json={"event": "DELIVERY_REQUEST_SENT", "url": target})
            sent += 1
        time.sleep(0.05)
    services.stop(10)
    elapsed = time.time() - started
    delivered = services.store.count_jobs("succeeded")
    expected = int(args.subs * args.seconds / args.interval)
    print(f"scheduled firings: {len(lateness)} of ~{expected} expected; one-off sends queued: {sent}")
    for name, values in (("dispatch", submitted), ("firing stored", lateness)):
        lat = sorted(values)
        if lat:
            p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))]
            print(
                f"{name} lateness: p50 {statistics.median(lat) * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms, "
                f"max {lat[-1] * 1000:.1f} ms"
            )
    print(f"jobs delivered: {delivered} in {elapsed:.1f} s ({delivered / elapsed:.0f}/s)")
    receiver.close()


if __name__ == "__main__":
    main()
