"""accessrc-sim benchmark: end-to-end signed deliveries against the ceilings they are made of, in one run.

    python bench/bench.py [--seconds 5] [--threads 2] [--long-jobs 20000]

Measures, each printed with how it was measured:
  1. RSA-2048 PKCS#1 v1.5 signatures/s alone (the Accredit X-Signature, `signing.rsa_sign`);
  2. plain POSTs/s alone with the same HTTP stack (`delivery.post` on a requests Session) to a loopback receiver,
     the best of 1 and N threads (the stack's ceiling, whichever thread count gives it);
  3. end-to-end signed deliveries/s: load mode's own path (fresh payload → sign → POST), saturated, with its
     default signing (a signing process on a machine with 2+ cores); its ratio to min(1, 2) — target ≥ 0.8;
     and, for comparison, the same with the worker threads signing (`--signers 0`) and with HMAC events;
  4. scheduler lateness p50/p99 of interval firings (APScheduler 3.x through the server's own Services),
     idle and while load mode runs in the same process;
  5. memory (RSS) growth over a long run of the server's queue: jobs stored in SQLite and delivered.
The receiver is a minimal asyncio HTTP/1.1 server in its own process, so it takes little CPU and no GIL from the
sender; it counts what it got, and the count is checked against what the sender says it sent.
Only loopback traffic; every loop is bounded in time or count.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

RESPONSE = b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 20\r\n\r\n{"status":"success"}'


# -- the receiver (child process) --------------------------------------------------------------------
def serve_receiver() -> None:
    """Minimal keep-alive HTTP/1.1 sink on 127.0.0.1: 200 to every request; GET /count tells how many came."""
    received = 0

    class Sink(asyncio.Protocol):
        def connection_made(self, transport):
            self.transport, self.buffer = transport, b""

        def data_received(self, data):
            nonlocal received
            self.buffer += data
            while True:
                end = self.buffer.find(b"\r\n\r\n")
                if end < 0:
                    return
                head = self.buffer[:end].decode("latin-1")
                length = 0
                for line in head.split("\r\n")[1:]:
                    name, _, value = line.partition(":")
                    if name.strip().lower() == "content-length":
                        length = int(value)
                if len(self.buffer) < end + 4 + length:
                    return
                self.buffer = self.buffer[end + 4 + length :]
                if head.startswith("GET /count"):
                    text = str(received).encode()
                    self.transport.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(text), text))
                else:
                    received += 1
                    self.transport.write(RESPONSE)

    async def main():
        server = await asyncio.get_running_loop().create_server(Sink, "127.0.0.1", 0)
        print(server.sockets[0].getsockname()[1], flush=True)
        await server.serve_forever()

    asyncio.run(main())


class Receiver:
    def __enter__(self):
        self.proc = subprocess.Popen([sys.executable, __file__, "--serve-receiver"], stdout=subprocess.PIPE, text=True)
        self.url = f"http://127.0.0.1:{int(self.proc.stdout.readline())}"
        return self

    def count(self) -> int:
        with urllib.request.urlopen(self.url + "/count", timeout=5) as resp:
            return int(resp.read())

    def __exit__(self, *exc):
        self.proc.terminate()
        self.proc.wait(5)


# -- measurements -------------------------------------------------------------------------------------
def run_threads(threads: int, seconds: float, work) -> tuple[int, float]:
    """Run `work(deadline) -> count` in `threads` threads at once; total count and wall time."""
    counts = [0] * threads
    start = time.perf_counter()
    deadline = start + seconds

    def body(i):
        counts[i] = work(deadline)

    pool = [threading.Thread(target=body, args=(i,)) for i in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return sum(counts), time.perf_counter() - start


def sign_rate(keys, body: bytes, threads: int, seconds: float) -> float:
    from simulator import signing

    def work(deadline):
        n = 0
        while time.perf_counter() < deadline:
            for _ in range(20):
                signing.rsa_sign(keys.private_key, body)
            n += 20
        return n

    count, wall = run_threads(threads, seconds, work)
    return count / wall


def post_rate(url: str, body: bytes, headers: dict, threads: int, seconds: float) -> tuple[float, int]:
    import requests

    from simulator import delivery

    failures = [0]

    def work(deadline):
        session = requests.Session()
        session.trust_env = False
        n = 0
        while time.perf_counter() < deadline:
            resp = delivery.post(session, url, body, headers, 10.0)
            if resp.status != 200:
                failures[0] += 1
            n += 1
        session.close()
        return n

    count, wall = run_threads(threads, seconds, work)
    return count / wall, failures[0]


def e2e_rate(event: str, url: str, auth, keys, threads: int, seconds: float, signers: int | None = None):
    """Load mode saturated: asked for far more than it can send, it sends as fast as it can for `seconds`.
    Its signing processes (if any) start before its clock does, as in `accessrc-sim load`."""
    from simulator import load

    plan = load.LoadPlan(
        event, url, rate=load.MAX_RATE, duration=seconds, concurrency=threads, auth=auth, signers=signers
    )
    result = load.LoadRun(plan, keys).run()
    return result


def percentiles(values: list[float]) -> tuple[float, float, float]:
    values = sorted(values)
    if not values:
        return (float("nan"),) * 3
    pick = lambda p: values[min(len(values) - 1, max(0, round(p / 100 * len(values)) - 1))]  # noqa: E731
    return pick(50), pick(99), values[-1]


def scheduler_lateness(url: str, workdir: Path, seconds: float, subs: int, interval: float, background=None) -> dict:
    """Interval firings of the server's Scheduler (APScheduler 3.x): actual start of each firing minus its
    scheduled time. Each firing does what it does in `serve`: generate a payload, INSERT a job; the queue
    worker delivers it to the receiver."""
    from apscheduler.events import EVENT_JOB_MISSED, EVENT_JOB_SUBMITTED

    from simulator.auth import Auth
    from simulator.scheduler import Schedule
    from simulator.services import Services
    from simulator.subscriptions import Subscription

    services = Services.build(workdir / "sched.db", workdir / "keys", api_key="bench-key", retry_delays=(), timeout=10)
    scheduled: dict[str, list[float]] = {}
    fired: dict[str, list[float]] = {}
    missed = [0]
    lock = threading.Lock()

    def listener(event):
        with lock:
            if event.code == EVENT_JOB_MISSED:
                missed[0] += 1
            else:
                scheduled.setdefault(event.job_id, []).extend(t.timestamp() for t in event.scheduled_run_times)

    original = services.scheduler.fire

    def timed_fire(sub_id):
        with lock:
            fired.setdefault(sub_id, []).append(time.time())
        return original(sub_id)

    services.scheduler.fire = timed_fire
    services.scheduler._scheduler.add_listener(listener, EVENT_JOB_SUBMITTED | EVENT_JOB_MISSED)
    for i in range(subs):
        services.subscriptions.add(
            Subscription(
                "accessrc",
                "DELIVERY_CHANNEL_STATUS_UPDATED",
                url + f"/s{i}",
                Auth("hmac", secret="bench-secret"),
                schedule=Schedule("interval", seconds=interval),
            )
        )
    services.start()
    bg_result = None
    try:
        if background is not None:
            bg_result = background(seconds)
        else:
            time.sleep(seconds)
    finally:
        services.stop(timeout=15)
        services.store.close()
    late = []
    for sub_id, times in fired.items():
        for actual, due in zip(times, scheduled.get(sub_id, []), strict=False):  # a firing may be missed
            late.append((actual - due) * 1000)
    p50, p99, worst = percentiles(late)
    expected = subs * seconds / interval
    return {
        "firings": len(late),
        "expected": expected,
        "missed": missed[0],
        "p50_ms": p50,
        "p99_ms": p99,
        "max_ms": worst,
        "background": bg_result,
    }


def rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def memory_growth(url: str, workdir: Path, jobs: int, batch: int = 1000) -> dict:
    """The server's queue over a long run: enqueue `batch` jobs, wait until all are delivered, sample RSS."""
    import gc

    from simulator.auth import Auth
    from simulator.models import FINAL_STATES
    from simulator.services import Services

    services = Services.build(workdir / "mem.db", workdir / "keys", api_key="bench-key", retry_delays=(), timeout=10)
    services.start()
    samples = []
    start = time.perf_counter()
    try:
        done = 0
        while done < jobs:
            n = min(batch, jobs - done)
            for _ in range(n):
                services.enqueue("DELIVERY_CHANNEL_STATUS_UPDATED", url + "/mem", Auth("hmac", secret="bench"))
            done += n
            deadline = time.time() + 120
            while sum(n for state, n in services.store.count_by_state().items() if state not in FINAL_STATES):
                if time.time() > deadline:
                    raise RuntimeError("queue did not drain within 120 s")
                time.sleep(0.05)
            gc.collect()
            samples.append((done, rss_mb()))
        delivered = services.store.count_jobs("succeeded")
    finally:
        services.stop(timeout=15)
        services.store.close()
    wall = time.perf_counter() - start
    warm = samples[min(2, len(samples) - 1)]
    end = samples[-1]
    per_10k = (end[1] - warm[1]) / max(1, end[0] - warm[0]) * 10_000
    return {
        "jobs": jobs,
        "delivered": delivered,
        "wall_s": wall,
        "samples": samples,
        "warm": warm,
        "end": end,
        "growth_mb_per_10k": per_10k,
    }


# -- the run ------------------------------------------------------------------------------------------
def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="length of each rate measurement")
    parser.add_argument("--threads", type=int, default=2, help="sender threads, the same in every measurement")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds of the three rate measurements")
    parser.add_argument("--event", default="BadgeExportZipFile.Created", help="Accredit (RSA-signed) event")
    parser.add_argument("--sched-seconds", type=float, default=15.0)
    parser.add_argument("--long-jobs", type=int, default=20_000, help="jobs in the memory run")
    parser.add_argument("--parts", default="rates,scheduler,memory", help="comma-separated subset to run")
    parser.add_argument("--serve-receiver", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    parts = set(args.parts.split(","))
    summary = []
    if args.serve_receiver:
        serve_receiver()
        return 0

    from simulator import catalogue, delivery, signing
    from simulator.auth import Auth
    from simulator.load import MAX_RATE, SWITCH_INTERVAL, LoadPlan, LoadRun

    workdir = Path(tempfile.mkdtemp(prefix="accessrc-bench-"))
    keys = signing.load_keys(workdir / "keys")
    spec = catalogue.get_event(args.event)
    auth = Auth("rsa")
    body = catalogue.body_bytes(catalogue.generate(spec.name, seed=1))
    job = delivery.new_job(spec.name, spec.platform, "http://127.0.0.1/", body, auth, delays=())
    headers = delivery.request_headers(job, 0, keys)
    t, s = args.threads, args.seconds
    sys.setswitchinterval(SWITCH_INTERVAL)  # what load mode runs with; the same for every measurement here
    print(
        f"accessrc-sim bench: Python {platform.python_version()}, {os.cpu_count()} cores, "
        f"{t} sender thread(s), {s:g} s per rate; event {spec.name} ({len(body)} B body); "
        f"GIL switch interval {SWITCH_INTERVAL * 1000:g} ms (as in load mode)"
    )
    print(
        "load average at start: "
        + " ".join(f"{v:.2f}" for v in os.getloadavg())
        + " (other work on the machine lowers every figure; the ratio is measured in one run to cancel some of it)"
    )

    with Receiver() as receiver:
        url = receiver.url + "/hook"
        post_rate(url, body, headers, 1, 0.5)  # warm-up: connections, imports
        sign_rate(keys, body, 1, 0.3)

        if "rates" in parts:
            signs, posts, e2es, inline, hmacs, checks = [], [], [], [], [], []
            post_threads = sorted({1, t})
            best_threads = []  # the thread count that gave each round's POST ceiling
            signers_used = set()
            cpu = {"sign": [], "post": [], "e2e": []}  # CPU seconds of this process per operation
            for _ in range(args.rounds):  # interleaved, so a busy moment on the machine hits all three alike
                c0 = time.process_time()
                signs.append(sign_rate(keys, body, t, s))
                cpu["sign"].append((time.process_time() - c0) / (signs[-1] * s))
                round_posts = {}
                for n in post_threads:
                    before = receiver.count()
                    c0 = time.process_time()
                    rate, failures = post_rate(url, body, headers, n, s)
                    round_posts[n] = (rate, (time.process_time() - c0) / (rate * s))
                    checks.append((f"POST ({n} thread{'s' if n > 1 else ''})", failures, receiver.count() - before))
                n = max(round_posts, key=lambda k: round_posts[k][0])
                posts.append(round_posts[n][0])
                cpu["post"].append(round_posts[n][1])
                best_threads.append(n)
                before = receiver.count()
                c0 = time.process_time()
                result = e2e_rate(spec.name, url, auth, keys, t, s)
                cpu["e2e"].append((time.process_time() - c0) / max(1, result.sent))
                e2es.append(result.achieved_rate)
                signers_used.add(result.signers)
                checks.append(("end-to-end", result.failures, receiver.count() - before, result.sent))
                before = receiver.count()
                threads_result = e2e_rate(spec.name, url, auth, keys, t, s, signers=0)
                inline.append(threads_result.achieved_rate)
                checks.append(
                    (
                        "end-to-end, threads signing",
                        threads_result.failures,
                        receiver.count() - before,
                        threads_result.sent,
                    )
                )
                before = receiver.count()
                hmac_result = e2e_rate(
                    "DELIVERY_CHANNEL_STATUS_UPDATED", url, Auth("hmac", secret="bench-secret"), None, t, s
                )
                hmacs.append(hmac_result.achieved_rate)
                checks.append(("end-to-end HMAC", hmac_result.failures, receiver.count() - before, hmac_result.sent))
            sign, post, e2e = max(signs), max(posts), max(e2es)
            rounds = lambda values: ", ".join(f"{v:,.0f}" for v in values)  # noqa: E731
            print(f"\n[1] RSA signatures/s alone: {sign:,.0f}/s (rounds: {rounds(signs)})")
            print(
                f"    how: {t} thread(s) call signing.rsa_sign(private key, the {len(body)} B body) in a loop for "
                f"{s:g} s; count / wall time"
            )
            print(
                f"[2] plain POSTs/s alone: {post:,.0f}/s (rounds: {rounds(posts)}; threads giving each: "
                f"{', '.join(map(str, best_threads))})"
            )
            print(
                f"    how: {' and '.join(map(str, post_threads))} thread(s) in turn, one requests.Session each, "
                f"delivery.post(the same pre-signed body and headers) to the loopback receiver process for {s:g} s; "
                "each round keeps the better"
            )
            used = ", ".join(map(str, sorted(signers_used)))
            print(f"[3] end-to-end signed deliveries/s: {e2e:,.0f}/s (rounds: {rounds(e2es)})")
            print(
                f"    how: load mode's LoadRun with {t} worker(s) asked for {MAX_RATE:g}/s for {s:g} s: each request a "
                f"fresh {spec.name} payload (pooled Faker), its own X-JobId, RSA-signed, delivery.post; events "
                f"built and signed in {used} signing process(es) (its default here); rate = requests started / "
                "time between the first and the last start"
            )
            print(
                f"[3a] the same with the worker threads signing (--signers 0): {max(inline):,.0f}/s (rounds: "
                f"{rounds(inline)}) = {max(inline) / min(sign, post):.2f} of min(sign, POST): the GIL hand-offs "
                "that signing processes avoid"
            )
            hmac_rate = max(hmacs)
            print(
                f"[3b] the same pipeline with an AccessRC HMAC-signed event: {hmac_rate:,.0f}/s (rounds: "
                f"{rounds(hmacs)}) = {hmac_rate / post:.2f} of the POST rate: what generation, headers and "
                "bookkeeping cost without RSA"
            )
            for check in checks:
                if check[0].startswith("POST"):
                    print(
                        f"    check: {check[0]} round had {check[1]} non-200 answers; the receiver counted {check[2]:,}"
                    )
                else:
                    print(
                        f"    check: {check[0]} round sent {check[3]:,} ({check[1]} failed); the receiver "
                        f"counted {check[2]:,}"
                    )
            ceiling = min(sign, post)
            ratio = e2e / ceiling
            print(
                f"    each figure is the best of {args.rounds} interleaved rounds; "
                f"ratio end-to-end / min(sign, POST) = "
                f"{e2e:,.0f} / {ceiling:,.0f} = {ratio:.2f}  (target >= 0.80: {'met' if ratio >= 0.8 else 'NOT met'})"
            )
            med = {k: statistics.median(v) * 1e6 for k, v in cpu.items()}
            print(
                f"    CPU of this process per operation (median): sign {med['sign']:.0f} us, "
                f"POST {med['post']:.0f} us, "
                f"end-to-end {med['e2e']:.0f} us (the signing process's CPU not included): the posting process "
                "does little more than POST; the signing process needs a core of its own beside it"
            )

            summary.append(
                f"sign {sign:,.0f}/s, POST {post:,.0f}/s, end-to-end {e2e:,.0f}/s, ratio {ratio:.2f} "
                f"(threads signing {max(inline):,.0f}/s = {max(inline) / ceiling:.2f}; HMAC end-to-end "
                f"{hmac_rate:,.0f}/s)"
            )

        if "scheduler" in parts:
            print("\n[4] scheduler lateness (APScheduler 3.x interval firings through the server's Services)")
            idle = scheduler_lateness(receiver.url, workdir / "idle", args.sched_seconds, subs=20, interval=0.5)
            print(
                f"    idle process: {idle['firings']} firings of ~{idle['expected']:.0f} expected, "
                f"{idle['missed']} missed; lateness p50 {idle['p50_ms']:.1f} ms, p99 {idle['p99_ms']:.1f} ms, "
                f"max {idle['max_ms']:.1f} ms"
            )

            def busy(seconds):
                plan = LoadPlan(
                    "DELIVERY_CHANNEL_STATUS_UPDATED",
                    url,
                    rate=300,
                    duration=seconds,
                    concurrency=2,
                    auth=Auth("hmac", secret="bench"),
                )
                r = LoadRun(plan, None).run()
                return f"load mode beside it: {r.sent} sent at {r.achieved_rate:.0f}/s"

            loaded = scheduler_lateness(
                receiver.url, workdir / "busy", args.sched_seconds, subs=20, interval=0.5, background=busy
            )
            print(
                f"    busy process ({loaded['background']}): {loaded['firings']} firings of "
                f"~{loaded['expected']:.0f} expected, {loaded['missed']} missed; "
                f"lateness p50 {loaded['p50_ms']:.1f} ms,"
                f" p99 {loaded['p99_ms']:.1f} ms, max {loaded['max_ms']:.1f} ms"
            )
            print(
                f"    how: 20 subscriptions firing every 0.5 s for {args.sched_seconds:g} s; each firing generates a "
                "payload and INSERTs a job that the queue worker delivers; lateness = time the firing started minus "
                "its scheduled time (APScheduler's scheduled_run_times)"
            )

            summary.append(f"scheduler p99 {idle['p99_ms']:.1f} ms idle / {loaded['p99_ms']:.1f} ms busy")

        if "memory" in parts:
            print(f"\n[5] memory over a long run: {args.long_jobs:,} jobs through the server's queue")
            mem = memory_growth(receiver.url, workdir / "mem", args.long_jobs)
            print(
                f"    RSS {mem['warm'][1]:.1f} MB after {mem['warm'][0]:,} jobs -> {mem['end'][1]:.1f} MB after "
                f"{mem['end'][0]:,}: {mem['growth_mb_per_10k']:+.2f} MB per 10,000 jobs "
                f"({mem['delivered']:,} delivered in {mem['wall_s']:.0f} s, "
                f"{mem['delivered'] / mem['wall_s']:.0f} jobs/s)"
            )
            print(
                "    how: Services.enqueue (generate, INSERT) 1,000 jobs at a time, wait until the queue worker has "
                "delivered every one (attempts recorded in SQLite), gc, read RSS from /proc/self/statm; growth "
                "counted from the 3rd batch on (after warm-up)"
            )
            print("    RSS samples (jobs: MB): " + ", ".join(f"{n:,}: {mb:.1f}" for n, mb in mem["samples"]))
            summary.append(f"memory {mem['growth_mb_per_10k']:+.2f} MB per 10,000 jobs")

    print("\nload average at end: " + " ".join(f"{v:.2f}" for v in os.getloadavg()))
    print("summary: " + "; ".join(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
