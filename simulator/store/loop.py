"""The loop's SQL (issue 18): the calls a receiver makes back to the platforms' APIs, the objects those calls create
or change (delivery channels, mapped deliveries, print statuses), and where an id was sent (a look into job bodies)."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field

from ..models import Job
from .base import Database

SENT = "(attempts_made > 0 OR state = 'delivering')"  # a job a receiver may have seen (in flight counts)
CALL_BODY_CAP = 16 * 1024  # bytes of a call's request and answer bodies kept (with their whole lengths)


@dataclass
class Call:
    """One inbound call to a platform API, as it came and as it was answered (credentials masked by the caller)."""

    method: str
    path: str
    status: int
    started_at: float
    duration_ms: float
    platform: str | None = None
    query: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    body_length: int = 0
    response_body: bytes = b""
    response_length: int = 0
    job_id: str | None = None
    id: int | None = None


@dataclass
class ProviderObject:
    """Something a provider created or changed through a platform API: `kind` delivery_channel, provider_delivery,
    badge_export_zip; `status` its state there (pending, Approved, Rejected, a print status, mapped)."""

    platform: str
    kind: str
    id: str
    status: str
    data: dict = field(default_factory=dict)
    job_id: str | None = None
    due_at: float | None = None  # when a pending decision is due (None: waits for a person)
    created_at: float = 0.0
    updated_at: float = 0.0


class LoopQueries(Database):
    """The SQL of calls, provider objects and sent ids (mixed into Store)."""

    # -- calls ---------------------------------------------------------------------------------------------------
    def add_call(self, call: Call) -> Call:
        """Store `call`, its bodies cut to CALL_BODY_CAP bytes (the whole lengths kept)."""
        call.body_length = call.body_length or len(call.body)
        call.response_length = call.response_length or len(call.response_body)
        call.body, call.response_body = call.body[:CALL_BODY_CAP], call.response_body[:CALL_BODY_CAP]
        with self._transaction() as db:
            self._feed_lock(db)
            call.id = self._insert_id(
                db,
                "INSERT INTO calls (started_at, duration_ms, platform, method, path, query, headers_json, body, "
                "body_length, status, response_body, response_length, job_id) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    call.started_at,
                    call.duration_ms,
                    call.platform,
                    call.method,
                    call.path,
                    call.query,
                    json.dumps(call.headers),
                    call.body,
                    call.body_length,
                    call.status,
                    call.response_body,
                    call.response_length,
                    call.job_id,
                ),
            )
        return call

    def query_calls(
        self, *, path: str | None = None, job_id: str | None = None, since: float | None = None, limit: int = 100
    ) -> list[Call]:
        """Calls matching every filter given, newest first: `path` a prefix of the path, `since` a start time."""
        where, args = [], []
        if path is not None:
            where.append("substr(path, 1, ?) = ?")
            args += [len(path), path]
        if job_id is not None:
            where.append("job_id = ?")
            args.append(job_id)
        if since is not None:
            where.append("started_at >= ?")
            args.append(since)
        sql = "SELECT * FROM calls" + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY id DESC LIMIT ?"
        return [_call_from_row(r) for r in self._connection().execute(sql, [*args, limit])]

    def calls_after(self, after_id: int, limit: int = 200) -> list[Call]:
        """The change feed's calls: those recorded after the call `after_id`, oldest first."""
        rows = self._connection().execute("SELECT * FROM calls WHERE id > ? ORDER BY id LIMIT ?", (after_id, limit))
        return [_call_from_row(r) for r in rows]

    def last_call_id(self) -> int:
        """Where the change feed's calls end now: the last call's id, 0 for none."""
        return self._connection().execute("SELECT COALESCE(MAX(id), 0) FROM calls").fetchone()[0]

    # -- provider objects ----------------------------------------------------------------------------------------
    def add_provider_object(self, obj: ProviderObject, now: float | None = None) -> bool:
        """Insert `obj`; False (nothing written) when one with its platform, kind and id exists."""
        obj.created_at = obj.updated_at = time.time() if now is None else now
        with self._transaction() as db:
            return (
                db.execute(
                    "INSERT INTO provider_objects (platform, kind, id, status, data_json, job_id, due_at, "
                    "created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?) ON CONFLICT (platform, kind, id) DO NOTHING",
                    _object_values(obj),
                ).rowcount
                > 0
            )

    def save_provider_object(self, obj: ProviderObject, only_if_status: str | None = None, now: float | None = None):
        """Insert or replace `obj`; with `only_if_status`, change a stored one only while its status is that
        (one writer wins a decision): True when written."""
        obj.updated_at = time.time() if now is None else now
        with self._transaction() as db:
            if only_if_status is not None:
                return (
                    db.execute(
                        "UPDATE provider_objects SET status = ?, data_json = ?, job_id = ?, due_at = ?, updated_at = ? "
                        "WHERE platform = ? AND kind = ? AND id = ? AND status = ?",
                        (
                            obj.status,
                            json.dumps(obj.data),
                            obj.job_id,
                            obj.due_at,
                            obj.updated_at,
                            obj.platform,
                            obj.kind,
                            obj.id,
                            only_if_status,
                        ),
                    ).rowcount
                    > 0
                )
            obj.created_at = obj.created_at or obj.updated_at
            db.execute(
                "INSERT INTO provider_objects (platform, kind, id, status, data_json, job_id, due_at, created_at, "
                "updated_at) VALUES (?,?,?,?,?,?,?,?,?) ON CONFLICT (platform, kind, id) DO UPDATE SET "
                "status = excluded.status, data_json = excluded.data_json, job_id = excluded.job_id, "
                "due_at = excluded.due_at, updated_at = excluded.updated_at",
                _object_values(obj),
            )
            return True

    def get_provider_object(self, platform: str, kind: str, obj_id: str) -> ProviderObject | None:
        row = (
            self._connection()
            .execute(
                "SELECT * FROM provider_objects WHERE platform = ? AND kind = ? AND id = ?", (platform, kind, obj_id)
            )
            .fetchone()
        )
        return _object_from_row(row) if row else None

    def list_provider_objects(
        self, platform: str, kind: str, status: str | None = None, limit: int = 500
    ) -> list[ProviderObject]:
        """Newest first."""
        sql = "SELECT * FROM provider_objects WHERE platform = ? AND kind = ?"
        args: list = [platform, kind]
        if status is not None:
            sql += " AND status = ?"
            args.append(status)
        rows = self._connection().execute(sql + " ORDER BY created_at DESC LIMIT ?", [*args, limit])
        return [_object_from_row(r) for r in rows]

    # -- what was sent -------------------------------------------------------------------------------------------
    def find_sent_job(self, event: str, key: str, value: str, within: str | None = None) -> Job | None:
        """The newest job of `event` sent (an attempt made, or one in flight: a receiver may call back before it
        answers) whose JSON body has `key` = `value` at its top
        level or, with `within`, in an object of its top-level list `within` (e.g. delivery[].deliveryId).
        Bodies that are not JSON (faults) are skipped."""
        if within is None:
            match, args = f"{self._json_text()} = ?", [key, value]
        else:
            match, args = self._json_list_has(), [within, key, value]
        row = (
            self._connection()
            .execute(
                f"SELECT id FROM jobs WHERE event = ? AND {SENT} AND {match} ORDER BY seq DESC LIMIT 1",
                [event, *args],
            )
            .fetchone()
        )
        return self.get_job(row[0]) if row else None  # JobQueries, mixed into the same Store

    def sent_values(self, event: str, key: str, limit: int = 500) -> list[tuple[str, Job]]:
        """(value of top-level `key`, job) of the jobs of `event` with an attempt made, newest first, one per value."""
        rows = self._connection().execute(
            f"SELECT id, v FROM (SELECT id, seq, {self._json_text()} AS v FROM jobs WHERE event = ? AND {SENT}) "
            "AS sent WHERE v IS NOT NULL ORDER BY seq DESC",
            (key, event),
        )
        seen: dict[str, str] = {}
        for job_id, value in rows.fetchall():
            if value not in seen:
                seen[value] = job_id
            if len(seen) >= limit:
                break
        return [(value, job) for value, job_id in seen.items() if (job := self.get_job(job_id)) is not None]


def _call_from_row(row) -> Call:
    return Call(
        id=row["id"],
        started_at=row["started_at"],
        duration_ms=row["duration_ms"],
        platform=row["platform"],
        method=row["method"],
        path=row["path"],
        query=row["query"],
        headers=json.loads(row["headers_json"]),
        body=bytes(row["body"]),
        body_length=row["body_length"],
        status=row["status"],
        response_body=bytes(row["response_body"]),
        response_length=row["response_length"],
        job_id=row["job_id"],
    )


def _object_values(obj: ProviderObject) -> tuple:
    """A provider object's columns, in the order the INSERTs name them."""
    return (
        obj.platform,
        obj.kind,
        obj.id,
        obj.status,
        json.dumps(obj.data),
        obj.job_id,
        obj.due_at,
        obj.created_at,
        obj.updated_at,
    )


def _object_from_row(row) -> ProviderObject:
    return ProviderObject(
        platform=row["platform"],
        kind=row["kind"],
        id=row["id"],
        status=row["status"],
        data=json.loads(row["data_json"]),
        job_id=row["job_id"],
        due_at=row["due_at"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )
