"""Subscriptions: who gets which event, how it authenticates, and when it fires (on demand, interval, cron).

Stored in their own table of the Store's SQLite file, so jobs, attempts and subscriptions share one database.
"""
from __future__ import annotations

import json
import sqlite3
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from .auth import Auth, default_auth
from .store import migrate

SCHEMA = """
CREATE TABLE IF NOT EXISTS subscriptions (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    platform TEXT NOT NULL,
    event TEXT NOT NULL,
    url TEXT NOT NULL,
    auth_json TEXT NOT NULL,
    seed INTEGER,
    overrides_json TEXT NOT NULL DEFAULT '{}',
    schedule_json TEXT,
    paused INTEGER NOT NULL DEFAULT 0,
    retry_delays_json TEXT,
    timeout REAL,
    meta_json TEXT NOT NULL DEFAULT '{}',
    profile TEXT NOT NULL DEFAULT 'documented',
    fired_count INTEGER NOT NULL DEFAULT 0,
    last_fired_at REAL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS subscriptions_event ON subscriptions(platform, event);
CREATE TABLE IF NOT EXISTS redeliveries (
    job_id TEXT PRIMARY KEY,
    original_id TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS sim_settings (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""
# A subscription stored before profiles existed fires with its platform's documented profile from now on.
MIGRATIONS = (("subscriptions", "profile", "TEXT NOT NULL DEFAULT 'documented'", None),)


@dataclass
class Schedule:
    """When a subscription fires by itself: every `seconds`, or on a 5-field crontab `cron` (UTC)."""

    kind: str  # "interval" | "cron"
    seconds: float | None = None
    cron: str | None = None

    def to_dict(self) -> dict:
        return {"kind": self.kind, "seconds": self.seconds} if self.kind == "interval" else \
            {"kind": self.kind, "cron": self.cron}

    @classmethod
    def from_dict(cls, data: dict | None) -> "Schedule | None":
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
            self.auth = default_auth(self.platform)
        return dropped

    def to_dict(self) -> dict:
        """The simulator's view; credentials masked."""
        return {"id": self.id, "platform": self.platform, "event": self.event, "url": self.url,
                "auth": self.auth.masked(), "seed": self.seed, "overrides": self.overrides,
                "schedule": self.schedule.to_dict() if self.schedule else None, "paused": self.paused,
                "retry_delays": list(self.retry_delays) if self.retry_delays is not None else None,
                "timeout": self.timeout, "meta": self.meta, "profile": self.profile, "fired_count": self.fired_count,
                "last_fired_at": self.last_fired_at, "created_at": self.created_at, "updated_at": self.updated_at}


class SubscriptionRepo:
    """CRUD over the subscriptions table, sharing the Store's connection and transactions."""

    def __init__(self, store):
        self.store = store
        store.connection().executescript(SCHEMA)
        migrate(store.connection(), MIGRATIONS)

    def add(self, sub: Subscription, now: float | None = None) -> Subscription:
        sub.created_at = sub.updated_at = time.time() if now is None else now
        row = _row(sub)
        with self.store.transaction() as db:
            db.execute(f"INSERT INTO subscriptions ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",
                       list(row.values()))
        return sub

    def save(self, sub: Subscription, now: float | None = None) -> Subscription:
        sub.updated_at = time.time() if now is None else now
        row = _row(sub)
        for counted in ("id", "fired_count", "last_fired_at", "created_at"):  # owned by add()/count_fired()
            row.pop(counted)
        with self.store.transaction() as db:
            db.execute(f"UPDATE subscriptions SET {', '.join(c + ' = ?' for c in row)} WHERE id = ?",
                       [*row.values(), sub.id])
        return sub

    def get(self, sub_id: str) -> Subscription | None:
        row = self.store.connection().execute("SELECT * FROM subscriptions WHERE id = ?", (sub_id,)).fetchone()
        return _from_row(row) if row else None

    def list(self, platform: str | None = None, event: str | None = None, url: str | None = None,
             active_only: bool = False) -> list[Subscription]:
        where, args = [], []
        for column, value in (("platform", platform), ("event", event), ("url", url)):
            if value is not None:
                where.append(f"{column} = ?")
                args.append(value)
        if active_only:
            where.append("paused = 0")
        sql = "SELECT * FROM subscriptions" + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY seq"
        return [_from_row(r) for r in self.store.connection().execute(sql, args)]

    def delete(self, sub_id: str) -> bool:
        with self.store.transaction() as db:
            return db.execute("DELETE FROM subscriptions WHERE id = ?", (sub_id,)).rowcount > 0

    def count_fired(self, sub_id: str, now: float) -> int:
        """Count one firing; returns its number (0 for the first) so seeded firings differ yet reproduce."""
        with self.store.transaction() as db:
            row = db.execute("SELECT fired_count FROM subscriptions WHERE id = ?", (sub_id,)).fetchone()
            if row is None:
                return -1
            db.execute("UPDATE subscriptions SET fired_count = fired_count + 1, last_fired_at = ? WHERE id = ?",
                       (now, sub_id))
            return row[0]

    # -- redeliveries (which job a resend repeats; ReachFive has no X-JobId to tell it) -----------
    def link_redelivery(self, job_id: str, original_id: str) -> None:
        with self.store.transaction() as db:
            db.execute("INSERT OR REPLACE INTO redeliveries (job_id, original_id) VALUES (?, ?)",
                       (job_id, original_id))

    def redelivery_of(self, job_id: str) -> str | None:
        row = self.store.connection().execute("SELECT original_id FROM redeliveries WHERE job_id = ?",
                                              (job_id,)).fetchone()
        return row[0] if row else None

    # -- simulator settings (the admin key's hash) --------------------------------------------------
    def setting(self, name: str) -> str | None:
        row = self.store.connection().execute("SELECT value FROM sim_settings WHERE name = ?", (name,)).fetchone()
        return row[0] if row else None

    def set_setting_once(self, name: str, value: str) -> str:
        """Store `value` unless a value is already there; return the one that holds (first writer wins)."""
        with self.store.transaction() as db:
            db.execute("INSERT OR IGNORE INTO sim_settings (name, value) VALUES (?, ?)", (name, value))
            return db.execute("SELECT value FROM sim_settings WHERE name = ?", (name,)).fetchone()[0]

    def put_setting(self, name: str, value: str, drop: tuple[str, ...] = ()) -> None:
        """Store `value` (replacing any) and delete the settings named in `drop`, in one transaction."""
        with self.store.transaction() as db:
            db.execute("INSERT OR REPLACE INTO sim_settings (name, value) VALUES (?, ?)", (name, value))
            for other in drop:
                db.execute("DELETE FROM sim_settings WHERE name = ?", (other,))


def _row(sub: Subscription) -> dict:
    return {"id": sub.id, "platform": sub.platform, "event": sub.event, "url": sub.url,
            "auth_json": json.dumps(sub.auth.to_dict()), "seed": sub.seed,
            "overrides_json": json.dumps(sub.overrides),
            "schedule_json": json.dumps(sub.schedule.to_dict()) if sub.schedule else None,
            "paused": int(sub.paused),
            "retry_delays_json": json.dumps(list(sub.retry_delays)) if sub.retry_delays is not None else None,
            "timeout": sub.timeout, "meta_json": json.dumps(sub.meta), "profile": sub.profile,
            "fired_count": sub.fired_count,
            "last_fired_at": sub.last_fired_at, "created_at": sub.created_at, "updated_at": sub.updated_at}


def _from_row(row: sqlite3.Row) -> Subscription:
    delays = row["retry_delays_json"]
    return Subscription(id=row["id"], platform=row["platform"], event=row["event"], url=row["url"],
                        auth=Auth.from_dict(json.loads(row["auth_json"])), seed=row["seed"],
                        overrides=json.loads(row["overrides_json"]),
                        schedule=Schedule.from_dict(json.loads(row["schedule_json"]) if row["schedule_json"] else None),
                        paused=bool(row["paused"]),
                        retry_delays=tuple(json.loads(delays)) if delays is not None else None,
                        timeout=row["timeout"], meta=json.loads(row["meta_json"]), profile=row["profile"],
                        fired_count=row["fired_count"],
                        last_fired_at=row["last_fired_at"], created_at=row["created_at"], updated_at=row["updated_at"])
