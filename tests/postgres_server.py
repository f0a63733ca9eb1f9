"""A throwaway PostgreSQL server for the tests, on the distribution's binaries (scripts/test installs Debian's
`postgresql` when they are missing).

PostgreSQL refuses to run as root; CI may run as root. Then the server's folder is given to the unprivileged
`postgres` account (which the package creates) and initdb / pg_ctl run as that account through `runuser`. Any
other user runs them directly. The server listens on 127.0.0.1 only, on a free port, with `trust` auth for its one
superuser `sim`, fsync off (a test server: speed over durability), and is stopped (immediate) at the end: by the
fixture's teardown, at interpreter exit, or when the test run is sent SIGTERM (pg_ctl detaches the server from the
run's process group, so nothing else would stop it)."""

from __future__ import annotations

import atexit
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import uuid
from pathlib import Path

USER = "sim"
RUNNING: set[PostgresServer] = set()  # started and not yet stopped: stopped at exit or on SIGTERM


def stop_all() -> None:
    for server in list(RUNNING):
        server.stop()


def _on_sigterm(signum, frame) -> None:
    stop_all()
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)  # then end as SIGTERM would have


atexit.register(stop_all)


def _bin(name: str) -> str:
    found = shutil.which(name) or next(iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)), None)
    if not found:
        raise RuntimeError(
            f"PostgreSQL's {name} was not found (on PATH or in /usr/lib/postgresql/*/bin): scripts/test installs "
            "Debian's postgresql package; or: sudo apt-get install postgresql"
        )
    return found


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PostgresServer:
    def __init__(self):
        self.folder = Path(tempfile.mkdtemp(prefix="accessrc-sim-pg-"))
        self.data = self.folder / "data"
        self.port = _free_port()
        self._as: list[str] = []
        if os.geteuid() == 0:
            try:
                account = pwd.getpwnam("postgres")
            except KeyError:
                raise RuntimeError("running as root, and there is no `postgres` account to run PostgreSQL as") from None
            os.chown(self.folder, account.pw_uid, account.pw_gid)
            self._as = ["runuser", "-u", "postgres", "--"]

    def _run(self, *args: str) -> None:
        done = subprocess.run([*self._as, *args], capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            log = self.folder / "server.log"
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise RuntimeError(f"{' '.join(args[:2])} failed ({done.returncode}): {done.stderr or done.stdout}{tail}")

    def start(self) -> PostgresServer:
        self._run(_bin("initdb"), "-D", str(self.data), "-U", USER, "-A", "trust", "-E", "UTF8", "--no-sync")
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=300"
        log = str(self.folder / "server.log")
        RUNNING.add(self)
        if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
            signal.signal(signal.SIGTERM, _on_sigterm)
        self._run(_bin("pg_ctl"), "-D", str(self.data), "-o", options, "-l", log, "-w", "start")
        return self

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{USER}@127.0.0.1:{self.port}/{database}"

    def new_database(self) -> str:
        """A fresh, empty database; its URL."""
        import psycopg

        name = f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        if self not in RUNNING:
            return
        RUNNING.discard(self)
        try:
            self._run(_bin("pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)
