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

import os
import socket
import subprocess
import sys
import threading
import time
from multiprocessing.connection import Connection
from pathlib import Path

from cryptography.hazmat.primitives import serialization

from .auth import Auth
from .signing import KeyPair

SUPPORTED = os.name == "posix"  # the child inherits its socket by pass_fds, which Windows does not have
READY_TIMEOUT = 30.0  # seconds for the process to start (an interpreter, cryptography)
ANSWER_TIMEOUT = 10.0  # seconds a batch may take before the process counts as stuck (a batch is ~10 ms of work)
PACKAGE_ROOT = Path(__file__).resolve().parents[1]  # the folder that holds `simulator`, for the child's path
CHILD = "import sys; from simulator.sign_process import child_main; child_main(int(sys.argv[1]))"


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
