"""Helpers for the reliability tests (issue 7): the real `accessrc-sim serve` as a subprocess that can be
SIGKILLed and restarted on the same SQLite file, and a counting receiver on 127.0.0.1 that lives in the test
process (so it outlives every kill of the simulator) and records each request per X-JobId."""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import requests
from sim_helpers import wait_until

API_KEY = "reliability-admin-key-3f9c1d"
XKEY = {"x-api-key": API_KEY}
CLI = [sys.executable, "-c", "import sys; from simulator.cli import main; sys.argv[0] = 'accessrc-sim'; main()"]


class ServeProcess:
    """`accessrc-sim serve --port 0` on one database; start() again after kill() resumes the same queue.
    stdout and stderr of every run go to files in `workdir` (kept, so the secrets test can sweep them)."""

    def __init__(
        self, workdir: Path, keys_dir: Path, *args: str, api_key: str | None = API_KEY, env: dict | None = None
    ):
        self.workdir, self.keys_dir, self.args, self.api_key = Path(workdir), Path(keys_dir), args, api_key
        self.db = self.workdir / "sim.db"
        self.extra_env = env or {}
        self.proc: subprocess.Popen | None = None
        self.url = ""
        self.runs = 0
        self.out_files: list[Path] = []

    def start(self, timeout: float = 30.0) -> ServeProcess:
        env = {k: v for k, v in os.environ.items() if k != "ACCESSRC_SIM_API_KEY"}
        env.update(self.extra_env)
        if self.api_key:
            env["ACCESSRC_SIM_API_KEY"] = self.api_key
        self.runs += 1
        out = self.workdir / f"serve-{self.runs}.out"
        err = self.workdir / f"serve-{self.runs}.err"
        self.out_files += [out, err]
        cmd = [*CLI, "serve", "--port", "0", "--db", str(self.db), "--keys-dir", str(self.keys_dir), *self.args]
        with open(out, "wb") as fo, open(err, "wb") as fe:
            self.proc = subprocess.Popen(cmd, stdout=fo, stderr=fe, env=env, cwd=self.workdir)

        def started():
            if self.proc.poll() is not None:
                raise AssertionError(f"serve exited {self.proc.returncode}:\n{out.read_text()}\n{err.read_text()}")
            return re.search(r"serving on (http://[\d.]+:\d+)/", out.read_text())

        self.url = wait_until(started, timeout, what="serve start").group(1)
        wait_until(self.healthy, 10, what="healthz")
        return self

    def healthy(self) -> bool:
        try:
            return requests.get(self.url + "/healthz", timeout=2).json()["data"]["status"] == "ok"
        except (requests.RequestException, ValueError, KeyError):
            return False

    @property
    def output(self) -> str:
        return "".join(p.read_text(errors="replace") for p in self.out_files if p.exists())

    def kill(self) -> None:
        """SIGKILL: no handler runs, nothing is flushed or closed."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def terminate(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(40)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


class _QuietServer(ThreadingHTTPServer):
    """A peer that vanishes mid-request (a SIGKILLed simulator) is expected here, not an error to print."""

    daemon_threads = True
    request_queue_size = 256

    def handle_error(self, request, client_address):
        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)


class CountingReceiver:
    """A webhook receiver on 127.0.0.1 that fails the first `fail_first` requests it gets for each X-JobId
    (500), acknowledges later ones (200), and records every request: (job id, X-JobAttempt, status, body).
    `verify(path, headers, body)`, when given, checks each request's signature: one that fails is answered 401,
    counted in `bad_signatures` and not recorded."""

    def __init__(self, fail_first: int = 0, delay: float = 0.0, status: int | None = None, verify=None):
        self.fail_first, self.delay, self.fixed_status = fail_first, delay, status
        self.verify = verify
        self.bad_signatures = 0
        self.lock = threading.Lock()
        self.seen: dict[str, list[tuple[int | None, int]]] = defaultdict(list)  # job id -> [(attempt, status)]
        self.times: dict[str, list[float]] = defaultdict(list)
        self.bodies: dict[str, bytes] = {}
        self.headers: list[dict] = []
        self.digests: list[tuple[int, str]] = []  # (length, SHA-256) of every body received, in order
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                body = self.rfile.read(length)
                if len(body) < length:  # the sender died mid-request: nothing was delivered
                    self.close_connection = True
                    return
                if owner.verify is not None and not owner.verify(self.path, self.headers, body):
                    with owner.lock:
                        owner.bad_signatures += 1
                    self.send_response(401)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                job_id = self.headers.get("X-JobId") or ""
                raw_attempt = self.headers.get("X-JobAttempt")
                number = int(raw_attempt) if raw_attempt is not None and raw_attempt.isdigit() else None
                with owner.lock:
                    received = len(owner.seen[job_id])
                    if owner.fixed_status is not None:
                        status = owner.fixed_status
                    else:
                        status = 500 if received < owner.fail_first else 200
                    owner.seen[job_id].append((number, status))
                    owner.times[job_id].append(time.monotonic())
                    owner.bodies.setdefault(job_id, body)
                    owner.headers.append(dict(self.headers))
                    owner.digests.append((len(body), hashlib.sha256(body).hexdigest()))
                if owner.delay:
                    time.sleep(owner.delay)
                answer = json.dumps({"status": "success" if status == 200 else "failed"}).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(answer)))
                    self.end_headers()
                    self.wfile.write(answer)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, *args):
                pass

        self.server = _QuietServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> CountingReceiver:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def snapshot(self) -> dict[str, list[tuple[int | None, int]]]:
        with self.lock:
            return {k: list(v) for k, v in self.seen.items()}

    def acknowledged(self) -> set[str]:
        with self.lock:
            return {job for job, seen in self.seen.items() if any(status == 200 for _, status in seen)}

    def total(self) -> int:
        with self.lock:
            return sum(len(v) for v in self.seen.values())
