"""How late scheduled firings run inside `serve`, idle and while the queue delivers a steady flow of one-off jobs.

Run: python bench/serve_schedule_lateness.py [--subs 20] [--interval 0.5] [--seconds 15] [--rate 500]
`run(...)` returns the figures as a dict (bench/bench.py calls it).

The server's own Services (queue worker + APScheduler 3.x) on a temp database; the receiver is a raw HTTP
responder in its own process (bench/serve_queue.py), so it takes no GIL from the server. `--subs` subscriptions fire
every `--interval` s for `--seconds` s, twice: idle, then while a feeder thread enqueues `--rate` one-off jobs/s
through Services.enqueue (generate, INSERT: what POST /api/send does) and the queue delivers them.
Per firing: dispatch lateness = the moment the firing function starts minus its scheduled time (APScheduler's
scheduled_run_times); stored lateness = the moment its job row is stored minus the scheduled time. Firings
expected vs made, and those APScheduler missed or skipped (misfire, "maximum number of running instances").
Targets: dispatch p99 < 20 ms idle, < 50 ms with the queue delivering 500/s; 0 missed or skipped.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
for path in (HERE, HERE.parent):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

IDLE_TARGET_MS = 20.0
BUSY_TARGET_MS = 50.0
EVENT = "DELIVERY_CHANNEL_STATUS_UPDATED"


def percentiles(values: list[float]) -> tuple[float, float, float]:
    values = sorted(values)
    if not values:
        return (float("nan"),) * 3
    pick = lambda p: values[min(len(values) - 1, max(0, round(p / 100 * len(values)) - 1))]  # noqa: E731
    return pick(50), pick(99), values[-1]


def lateness(url: str, workdir: Path, subs: int, interval: float, seconds: float, rate: float) -> dict:
    """One measurement: `subs` interval subscriptions for `seconds` s; a feeder at `rate` jobs/s (0: idle)."""
    from apscheduler.events import EVENT_JOB_MAX_INSTANCES, EVENT_JOB_MISSED, EVENT_JOB_SUBMITTED

    from simulator.auth import Auth
    from simulator.models import SUCCEEDED
    from simulator.scheduler import Schedule
    from simulator.services import Services
    from simulator.subscriptions import Subscription

    services = Services.build(workdir / "s.db", workdir.parent / "keys", api_key="bench", retry_delays=(), timeout=10)
    lock = threading.Lock()
    due: dict[str, list[float]] = {}
    started: dict[str, list[float]] = {}
    stored: dict[str, list[float]] = {}
    skipped = {"missed": 0, "max_instances": 0}

    def listener(event):
        with lock:
            if event.code == EVENT_JOB_MISSED:
                skipped["missed"] += 1
            elif event.code == EVENT_JOB_MAX_INSTANCES:
                skipped["max_instances"] += 1
            else:
                due.setdefault(event.job_id, []).extend(t.timestamp() for t in event.scheduled_run_times)

    fire = services.scheduler.fire

    def timed_fire(sub_id, *args):
        begun = time.time()
        result = fire(sub_id, *args)
        with lock:
            started.setdefault(sub_id, []).append(begun)
            stored.setdefault(sub_id, []).append(time.time())
        return result

    services.scheduler.fire = timed_fire
    services.scheduler._scheduler.add_listener(
        listener, EVENT_JOB_SUBMITTED | EVENT_JOB_MISSED | EVENT_JOB_MAX_INSTANCES
    )
    auth = Auth("hmac", secret="bench")
    for i in range(subs):
        services.subscriptions.add(
            Subscription("accessrc", EVENT, f"{url}/s{i}", auth, schedule=Schedule("interval", seconds=interval))
        )
    stop = threading.Event()
    fed = [0]

    def feeder():  # `rate` jobs/s in ticks of 10 ms, as API sends would arrive
        t0 = time.perf_counter()
        while not stop.is_set():
            target = int((time.perf_counter() - t0) * rate)
            while fed[0] < target:
                services.enqueue(EVENT, url + "/flood", auth, source="api")
                fed[0] += 1
            stop.wait(0.01)

    services.start()
    delivered0 = services.store.count_jobs(SUCCEEDED)
    t_start = time.time()
    cpu0 = time.process_time()
    flood = threading.Thread(target=feeder, daemon=True) if rate > 0 else None
    if flood:
        flood.start()
    time.sleep(seconds)
    stop.set()
    if flood:
        flood.join()
    elapsed = time.time() - t_start
    cpu = time.process_time() - cpu0
    delivered = services.store.count_jobs(SUCCEEDED) - delivered0
    services.stop(15)
    services.store.close()
    dispatch, done = [], []
    for sub_id, times in started.items():
        for begun, end, at in zip(times, stored[sub_id], due.get(sub_id, []), strict=False):
            dispatch.append((begun - at) * 1000)
            done.append((end - at) * 1000)
    d50, d99, dmax = percentiles(dispatch)
    s50, s99, smax = percentiles(done)
    return {
        "firings": len(dispatch),
        "expected": int(subs * seconds / interval),
        "missed": skipped["missed"],
        "max_instances": skipped["max_instances"],
        "dispatch_p50_ms": d50,
        "dispatch_p99_ms": d99,
        "dispatch_max_ms": dmax,
        "stored_p50_ms": s50,
        "stored_p99_ms": s99,
        "stored_max_ms": smax,
        "fed": fed[0],
        "delivered_per_s": delivered / elapsed,
        "cpu_share": cpu / elapsed,
    }


def run(subs: int = 20, interval: float = 0.5, seconds: float = 15.0, rate: float = 500.0, out=print) -> dict:
    """Idle, then busy (the queue delivering `rate`/s): print and return both measurements."""
    from sink import Receiver

    from simulator import signing

    workdir = Path(tempfile.mkdtemp(prefix="accessrc-sched-"))
    signing.load_keys(workdir / "keys")
    out(
        f"schedule lateness bench: {os.cpu_count()} cores, load average at start "
        + " ".join(f"{v:.2f}" for v in os.getloadavg())
    )
    with Receiver() as receiver:
        idle = lateness(receiver.url, workdir / "idle", subs, interval, seconds, 0)
        busy = lateness(receiver.url, workdir / "busy", subs, interval, seconds, rate)
    figures = {"idle": idle, "busy": busy, "load_average_end": os.getloadavg()}
    for name, r, target in (("idle", idle, IDLE_TARGET_MS), ("busy", busy, BUSY_TARGET_MS)):
        skipped = r["missed"] + r["max_instances"]
        met = r["dispatch_p99_ms"] < target and skipped == 0
        figures[f"{name}_met"] = met
        extra = (
            f"; the queue delivered {r['delivered_per_s']:.0f} jobs/s ({r['fed']:,} fed at {rate:g}/s)"
            if name == "busy"
            else ""
        )
        out(
            f"[{name}] {r['firings']} firings of ~{r['expected']} expected, {r['missed']} missed, "
            f"{r['max_instances']} skipped (max instances){extra}; process CPU {r['cpu_share']:.0%} of a core"
        )
        out(
            f"    dispatch lateness p50 {r['dispatch_p50_ms']:.1f} ms, p99 {r['dispatch_p99_ms']:.1f} ms "
            f"(= {r['dispatch_p99_ms'] / target:.2f} x the {target:g} ms target: {'met' if met else 'NOT met'}), "
            f"max {r['dispatch_max_ms']:.1f} ms; job stored p50 {r['stored_p50_ms']:.1f} ms, "
            f"p99 {r['stored_p99_ms']:.1f} ms, max {r['stored_max_ms']:.1f} ms"
        )
    out(
        f"    how: {subs} subscriptions every {interval:g} s for {seconds:g} s through the server's Services; "
        "dispatch = firing function started minus scheduled time; stored = its job row INSERTed minus scheduled time"
    )
    out("load average at end: " + " ".join(f"{v:.2f}" for v in figures["load_average_end"]))
    return figures


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--subs", type=int, default=20)
    ap.add_argument("--interval", type=float, default=0.5)
    ap.add_argument("--seconds", type=float, default=15.0)
    ap.add_argument("--rate", type=float, default=500.0, help="one-off jobs/s fed to the queue in the busy run")
    args = ap.parse_args()
    run(args.subs, args.interval, args.seconds, args.rate)


if __name__ == "__main__":
    main()
