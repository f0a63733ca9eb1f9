"""Several `serve` instances on one PostgreSQL database (issue 16, "scaling on paper"), against one instance on
SQLite, in one run: deliveries/s for N = 1, 2, 3 instances, and where PostgreSQL itself becomes the limit.

    python bench/serve_instances.py [--jobs 5000] [--instances 1,2,3] [--rounds 2] [--delivery-threads 4]

`run(...)` returns the same figures as a dict (bench/bench.py calls it). Measured, each with its reference:
  0. the receiver's own ceiling: the raw keep-alive HTTP/1.1 responder of bench/serve_queue.py, in its own process,
     driven by a raw-socket client process; the instances must stay below it for the receiver not to be the limit;
  1. per round: a throwaway PostgreSQL server (tests/postgres_server.py: Debian's binaries, run as the `postgres`
     account when root, fsync off like the tests), a fresh database, N real `accessrc-sim serve --db URL` processes
     started and idle; `--jobs` HMAC (AccessRC) jobs inserted through simulator.store.Store on the same database
     (source "api", so every instance's queue claims them) with a due time far in the future, not timed; then one
     UPDATE makes them all due at once (t0: distinct due times 1 us apart, in the order added, all in the past)
     and the run is timed until no job is pending or delivering;
     rate = jobs / (that moment - t0). The same with one `serve --db FILE` on SQLite: the reference;
  2. during each PostgreSQL round, from /proc and PostgreSQL's own views: CPU seconds of the postgres processes
     (postmaster and every backend), of each serve process and of the receiver; transactions committed
     (pg_stat_database.xact_commit delta, read once every instance has stopped so the backends' statistics are
     flushed; this script's own queries subtracted); sampled every 0.1 s: backends active, waiting on a lock,
     waiting on an LWLock or I/O, idle inside a transaction, and whether the change feed's advisory lock
     (simulator/store/postgres.py FEED_LOCK) was held or waited for. Its share of samples held, divided into the
     rate, is the rate at which that one serialised lock would be held all the time: the ceiling it sets whatever
     the number of instances.
The receiver counts what it got; the count is checked against the attempts the databases recorded.
Two cores: the instances, PostgreSQL, the receiver and this script share them, so the growth with N measured here
is bounded by the machine, not by the design; the CPU figures say how far.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
for path in (HERE, ROOT, ROOT / "tests"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

EVENT = "DELIVERY_CHANNEL_STATUS_UPDATED"  # AccessRC, HMAC-signed
API_KEY = "bench-serve-instances-admin-key"
CLI = [sys.executable, "-c", "import sys; from simulator.cli import main; sys.argv[0] = 'accessrc-sim'; main()"]
FAR = 10 * 365 * 86400.0  # the due time of inserted jobs until the timed run releases them
TICK = os.sysconf("SC_CLK_TCK")
SAMPLE = 0.1  # seconds between samples of PostgreSQL's views and /proc
INSERTER = "serve-instances-bench-insert"  # application_name of the connection that inserts the jobs


# -- processes ----------------------------------------------------------------------------------------
def cpu_seconds(pid: int) -> float | None:
    """utime + stime of a process, in seconds; None once it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / TICK


def children_of(parent: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    if int(fh.read().rsplit(")", 1)[1].split()[1]) == parent:
                        found.append(int(entry))
            except (OSError, IndexError, ValueError):
                continue
    return found


class CpuMeter:
    """CPU seconds spent by a changing set of processes since start(): per pid, the last reading minus the reading
    at start (0 for a process born later), so a backend that starts mid-run counts whole."""

    def __init__(self, pids_now):
        self.pids_now = pids_now  # () -> the pids to read now
        self.base: dict[int, float] = {}
        self.last: dict[int, float] = {}

    def start(self) -> None:
        self.base = {pid: cpu for pid in self.pids_now() if (cpu := cpu_seconds(pid)) is not None}
        self.last = dict(self.base)

    def sample(self) -> None:
        for pid in self.pids_now():
            cpu = cpu_seconds(pid)
            if cpu is not None:
                self.last[pid] = cpu

    def total(self) -> float:
        return sum(cpu - self.base.get(pid, 0.0) for pid, cpu in self.last.items())


class ServeInstance:
    """One `accessrc-sim serve --port 0 --db DB` process; stdout/stderr in files of `workdir`."""

    def __init__(self, workdir: Path, db: str, keys_dir: Path, delivery_threads: int):
        self.workdir, self.db, self.keys_dir = workdir, db, keys_dir
        self.threads = delivery_threads
        workdir.mkdir(parents=True, exist_ok=True)
        self.out, self.err = workdir / "serve.out", workdir / "serve.err"
        self.proc: subprocess.Popen | None = None
        self.url = ""

    def launch(self) -> None:
        env = dict(os.environ, ACCESSRC_SIM_API_KEY=API_KEY)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
        cmd = [*CLI, "serve", "--port", "0", "--db", self.db, "--keys-dir", str(self.keys_dir)]
        cmd += ["--delivery-threads", str(self.threads)]
        with open(self.out, "wb") as fo, open(self.err, "wb") as fe:
            self.proc = subprocess.Popen(cmd, stdout=fo, stderr=fe, env=env, cwd=self.workdir)

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"serve exited {self.proc.returncode}: {self.err.read_text()[-2000:]}")
            found = re.search(r"serving on (http://[\d.]+:\d+)/", self.out.read_text(errors="replace"))
            if found:
                self.url = found.group(1)
                try:
                    with urllib.request.urlopen(self.url + "/healthz", timeout=2) as resp:
                        if resp.status == 200:
                            return
                except OSError:
                    pass
            time.sleep(0.05)
        raise RuntimeError(f"serve did not start in {timeout:g} s: {self.err.read_text()[-2000:]}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(40)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


# -- PostgreSQL's own view of a run -------------------------------------------------------------------
class PgMonitor:
    """Samples pg_stat_activity and pg_locks (from a connection to the `postgres` database, so its own
    transactions are not the bench database's) and the CPU of the postgres processes, every SAMPLE s."""

    QUERY = """
        SELECT
          (SELECT count(*) FROM pg_stat_activity WHERE datname = %(db)s AND state = 'active'),
          (SELECT count(*) FROM pg_stat_activity WHERE datname = %(db)s AND wait_event_type = 'Lock'),
          (SELECT count(*) FROM pg_stat_activity WHERE datname = %(db)s AND wait_event_type IN ('LWLock', 'IO')),
          (SELECT count(*) FROM pg_stat_activity WHERE datname = %(db)s AND state LIKE 'idle in transaction%%'),
          (SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted AND database = %(oid)s
             AND objid = %(feed)s),
          (SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted AND database = %(oid)s
             AND objid = %(feed)s)
    """

    def __init__(self, server, database: str):
        import psycopg

        from simulator.store.postgres import FEED_LOCK

        self.params = {"db": database, "feed": FEED_LOCK}

        self.database = database
        self.conn = psycopg.connect(server.url("postgres"), autocommit=True)
        self.own_pid = self.conn.execute("SELECT pg_backend_pid()").fetchone()[0]
        self.params["oid"] = self.conn.execute(
            "SELECT oid FROM pg_database WHERE datname = %s", (database,)
        ).fetchone()[0]
        with open(server.data / "postmaster.pid") as fh:
            self.postmaster = int(fh.readline())
        self.cpu = CpuMeter(lambda: [p for p in [self.postmaster, *children_of(self.postmaster)] if p != self.own_pid])
        self.samples: list[tuple] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def counters(self) -> tuple[int, int, int]:
        """(transactions committed, rows inserted, rows updated) in the bench database, as flushed so far."""
        row = self.conn.execute(
            "SELECT xact_commit, tup_inserted, tup_updated FROM pg_stat_database WHERE datname = %s", (self.database,)
        ).fetchone()
        return int(row[0]), int(row[1]), int(row[2])

    def wait_gone(self, application_name: str, timeout: float = 15.0) -> None:
        """Until no backend of that name is left (a backend flushes its statistics when it exits)."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            row = self.conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s", (application_name,)
            )
            if row.fetchone()[0] == 0:
                return
            time.sleep(0.05)
        raise RuntimeError(f"the {application_name} connection is still open {timeout:g} s after it was closed")

    def wait_backends_gone(self, timeout: float = 15.0) -> None:
        deadline = time.time() + timeout
        while time.time() < deadline:
            row = self.conn.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = %s", (self.database,))
            if row.fetchone()[0] == 0:
                return
            time.sleep(0.1)
        raise RuntimeError(f"connections to {self.database} still open {timeout:g} s after the instances stopped")

    def start(self) -> None:
        self.cpu.start()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(SAMPLE):
            self.samples.append(self.conn.execute(self.QUERY, self.params).fetchone())
            self.cpu.sample()

    def stop(self) -> dict:
        self._stop.set()
        self._thread.join(5)
        self.cpu.sample()
        n = max(1, len(self.samples))
        mean = lambda i: sum(s[i] for s in self.samples) / n  # noqa: E731
        return {
            "samples": len(self.samples),
            "active": mean(0),
            "lock_waiting": mean(1),
            "lwlock_io_waiting": mean(2),
            "idle_in_transaction": mean(3),
            "feed_lock_held": sum(1 for s in self.samples if s[4]) / n,
            "feed_lock_waiters": mean(5),
            "pg_cpu_s": self.cpu.total(),
        }

    def close(self) -> None:
        self.conn.close()


# -- one round ----------------------------------------------------------------------------------------
def insert_jobs(db: str, url: str, jobs: int) -> float:
    """`jobs` HMAC jobs through the Store API, due in FAR seconds (so no instance claims them yet); seconds taken."""
    from simulator import catalogue, delivery
    from simulator.auth import Auth
    from simulator.store import Store

    spec = catalogue.get_event(EVENT)
    bodies = [catalogue.body_bytes(catalogue.generate(spec.name, seed=i)) for i in range(50)]
    auth = Auth("hmac", secret="bench")
    started = time.perf_counter()
    if db.startswith("postgresql://"):
        db += "?application_name=" + INSERTER  # so that its backend can be seen to have exited
    store = Store(db)
    try:
        for i in range(jobs):
            job = delivery.new_job(spec.name, spec.platform, url, bodies[i % 50], auth, delays=(), source="api")
            job.next_attempt_at = time.time() + FAR
            store.add_job(job)
    finally:
        store.close()  # the one connection this thread opened
    return time.perf_counter() - started


class Progress:
    """This script's own connection to the bench database: release the jobs, count those still open, and read the
    attempts; `statements` counts its transactions (subtracted from PostgreSQL's xact_commit)."""

    def __init__(self, db: str):
        self.pg = db.startswith("postgresql://")
        if self.pg:
            import psycopg

            self.conn = psycopg.connect(db, autocommit=True)
            self.mark = "%s"
        else:
            self.conn = sqlite3.connect(db, timeout=30, isolation_level=None)
            self.mark = "?"
        self.statements = 0

    def _one(self, sql: str, params=()):
        self.statements += 1
        return self.conn.execute(sql.replace("?", self.mark), params).fetchone()

    def release(self) -> float:
        """Make every pending job due, in one transaction; the moment it committed. Due times are distinct, in the
        order the jobs were added, all in the past (as jobs added one after another have): with one due time for
        all, every claim would sort the whole group (ORDER BY next_attempt_at, seq), a cost of the bench, not of
        the queue."""
        last = self._one("SELECT MAX(seq) FROM jobs")[0]
        self.statements += 1
        self.conn.execute(
            f"UPDATE jobs SET next_attempt_at = {self.mark} - ({self.mark} - seq) * 1e-6 WHERE state = 'pending'",
            (time.time(), last),
        )
        return time.time()

    def open_jobs(self) -> int:
        return self._one("SELECT COUNT(*) FROM jobs WHERE state IN ('pending', 'delivering')")[0]

    def attempts(self) -> tuple[int, int, float, float]:
        """(attempts, succeeded jobs, first attempt start, last attempt end)."""
        count, first, last = self._one(
            "SELECT COUNT(*), MIN(started_at), MAX(started_at + duration_ms / 1000.0) FROM attempts"
        )
        succeeded = self._one("SELECT COUNT(*) FROM jobs WHERE state = 'succeeded'")[0]
        return count, succeeded, first or 0.0, last or 0.0

    def close(self) -> None:
        self.conn.close()


def one_round(
    db: str, n: int, jobs: int, url: str, keys_dir: Path, workdir: Path, threads: int, server=None, receiver_pid=0
) -> dict:
    """N instances on `db`; `jobs` jobs released at once; timed until every job is final."""
    instances = [ServeInstance(workdir / f"serve{i}", db, keys_dir, threads) for i in range(n)]
    monitor = None
    try:
        for inst in instances:
            inst.launch()
        for inst in instances:
            inst.wait_ready()
        insert_s = insert_jobs(db, url, jobs)
        progress = Progress(db)
        if server is not None:
            monitor = PgMonitor(server, db.rsplit("/", 1)[1])
            monitor.wait_gone(INSERTER)  # its inserts are not counted in the run
            counters0 = monitor.counters()
        serve_cpu = CpuMeter(lambda: [inst.proc.pid for inst in instances])
        receiver_cpu = CpuMeter(lambda: [receiver_pid] if receiver_pid else [])
        own_cpu0 = time.process_time()
        load0 = os.getloadavg()
        serve_cpu.start()
        receiver_cpu.start()
        if monitor:
            monitor.start()
        t0 = progress.release()
        deadline = t0 + max(120.0, jobs / 20)
        while (left := progress.open_jobs()) > 0:
            if time.time() > deadline:
                raise RuntimeError(f"{left} of {jobs} jobs still open after {deadline - t0:.0f} s")
            time.sleep(0.05)
        t1 = time.time()
        wall = t1 - t0
        per_instance = []
        for inst in instances:
            per_instance.append(cpu_seconds(inst.proc.pid) or 0.0)
        serve_cpu.sample()
        receiver_cpu.sample()
        pg = monitor.stop() if monitor else {}
        attempts, succeeded, first, last = progress.attempts()
        own_cpu = time.process_time() - own_cpu0
        load1 = os.getloadavg()
    finally:
        for inst in instances:
            inst.stop()
    progress.close()
    if monitor:
        monitor.wait_backends_gone()  # a backend flushes its statistics when it exits
        counters1 = monitor.counters()
        monitor.close()
        xacts = counters1[0] - counters0[0] - progress.statements
        pg["rows_inserted_per_job"] = (counters1[1] - counters0[1]) / max(1, succeeded)
        updated = counters1[2] - counters0[2] - jobs  # less the release's own UPDATE of every job
        pg["rows_updated_per_job"] = updated / max(1, succeeded)
        pg["xact_commit"] = xacts
        pg["xact_per_s"] = xacts / wall
        pg["xact_per_job"] = xacts / max(1, succeeded)
        pg["feed_lock_ms_per_job"] = pg["feed_lock_held"] * wall / max(1, succeeded) * 1e3
    serve_s = serve_cpu.total()
    result = {
        "instances": n,
        "jobs": jobs,
        "succeeded": succeeded,
        "attempts": attempts,
        "insert_s": insert_s,
        "wall_s": wall,
        "rate": succeeded / wall,
        "attempt_span_rate": attempts / (last - first) if last > first else 0.0,
        "serve_cpu_s": serve_s,
        "serve_cpu_per_instance": [
            c - serve_cpu.base.get(inst.proc.pid, 0.0) for c, inst in zip(per_instance, instances, strict=True)
        ],
        "receiver_cpu_s": receiver_cpu.total(),
        "bench_cpu_s": own_cpu,
        "load_average": (load0, load1),
        **pg,
    }
    result["serve_us_per_job"] = serve_s / max(1, succeeded) * 1e6
    if pg:
        result["pg_us_per_job"] = pg["pg_cpu_s"] / max(1, succeeded) * 1e6
    result["cores_busy"] = (serve_s + result["receiver_cpu_s"] + pg.get("pg_cpu_s", 0.0) + own_cpu) / wall
    return result


# -- the run ------------------------------------------------------------------------------------------
def describe(r: dict, out) -> None:
    per = ", ".join(f"{c:.2f}" for c in r["serve_cpu_per_instance"])
    out(
        f"    {r['rate']:,.0f} deliveries/s ({r['succeeded']:,} of {r['jobs']:,} succeeded in {r['wall_s']:.2f} s; "
        f"first attempt to last: {r['attempt_span_rate']:,.0f}/s); insert (not timed) {r['insert_s']:.1f} s"
    )
    line = (
        f"    CPU s: serve {r['serve_cpu_s']:.2f} ({per} per instance; {r['serve_us_per_job']:.0f} us/delivery), "
        f"receiver {r['receiver_cpu_s']:.2f}, this script {r['bench_cpu_s']:.2f}"
    )
    if "pg_cpu_s" in r:
        line += f", postgres {r['pg_cpu_s']:.2f} ({r['pg_us_per_job']:.0f} us/delivery)"
    out(line + f"; {r['cores_busy']:.2f} of {os.cpu_count()} cores busy on average")
    if "pg_cpu_s" in r:
        out(
            f"    PostgreSQL: {r['xact_commit']:,} transactions committed = {r['xact_per_s']:,.0f}/s, "
            f"{r['xact_per_job']:.2f} per delivery; rows per delivery: {r['rows_inserted_per_job']:.2f} inserted, "
            f"{r['rows_updated_per_job']:.2f} updated; sampled every {SAMPLE:g} s ({r['samples']} samples): "
            f"{r['active']:.2f} backends active, {r['lock_waiting']:.2f} waiting on a lock, "
            f"{r['lwlock_io_waiting']:.2f} on an LWLock/IO, {r['idle_in_transaction']:.2f} idle in a transaction "
            f"(waiting for its instance); feed advisory lock held in {r['feed_lock_held']:.0%} of samples "
            f"(= {r['feed_lock_ms_per_job']:.2f} ms per delivery), {r['feed_lock_waiters']:.2f} waiting for it"
        )
    out("    load average before/after: " + " / ".join(" ".join(f"{v:.2f}" for v in la) for la in r["load_average"]))


def run(
    jobs: int = 5_000,
    instances: tuple[int, ...] = (1, 2, 3),
    rounds: int = 2,
    delivery_threads: int = 4,
    workdir: Path | None = None,
    out=print,
) -> dict:
    """Measure and print; return the figures (rates per second, ratios, CPU seconds, PostgreSQL's samples)."""
    from postgres_server import PostgresServer
    from sink import Receiver

    from simulator import signing

    workdir = Path(workdir or tempfile.mkdtemp(prefix="accessrc-serve-instances-"))
    keys_dir = workdir / "keys"
    signing.load_keys(keys_dir)
    load0 = os.getloadavg()
    out(
        f"serve instances bench: {os.cpu_count()} cores, load average at start "
        + " ".join(f"{v:.2f}" for v in load0)
        + f"; {jobs:,} {EVENT} (HMAC) jobs per round, {delivery_threads} delivery threads per instance"
    )
    out(
        "    every process of a round (the instances, PostgreSQL, the receiver, this script) shares these cores: "
        "growth with N is bounded by the machine; other work on it lowers every figure"
    )
    figures: dict = {"load_average_start": load0, "jobs": jobs}
    server = PostgresServer().start()
    try:
        version = subprocess.run([_pg_bin("postgres"), "--version"], capture_output=True, text=True).stdout.strip()
        with Receiver() as receiver:
            url = receiver.url + "/hook"
            ceiling = receiver.ceiling()
            figures["receiver_ceiling"] = ceiling
            out(
                f"[0] receiver ceiling: {ceiling:,.0f} requests/s (raw-socket client process, 16 keep-alive "
                "connections, against the asyncio responder process the instances post to)"
            )
            before = receiver.count()
            sqlite_runs: list[dict] = []
            pg_runs: dict[int, list[dict]] = {n: [] for n in instances}
            for r in range(rounds):
                here = workdir / f"round{r}"
                out(f"[1] round {r + 1}: SQLite, 1 instance (serve --db FILE)")
                sqlite_runs.append(
                    one_round(
                        str(here / "sqlite" / "sim.db"),
                        1,
                        jobs,
                        url,
                        keys_dir,
                        here / "sqlite",
                        delivery_threads,
                        receiver_pid=receiver.proc.pid,
                    )
                )
                describe(sqlite_runs[-1], out)
                for n in instances:
                    out(f"[2] round {r + 1}: PostgreSQL ({version}, fsync off), {n} instance(s) on one new database")
                    db = server.new_database()
                    pg_runs[n].append(
                        one_round(
                            db,
                            n,
                            jobs,
                            url,
                            keys_dir,
                            here / f"pg{n}",
                            delivery_threads,
                            server=server,
                            receiver_pid=receiver.proc.pid,
                        )
                    )
                    describe(pg_runs[n][-1], out)
            received = receiver.count() - before
    finally:
        server.stop()
    best = lambda runs: max(runs, key=lambda x: x["rate"])  # noqa: E731
    sqlite_best = best(sqlite_runs)
    pg_best = {n: best(runs) for n, runs in pg_runs.items()}
    recorded = sum(x["attempts"] for x in sqlite_runs) + sum(x["attempts"] for runs in pg_runs.values() for x in runs)
    base = pg_best[instances[0]]["rate"]
    out("[3] summary (best round of each; ratios measured in this run):")
    out(f"    SQLite, 1 instance: {sqlite_best['rate']:,.0f} deliveries/s")
    for n in instances:
        b = pg_best[n]
        rounds_txt = ", ".join(f"{x['rate']:,.0f}" for x in pg_runs[n])
        out(
            f"    PostgreSQL, {n} instance(s): {b['rate']:,.0f} deliveries/s (rounds: {rounds_txt}) = "
            f"{b['rate'] / sqlite_best['rate']:.2f} x SQLite, {b['rate'] / base:.2f} x {instances[0]} instance(s); "
            f"{b['rate'] / ceiling:.2f} of the receiver's ceiling; feed lock held {b['feed_lock_held']:.0%} "
            f"({b['feed_lock_ms_per_job']:.2f} ms per delivery)"
        )
    top = max(pg_best.values(), key=lambda x: x["rate"])
    pg_ceiling = 1e6 / top["pg_us_per_job"] if top.get("pg_us_per_job") else float("nan")
    lock_ceiling = top["rate"] / top["feed_lock_held"] if top.get("feed_lock_held") else float("inf")
    instance_rate = 1e6 / pg_best[1]["serve_us_per_job"] if 1 in pg_best else float("nan")
    out(
        f"    on paper: one instance costs {pg_best.get(1, top)['serve_us_per_job']:.0f} us CPU per delivery "
        f"(<= {instance_rate:,.0f}/s on a core of its own); PostgreSQL {top['pg_us_per_job']:.0f} us per delivery "
        f"(<= {pg_ceiling:,.0f}/s per core it is given); the feed lock, held {top['feed_lock_held']:.0%} of the time "
        f"at {top['rate']:,.0f}/s, is saturated near {lock_ceiling:,.0f}/s"
    )
    out(
        f"    check: the receiver counted {received:,} requests; the databases recorded {recorded:,} attempts "
        f"({'agree' if received == recorded else 'DISAGREE'})"
    )
    load1 = os.getloadavg()
    out("load average at end: " + " ".join(f"{v:.2f}" for v in load1))
    figures.update(
        {
            "postgres_version": version,
            "sqlite": sqlite_best,
            "sqlite_rounds": [x["rate"] for x in sqlite_runs],
            "postgres": {n: pg_best[n] for n in instances},
            "postgres_rounds": {n: [x["rate"] for x in pg_runs[n]] for n in instances},
            "ratio_pg1_to_sqlite": pg_best[instances[0]]["rate"] / sqlite_best["rate"],
            "ratio_to_one_instance": {n: pg_best[n]["rate"] / base for n in instances},
            "pg_ceiling_per_core": pg_ceiling,
            "feed_lock_ceiling": lock_ceiling,
            "instance_ceiling_per_core": instance_rate,
            "received": received,
            "recorded": recorded,
            "load_average_end": load1,
        }
    )
    return figures


def _pg_bin(name: str) -> str:
    from postgres_server import _bin

    return _bin(name)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--jobs", type=int, default=5_000, help="HMAC jobs per round")
    ap.add_argument("--instances", default="1,2,3", help="comma-separated numbers of serve instances")
    ap.add_argument("--rounds", type=int, default=2, help="rounds of the whole set; the best of each is kept")
    ap.add_argument("--delivery-threads", type=int, default=4, help="serve --delivery-threads of each instance")
    args = ap.parse_args()
    instances = tuple(int(n) for n in args.instances.split(","))
    run(args.jobs, instances, args.rounds, args.delivery_threads)
    return 0


if __name__ == "__main__":
    sys.exit(main())
