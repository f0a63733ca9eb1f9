"""accessrc-sim benchmark: end-to-end signed deliveries against the ceilings they are made of, in one run.

    python bench/bench.py [--seconds 5] [--threads 2] [--long-jobs 20000] [--parts rates,reference,startup,...]

Measures, each printed with how it was measured (issue 17's targets are marked TARGET, met or not):
  1. RSA-2048 PKCS#1 v1.5 signatures/s alone (the Accredit X-Signature, `signing.rsa_sign`);
  2. plain POSTs/s alone with load mode's HTTP stack (`simulator.load.Poster`) to a loopback receiver, the best of
     1 and N threads (the stack's ceiling, whichever thread count gives it); and, beside it, the core's
     `delivery.post` (requests, what `send` and serve's queue use) with N threads;
  3. end-to-end signed deliveries/s: load mode's own path (fresh payload → sign → POST), saturated, with its
     default signing (a signing process on a machine with 2+ cores); its ratio to min(1, 2) — target ≥ 0.8;
     and, for comparison, the same with the worker threads signing (`--signers 0`) and with HMAC events;
  4. scheduler lateness p50/p99 of interval firings (APScheduler 3.x through the server's own Services),
     idle and while load mode runs in the same process;
  5. memory (RSS) growth over a long run of the server's queue: jobs stored in SQLite and delivered;
  6. the machine's own ceiling (bench/reference_sender.py: a bare asyncio sender, aiohttp or httpx, whichever posts
     more here, 16 requests in flight, one signing process): plain POSTs/s and RSA-signed deliveries/s, and load
     mode's end-to-end RSA rate (3) as a ratio to the latter, measured in the same rounds — TARGET >= 0.9;
  7. start-up: whole-process wall time, median of N runs, of `accessrc-sim events` (TARGET <= 0.3 s), `send` to the
     loopback receiver (TARGET <= 0.5 s) and `serve` until GET /healthz answers 200 (TARGET <= 1.5 s), each beside
     `python -c pass` measured in the same rounds;
  and the sections other scripts in bench/ provide (EXTERNAL below), called through their run().
The receiver is a minimal asyncio HTTP/1.1 server in its own process, so it takes little CPU and no GIL from the
sender; it counts what it got, and the count is checked against what the sender says it sent.
Only loopback traffic; every loop is bounded in time or count.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from sink import Receiver  # noqa: E402  (bench/sink.py: the receiver every bench script uses)


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


def post_rate(
    url: str, body: bytes, headers: dict, threads: int, seconds: float, stack: str = "load"
) -> tuple[float, int]:
    import requests

    from simulator import delivery, load

    failures = [0]

    def work(deadline):
        if stack == "load":  # load mode's own sender (simulator.load.Poster)
            poster = load.Poster(url, 10.0)
            post, close = (lambda: poster.post(body, headers)), poster.close
        else:  # the core's delivery.post on a requests Session, as serve's queue and `send` post
            session = requests.Session()
            session.trust_env = False
            post, close = (lambda: delivery.post(session, url, body, headers, 10.0)), session.close
        n = 0
        while time.perf_counter() < deadline:
            resp = post()
            if resp.status != 200:
                failures[0] += 1
            n += 1
        close()
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


def reference(url: str, seconds: float, client: str, key_file: Path | None = None) -> dict:
    """bench/reference_sender.py in its own process: plain POSTs (key_file None) or fresh RSA-signed bodies."""
    cmd = [sys.executable, str(ROOT / "bench" / "reference_sender.py"), url, "--seconds", str(seconds)]
    cmd += ["--client", client] + (["--rsa", str(key_file)] if key_file else [])
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60)
    if done.returncode != 0:
        raise RuntimeError(f"reference sender failed: {done.stderr.strip()[-500:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def cli_command() -> list[str]:
    exe = Path(sys.executable).with_name("accessrc-sim")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "simulator.cli"]


def children_cpu() -> float:
    """CPU seconds (user + system) of the child processes reaped so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def wall(cmd: list[str], env: dict) -> tuple[float, float]:
    """Wall time and CPU time of one run of `cmd` to its exit."""
    cpu, start = children_cpu(), time.perf_counter()
    done = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=120)
    took = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[-4:])} failed: {done.stderr.decode(errors='replace')[-500:]}")
    return took, children_cpu() - cpu


def serve_ready(env: dict, port: int, db: Path) -> tuple[float, float]:
    """Seconds from starting `accessrc-sim serve` to its first GET /healthz 200 (polled every 5 ms), and the CPU
    seconds the process used in all (until stopped right after)."""
    cpu, start = children_cpu(), time.perf_counter()
    ready = None
    proc = subprocess.Popen(
        cli_command() + ["serve", "--port", str(port), "--db", str(db)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"serve exited with {proc.returncode} before it was ready")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as resp:
                    if resp.status == 200:
                        ready = time.perf_counter() - start
                        break
            except OSError:
                pass
            if time.perf_counter() - start > 30:
                raise RuntimeError("serve was not ready within 30 s")
            time.sleep(0.005)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
    return ready, children_cpu() - cpu


def startup(receiver_url: str, workdir: Path, runs: int, port: int) -> dict:
    """Median wall times, interleaved run by run so a busy moment hits all alike; one warm-up run of each first."""
    home = workdir / "cli-home"
    env = dict(os.environ, ACCESSRC_SIM_HOME=str(home), ACCESSRC_SIM_API_KEY="bench-admin-key-" + "x" * 24)
    env.pop("ACCESSRC_SIM_DB", None)
    env.pop("ACCESSRC_SIM_KEYS_DIR", None)
    cli = cli_command()
    commands = {
        "python -c pass": [sys.executable, "-c", "pass"],
        "events": cli + ["events"],
        "send": cli + ["send", "BadgeExportZipFile.Created", "--url", receiver_url + "/startup"],
    }
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in [*commands, "serve"]}
    for cmd in commands.values():  # warm-up: .pyc files, the key pair, the database
        wall(cmd, env)
    serve_ready(env, port, home / "serve.db")
    for _ in range(runs):
        for name, cmd in commands.items():
            times[name].append(wall(cmd, env))
        times["serve"].append(serve_ready(env, port, home / "serve.db"))
    return {
        name: (statistics.median(w for w, _ in runs), statistics.median(c for _, c in runs), [w for w, _ in runs])
        for name, runs in times.items()
    }


ENGINE_RATE = 10_000  # per second (load mode's most): above what this machine sends, so each engine shows its ceiling
ENGINE_SECONDS = 4.0
ENGINE_WORKERS = 2


def load_engine(engine: str, url: str, workdir: Path) -> dict:
    """One `accessrc-sim load … --json` run of `engine` as its own process; its summary, with `wall` seconds."""
    workdir.mkdir(parents=True, exist_ok=True)
    cmd = [
        *cli_command(),
        "load",
        "DELIVERY_REFUND_REQUESTED",
        "--url",
        url,
        "--hmac-secret",
        "bench-secret",
        "--rate",
        str(ENGINE_RATE),
        "--duration",
        f"{ENGINE_SECONDS:g}",
        "--json",
    ]
    if engine == "locust":
        cmd += ["--engine", "locust", "--workers", str(ENGINE_WORKERS)]
    env = {**os.environ, "ACCESSRC_SIM_HOME": str(workdir / "home")}
    started = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    wall_s = time.perf_counter() - started
    text = done.stdout
    try:
        start = text.rfind("\n{") + 1 or text.index("{")  # the summary: the last JSON object printed
        summary = json.loads(text[start:])
    except ValueError:
        raise RuntimeError(
            f"load --engine {engine} printed no JSON summary (exit {done.returncode}): {done.stderr[-500:]}"
        ) from None
    summary["wall"] = wall_s
    return summary


# Sections measured by other scripts in bench/ (module name in bench/, the --parts name that runs it, keywords of
# its own). When its part is asked for and the module exists, bench calls module.run() with those of these keywords
# its signature takes: receiver_url (the loopback receiver of this run), workdir (a fresh folder), seconds
# (--seconds, unless its own keywords fix it: the lateness run lasts 15 s, 600 firings); run() prints its own lines
# and may return a one-line summary (str) for the end of the report.
EXTERNAL = [
    ("serve_queue", "queue", {}),  # issue 17.1: the server's queue, HMAC and RSA
    ("serve_schedule_lateness", "lateness", {"seconds": 15.0}),  # issue 17.2: idle and with the queue at 500/s
    ("serve_instances", "instances", {}),  # issue 16: servers on one PostgreSQL, against one on SQLite
]


def run_external(module_name: str, receiver_url: str, workdir: Path, seconds: float, **fixed) -> str | None:
    import importlib
    import inspect

    sys.path.insert(0, str(ROOT / "bench"))
    module = importlib.import_module(module_name)
    run = getattr(module, "run", None)
    if run is None:
        return f"{module_name}: no run() to call"
    offered = {"receiver_url": receiver_url, "workdir": workdir, "seconds": seconds, **fixed}  # fixed: its own
    accepted = inspect.signature(run).parameters
    return run(**{k: v for k, v in offered.items() if k in accepted})


# -- the run ------------------------------------------------------------------------------------------
def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="length of each rate measurement")
    parser.add_argument("--threads", type=int, default=2, help="sender threads, the same in every measurement")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds of the three rate measurements")
    parser.add_argument("--event", default="BadgeExportZipFile.Created", help="Accredit (RSA-signed) event")
    parser.add_argument("--sched-seconds", type=float, default=15.0)
    parser.add_argument("--long-jobs", type=int, default=20_000, help="jobs in the memory run")
    parser.add_argument(
        "--parts",
        default="rates,reference,startup,engines,memory," + ",".join(part for _, part, _ in EXTERNAL),
        help="comma-separated subset to run (reference needs rates)",
    )
    parser.add_argument("--startup-runs", type=int, default=7, help="runs of each command, for the medians")
    parser.add_argument("--serve-port", type=int, default=9540, help="port for the serve start-up runs")
    args = parser.parse_args()
    parts = set(args.parts.split(","))
    summary = []

    from simulator import catalogue, delivery, signing
    from simulator.auth import Auth
    from simulator.load import MAX_RATE, SWITCH_INTERVAL

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
            signs, posts, e2es, inline, hmacs, checks, refs, core_posts = [], [], [], [], [], [], [], []
            key_file = workdir / "keys" / signing.PRIVATE_FILE
            clients = {}
            if "reference" in parts:  # the machine's plain POST ceiling with each client; the better one is used
                for client in ("aiohttp", "httpx"):
                    before = receiver.count()
                    got = reference(url, s, client)
                    clients[client] = got
                    checks.append((f"reference {client} plain", got["failed"], receiver.count() - before, got["sent"]))
                best_client = max(clients, key=lambda c: clients[c]["rate"])
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
                before = receiver.count()
                rate, failures = post_rate(url, body, headers, t, s, stack="requests")
                core_posts.append(rate)
                checks.append((f"POST through requests ({t} threads)", failures, receiver.count() - before))
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
                if "reference" in parts:  # right after load mode's own round, so both meet the same moment
                    before = receiver.count()
                    got = reference(url, s, best_client, key_file)
                    refs.append(got["rate"])
                    checks.append(("reference RSA", got["failed"], receiver.count() - before, got["sent"]))
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
                f"    how: {' and '.join(map(str, post_threads))} thread(s) in turn, one load.Poster (keep-alive "
                f"socket, llhttp) each, posting the same pre-signed body and headers to the loopback receiver for "
                f"{s:g} s; each round keeps the better"
            )
            print(
                f"[2a] the same through the core's delivery.post (requests, as `send` and serve's queue post), {t} "
                f"thread(s): {max(core_posts):,.0f}/s (rounds: {rounds(core_posts)})"
            )
            used = ", ".join(map(str, sorted(signers_used)))
            print(f"[3] end-to-end signed deliveries/s: {e2e:,.0f}/s (rounds: {rounds(e2es)})")
            print(
                f"    how: load mode's LoadRun with {t} worker(s) asked for {MAX_RATE:g}/s for {s:g} s: each request a "
                f"fresh {spec.name} payload (pooled Faker), its own X-JobId, RSA-signed, posted by load.Poster; events "
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
                f"{e2e:,.0f} / {ceiling:,.0f} = {ratio:.2f}  (the older target >= 0.80: "
                f"{'met' if ratio >= 0.8 else 'NOT met'}; superseded by [6]: now that POSTing is cheap, min(sign, "
                f"POST) is {t} threads signing on {t} cores, where load mode signs in one process)"
            )
            med = {k: statistics.median(v) * 1e6 for k, v in cpu.items()}
            print(
                f"    CPU of this process per operation (median): sign {med['sign']:.0f} us, "
                f"POST {med['post']:.0f} us, "
                f"end-to-end {med['e2e']:.0f} us (the signing process's CPU not included): the posting process "
                "does little more than POST; the signing process needs a core of its own beside it"
            )

            if refs:
                ref = max(refs)
                vs_ref = e2e / ref
                per_round = [a / b for a, b in zip(e2es, refs, strict=True)]
                plain = ", ".join(f"{c} {clients[c]['rate']:,.0f}/s" for c in clients)
                print(
                    f"\n[6] the machine's ceiling (bench/reference_sender.py): plain POSTs {plain} (one {s:g} s run "
                    f"each; {best_client} is used below); RSA-signed deliveries {ref:,.0f}/s (rounds: {rounds(refs)})"
                )
                print(
                    f"    how: one asyncio loop, 16 POSTs in flight on keep-alive connections ({best_client}); for RSA "
                    "one signing process makes each body fresh (a new id) and signs it, in batches of 32, two ahead; "
                    "rate = 200 answers / wall time. No project code on its hot path."
                )
                met = vs_ref >= 0.9
                print(
                    f"    TARGET load mode's end-to-end RSA rate / the reference's = {e2e:,.0f} / {ref:,.0f} = "
                    f"{vs_ref:.2f} (per round: {', '.join(f'{r:.2f}' for r in per_round)}); target >= 0.90: "
                    + ("met" if met else "NOT met")
                )
                if not met:
                    print(
                        "    what holds it back: load mode builds each event in its signing process (fresh payload, "
                        "job id, headers: ~30-50 us beside ~270 us of RSA, measured by CPU time) where the reference "
                        "only splices an id; and its posting threads hand events over through a condition variable. "
                        "On a loaded machine the signing process also shares its core with the rest."
                    )
                summary.append(f"load mode / reference sender (RSA) {vs_ref:.2f} ({e2e:,.0f} / {ref:,.0f}/s)")
            summary.append(
                f"sign {sign:,.0f}/s, POST {post:,.0f}/s, end-to-end {e2e:,.0f}/s, ratio {ratio:.2f} "
                f"(threads signing {max(inline):,.0f}/s = {max(inline) / ceiling:.2f}; HMAC end-to-end "
                f"{hmac_rate:,.0f}/s)"
            )

        if "engines" in parts:
            print(
                f"\n[8] load engines side by side (issue 16): native (the default) and Locust (a master and "
                f"{ENGINE_WORKERS} local workers), the same HMAC event at {ENGINE_RATE:,}/s for {ENGINE_SECONDS:g} s"
            )
            got = {name: [] for name in ("native", "locust")}
            for _ in range(max(1, args.rounds - 1)):
                for name in got:  # interleaved, so both see the same machine
                    got[name].append(load_engine(name, receiver.url, workdir / "engines"))
            best = {name: max(runs, key=lambda r: r["accepted"]) for name, runs in got.items()}
            for name, r in best.items():
                print(
                    f"    {name}: {r['accepted']:,} accepted of {r['planned']:,} planned ({r['failed']} failed) in "
                    f"{r['wall']:.1f} s of process time = {r['accepted'] / ENGINE_SECONDS:,.0f}/s over the run's "
                    f"{ENGINE_SECONDS:g} s (rounds: {', '.join(format(x['accepted'], ',') for x in got[name])})"
                )
            ratio = best["native"]["accepted"] / max(1, best["locust"]["accepted"])
            faster = "native" if ratio >= 1 else "locust"
            print(
                f"    native / Locust = {ratio:.2f}: {faster} is faster on one machine"
                + (" (so native stays the default; Locust is for more than one machine)" if ratio >= 1 else "")
            )
            print(
                "    how: `accessrc-sim load DELIVERY_REFUND_REQUESTED --hmac-secret … --rate R --duration D --json` "
                "as its own process, then the same with `--engine locust --workers N`, against this run's loopback "
                "receiver; the rate asked is above what one machine sends, so 'accepted' is what each engine got "
                "through (the wall time includes Locust's process start-up and its last stats report)"
            )
            summary.append(f"load engines native / Locust {ratio:.2f}")

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

        if "startup" in parts:
            print(
                f"\n[7] start-up and CLI latency: whole process, median of {args.startup_runs} runs (load average "
                + " ".join(f"{v:.2f}" for v in os.getloadavg())
                + ")"
            )
            got = startup(receiver.url, workdir, args.startup_runs, args.serve_port)
            base, base_cpu = got["python -c pass"][:2]
            targets = {"events": 0.3, "send": 0.5, "serve": 1.5}
            labels = {
                "python -c pass": "python -c pass",
                "events": "accessrc-sim events",
                "send": "accessrc-sim send (RSA event, to the loopback receiver)",
                "serve": "accessrc-sim serve until GET /healthz 200",
            }
            for name, (median, cpu, values) in got.items():
                line = (
                    f"    {labels[name]}: {median:.3f} s, CPU {cpu:.3f} s "
                    f"(runs: {', '.join(f'{v:.2f}' for v in values)})"
                )
                if name in targets:
                    ok = median <= targets[name]
                    line += (
                        f" = {median / base:.1f}x python -c pass (CPU {cpu / base_cpu:.1f}x), +{median - base:.3f} s; "
                        f"TARGET <= {targets[name]:g} s: {'met' if ok else 'NOT met'}"
                    )
                    if not ok:
                        line += (
                            f" (on an idle machine python -c pass takes ~0.02 s; here it took {base:.3f} s: "
                            "other work inflates every wall time, the CPU figure much less)"
                        )
                print(line)
                if name in targets:
                    summary.append(f"{name} {median:.2f} s ({'met' if median <= targets[name] else 'NOT met'})")
            print(
                "    how: each command run as its own process (the installed console script) with a fresh "
                "ACCESSRC_SIM_HOME, one warm-up run of each first, then the four interleaved run by run; wall time "
                "from start to exit (serve: to the first 200 of GET /healthz, polled every 5 ms, then stopped)"
            )

        for module_name, part, fixed in EXTERNAL:
            if part in parts and (ROOT / "bench" / f"{module_name}.py").exists():
                print(f"\n[{part}] bench/{module_name}.py")
                line = run_external(module_name, receiver.url, workdir / part, **{"seconds": args.seconds, **fixed})
                if isinstance(line, str):
                    summary.append(line)

    print("\nload average at end: " + " ".join(f"{v:.2f}" for v in os.getloadavg()))
    print("summary: " + "; ".join(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
