"""`accessrc-sim load --engine locust` on one machine: a Locust master and N worker processes, headless, on loopback.

Each is `python -m locust -f <simulator/load/locust_user.py>` (never imported here: importing locust monkey-patches
the standard library for gevent). The master listens on 127.0.0.1 only, on a free port; it waits for its N workers,
prints Locust's own stats and percentiles when the test ends and writes Locust's CSV. The settings, secrets
included, go to the master in environment variables (ACCESSRC_SIM_LOAD_*), never on a command line; the master
hands them to its workers over Locust's socket. The key pair (Accredit) is each worker's own: ACCESSRC_SIM_KEYS_DIR.
"""

from __future__ import annotations

import csv
import json
import math
import os
import socket
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..auth import Auth
from . import GRACE, LoadPlan
from .events import LoadError

LOCUSTFILE = Path(__file__).with_name("locust_user.py")
MAX_WORKERS = 64
READY_WAIT = 60  # seconds the master waits for its workers to connect
ENV_PREFIX = "ACCESSRC_SIM_LOAD_"


@dataclass
class LocustResult:
    """What Locust's master reported (its CSV's Aggregated row and failures), and how it ended."""

    planned: int
    sent: int = 0
    failed: int = 0
    failed_by_error: dict[str, int] = field(default_factory=dict)
    percentiles_ms: dict[str, float | None] = field(default_factory=dict)  # 50%, 95%, 99%, 100%
    rate: float = 0.0  # requests per second as Locust counted them
    exit_code: int = 0  # the master's
    csv_prefix: str | None = None

    @property
    def accepted(self) -> int:
        return self.sent - self.failed

    @property
    def unsent(self) -> int:
        return max(0, self.planned - self.sent)

    def summary(self) -> dict:
        p = self.percentiles_ms
        return {
            "engine": "locust",
            "planned": self.planned,
            "sent": self.sent,
            "accepted": self.accepted,
            "failed": self.failed,
            "failed_by_status": dict(sorted(self.failed_by_error.items())),
            "unsent": self.unsent,
            "latency_ms": {"p50": p.get("50%"), "p95": p.get("95%"), "p99": p.get("99%"), "max": p.get("100%")},
            "achieved_rate": round(self.rate, 2),
            "locust_exit_code": self.exit_code,
            "csv_prefix": self.csv_prefix,
        }


def auth_environment(auth: Auth) -> dict[str, str]:
    """The locustfile's auth settings for `auth` (the options `send` takes, by their environment names)."""
    given = {
        "hmac": {"HMAC_SECRET": auth.secret},
        "header": {"API_KEY_HEADER": auth.header_name, "API_KEY": auth.header_value},
        "basic": {"BASIC": f"{auth.username}:{auth.password}"},
        "authorization": {"AUTHORIZATION": auth.authorization},
        "rsa": {"RSA_PADDING": auth.rsa_padding},
    }.get(auth.kind, {})
    return {ENV_PREFIX + name: value for name, value in given.items() if value is not None}


def plan_environment(plan: LoadPlan) -> dict[str, str]:
    """The locustfile's settings for `plan`, as environment variables (read by Locust's parser on the master)."""
    env = {
        "EVENT": plan.event,
        "URL": plan.url,
        "RATE": repr(float(plan.rate)),
        "REQUESTS": str(plan.total),
        "DURATION": repr(float(plan.duration)),
        "TIMEOUT": repr(float(plan.timeout)),
        "FORCE": "true" if plan.force else "false",
    }
    if plan.profile:
        env["PROFILE"] = plan.profile
    if plan.overrides:
        env["OVERRIDES"] = json.dumps(plan.overrides)
    if plan.count is not None:
        env["COUNT"] = str(plan.count)
    if plan.seed is not None:
        env["SEED"] = str(plan.seed)
    return {ENV_PREFIX + k: v for k, v in env.items()} | auth_environment(plan.auth)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def users_for(plan: LoadPlan, workers: int) -> int:
    """Locust users in all: --concurrency, at least one per worker."""
    return max(plan.concurrency, workers)


def run_locust(
    plan: LoadPlan,
    workers: int,
    keys_dir: str | None,
    csv_prefix: str | None = None,
    echo: Callable[[str], None] = print,
    python: str = sys.executable,
) -> LocustResult:
    """Run `plan` on a Locust master and `workers` local workers; Locust's output lines go to `echo`."""
    plan.check()
    if not 1 <= workers <= MAX_WORKERS:
        raise LoadError(f"workers must be between 1 and {MAX_WORKERS}")
    users = users_for(plan, workers)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIX)}
    if keys_dir is not None:
        env["ACCESSRC_SIM_KEYS_DIR"] = str(keys_dir)
    master_env = env | plan_environment(plan)
    # a safety net only: the locustfile ends the test itself once every slot is sent and counted
    run_time = math.ceil(plan.duration + GRACE + plan.timeout + 15)
    with tempfile.TemporaryDirectory(prefix="accessrc-sim-locust-") as tmp:
        prefix = csv_prefix or str(Path(tmp) / "load")
        master_cmd = [
            python,
            "-m",
            "locust",
            "-f",
            str(LOCUSTFILE),
            "--headless",
            "--master",
            "--master-bind-host",
            "127.0.0.1",
            "--master-bind-port",
            str(port),
            "--expect-workers",
            str(workers),
            "--expect-workers-max-wait",
            str(READY_WAIT),
            "--users",
            str(users),
            "--spawn-rate",
            str(min(users * 10, 100 * workers)),
            "--run-time",
            f"{run_time}s",
            "--stop-timeout",
            f"{math.ceil(plan.timeout)}",
            "--only-summary",
            "--loglevel",
            "WARNING",
            "--csv",
            prefix,
        ]
        worker_cmd = [
            python,
            "-m",
            "locust",
            "-f",
            str(LOCUSTFILE),
            "--worker",
            "--master-host",
            "127.0.0.1",
            "--master-port",
            str(port),
            "--loglevel",
            "WARNING",
        ]
        master = subprocess.Popen(
            master_cmd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,  # Locust prints its tables with its log, on stderr
            env=master_env,
            text=True,
            errors="replace",
            bufsize=1,
        )
        started: list[subprocess.Popen] = []
        try:
            for _ in range(workers):  # their logs (warnings and errors only) go to stderr, as the master's do
                quiet = {"stdin": subprocess.DEVNULL, "stdout": subprocess.DEVNULL}
                started.append(subprocess.Popen(worker_cmd, env=env, **quiet))
            for line in master.stdout:
                echo(line.rstrip("\n"))
            code = master.wait()
        except BaseException:
            master.terminate()  # Locust prints its stats on SIGTERM too
            try:
                master.wait(10)
            except subprocess.TimeoutExpired:
                master.kill()
            raise
        finally:
            _stop(started)
        result = read_stats(prefix, plan.total)
        result.exit_code = code
        result.csv_prefix = csv_prefix
        return result


def _stop(procs: list[subprocess.Popen], wait_s: float = 10.0) -> None:
    """Workers quit when their master tells them; any still running after `wait_s` is ended."""
    for proc in procs:
        try:
            proc.wait(wait_s)
        except subprocess.TimeoutExpired:
            proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


def read_stats(prefix: str, planned: int) -> LocustResult:
    """The Aggregated row of Locust's `PREFIX_stats.csv` and the rows of `PREFIX_failures.csv`."""
    path = Path(f"{prefix}_stats.csv")
    result = LocustResult(planned=planned)
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
    except OSError as exc:
        raise LoadError(f"Locust wrote no stats ({path}: {exc.strerror or exc}); see its output above") from exc
    total = next((r for r in rows if r.get("Name") == "Aggregated"), None)
    if total is None:
        raise LoadError(f"{path} has no Aggregated row; see Locust's output above")
    result.sent = int(total["Request Count"])
    result.failed = int(total["Failure Count"])
    result.rate = float(total["Requests/s"] or 0)
    for key in ("50%", "95%", "99%", "100%"):
        value = total.get(key)
        result.percentiles_ms[key] = None if value in (None, "", "N/A") else float(value)
    try:
        with open(f"{prefix}_failures.csv", newline="", encoding="utf-8") as f:
            for row in csv.DictReader(f):
                error = row["Error"]
                result.failed_by_error[error] = result.failed_by_error.get(error, 0) + int(row["Occurrences"])
    except OSError:
        pass
    return result
