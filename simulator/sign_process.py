"""A signing process for the server's queue: RSA signatures of stored jobs' bodies, made off the posting process.

An RSA-2048 signature costs ~0.5-0.7 ms of CPU. Made in the queue's delivery threads it shares the GIL with the
posting, recording Python: measured 585 RSA deliveries/s against 801/s for HMAC (bench/serve_queue.py). Load mode
moves its signing to processes for the same reason (simulator/load/signers.py); its processes build whole events
slot by slot, while the queue's bodies are stored already, so this one only signs: it is sent a batch of
`(rsa_padding, body)` and answers with each body's signature, made by the same code as in-process signing
(`Auth(kind="rsa", rsa_padding=...).how.value`, i.e. signing.rsa_sign), or that code's error.

Started as load mode's are: a fresh interpreter (`python -c CHILD FD`, never a fork: the parent has threads) in a
session of its own, talking over one end of a socketpair; it gets the private key over that socket, never on a
command line, and exits when the socket closes, so it cannot outlive the server. A process that stops or does not
answer within `answer_timeout` raises SigningStopped naming its exit code: the caller decides what the jobs do.
"""

from __future__ import annotations

import logging
import os
import queue
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path

from cryptography.hazmat.primitives import serialization

from .auth import Auth
from .models import Job
from .signing import KeyPair

SUPPORTED = os.name == "posix"  # the child inherits its socket by pass_fds, which Windows does not have
READY_TIMEOUT = 30.0  # seconds for the process to start (an interpreter, cryptography)
ANSWER_TIMEOUT = 10.0  # seconds a batch may take before the process counts as stuck (a batch is ~10 ms of work)
PACKAGE_ROOT = Path(__file__).resolve().parents[1]  # the folder that holds `simulator`, for the child's path
CHILD = "import sys; from simulator.sign_process import child_main; child_main(int(sys.argv[1]))"

log = logging.getLogger("accessrc_sim.signing")


class SigningStopped(RuntimeError):
    """The signing process is gone or stuck; its message says which (with the exit code when there is one)."""


# -- the child -----------------------------------------------------------------------------------------
def child_main(fd: int) -> None:
    conn = Connection(fd)
    try:
        settings = conn.recv()
        keys = KeyPair(serialization.load_pem_private_key(settings["private_pem"], password=None), settings["public"])
    except (EOFError, OSError):
        return
    except Exception as exc:  # reported to the parent, which gives up on the process
        conn.send(("error", f"{type(exc).__name__}: {exc}"))
        return
    conn.send(("ready", None))
    kinds: dict[str, Auth] = {}
    while True:
        try:
            batch = conn.recv()
        except (EOFError, OSError):
            return
        if batch is None:
            return
        answers = []
        for padding, body in batch:
            auth = kinds.get(padding) or kinds.setdefault(padding, Auth(kind="rsa", rsa_padding=padding))
            try:
                answers.append((True, auth.how.value(auth, body, keys)))
            except Exception as exc:  # the same error in-process signing would raise
                answers.append((False, f"{type(exc).__name__}: {exc}"))
        conn.send(answers)


# -- the parent ----------------------------------------------------------------------------------------
class SigningProcess:
    """One child process; `sign([(padding, body), ...])` → per body `(True, signature)` or `(False, error)`;
    or `send` batches from one thread and `receive` their answers, in order, from another. `close()` always."""

    def __init__(self, keys: KeyPair, answer_timeout: float | None = None, ready_timeout: float | None = None):
        if not SUPPORTED:
            raise SigningStopped("a signing process needs a POSIX system")
        self.answer_timeout = ANSWER_TIMEOUT if answer_timeout is None else answer_timeout
        ready_timeout = READY_TIMEOUT if ready_timeout is None else ready_timeout
        self.signed = 0  # signatures received from the process (the tests' proof that it signed)
        self._lock = threading.Lock()
        private_pem = keys.private_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        env = dict(
            os.environ,
            PYTHONPATH=os.pathsep.join(
                [str(PACKAGE_ROOT)] + ([os.environ["PYTHONPATH"]] if os.environ.get("PYTHONPATH") else [])
            ),
        )
        parent_end, child_end = socket.socketpair()
        with parent_end, child_end:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", CHILD, str(child_end.fileno())],
                pass_fds=(child_end.fileno(),),
                stdin=subprocess.DEVNULL,
                env=env,
                start_new_session=True,
            )
            self.conn = Connection(os.dup(parent_end.fileno()))
        try:
            self.conn.send({"private_pem": private_pem, "public": keys.public_pem})
            if not self.conn.poll(ready_timeout):
                raise SigningStopped(f"the signing process did not start within {ready_timeout:g} s")
            kind, detail = self.conn.recv()
            if kind != "ready":
                raise SigningStopped(f"the signing process could not start: {detail}")
        except (EOFError, OSError) as exc:
            self.close()
            raise SigningStopped(f"the signing process stopped while starting{self._exit_code()}") from exc
        except BaseException:
            self.close()
            raise

    @property
    def pid(self) -> int:
        return self.proc.pid

    def send(self, items: list[tuple[str, bytes]]) -> None:
        """Hand a batch to the process; its answer comes from `receive`, batches in the order sent (a batch may be
        sent before the last one's answer is read: the process then never waits between two)."""
        try:
            self.conn.send(items)
        except (OSError, ValueError) as exc:
            raise SigningStopped(f"the signing process stopped{self._exit_code()}") from exc

    def receive(self, expected: int) -> list[tuple[bool, str]]:
        """The answer to the oldest batch sent and not yet answered (`expected`: its length), waiting up to
        `answer_timeout`. One thread receives while another sends."""
        try:
            if not self.conn.poll(self.answer_timeout):
                self.proc.kill()  # stuck: it will not answer this batch, nor be trusted with the next
                raise SigningStopped(f"the signing process did not answer within {self.answer_timeout:g} s")
            answers = self.conn.recv()
        except (EOFError, OSError, ValueError) as exc:
            raise SigningStopped(f"the signing process stopped{self._exit_code()}") from exc
        if not isinstance(answers, list) or len(answers) != expected:
            raise SigningStopped("the signing process answered out of step")
        self.signed += sum(1 for ok, _ in answers if ok)
        return answers

    def sign(self, items: list[tuple[str, bytes]]) -> list[tuple[bool, str]]:
        """send + receive: one batch's answers (a caller that does not pipeline)."""
        with self._lock:
            self.send(items)
            return self.receive(len(items))

    def _exit_code(self, wait_s: float = 1.0) -> str:
        deadline = time.monotonic() + wait_s
        while self.proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        return f" (exit code {self.proc.returncode})" if self.proc.returncode is not None else ""

    def close(self) -> None:
        """Stop the process (at once: it only signs). Idempotent."""
        try:
            self.conn.send(None)
        except (OSError, ValueError):
            pass
        try:
            self.proc.wait(2)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(2)
        self.conn.close()


# -- the queue's signing stage ---------------------------------------------------------------------------------------
SIGN_BATCH = 16  # RSA bodies sent to the signing process at once, at most (~5-10 ms of its work)
SIGN_DEPTH = 2  # batches sent to the signing process and not yet answered, at most
SIGNER_RESTART = 5.0  # seconds after a signing process stopped before another is started (meanwhile: in-thread)
_STOP = object()


class SigningStage:
    """The server queue's RSA signing, between its store thread and its delivery threads: claimed RSA jobs go in
    (`put`), and each comes out through `forward(job, signature)` with the signature made by a SigningProcess, or
    with None for its delivery thread to sign.

    One thread gathers claimed RSA jobs into batches and sends them to the signing process, up to SIGN_DEPTH
    batches ahead (so the process never waits for this process's GIL between two); another reads the answers, in
    order, and hands each job on to the delivery threads with its signature. Without a process (starting, or
    stopped a moment ago) a job goes on unsigned and its delivery thread signs it, as with no process at all: a
    process's failure never holds a job back nor ends it.
    """

    CAPACITY = (SIGN_DEPTH + 1) * SIGN_BATCH  # jobs it may hold: batches being signed and the next one gathering

    def __init__(self, keys: KeyPair, forward: Callable[[Job, str | None], None], stopping: threading.Event):
        self.keys = keys
        self.forward = forward
        self._stopping = stopping  # set: the queue is stopping (no new process is started)
        self._to_sign: queue.SimpleQueue = queue.SimpleQueue()  # claimed RSA jobs for the signing thread
        self._signer: SigningProcess | None = None
        self._threads: list[threading.Thread] = []
        self._sign_cv = threading.Condition()  # guards _signer, _pending, _sign_ended
        self._pending: deque[list[Job]] = deque()  # batches sent to the signing process, answers not yet read
        self._sign_ended = False
        self._signer_starting: threading.Thread | None = None
        self._signer_after = 0.0  # time.monotonic() before which no signing process is started
        self.failures: list[str] = []  # why signing processes stopped (newest last)

    def start(self) -> None:
        self._threads = [
            threading.Thread(target=self._sign_loop, name="accessrc-sim-signing", daemon=True),
            threading.Thread(target=self._collect_signatures, name="accessrc-sim-signatures", daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def put(self, job: Job) -> None:
        self._to_sign.put(job)

    def stop(self) -> None:
        """Sign what was put, then close the process; jobs still in hand go on unsigned."""
        self._to_sign.put(_STOP)
        for thread in self._threads:
            thread.join(5)
        self._close()

    def _sign_loop(self) -> None:
        while True:
            first = self._to_sign.get()
            if first is _STOP:
                break
            batch, stop = [first], False
            while len(batch) < SIGN_BATCH:
                try:
                    job = self._to_sign.get_nowait()
                except queue.Empty:
                    break
                if job is _STOP:
                    stop = True
                    break
                batch.append(job)
            self._sign(batch)
            if stop:
                break
        with self._sign_cv:
            self._sign_ended = True
            self._sign_cv.notify_all()

    def _sign(self, batch: list[Job]) -> None:
        with self._sign_cv:
            while len(self._pending) >= SIGN_DEPTH and self._signer is not None:
                self._sign_cv.wait(1.0)
            signer = self._signer or self._start_signer()
            if signer is None:
                self._hand_on(batch, None)
                return
            self._pending.append(batch)
            self._sign_cv.notify_all()
        try:
            signer.send([(job.auth.rsa_padding, job.body) for job in batch])
        except SigningStopped as exc:
            self._signer_failed(signer, str(exc))

    def _collect_signatures(self) -> None:
        while True:
            with self._sign_cv:
                while not self._pending and not self._sign_ended:
                    self._sign_cv.wait()
                if not self._pending:
                    return
                signer, expected = self._signer, len(self._pending[0])
            if signer is None:  # failed meanwhile: _signer_failed handed its batches on
                continue
            try:
                answers = signer.receive(expected)
            except SigningStopped as exc:
                self._signer_failed(signer, str(exc))
                continue
            with self._sign_cv:
                batch = self._pending.popleft()
                self._sign_cv.notify_all()
            # a body the process could not sign goes on unsigned: its delivery thread meets the same error and the
            # job ends with it (QueueWorker._failed), as it would without a process
            self._hand_on(batch, [signature if ok else None for ok, signature in answers])

    def _signer_failed(self, signer: SigningProcess, reason: str) -> None:
        with self._sign_cv:
            if self._signer is not signer:  # the other signing thread reported it already
                return
            self._signer = None
            batches, self._pending = list(self._pending), deque()
            self._signer_after = time.monotonic() + SIGNER_RESTART
            self._sign_cv.notify_all()
        self.failures.append(reason)
        log.error(
            "%s; its %d job(s) in hand are signed in the delivery threads, and so is every RSA job for %g s, "
            "then another signing process is started",
            reason,
            sum(len(batch) for batch in batches),
            SIGNER_RESTART,
        )
        for batch in batches:
            self._hand_on(batch, None)
        signer.close()

    def _hand_on(self, batch: list[Job], signatures: list[str | None] | None) -> None:
        for i, job in enumerate(batch):
            self.forward(job, signatures[i] if signatures else None)

    def _start_signer(self) -> SigningProcess | None:
        """Start a signing process in the background (~0.2 s: an interpreter); None until it is ready."""
        starting = self._signer_starting
        if starting is not None and starting.is_alive():
            return None
        if time.monotonic() >= self._signer_after and not self._stopping.is_set():
            self._signer_starting = threading.Thread(
                target=self._open_signer, name="accessrc-sim-signing-start", daemon=True
            )
            self._signer_starting.start()
        return None

    def _open_signer(self) -> None:
        try:
            signer = SigningProcess(self.keys)
        except Exception as exc:
            self.failures.append(str(exc))
            log.error("%s; RSA jobs are signed in the delivery threads for %g s", exc, SIGNER_RESTART)
            self._signer_after = time.monotonic() + SIGNER_RESTART
            return
        with self._sign_cv:
            if not self._stopping.is_set():
                self._signer = signer
                log.info("RSA jobs are signed by a signing process (pid %d)", signer.pid)
                return
        signer.close()

    @property
    def process(self) -> SigningProcess | None:
        """The signing process in use (None: none yet, or none now)."""
        return self._signer

    def _close(self) -> None:
        starting = self._signer_starting
        if starting is not None:
            starting.join(READY_TIMEOUT)
        with self._sign_cv:
            signer, self._signer = self._signer, None
            batches, self._pending = list(self._pending), deque()  # none unless stop() gave up waiting
            self._sign_cv.notify_all()
        for batch in batches:
            self._hand_on(batch, None)
        if signer is not None:
            signer.close()
