"""APScheduler 3.x wiring: each scheduled, unpaused subscription is one interval or cron job that fires it.

A firing only creates a job row (cheap: one generated payload and an INSERT); the queue worker delivers it,
so the scheduler thread never waits on the network.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from .subscriptions import Schedule, Subscription

log = logging.getLogger("accessrc_sim.scheduler")

MIN_INTERVAL = 0.1  # seconds
MAX_INTERVAL = 366 * 86400


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


def trigger_for(schedule: Schedule):
    if schedule.kind == "interval":
        return IntervalTrigger(seconds=schedule.seconds, timezone="UTC")
    return CronTrigger.from_crontab(schedule.cron, timezone="UTC")


class Scheduler:
    """One BackgroundScheduler per running app; `fire(subscription_id)` is called at each firing."""

    def __init__(self, fire: Callable[[str], object]):
        self.fire = fire
        self._scheduler = BackgroundScheduler(
            timezone="UTC", job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 30}
        )

    @property
    def running(self) -> bool:
        return self._scheduler.running

    def start(self, subscriptions: list[Subscription]) -> None:
        if self._scheduler.running:
            return
        for sub in subscriptions:
            self.sync(sub)
        self._scheduler.start()

    def sync(self, sub: Subscription) -> None:
        """Make the APScheduler job match the subscription: scheduled and unpaused → present, else absent."""
        if sub.schedule is None or sub.paused:
            self.remove(sub.id)
            return
        self._scheduler.add_job(
            self._fire,
            trigger_for(sub.schedule),
            args=[sub.id],
            id=sub.id,
            replace_existing=True,
            name=f"{sub.platform} {sub.event}",
        )

    def remove(self, sub_id: str) -> None:
        if self._scheduler.get_job(sub_id) is not None:
            self._scheduler.remove_job(sub_id)

    def next_fire_time(self, sub_id: str) -> float | None:
        job = self._scheduler.get_job(sub_id)
        return job.next_run_time.timestamp() if job is not None and job.next_run_time else None

    def shutdown(self) -> None:
        if self._scheduler.running:
            self._scheduler.shutdown(wait=True)

    def _fire(self, sub_id: str) -> None:
        try:
            self.fire(sub_id)
        except Exception:
            log.exception("scheduled firing of subscription %s failed", sub_id)
