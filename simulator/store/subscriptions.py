"""Subscriptions, the redelivery links (which job a resend repeats) and the simulator's settings (the admin key's
hash): the SQL of what the simulator keeps beside the queue."""

from __future__ import annotations

import json
import time

from ..auth import Auth
from ..subscriptions import Schedule, Subscription
from .base import Database


class SubscriptionQueries(Database):
    """The SQL of subscriptions, redeliveries and settings (mixed into Store)."""

    def add_subscription(self, sub: Subscription, now: float | None = None) -> Subscription:
        sub.created_at = sub.updated_at = time.time() if now is None else now
        row = _row(sub)
        with self._transaction() as db:
            db.execute(
                f"INSERT INTO subscriptions ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})", list(row.values())
            )
        return sub

    def save_subscription(self, sub: Subscription, now: float | None = None) -> Subscription:
        """Write what a caller may change; the firing count and creation time stay as stored."""
        sub.updated_at = time.time() if now is None else now
        row = _row(sub)
        for counted in ("id", "fired_count", "last_fired_at", "created_at"):  # owned by add/count_fired
            row.pop(counted)
        with self._transaction() as db:
            db.execute(
                f"UPDATE subscriptions SET {', '.join(c + ' = ?' for c in row)} WHERE id = ?", [*row.values(), sub.id]
            )
        return sub

    def get_subscription(self, sub_id: str) -> Subscription | None:
        row = self._connection().execute("SELECT * FROM subscriptions WHERE id = ?", (sub_id,)).fetchone()
        return _from_row(row) if row else None

    def list_subscriptions(
        self, platform: str | None = None, event: str | None = None, url: str | None = None, active_only: bool = False
    ) -> list[Subscription]:
        """Those matching every filter given, oldest first."""
        where, args = [], []
        for column, value in (("platform", platform), ("event", event), ("url", url)):
            if value is not None:
                where.append(f"{column} = ?")
                args.append(value)
        if active_only:
            where.append("paused = 0")
        sql = "SELECT * FROM subscriptions" + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY seq"
        return [_from_row(r) for r in self._connection().execute(sql, args)]

    def delete_subscription(self, sub_id: str) -> bool:
        with self._transaction() as db:
            return db.execute("DELETE FROM subscriptions WHERE id = ?", (sub_id,)).rowcount > 0

    def count_fired(self, sub_id: str, now: float) -> int:
        """Count one firing; returns its number (0 for the first; -1 for no such subscription)."""
        with self._transaction() as db:
            row = db.execute("SELECT fired_count FROM subscriptions WHERE id = ?", (sub_id,)).fetchone()
            if row is None:
                return -1
            db.execute(
                "UPDATE subscriptions SET fired_count = fired_count + 1, last_fired_at = ? WHERE id = ?", (now, sub_id)
            )
            return row[0]

    def claim_firing(self, sub_id: str, due_at: float, now: float) -> bool:
        """Take the firing of subscription `sub_id` due at `due_at` (its schedule's time, the same on every server
        sharing the database): True for the one caller that takes it, False for every other. Firings more than a
        day older than this one are forgotten as it is taken."""
        with self._transaction() as db:
            taken = (
                db.execute(
                    "INSERT INTO firings (subscription_id, due_at, fired_at) VALUES (?, ?, ?) "
                    "ON CONFLICT (subscription_id, due_at) DO NOTHING",
                    (sub_id, due_at, now),
                ).rowcount
                > 0
            )
            if taken:
                db.execute("DELETE FROM firings WHERE subscription_id = ? AND due_at < ?", (sub_id, due_at - 86400))
            return taken

    # -- redeliveries (which job a resend repeats; ReachFive has no X-JobId to tell it) -----------
    def link_redelivery(self, job_id: str, original_id: str) -> None:
        with self._transaction() as db:
            db.execute(
                "INSERT INTO redeliveries (job_id, original_id) VALUES (?, ?) "
                "ON CONFLICT (job_id) DO UPDATE SET original_id = excluded.original_id",
                (job_id, original_id),
            )

    def redelivery_of(self, job_id: str) -> str | None:
        row = self._connection().execute("SELECT original_id FROM redeliveries WHERE job_id = ?", (job_id,)).fetchone()
        return row[0] if row else None

    # -- simulator settings (the admin key's hash) --------------------------------------------------
    def setting(self, name: str) -> str | None:
        row = self._connection().execute("SELECT value FROM sim_settings WHERE name = ?", (name,)).fetchone()
        return row[0] if row else None

    def set_setting_once(self, name: str, value: str) -> str:
        """Store `value` unless a value is already there; return the one that holds (first writer wins)."""
        with self._transaction() as db:
            db.execute(
                "INSERT INTO sim_settings (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING", (name, value)
            )
            return db.execute("SELECT value FROM sim_settings WHERE name = ?", (name,)).fetchone()[0]

    def put_setting(self, name: str, value: str, drop: tuple[str, ...] = ()) -> None:
        """Store `value` (replacing any) and delete the settings named in `drop`, in one transaction."""
        with self._transaction() as db:
            db.execute(
                "INSERT INTO sim_settings (name, value) VALUES (?, ?) "
                "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                (name, value),
            )
            for other in drop:
                db.execute("DELETE FROM sim_settings WHERE name = ?", (other,))


def _row(sub: Subscription) -> dict:
    return {
        "id": sub.id,
        "platform": sub.platform,
        "event": sub.event,
        "url": sub.url,
        "auth_json": json.dumps(sub.auth.to_dict()),
        "seed": sub.seed,
        "overrides_json": json.dumps(sub.overrides),
        "schedule_json": json.dumps(sub.schedule.to_dict()) if sub.schedule else None,
        "paused": int(sub.paused),
        "retry_delays_json": json.dumps(list(sub.retry_delays)) if sub.retry_delays is not None else None,
        "timeout": sub.timeout,
        "meta_json": json.dumps(sub.meta),
        "profile": sub.profile,
        "fired_count": sub.fired_count,
        "last_fired_at": sub.last_fired_at,
        "created_at": sub.created_at,
        "updated_at": sub.updated_at,
    }


def _from_row(row) -> Subscription:
    delays = row["retry_delays_json"]
    return Subscription(
        id=row["id"],
        platform=row["platform"],
        event=row["event"],
        url=row["url"],
        auth=Auth.from_dict(json.loads(row["auth_json"])),
        seed=row["seed"],
        overrides=json.loads(row["overrides_json"]),
        schedule=Schedule.from_dict(json.loads(row["schedule_json"]) if row["schedule_json"] else None),
        paused=bool(row["paused"]),
        retry_delays=tuple(json.loads(delays)) if delays is not None else None,
        timeout=row["timeout"],
        meta=json.loads(row["meta_json"]),
        profile=row["profile"],
        fired_count=row["fired_count"],
        last_fired_at=row["last_fired_at"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )
