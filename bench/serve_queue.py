"""The server's queue against its references, in one run: deliveries/s of `serve`'s QueueWorker (claim -> sign ->
POST -> record the attempt in SQLite) for HMAC and for RSA-signed events, and RSS over the runs.

    python bench/serve_queue.py [--jobs 10000] [--rsa-jobs 5000] [--threads N] [--seconds 5]

`run(...)` returns the same figures as a dict (bench/bench.py calls it). Measured, each with its reference:
  0. the receiver's own ceiling: a raw keep-alive HTTP/1.1 responder in its own process, driven by a raw-socket
     client process (16 keep-alive connections); the queue must stay far below it for the receiver not to be the limit;
  1. HMAC (AccessRC) jobs: `--jobs` jobs stored first (INSERTs, not timed), then the worker is started and timed
     until every job has succeeded; rate = jobs / (last attempt recorded - worker start). Target >= 1,000/s;
  2. RSA (Accredit BadgeExportZipFile.Created) jobs the same way (signed by the queue's signing process, which the
     first RSA job starts: its ~0.2 s start is inside the timed run), against load mode's own end-to-end RSA rate
     (`LoadRun` asked for more than it can send, its default signing processes) measured just before it.
     Target >= 0.8 x load mode;
  3. memory: RSS of this process after each run (gc'd), and the growth per 10,000 jobs over the HMAC runs.
The receiver counts what it got; the count is checked against the attempts the store recorded.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
for _path in (ROOT, ROOT / "bench"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from sink import Receiver  # noqa: E402  (bench/sink.py, beside this file)

HMAC_EVENT = "DELIVERY_CHANNEL_STATUS_UPDATED"
RSA_EVENT = "BadgeExportZipFile.Created"
QUEUE_TARGET = 1000.0
RSA_TARGET = 0.8


# -- measurements -------------------------------------------------------------------------------------
def rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def queue_rate(url: str, workdir: Path, event: str, auth, jobs: int, threads: int | None) -> dict:
    """Store `jobs` jobs (not timed), start the server's queue worker, time until all have succeeded."""
    from simulator import catalogue, delivery
    from simulator.models import FINAL_STATES, SUCCEEDED
    from simulator.services import Services

    workdir.mkdir(parents=True, exist_ok=True)
    kwargs = {} if threads is None else {"threads": threads}
    services = Services.build(workdir / "q.db", workdir.parent / "keys", api_key="bench", retry_delays=(), **kwargs)
    spec = catalogue.get_event(event)
    bodies = [catalogue.body_bytes(catalogue.generate(spec.name, seed=i)) for i in range(50)]
    store = services.store
    for i in range(jobs):
        job = delivery.new_job(spec.name, spec.platform, url, bodies[i % len(bodies)], auth, delays=(), source="api")
        store.add_job(job)
    gc.collect()
    cpu0 = time.process_time()
    start = time.perf_counter()
    services.queue.start()
    try:
        deadline = time.time() + max(120.0, jobs / 50)
        while True:
            left = sum(n for state, n in store.count_by_state().items() if state not in FINAL_STATES)
            if not left:
                break
            if time.time() > deadline:
                raise RuntimeError(f"the queue did not drain: {left} jobs left")
            time.sleep(0.02)
        wall = time.perf_counter() - start
        cpu = time.process_time() - cpu0
        signed = getattr(services.queue.signing_process, "signed", 0)  # before stop() closes the process
    finally:
        services.queue.stop(15)
    succeeded = store.count_jobs(SUCCEEDED)
    attempts = store.feed_position()[0]
    store.close()
    gc.collect()
    return {
        "jobs": jobs,
        "succeeded": succeeded,
        "attempts": attempts,
        "wall_s": wall,
        "rate": succeeded / wall,
        "cpu_us_per_job": cpu / max(1, succeeded) * 1e6,
        "threads": services.queue.threads,
        "signers": services.queue.signers,
        "signed_by_process": signed,
        "client": services.queue.client,
        "rss_mb": rss_mb(),
    }


def load_rsa_rate(url: str, keys_dir: Path, seconds: float, threads: int) -> dict:
    """Load mode's own RSA end-to-end rate, saturated (as bench/bench.py [3] measures it)."""
    from simulator import load, signing
    from simulator.auth import Auth

    keys = signing.load_keys(keys_dir)
    plan = load.LoadPlan(RSA_EVENT, url, rate=load.MAX_RATE, duration=seconds, concurrency=threads, auth=Auth("rsa"))
    result = load.LoadRun(plan, keys).run()
    return {"rate": result.achieved_rate, "sent": result.sent, "failures": result.failures, "signers": result.signers}


def run(
    jobs: int = 10_000,
    rsa_jobs: int = 5_000,
    threads: int | None = None,
    seconds: float = 5.0,
    rounds: int = 2,
    out=print,
) -> dict:
    """Measure and print; return the figures (rates per second, ratios, RSS in MB, targets met)."""
    from simulator import signing
    from simulator.auth import Auth

    workdir = Path(tempfile.mkdtemp(prefix="accessrc-serve-queue-"))
    signing.load_keys(workdir / "keys")  # created once, used by every run
    load0 = os.getloadavg()
    out(
        f"serve queue bench: {os.cpu_count()} cores, load average at start "
        + " ".join(f"{v:.2f}" for v in load0)
        + " (other work on the machine lowers every figure; each ratio is to a reference measured in this run)"
    )
    figures: dict = {"load_average_start": load0}
    with Receiver() as receiver:
        url = receiver.url + "/hook"
        ceiling = receiver.ceiling()
        figures["receiver_ceiling"] = ceiling
        out(
            f"[0] receiver ceiling: {ceiling:,.0f} requests/s (a raw-socket client process, 16 keep-alive "
            "connections, one POST at a time each, 2 s, against the asyncio responder process the queue posts to)"
        )
        hmac_runs, rsa_runs, loads, rss = [], [], [], []
        before = receiver.count()
        for r in range(rounds):
            hmac_runs.append(
                queue_rate(url, workdir / f"h{r}", HMAC_EVENT, Auth("hmac", secret="bench"), jobs, threads)
            )
            rss.append((sum(x["jobs"] for x in hmac_runs), hmac_runs[-1]["rss_mb"]))
            loads.append(load_rsa_rate(url, workdir / "keys", seconds, 2))
            rsa_runs.append(queue_rate(url, workdir / f"r{r}", RSA_EVENT, Auth("rsa"), rsa_jobs, threads))
        received = receiver.count() - before
    hmac_best = max(hmac_runs, key=lambda x: x["rate"])
    rsa_best = max(rsa_runs, key=lambda x: x["rate"])
    load_best = max(loads, key=lambda x: x["rate"])
    recorded = sum(x["attempts"] for x in hmac_runs + rsa_runs)
    sent_by_load = sum(x["sent"] for x in loads)
    ratio_hmac = hmac_best["rate"] / QUEUE_TARGET
    ratio_rsa = rsa_best["rate"] / load_best["rate"] if load_best["rate"] else 0.0
    rates = lambda runs: ", ".join(f"{x['rate']:,.0f}" for x in runs)  # noqa: E731
    out(
        f"[1] queue, HMAC events: {hmac_best['rate']:,.0f} deliveries/s (rounds: {rates(hmac_runs)}); "
        f"{hmac_best['cpu_us_per_job']:.0f} us CPU of this process per job; {hmac_best['threads']} delivery threads"
    )
    out(
        f"    = {ratio_hmac:.2f} x the 1,000/s target ({'met' if ratio_hmac >= 1 else 'NOT met'}); "
        f"{hmac_best['rate'] / ceiling:.2f} of the receiver's ceiling"
    )
    out(
        f"    how: {jobs:,} {HMAC_EVENT} jobs stored first (not timed), then the server's QueueWorker started and "
        "timed until every job succeeded (claim under a lease, sign, POST, attempt + state recorded in SQLite)"
    )
    out(
        f"[2] queue, RSA events: {rsa_best['rate']:,.0f} deliveries/s (rounds: {rates(rsa_runs)}) vs load mode's "
        f"end-to-end RSA {load_best['rate']:,.0f}/s (rounds: {rates(loads)}; {load_best['signers']} signing "
        f"process(es)) = {ratio_rsa:.2f} (target >= {RSA_TARGET}: {'met' if ratio_rsa >= RSA_TARGET else 'NOT met'})"
    )
    out(
        f"    how: {rsa_jobs:,} {RSA_EVENT} jobs the same way ({rsa_best['signers']} signing process, started by "
        f"the first RSA job, inside the timed run: it signed {rsa_best['signed_by_process']:,} of them, the delivery "
        f"threads the rest; HTTP client: {rsa_best['client']}); load mode: LoadRun, 2 workers, asked for more than "
        f"it can send for {seconds:g} s, measured just before each queue round"
    )
    growth = (rss[-1][1] - rss[0][1]) / max(1, rss[-1][0] - rss[0][0]) * 10_000 if len(rss) > 1 else float("nan")
    out(
        "[3] RSS after each HMAC round (jobs so far: MB): "
        + ", ".join(f"{n:,}: {mb:.1f}" for n, mb in rss)
        + f"; growth {growth:+.2f} MB per 10,000 jobs after the first round"
    )
    out(
        f"    check: the receiver counted {received:,} requests; the store recorded {recorded:,} attempts and load "
        f"mode sent {sent_by_load:,} ({'agree' if received == recorded + sent_by_load else 'DISAGREE'})"
    )
    load1 = os.getloadavg()
    out("load average at end: " + " ".join(f"{v:.2f}" for v in load1))
    figures.update(
        {
            "hmac_rate": hmac_best["rate"],
            "hmac_rounds": [x["rate"] for x in hmac_runs],
            "hmac_ratio_to_target": ratio_hmac,
            "rsa_rate": rsa_best["rate"],
            "load_rsa_rate": load_best["rate"],
            "rsa_ratio_to_load": ratio_rsa,
            "rss_samples": rss,
            "rss_growth_mb_per_10k": growth,
            "received": received,
            "recorded": recorded + sent_by_load,
            "hmac_met": ratio_hmac >= 1,
            "rsa_met": ratio_rsa >= RSA_TARGET,
            "load_average_end": load1,
        }
    )
    return figures


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--jobs", type=int, default=10_000, help="HMAC jobs per round")
    ap.add_argument("--rsa-jobs", type=int, default=5_000, help="RSA jobs per round")
    ap.add_argument("--threads", type=int, default=None, help="delivery threads [default: serve's default]")
    ap.add_argument("--seconds", type=float, default=5.0, help="length of each load-mode reference run")
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    run(args.jobs, args.rsa_jobs, args.threads, args.seconds, args.rounds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
