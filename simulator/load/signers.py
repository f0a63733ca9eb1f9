"""Signing processes for load mode: fresh events generated and signed just ahead of their slots, off the GIL.

An RSA-2048 signature costs ~0.7 ms of CPU. Worker threads can sign (OpenSSL releases the GIL), but then the
posting Python and the signing share one process: each signature ends by waiting for the GIL, the posting
thread waits for the signer's Python in turn, and a saturated run measured ~0.8 of the plain-POST ceiling
(bench/bench.py). A signing process builds events in its own interpreter, so the posting threads keep the GIL;
measured 0.86-1.02 on the same 2-core machine.

Each process has one socket to the parent. The parent asks for a batch of slots, `(first_slot, n)`, no earlier
than the batch's
first slot minus a lead of a few milliseconds (so an event's timestamps are those of its sending), and no further
ahead of the posting threads than a few batches (so a slow receiver does not leave a pile of stale events).
The child answers with the `Built` events of those slots. A child is a fresh interpreter
(`python -c CHILD FD`, never a fork: the parent has threads; not multiprocessing's spawn either,
which re-runs the parent's main script and fails when there is none, e.g. `python -`), in a session of its own
(Ctrl-C is the parent's to handle), talking over one end of a socketpair. It gets its settings and the private key
over that socket, never on a command line, and exits when the socket closes, so it cannot outlive its parent.
"""

from __future__ import annotations

import math
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from multiprocessing.connection import Connection, wait
from pathlib import Path

from cryptography.hazmat.primitives import serialization

from ..models import Job
from ..signing import KeyPair
from .events import Built, FakerPools, LoadError, PayloadSource, build_event

BATCH_SECONDS = 0.005  # a batch holds the slots of this much time (at least 1, at most MAX_BATCH events)
MAX_BATCH = 16
BUILD_COST = 0.001  # seconds a process needs per event, about (RSA-2048 ~0.7 ms + generation), to time requests
DEPTH = 2  # batches asked of one process and not yet answered, at most
READY_TIMEOUT = 60.0  # seconds for a process to start (imports, Faker pools)
SIGNS_PER_PROCESS = 1200  # events per second one process builds on this project's 2-core machines (RSA)
PROCESS_SIGNING_FROM = 300.0  # requests per second: below this, the worker threads sign (no process to start)
MAX_SIGNERS = 16
WARM_UP = 8  # events a process builds before it says ready: fills its Faker pools, loads OpenSSL's key
SUPPORTED = os.name == "posix"  # the child inherits its socket by pass_fds, which Windows does not have
PACKAGE_ROOT = Path(__file__).resolve().parents[2]  # the folder that holds `simulator`, for the child's path
# The child's program (not `-m simulator.load.signers`: the package imports this module first, and runpy warns
# that it is then run a second time as __main__)
CHILD = "import sys; from simulator.load.signers import child_main; child_main(int(sys.argv[1]))"


def default_signers(rsa: bool, rate: float, cpus: int | None) -> int:
    """Processes a run uses unless told: for RSA-signed events at a rate worth it, one per SIGNS_PER_PROCESS of
    rate, leaving a core to the posting threads; none on one core (a process would only compete with them)."""
    cpus = cpus or 1
    if not rsa or cpus < 2 or rate < PROCESS_SIGNING_FROM or not SUPPORTED:
        return 0
    return max(1, min(cpus - 1, MAX_SIGNERS, math.ceil(rate / SIGNS_PER_PROCESS)))


def batch_size(rate: float) -> int:
    return max(1, min(MAX_BATCH, math.ceil(rate * BATCH_SECONDS)))


# -- the child -----------------------------------------------------------------------------------------
def child_main(fd: int) -> None:
    conn = Connection(fd)
    try:
        settings = conn.recv()
    except (EOFError, OSError):
        return
    _child(conn, **settings)


def _child(
    conn: Connection,
    template: Job,
    private_pem: bytes | None,
    public_pem: str,
    source_args: dict,
    seed: int | None,
    index: int,
) -> None:
    try:
        keys = None
        if private_pem is not None:
            keys = KeyPair(serialization.load_pem_private_key(private_pem, password=None), public_pem)
        source = PayloadSource(**source_args, pools=FakerPools(seed)).worker(index, seed)
        for _ in range(WARM_UP):
            build_event(source, template, keys)
    except Exception as exc:  # reported to the parent, which refuses the run with it
        conn.send(("error", f"{type(exc).__name__}: {exc}"))
        return
    conn.send(("ready", None))
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message is None:
            return
        first, n = message
        conn.send((first, [build_event(source, template, keys) for _ in range(n)]))


# -- the parent ----------------------------------------------------------------------------------------
class SignerPool:
    """`processes` signing processes feeding the worker threads of one load run: `get(slot)` returns its event.

    Start with `start(t0, rate, total)` once the run's clock is set; `close()` always (stops the processes)."""

    def __init__(
        self,
        processes: int,
        template: Job,
        keys: KeyPair | None,
        source_args: dict,
        seed: int | None = None,
        concurrency: int = 1,
        clock: Callable[[], float] = time.monotonic,
    ):
        if not 1 <= processes <= MAX_SIGNERS:
            raise LoadError(f"signing processes must be between 0 and {MAX_SIGNERS}")
        if not SUPPORTED:
            raise LoadError("signing processes need a POSIX system; use --signers 0")
        self.processes = processes
        self.concurrency = concurrency
        self.clock = clock
        lock = threading.Lock()
        self.arrived = threading.Condition(lock)  # worker threads wait here for their slot's event
        self.room = threading.Condition(lock)  # the requesting thread waits here to ask for the next batch
        self.requester_waiting = False
        self.next_first = 0  # first slot of the next batch to ask for
        self.ready: dict[int, Built] = {}
        self.consumed = 0
        self.failure: str | None = None
        self.closed = False
        self.threads: list[threading.Thread] = []
        self.conns: list[Connection] = []
        self.procs = []
        self.in_flight: dict[Connection, int] = {}
        private_pem = (
            None
            if keys is None
            else keys.private_key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        env = dict(
            os.environ,
            PYTHONPATH=os.pathsep.join(
                [str(PACKAGE_ROOT)] + ([os.environ["PYTHONPATH"]] if os.environ.get("PYTHONPATH") else [])
            ),
        )
        try:
            for index in range(processes):
                parent_end, child_end = socket.socketpair()
                with parent_end, child_end:
                    proc = subprocess.Popen(
                        [sys.executable, "-c", CHILD, str(child_end.fileno())],
                        pass_fds=(child_end.fileno(),),
                        stdin=subprocess.DEVNULL,
                        env=env,
                        start_new_session=True,
                    )
                    conn = Connection(os.dup(parent_end.fileno()))
                self.procs.append(proc)
                self.conns.append(conn)
                self.in_flight[conn] = 0
                conn.send(
                    {
                        "template": template,
                        "private_pem": private_pem,
                        "public_pem": keys.public_pem if keys else "",
                        "source_args": source_args,
                        "seed": seed,
                        "index": index,
                    }
                )
            for conn, proc in zip(self.conns, self.procs, strict=True):
                self._await_ready(conn, proc)
        except BaseException:
            self.close()
            raise

    def _await_ready(self, conn: Connection, proc: subprocess.Popen) -> None:
        if not conn.poll(READY_TIMEOUT):
            raise LoadError(f"the signing process did not start within {READY_TIMEOUT:g} s")
        try:
            kind, detail = conn.recv()
        except (EOFError, OSError):
            raise LoadError(f"the signing process stopped while starting{_exit_code([proc])}") from None
        if kind != "ready":
            raise LoadError(f"the signing process could not start: {detail}")

    # -- feeding -----------------------------------------------------------------------------------
    def start(self, t0: float, rate: float, total: int) -> None:
        self.t0, self.rate, self.total = t0, rate, total
        self.batch = batch_size(rate)
        self.lead = 0.005 + self.batch * BUILD_COST
        self.ahead = DEPTH * self.batch * self.processes + self.concurrency
        self.threads = [
            threading.Thread(target=self._request, name="load-signers-request", daemon=True),
            threading.Thread(target=self._collect, name="load-signers-collect", daemon=True),
        ]
        for thread in self.threads:
            thread.start()

    def _request(self) -> None:
        """Ask for batches in slot order: not before their time, not too far ahead, DEPTH per process at most."""
        with self.room:
            while self.next_first < self.total and not self.closed and self.failure is None:
                first = self.next_first
                due = self.t0 + first / self.rate - self.lead
                now = self.clock()
                conn = min(self.conns, key=self.in_flight.__getitem__)
                if now < due:
                    self.room.wait(due - now)
                elif not self._has_room(conn):
                    self.requester_waiting = True  # get() and answers wake us once there is room
                    self.room.wait(0.5)
                    self.requester_waiting = False
                else:
                    n = min(self.batch, self.total - first)
                    try:
                        conn.send((first, n))
                    except (OSError, ValueError):  # the process is gone: the collecting thread reports it
                        return
                    self.in_flight[conn] += 1
                    self.next_first = first + n

    def _has_room(self, conn: Connection) -> bool:
        return self.next_first - self.consumed < self.ahead and self.in_flight[conn] < DEPTH

    def _collect(self) -> None:
        while not self.closed and self.failure is None:
            try:
                for conn in wait(self.conns, 0.2):
                    first, events = conn.recv()
                    with self.arrived:
                        self.in_flight[conn] -= 1
                        for offset, event in enumerate(events):
                            self.ready[first + offset] = event
                        self.arrived.notify_all()
                        self.room.notify()
            except (EOFError, OSError, ValueError):
                if not self.closed:
                    reason = f"the signing process stopped{_exit_code(self.procs)}"
                    with self.arrived:
                        self._fail(reason)
                return

    def _fail(self, reason: str) -> None:
        self.failure = reason
        self.arrived.notify_all()
        self.room.notify()

    def get(self, slot: int) -> Built:
        """The event of `slot`, waiting for it if needed. Raises LoadError if the processes stopped."""
        with self.arrived:
            while slot not in self.ready:
                if self.failure is not None:
                    raise LoadError(self.failure)
                if self.closed:
                    raise LoadError("the run is closed")
                self.arrived.wait(1.0)
            self.consumed += 1
            if self.requester_waiting and self._has_room(min(self.conns, key=self.in_flight.__getitem__)):
                self.requester_waiting = False
                self.room.notify()  # only when it can act: a wake-up per event would cost the posting threads
            return self.ready.pop(slot)

    def close(self) -> None:
        """Stop the threads and the processes (at once: they only build events). Idempotent."""
        with self.arrived:
            if self.closed:
                return
            self.closed = True
            self.arrived.notify_all()
            self.room.notify()
        for conn in self.conns:
            try:
                conn.send(None)
            except (OSError, ValueError):
                pass
        for thread in self.threads:
            thread.join(2)
        for proc in self.procs:  # each exits when it reads None or its socket closes
            try:
                proc.wait(2)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(2)
        for conn in self.conns:
            conn.close()


def _exit_code(procs: list[subprocess.Popen], wait_s: float = 1.0) -> str:
    """` (exit code N)` of the first of `procs` to have stopped (reaped for up to `wait_s`), else ``."""
    deadline = time.monotonic() + wait_s
    while True:
        for proc in procs:
            if proc.poll() is not None:
                return f" (exit code {proc.returncode})"
        if time.monotonic() >= deadline:
            return ""
        time.sleep(0.01)


if __name__ == "__main__":  # a signing process by hand: python -m simulator.load.signers FD
    child_main(int(sys.argv[1]))
