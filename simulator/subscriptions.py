"""Subscriptions: who gets which event, how it authenticates, and when it fires (on demand, interval, cron).

Kept by the Store (simulator.store) in the same database as jobs and attempts; the SQL lives there.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from . import platforms
from .auth import Auth


@dataclass
class Schedule:
    """When a subscription fires by itself: every `seconds`, or on a 5-field crontab `cron` (UTC)."""

    kind: str  # "interval" | "cron"
    seconds: float | None = None
    cron: str | None = None

    def to_dict(self) -> dict:
        return (
            {"kind": self.kind, "seconds": self.seconds}
            if self.kind == "interval"
            else {"kind": self.kind, "cron": self.cron}
        )

    @classmethod
    def from_dict(cls, data: dict | None) -> Schedule | None:
        if not data:
            return None
        return cls(kind=data["kind"], seconds=data.get("seconds"), cron=data.get("cron"))


@dataclass
class Subscription:
    platform: str
    event: str
    url: str
    auth: Auth
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    seed: int | None = None  # firing n uses seed + n: reproducible, yet a fresh payload each time
    overrides: dict[str, Any] = field(default_factory=dict)
    schedule: Schedule | None = None
    paused: bool = False
    retry_delays: tuple[float, ...] | None = None  # None: the server's default
    timeout: float | None = None
    meta: dict[str, Any] = field(default_factory=dict)  # platform extras: tenantId, ReachFive definition
    profile: str = "documented"  # delivery profile of its firings: documented | accredit-like (AccessRC only)
    fired_count: int = 0
    last_fired_at: float | None = None
    created_at: float = 0.0
    updated_at: float = 0.0

    def move_to(self, url: str, auth: Auth | None = None) -> bool:
        """Point the subscription at `url`. Credentials stored for another URL are dropped unless `auth` is given
        again (with the change): a new URL must not collect them. True when some were dropped."""
        dropped = auth is None and url != self.url and bool(self.auth.secrets())
        self.url = url
        if auth is not None:
            self.auth = auth
        elif dropped:
            self.auth = platforms.get(self.platform).default_auth()
        return dropped

    def to_dict(self) -> dict:
        """The simulator's view; credentials masked."""
        return {
            "id": self.id,
            "platform": self.platform,
            "event": self.event,
            "url": self.url,
            "auth": self.auth.masked(),
            "seed": self.seed,
            "overrides": self.overrides,
            "schedule": self.schedule.to_dict() if self.schedule else None,
            "paused": self.paused,
            "retry_delays": list(self.retry_delays) if self.retry_delays is not None else None,
            "timeout": self.timeout,
            "meta": self.meta,
            "profile": self.profile,
            "fired_count": self.fired_count,
            "last_fired_at": self.last_fired_at,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }


class SubscriptionRepo:
    """Subscriptions, redelivery links and settings, as the Store keeps them (one database, one transaction each).
    `store` is a simulator.store.Store (not imported here: the store imports this module's records)."""

    def __init__(self, store) -> None:
        self.store = store

    def add(self, sub: Subscription, now: float | None = None) -> Subscription:
        return self.store.add_subscription(sub, now)

    def save(self, sub: Subscription, now: float | None = None) -> Subscription:
        return self.store.save_subscription(sub, now)

    def get(self, sub_id: str) -> Subscription | None:
        return self.store.get_subscription(sub_id)

    def list(
        self, platform: str | None = None, event: str | None = None, url: str | None = None, active_only: bool = False
    ) -> list[Subscription]:
        return self.store.list_subscriptions(platform, event, url, active_only)

    def delete(self, sub_id: str) -> bool:
        return self.store.delete_subscription(sub_id)

    def count_fired(self, sub_id: str, now: float) -> int:
        """Count one firing; returns its number (0 for the first) so seeded firings differ yet reproduce."""
        return self.store.count_fired(sub_id, now)

    def link_redelivery(self, job_id: str, original_id: str) -> None:
        self.store.link_redelivery(job_id, original_id)

    def redelivery_of(self, job_id: str) -> str | None:
        return self.store.redelivery_of(job_id)

    def setting(self, name: str) -> str | None:
        return self.store.setting(name)

    def set_setting_once(self, name: str, value: str) -> str:
        return self.store.set_setting_once(name, value)

    def put_setting(self, name: str, value: str, drop: tuple[str, ...] = ()) -> None:
        self.store.put_setting(name, value, drop)
