"""APScheduler 3.x wiring: each scheduled, unpaused subscription is one interval or cron job that fires it.

A firing only creates a job row (cheap: one generated payload and an INSERT); the queue worker delivers it,
so the scheduler thread never waits on the network.

Every firing has a due time that all servers sharing one database compute alike: an interval schedule's times are
whole intervals since the Unix epoch (its grid), a cron schedule's are whole minutes (UTC). The
callback gets (subscription id, due time); on a shared database the store lets one server take each due time.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from datetime import UTC, datetime

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from .subscriptions import Schedule, Subscription

log = logging.getLogger("accessrc_sim.scheduler")
_IDLE = object()  # the firing thread has made every firing handed over: wait for the next

MIN_INTERVAL = 0.1  # seconds
MAX_INTERVAL = 366 * 86400
FIRING_THREADS = 1  # APScheduler's executor only hands each firing to the firing thread (see Scheduler)
MISFIRE_GRACE = 30  # seconds a firing may start late (a stopped process, a long lock) and still run
FIRING_JOIN = 10.0  # seconds a shutdown waits for the firings handed over before it


class ScheduleError(ValueError):
    """A schedule that cannot be used; `field` names the offending input."""

    def __init__(self, message: str, field: str):
        super().__init__(message)
        self.field = field


def parse_schedule(data) -> Schedule | None:
    """`{"interval_seconds": 30}` or `{"cron": "*/5 * * * *"}` (5-field crontab, UTC) → Schedule; null → None."""
    if data is None:
        return None
    if not isinstance(data, dict):
        raise ScheduleError("schedule must be an object with interval_seconds or cron, or null", "schedule")
    given = [k for k in ("interval_seconds", "cron") if data.get(k) is not None]
    unknown = sorted(set(data) - {"interval_seconds", "cron", "kind", "seconds"})
    if unknown:
        raise ScheduleError(f"unknown schedule field {unknown[0]!r}", f"schedule.{unknown[0]}")
    if data.get("seconds") is not None and "interval_seconds" not in given:  # our own to_dict() shape
        data = {"interval_seconds": data["seconds"]}
        given = ["interval_seconds"]
    if len(given) != 1:
        raise ScheduleError("schedule needs exactly one of interval_seconds or cron", "schedule")
    if given[0] == "interval_seconds":
        seconds = data["interval_seconds"]
        if (
            isinstance(seconds, bool)
            or not isinstance(seconds, (int, float))
            or not MIN_INTERVAL <= seconds <= MAX_INTERVAL
        ):
            raise ScheduleError(
                f"interval_seconds must be a number from {MIN_INTERVAL} to {MAX_INTERVAL}", "schedule.interval_seconds"
            )
        return Schedule("interval", seconds=float(seconds))
    expr = data["cron"]
    if not isinstance(expr, str):
        raise ScheduleError("cron must be a string such as '*/5 * * * *'", "schedule.cron")
    try:
        CronTrigger.from_crontab(expr, timezone="UTC")
    except ValueError as exc:
        raise ScheduleError(f"bad cron expression {expr!r}: {exc}", "schedule.cron") from exc
    return Schedule("cron", cron=expr)


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def trigger_for(schedule: Schedule):
    """APScheduler's trigger. An interval runs on the grid of whole intervals since the Unix epoch (every 30 s: at
    :00 and :30), so every server that schedules it fires at the same times, and schedules of one interval fire
    together (their firings are stored as one burst before the queue starts on them)."""
    if schedule.kind == "interval":
        return IntervalTrigger(seconds=schedule.seconds, start_date=EPOCH, timezone="UTC")
    return CronTrigger.from_crontab(schedule.cron, timezone="UTC")


def due_time(schedule: Schedule, now: float) -> float:
    """The due time of the firing running at `now` (late by less than half a period): the nearest point of an
    interval's grid, the nearest whole minute of a cron schedule. Rounded to the millisecond, so servers agree."""
    if schedule.kind == "interval":
        return round(round(now / schedule.seconds) * schedule.seconds, 3)
    return round(now / 60) * 60.0


class Scheduler:
    """One BackgroundScheduler per running app; `fire(subscription_id, due_at)` is called at each firing."""

    def __init__(
        self,
        fire: Callable[[str, float], object],
        warm: Callable[[str], object] | None = None,
        together: Callable[[], AbstractContextManager] | None = None,
    ):
        self.fire = fire
        self.warm = warm  # warm(event): readies what a firing of `event` needs (its payload factory), once
        self.together = together or nullcontext  # wraps the firings due together (the queue waits for the last)
        self._plans: dict[str, Schedule] = {}  # subscription id -> its schedule (for the due time of a firing)
        self._firings: queue.SimpleQueue = queue.SimpleQueue()  # (subscription id, due time); None ends the thread
        self._firing_thread: threading.Thread | None = None
        self._scheduler = BackgroundScheduler(
            timezone="UTC",
            executors={"default": ThreadPoolExecutor(FIRING_THREADS)},
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": MISFIRE_GRACE},
        )

    @property
    def running(self) -> bool:
        return self._scheduler.running

    def start(self, subscriptions: list[Subscription]) -> None:
        if self._scheduler.running:
            return
        for sub in subscriptions:
            self.sync(sub)
        # Each scheduled event's payload factory is readied first (a first payload of a kind costs ~100 ms:
        # Faker's set-up), so no firing due just after the start waits for it
        for event in sorted({sub.event for sub in subscriptions if sub.schedule is not None and not sub.paused}):
            try:
                self.warm and self.warm(event)
            except Exception:
                log.exception("warming event %s for its schedules failed", event)
        self._firing_thread = threading.Thread(target=self._firing_loop, name="accessrc-sim-firings", daemon=True)
        self._firing_thread.start()
        self._scheduler.start()

    def sync(self, sub: Subscription) -> None:
        """Make the APScheduler job match the subscription: scheduled and unpaused → present, else absent."""
        if sub.schedule is None or sub.paused:
            self.remove(sub.id)
            return
        self._plans[sub.id] = sub.schedule
        self._scheduler.add_job(
            self._fire,
            trigger_for(sub.schedule),
            args=[sub.id],
            id=sub.id,
            replace_existing=True,
            name=f"{sub.platform} {sub.event}",
        )

    def remove(self, sub_id: str) -> None:
        self._plans.pop(sub_id, None)
        if self._scheduler.get_job(sub_id) is not None:
            self._scheduler.remove_job(sub_id)

    def next_fire_time(self, sub_id: str) -> float | None:
        job = self._scheduler.get_job(sub_id)
        return job.next_run_time.timestamp() if job is not None and job.next_run_time else None

    def shutdown(self) -> None:
        if self._scheduler.running:
            self._scheduler.shutdown(wait=True)
        if self._firing_thread is not None:  # firings already handed over are made, then the thread ends
            self._firings.put(None)
            self._firing_thread.join(FIRING_JOIN)
            self._firing_thread = None

    def _fire(self, sub_id: str) -> None:
        """APScheduler's job: hand the firing, with its due time, to the firing thread and return at once. So an
        APScheduler run never lasts longer than that: no firing is skipped as "maximum number of running
        instances reached" while another waits for the database or the GIL."""
        plan = self._plans.get(sub_id)
        now = time.time()
        self._firings.put((sub_id, due_time(plan, now) if plan else round(now, 3)))

    def _firing_loop(self) -> None:
        """The firings, one after another, in the order they were due (each stores a job: ~0.3 ms); those handed
        over while one is made are made in the same burst, inside `together` (the queue starts on their jobs when
        the last is stored, not while the next ones are being made)."""
        item = self._firings.get()
        while item is not None:
            with self.together():  # this firing and those handed over while it is made: due together
                while item is not None:
                    try:
                        self.fire(*item)
                    except Exception:
                        log.exception("scheduled firing of subscription %s failed", item[0])
                    try:
                        item = self._firings.get_nowait()  # None: the end marker, after this burst
                    except queue.Empty:
                        item = _IDLE
                        break
            if item is _IDLE:
                item = self._firings.get()
