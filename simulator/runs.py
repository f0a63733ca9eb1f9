"""The runs a running simulator does in the background (scenario runs, readiness runs): kept in memory, each on
its own thread with a stop flag, so `Services.stop()` ends them between two steps instead of leaving them sending.

No Flask: the HTTP edges make a Run, hand its work to `RunRegistry.start` and read it back by id.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from typing import ClassVar

DEFAULT_KEPT = 100
JOIN_TIMEOUT = 10.0  # seconds stop() waits, in all, for the runs' threads


class Run:
    """One background run. A subclass names its `kind` (runs are listed and found by kind) and how many of its
    kind are `kept`; the registry sets `status` ("running", then "finished"), `finished_at`, and `error` when the
    work raised. The work checks `stop_flag` (a Runner takes it as its own) and, when it ended early because of
    it, says so with `cut_short()`."""

    kind: ClassVar[str] = "run"
    kept: ClassVar[int] = DEFAULT_KEPT

    def __init__(self) -> None:
        self.id = str(uuid.uuid4())
        self.status = "running"
        self.error: str | None = None
        self.started_at = time.time()
        self.finished_at: float | None = None
        self.lock = threading.Lock()
        self.stop_flag = threading.Event()
        self.stopped = False  # ended before its last step, by the stop flag
        self.thread: threading.Thread | None = None

    def cut_short(self, what: str) -> None:
        """The work ended early, by the stop flag, before `what`: the run says so in `stopped` and `error`."""
        self.stopped = True
        self.error = f"stopped before {what}: the simulator is stopping"

    def failed(self, exc: BaseException) -> None:
        """The work raised `exc`: the run ends visibly with it, never stays "running"."""
        self.error = f"{type(exc).__name__}: {exc}"


class RunRegistry:
    """Runs by id, oldest first. Beyond a kind's `kept`, its oldest finished runs are dropped (running ones never)."""

    def __init__(self) -> None:
        self._runs: OrderedDict[str, Run] = OrderedDict()
        self._lock = threading.Lock()

    def start(self, run: Run, work: Callable[[], None]) -> Run:
        """Keep `run` and do `work()` on a daemon thread of its own; the run is finished when `work` returns."""
        self.add(run)
        run.thread = threading.Thread(
            target=self._execute, args=(run, work), daemon=True, name=f"{run.kind}-run-{run.id[:8]}"
        )
        run.thread.start()
        return run

    def add(self, run: Run) -> Run:
        with self._lock:
            self._runs[run.id] = run
            same = [r for r in self._runs.values() if r.kind == run.kind]
            for old in [r for r in same if r.status != "running"][: max(0, len(same) - run.kept)]:
                del self._runs[old.id]
        return run

    def get(self, kind: str, run_id: str) -> Run | None:
        run = self._runs.get(run_id)
        return run if run is not None and run.kind == kind else None

    def list(self, kind: str) -> list[Run]:
        """The runs of `kind`, newest first."""
        with self._lock:
            return [r for r in reversed(self._runs.values()) if r.kind == kind]

    def stop(self, timeout: float = JOIN_TIMEOUT) -> list[Run]:
        """Ask every running run to stop, then wait up to `timeout` seconds in all for their threads; the runs
        still running then (a step sending, its retries included, finishes first)."""
        with self._lock:
            running = [r for r in self._runs.values() if r.status == "running"]
        for run in running:
            run.stop_flag.set()
        deadline = time.monotonic() + timeout
        for run in running:
            if run.thread is not None:
                run.thread.join(max(0.0, deadline - time.monotonic()))
        return [r for r in running if r.status == "running"]

    @staticmethod
    def _execute(run: Run, work: Callable[[], None]) -> None:
        try:
            work()
        except Exception as exc:  # a crash must end the run visibly, never leave it "running"
            run.failed(exc)
        finally:
            run.finished_at = time.time()
            run.status = "finished"
