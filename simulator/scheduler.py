"""APScheduler 3.x wiring: each scheduled, unpaused subscription is one interval or cron job that fires it.

A firing only creates a job row (cheap: one generated payload and an INSERT); the queue worker delivers it,
so the scheduler thread never waits on the network.

Every firing has a due time that all servers sharing one database compute alike: an interval schedule's times are
the subscription's creation time plus whole intervals (its grid), a cron schedule's are whole minutes (UTC). The
callback gets (subscription id, due time); on a shared database the store lets one server take each due time.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from .subscriptions import Schedule, Subscription

log = logging.getLogger("accessrc_sim.scheduler")

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


def trigger_for(schedule: Schedule, anchor: float | None = None):
    """APScheduler's trigger; an interval runs on the grid `anchor` + k × seconds (anchor: the subscription's
    creation time), so every server that schedules it fires at the same times."""
    if schedule.kind == "interval":
        start = datetime.fromtimestamp(anchor, UTC) if anchor else None
        return IntervalTrigger(seconds=schedule.seconds, start_date=start, timezone="UTC")
    return CronTrigger.from_crontab(schedule.cron, timezone="UTC")


def due_time(schedule: Schedule, anchor: float | None, now: float) -> float:
    """The due time of the firing running at `now` (late by less than half a period): the nearest grid point of an
    interval schedule, the nearest whole minute of a cron one. Rounded to the millisecond, so servers agree."""
    if schedule.kind == "interval" and anchor:
        return round(anchor + round((now - anchor) / schedule.seconds) * schedule.seconds, 3)
    if schedule.kind == "interval":
        return round(now, 3)
    return round(now / 60) * 60.0


class Scheduler:
    """One BackgroundScheduler per running app; `fire(subscription_id, due_at)` is called at each firing."""

    def __init__(self, fire: Callable[[str, float], object], warm: Callable[[str], object] | None = None):
        self.fire = fire
        self.warm = warm  # warm(event): readies what a firing of `event` needs (its payload factory), once
        self._plans: dict[str, tuple[Schedule, float | None]] = {}  # subscription id -> (schedule, grid anchor)
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
        events = sorted({sub.event for sub in subscriptions if sub.schedule is not None and not sub.paused})
        self._firing_thread = threading.Thread(
            target=self._firing_loop, args=(events,), name="accessrc-sim-firings", daemon=True
        )
        self._firing_thread.start()
        self._scheduler.start()

    def sync(self, sub: Subscription) -> None:
        """Make the APScheduler job match the subscription: scheduled and unpaused → present, else absent."""
        if sub.schedule is None or sub.paused:
            self.remove(sub.id)
            return
        self._plans[sub.id] = (sub.schedule, sub.created_at or None)
        self._scheduler.add_job(
            self._fire,
            trigger_for(sub.schedule, sub.created_at or None),
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
        self._firings.put((sub_id, due_time(plan[0], plan[1], now) if plan else round(now, 3)))

    def _firing_loop(self, events: list[str]) -> None:
        """The firings, one after another, in the order they were due (each stores a job: ~0.3 ms). First the
        scheduled events are warmed (a first payload of a kind costs ~100 ms: Faker's set-up), so the first
        firings are not late for it; firings due meanwhile wait in the queue."""
        for event in events if self.warm else ():
            try:
                self.warm(event)
            except Exception:
                log.exception("warming event %s for its schedules failed", event)
        while (item := self._firings.get()) is not None:
            try:
                self.fire(*item)
            except Exception:
                log.exception("scheduled firing of subscription %s failed", item[0])
