"""What a running simulator holds (store, keys, subscriptions, queue worker, scheduler, settings) and the one
path every trigger takes: generate → body bytes → new_job → a row in the jobs table → the queue delivers it."""
from __future__ import annotations

import hmac
import os
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from . import catalogue, delivery
from .auth import Auth
from .config import ENV_API_KEY
from .models import Job
from .queue import QueueWorker
from .scheduler import Scheduler
from .signing import KeyPair
from .store import Store
from .subscriptions import Subscription, SubscriptionRepo

EXTENSION = "accessrc_sim"
API_KEY_SETTING = "admin_api_key"


@dataclass
class ServeSettings:
    api_key: str
    api_key_generated: bool  # True when this start generated it (the one time it is printed)
    allow_planned: bool = False
    retry_delays: tuple[float, ...] | None = None  # None: the platform default schedule
    timeout: float | None = None


class FireError(ValueError):
    """A firing that cannot be built (bad override, unknown event); `problems` lists each, `field` the input."""

    def __init__(self, message: str, field: str | None = None, problems: list[str] | None = None):
        super().__init__(message)
        self.field = field
        self.problems = problems or []


def resolve_api_key(repo: SubscriptionRepo, configured: str | None) -> tuple[str, bool]:
    """The admin key: configured (env/config) wins; else the one stored at first start; else a new one."""
    if configured:
        return configured, False
    stored = repo.setting(API_KEY_SETTING)
    if stored:
        return stored, False
    candidate = "sim_" + secrets.token_urlsafe(24)
    kept = repo.set_setting_once(API_KEY_SETTING, candidate)
    return kept, kept == candidate


@dataclass
class Services:
    store: Store
    keys: KeyPair
    subscriptions: SubscriptionRepo
    queue: QueueWorker
    scheduler: Scheduler
    settings: ServeSettings
    stopping: threading.Event = field(default_factory=threading.Event, repr=False)  # ends open streams
    _started: bool = field(default=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def build(cls, db_path, keys_dir, api_key: str | None = None, allow_planned: bool = False,
              retry_delays=None, timeout=None, threads: int = 4) -> "Services":
        from .signing import load_keys

        store = Store(db_path)
        repo = SubscriptionRepo(store)
        key, generated = resolve_api_key(repo, api_key if api_key is not None else os.environ.get(ENV_API_KEY))
        settings = ServeSettings(key, generated, allow_planned,
                                 delivery.check_delays(retry_delays) if retry_delays is not None else None,
                                 delivery.check_timeout(timeout) if timeout is not None else None)
        keys = load_keys(keys_dir)
        services = cls(store, keys, repo, QueueWorker(store, keys, threads=threads), None, settings)
        services.scheduler = Scheduler(fire=lambda sub_id: services.fire_subscription(sub_id, source="schedule"))
        return services

    # -- lifecycle ---------------------------------------------------------------------------------
    def start(self) -> None:
        """Start the queue worker and the scheduler, once (a second call does nothing)."""
        with self._lock:
            if self._started:
                return
            self._started = True
            self.queue.start()
            self.scheduler.start(self.subscriptions.list())

    def stop(self, timeout: float = 30.0) -> None:
        with self._lock:
            if not self._started:
                return
            self._started = False
        self.stopping.set()
        self.scheduler.shutdown()
        self.queue.stop(timeout)

    @property
    def started(self) -> bool:
        return self._started

    def check_api_key(self, given: str | None) -> bool:
        return given is not None and hmac.compare_digest(given.encode("utf-8"), self.settings.api_key.encode("utf-8"))

    # -- triggers → jobs -----------------------------------------------------------------------------
    def enqueue(self, event: str, url: str, auth: Auth, *, seed: int | None = None,
                overrides: dict[str, Any] | None = None, count: int | None = None, force: bool = False,
                retry_delays=None, timeout: float | None = None, source: str = "api",
                subscription_id: str | None = None, headers: dict | None = None, profile: str | None = None) -> Job:
        """Generate a payload for `event` and store it as a job due now; the queue worker delivers it."""
        try:
            spec = catalogue.get_event(event)
            payload = catalogue.generate(spec.name, seed=seed, overrides=overrides or {}, count=count, force=force)
        except catalogue.CatalogueError as exc:
            field_ = "event" if str(exc).startswith("unknown event") else "overrides"
            raise FireError(str(exc), field_, exc.problems) from exc
        delays = retry_delays if retry_delays is not None else self.settings.retry_delays
        job = delivery.new_job(spec.name, spec.platform, url, catalogue.body_bytes(payload), auth, delays=delays,
                               timeout=timeout if timeout is not None else self.settings.timeout, source=source,
                               subscription_id=subscription_id, headers=headers, profile=profile)
        return self.add(job)

    def save_subscription(self, sub: Subscription, new: bool = False, now: float | None = None) -> Subscription:
        """Store the subscription (insert when `new`) and make its schedule match: row and scheduler in step."""
        (self.subscriptions.add if new else self.subscriptions.save)(sub, now)
        self.scheduler.sync(sub)
        return sub

    def remove_subscription(self, sub: Subscription) -> None:
        self.scheduler.remove(sub.id)
        self.subscriptions.delete(sub.id)

    def add(self, job: Job) -> Job:
        self.store.add_job(job)
        self.queue.wake()
        return job

    def fire(self, sub: Subscription, source: str = "api", overrides: dict[str, Any] | None = None,
             seed: int | None = None) -> Job:
        """One firing of `sub`: a fresh payload (its seed + firing number, if seeded), its fixed overrides
        plus `overrides`, sent to its URL with its auth."""
        number = self.subscriptions.count_fired(sub.id, time.time())
        if seed is None and sub.seed is not None:
            seed = sub.seed + max(number, 0)
        merged = {**sub.overrides, **(overrides or {})}
        return self.enqueue(sub.event, sub.url, sub.auth, seed=seed, overrides=merged,
                            retry_delays=sub.retry_delays, timeout=sub.timeout, source=source,
                            subscription_id=sub.id, profile=sub.profile)

    def fire_subscription(self, sub_id: str, source: str = "schedule") -> Job | None:
        sub = self.subscriptions.get(sub_id)
        if sub is None or sub.paused:
            return None
        return self.fire(sub, source=source)

    def redeliver(self, job: Job) -> Job:
        """Resend as the platforms' resend does: same body, same profile, same X-JobId (when the profile sends
        one), attempts counted from 0 again. A new row (its own id in the log) whose X-JobId is the original's."""
        original = self.subscriptions.redelivery_of(job.id) or job.id
        headers = dict(job.headers)
        if delivery.profile_of(job).job_headers:
            headers["X-JobId"] = job.headers.get("X-JobId") or job.id
        again = delivery.new_job(job.event, job.platform, job.url, job.body, job.auth, delays=job.retry_delays,
                                 timeout=job.timeout, source="redeliver", subscription_id=job.subscription_id,
                                 headers=headers, profile=job.profile)
        self.subscriptions.link_redelivery(again.id, original)  # first, so no reader sees the job unlinked
        self.store.add_job(again)
        self.queue.wake()
        return again
