"""The run registry (simulator/runs.py): runs kept by kind within their cap, a crash ends a run visibly, stop()
sets every running run's stop flag and waits for its thread."""

from __future__ import annotations

import threading
import time

from simulator.runs import Run, RunRegistry


class Short(Run):
    kind = "short"
    kept = 2


class Other(Run):
    kind = "other"


def test_each_kind_keeps_its_newest_runs_dropping_only_finished_ones():
    runs = RunRegistry()
    release = threading.Event()
    running = runs.start(Short(), release.wait)
    done = []
    for _ in range(3):
        done.append(runs.start(Short(), lambda: None))
        done[-1].thread.join(5)
    other = runs.add(Other())
    assert runs.list("short") == [done[-1], running]  # newest first; the running one never dropped
    assert runs.get("short", done[0].id) is None and runs.get("short", running.id) is running
    assert runs.get("short", other.id) is None and runs.list("other") == [other]  # ids are found within a kind
    release.set()
    running.thread.join(5)


def test_a_crash_ends_the_run_with_its_error():
    runs = RunRegistry()

    def boom() -> None:
        raise RuntimeError("no luck")

    run = runs.start(Short(), boom)
    run.thread.join(5)
    assert run.status == "finished" and run.error == "RuntimeError: no luck" and run.finished_at is not None


def test_stop_sets_the_flags_and_waits_for_the_threads():
    runs = RunRegistry()
    run = Short()
    runs.start(run, lambda: run.cut_short("the end") if run.stop_flag.wait(30) else None)
    started = time.monotonic()
    assert runs.stop(timeout=5) == []
    assert time.monotonic() - started < 2
    assert run.status == "finished" and run.stopped and run.error == "stopped before the end: the simulator is stopping"
    stuck = runs.start(Short(), lambda: time.sleep(1))  # a work that ignores its flag: stop() gives up in time
    assert runs.stop(timeout=0.1) == [stuck]
    stuck.thread.join(5)
