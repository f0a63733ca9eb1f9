"""Jobs (the delivery queue), attempts (the delivery log) and the change feed over both."""

from __future__ import annotations

import hashlib
import json
import time

from ..auth import Auth
from ..models import DELIVERING, FINAL_STATES, PENDING, Attempt, Job
from .base import Database

# Jobs that the process which created them delivers itself (`accessrc-sim send`, scenario runs): a server's
# queue worker sharing the database never claims or recovers them, or both would send every attempt.
SELF_DRIVEN = ("cli", "scenario")
_QUEUED = f"source NOT IN ({', '.join('?' * len(SELF_DRIVEN))})"

# Bytes of a request body kept in an attempt row (with the whole body's length and SHA-256). A job row keeps the
# body it sends, whole, so retries and redelivery send the same bytes; only a scenario step's job (sent once, from
# the run's memory, e.g. the oversized_body fault) is kept like an attempt, and so cannot be redelivered.
STORED_BODY_CAP = 64 * 1024
CAPPED_JOB_SOURCES = ("scenario",)
# A server's claim on a job it is delivering lasts this long and is renewed while the attempt runs; a job left
# `delivering` by a server that died is claimed again only once its lease has run out.
LEASE_SECONDS = 15.0

JOB_COLUMNS = (
    "id",
    "event",
    "platform",
    "url",
    "body",
    "auth_json",
    "headers_json",
    "retry_delays_json",
    "timeout",
    "state",
    "attempts_made",
    "next_attempt_at",
    "created_at",
    "updated_at",
    "last_status",
    "last_error",
    "subscription_id",
    "source",
    "profile",
    "body_length",
    "body_sha256",
    "fault",
)


class LeaseLost(RuntimeError):
    """The job was claimed by another server after this one's lease ran out."""


class JobQueries(Database):
    """The SQL of jobs, attempts and the change feed (mixed into Store). A job's `seq` is its place in the log:
    it orders pages and the feed, and is the cursor clients resume from."""

    def add_job(self, job: Job, now: float | None = None) -> Job:
        now = time.time() if now is None else now
        job.created_at = job.updated_at = now
        if job.next_attempt_at is None and job.state == PENDING:
            job.next_attempt_at = now
        row = _job_row(job)
        job.body_length, job.body_sha256 = row["body_length"], row["body_sha256"]
        with self._transaction() as db:
            self._feed_lock(db)
            db.execute(
                f"INSERT INTO jobs ({', '.join(JOB_COLUMNS)}) VALUES ({', '.join('?' * len(JOB_COLUMNS))})",
                [row[c] for c in JOB_COLUMNS],
            )
        return job

    def get_job(self, job_id: str) -> Job | None:
        row = self._connection().execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return _job_from_row(row) if row else None

    def job_seq(self, job_id: str) -> int | None:
        row = self._connection().execute("SELECT seq FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return row[0] if row else None

    def query_jobs(
        self,
        *,
        job_id: str | None = None,
        event: str | None = None,
        subscription_id: str | None = None,
        state: str | None = None,
        platform: str | None = None,
        source: str | None = None,
        after_seq: int | None = None,
        before_seq: int | None = None,
        limit: int | None = 100,
    ) -> list[tuple[int, Job]]:
        """(seq, job) of the jobs matching every filter given: newest first, or, with `after_seq`, oldest first
        (the change feed). `limit=None`: all of them."""
        where, args = [], []
        for column, value in (
            ("id", job_id),
            ("event", event),
            ("subscription_id", subscription_id),
            ("state", state),
            ("platform", platform),
            ("source", source),
        ):
            if value is not None:
                where.append(f"{column} = ?")
                args.append(value)
        for bound, value in (("seq > ?", after_seq), ("seq < ?", before_seq)):
            if value is not None:
                where.append(bound)
                args.append(value)
        sql = (
            "SELECT * FROM jobs"
            + (" WHERE " + " AND ".join(where) if where else "")
            + f" ORDER BY seq {'ASC' if after_seq is not None else 'DESC'}"
            + (" LIMIT ?" if limit is not None else "")
        )
        rows = self._connection().execute(sql, [*args] if limit is None else [*args, limit])
        return [(row["seq"], _job_from_row(row)) for row in rows]

    def count_by_state(self) -> dict[str, int]:
        """Jobs per state (states with none are left out)."""
        return dict(self._connection().execute("SELECT state, COUNT(*) FROM jobs GROUP BY state").fetchall())

    def feed_position(self) -> tuple[int, int]:
        """Where the change feed ends now: (the last attempt id, the last job seq); 0 for none."""
        row = (
            self._connection()
            .execute("SELECT (SELECT COALESCE(MAX(id), 0) FROM attempts), (SELECT COALESCE(MAX(seq), 0) FROM jobs)")
            .fetchone()
        )
        return row[0], row[1]

    def count_jobs(self, state: str | None = None) -> int:
        if state is None:
            return self._connection().execute("SELECT COUNT(*) FROM jobs").fetchone()[0]
        return self._connection().execute("SELECT COUNT(*) FROM jobs WHERE state = ?", (state,)).fetchone()[0]

    def claim_due(
        self,
        now: float,
        limit: int = 10,
        owner: str | None = None,
        lease: float = LEASE_SECONDS,
        holding=None,
    ) -> list[Job]:
        """Mark up to `limit` due jobs as delivering by `owner` until `now + lease` and return them (one writer
        wins each job). Due: pending and due, or delivering under a lease that has run out: another owner's (a
        server that died mid-attempt; the attempt number continues from the attempts recorded) or, when the caller
        says which job ids it is `holding` (delivering now), its own ones that it no longer holds (their attempt
        could not be recorded nor the job given back: a full disk). Without `holding`, the owner's own jobs are
        left alone. Jobs of SELF_DRIVEN sources are never claimed: the process that created them is delivering
        them."""
        if holding is None:
            whose, whose_args = "AND (owner IS NULL OR owner IS NOT ?) ", (owner,)
        else:
            held = list(holding)
            whose = (
                f"AND (owner IS NULL OR owner IS NOT ? OR id NOT IN ({', '.join('?' * len(held))})) " if held else ""
            )
            whose_args = (owner, *held) if held else ()
        with self._transaction() as db:
            rows = db.execute(
                f"SELECT * FROM jobs WHERE state = ? AND next_attempt_at <= ? AND {_QUEUED} "
                f"ORDER BY next_attempt_at, seq LIMIT ?{self.SKIP_LOCKED}",
                (PENDING, now, *SELF_DRIVEN, limit),
            ).fetchall()
            if len(rows) < limit:
                rows += db.execute(
                    f"SELECT * FROM jobs WHERE state = ? AND (lease_until IS NULL OR lease_until <= ?) "
                    f"{whose}AND {_QUEUED} ORDER BY seq LIMIT ?{self.SKIP_LOCKED}",
                    (DELIVERING, now, *whose_args, *SELF_DRIVEN, limit - len(rows)),
                ).fetchall()
            jobs = [_job_from_row(r) for r in rows]
            for job in jobs:
                db.execute(
                    "UPDATE jobs SET state = ?, updated_at = ?, owner = ?, lease_until = ? WHERE id = ?",
                    (DELIVERING, now, owner, now + lease, job.id),
                )
                job.state = DELIVERING
        return jobs

    def renew_leases(self, owner: str, job_ids, until: float) -> int:
        """Extend `owner`'s lease on the jobs it is still delivering; the number renewed."""
        ids = list(job_ids)
        if not ids:
            return 0
        with self._transaction() as db:
            return db.execute(
                f"UPDATE jobs SET lease_until = ? WHERE owner = ? AND state = ? AND id IN "
                f"({', '.join('?' * len(ids))})",
                (until, owner, DELIVERING, *ids),
            ).rowcount

    def release(self, job: Job, due: float, owner: str | None = None) -> bool:
        """Give a claimed job back, due at `due`, its attempt count unchanged (nothing was recorded)."""
        with self._transaction() as db:
            return (
                db.execute(
                    "UPDATE jobs SET state = ?, next_attempt_at = ?, owner = NULL, lease_until = NULL "
                    "WHERE id = ? AND state = ? AND owner IS ?",
                    (PENDING, due, job.id, DELIVERING, owner),
                ).rowcount
                > 0
            )

    def mark_delivering(self, job: Job, now: float) -> None:
        with self._transaction() as db:
            db.execute("UPDATE jobs SET state = ?, updated_at = ? WHERE id = ?", (DELIVERING, now, job.id))
        job.state = DELIVERING

    def finish_attempt(self, job: Job, attempt: Attempt, owner: str | None = None) -> None:
        """Record `attempt` and the job's new state in one transaction. With `owner`, only while the job is still
        claimed by it (LeaseLost otherwise: another server took it over; nothing is recorded).
        At most STORED_BODY_CAP bytes of the request body are kept, with its length and SHA-256 (set on
        `attempt` too); a job that ends drops its credentials (redelivery takes its subscription's)."""
        if self.finish_attempts([(job, attempt)], owner):
            raise LeaseLost(
                f"job {job.id} is no longer claimed by this server (its lease ran out and another "
                f"server claimed it); attempt {attempt.number} was not recorded here"
            )

    def finish_attempts(self, finished, owner: str | None) -> list[Job]:
        """`finish_attempt` for many (job, attempt) pairs in one transaction (the queue worker records its
        attempts in batches). Each is recorded only while its job is still claimed by `owner`; the jobs that were
        not (their lease ran out and another server claimed them: nothing recorded for them) are returned.
        A database error records none of them. The jobs' new states are written first, then the attempts in one
        go, so the change feed's lock (PostgreSQL) is held only from those inserts to the commit."""
        lost, kept = [], []
        scrub = False
        with self._transaction() as db:
            for job, attempt in finished:
                (kept if self._finish_job(db, job, owner) else lost).append((job, attempt))
                scrub = scrub or _clears_credentials(job)
            rows = []
            for _, attempt in kept:
                body, length, sha256 = _capped(attempt.request_body, STORED_BODY_CAP)
                attempt.request_body, attempt.request_body_length, attempt.request_body_sha256 = body, length, sha256
                rows.append(_attempt_values(attempt))
            if rows:
                self._feed_lock(db)
                ids = self._insert_ids(
                    db,
                    "INSERT INTO attempts (job_id, number, started_at, duration_ms, url, request_headers_json, "
                    "request_body, status, response_headers_json, response_body, error, request_body_length, "
                    "request_body_sha256) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    rows,
                )
                for (_, attempt), attempt_id in zip(kept, ids, strict=True):
                    attempt.id = attempt_id
        if scrub:
            self.scrub_wal()  # the cleared credentials' old page images: out of the WAL file soon
        return [job for job, _ in lost]

    def _finish_job(self, db, job: Job, owner: str | None) -> bool:
        """Inside a transaction: the job's new state after an attempt; False (nothing written) when `owner` no
        longer holds the job."""
        fence = " AND owner = ? AND state = ?" if owner is not None else ""
        changed = db.execute(
            "UPDATE jobs SET state = ?, attempts_made = ?, next_attempt_at = ?, updated_at = ?, last_status = ?, "
            f"last_error = ?, auth_json = ?, owner = NULL, lease_until = NULL WHERE id = ?{fence}",
            (
                job.state,
                job.attempts_made,
                job.next_attempt_at,
                job.updated_at,
                job.last_status,
                job.last_error,
                _auth_json(job),
                job.id,
                *((owner, DELIVERING) if owner is not None else ()),
            ),
        ).rowcount
        return owner is None or changed > 0

    def update_job(self, job: Job) -> None:
        """Write every column of `job` (its claim, if any, ends)."""
        row = _job_row(job)
        cols = [c for c in JOB_COLUMNS if c != "id"]
        with self._transaction() as db:
            db.execute(
                f"UPDATE jobs SET {', '.join(c + ' = ?' for c in cols)}, owner = NULL, lease_until = NULL WHERE id = ?",
                [row[c] for c in cols] + [job.id],
            )
        if _clears_credentials(job):
            self.scrub_wal()

    def recover_interrupted(self, now: float | None = None) -> list[str]:
        """At a start: the jobs left `delivering` by a stop or a crash (on a shared database: only those whose lease
        has run out, the others being delivered by another server now). Those whose lease has run out go back to
        pending, due now; the others are claimed when their lease runs out (claim_due). Their attempt number
        continues from the attempts actually recorded, so only the attempt in flight at the crash is sent again."""
        now = time.time() if now is None else now
        expired = "(lease_until IS NULL OR lease_until <= ?)"
        with self._transaction() as db:
            # On a shared database, a job under a live lease is another server's, delivering now: not interrupted
            alive = f" AND {expired}" if self.shared else ""
            ids = [
                r[0]
                for r in db.execute(
                    f"SELECT id FROM jobs WHERE state = ? AND {_QUEUED}{alive} ORDER BY seq",
                    (DELIVERING, *SELF_DRIVEN, *((now,) if self.shared else ())),
                )
            ]
            db.execute(
                f"UPDATE jobs SET state = ?, next_attempt_at = ?, updated_at = ?, owner = NULL, "
                f"lease_until = NULL WHERE state = ? AND {expired} AND {_QUEUED}",
                (PENDING, now, now, DELIVERING, now, *SELF_DRIVEN),
            )
        return ids

    def purge_finished(self, before: float, batch: int = 500) -> int:
        """Delete finished jobs last changed before `before`, with their attempts (retention); the number deleted.
        Short transactions of `batch` jobs, so deliveries never wait long for the write lock."""
        deleted = 0
        finals = ", ".join("?" * len(FINAL_STATES))
        while True:
            with self._transaction() as db:
                ids = [
                    r[0]
                    for r in db.execute(
                        f"SELECT id FROM jobs WHERE state IN ({finals}) AND updated_at < ? LIMIT ?",
                        (*FINAL_STATES, before, batch),
                    )
                ]
                if not ids:
                    return deleted
                marks = ", ".join("?" * len(ids))
                db.execute(f"DELETE FROM attempts WHERE job_id IN ({marks})", ids)
                db.execute(f"DELETE FROM redeliveries WHERE job_id IN ({marks})", ids)
                db.execute(f"DELETE FROM jobs WHERE id IN ({marks})", ids)
            deleted += len(ids)

    def next_due_at(self) -> float | None:
        row = (
            self._connection()
            .execute(f"SELECT MIN(next_attempt_at) FROM jobs WHERE state = ? AND {_QUEUED}", (PENDING, *SELF_DRIVEN))
            .fetchone()
        )
        return row[0]

    # -- attempts --------------------------------------------------------------------------------
    def attempts(self, job_id: str) -> list[Attempt]:
        rows = self._connection().execute("SELECT * FROM attempts WHERE job_id = ? ORDER BY number", (job_id,))
        return [_attempt_from_row(r) for r in rows]

    def recent_attempts(self, since_id: int = 0, limit: int = 200) -> list[Attempt]:
        rows = self._connection().execute("SELECT * FROM attempts WHERE id > ? ORDER BY id LIMIT ?", (since_id, limit))
        return [_attempt_from_row(r) for r in rows]


def _capped(body: bytes, cap: int) -> tuple[bytes, int | None, str | None]:
    """(the bytes to store, the whole length, its SHA-256): length and hash always set for new rows."""
    return body[:cap], len(body), hashlib.sha256(body).hexdigest()


def _attempt_values(attempt: Attempt) -> tuple:
    """An attempt's columns, in the order the INSERT names them (its body already capped)."""
    return (
        attempt.job_id,
        attempt.number,
        attempt.started_at,
        attempt.duration_ms,
        attempt.url,
        json.dumps(attempt.request_headers),
        attempt.request_body,
        attempt.status,
        json.dumps(attempt.response_headers),
        attempt.response_body,
        attempt.error,
        attempt.request_body_length,
        attempt.request_body_sha256,
    )


def _clears_credentials(job: Job) -> bool:
    """The job has ended: writing it drops credential values it has (see _auth_json)."""
    return job.finished and job.auth != job.auth.without_secrets()


def _auth_json(job: Job) -> str:
    """A job keeps its credentials only while it can still be sent; a finished one keeps the kind alone."""
    return json.dumps((job.auth.without_secrets() if job.finished else job.auth).to_dict())


def _job_row(job: Job) -> dict:
    if job.body_length is not None and job.body_length > len(job.body):  # read back already cut: keep as stored
        body, length, sha256 = job.body, job.body_length, job.body_sha256
    else:
        body, length, sha256 = _capped(job.body, STORED_BODY_CAP if job.source in CAPPED_JOB_SOURCES else len(job.body))
    return {
        "id": job.id,
        "event": job.event,
        "platform": job.platform,
        "url": job.url,
        "body": body,
        "body_length": length,
        "body_sha256": sha256,
        "auth_json": _auth_json(job),
        "headers_json": json.dumps(job.headers),
        "retry_delays_json": json.dumps(list(job.retry_delays)),
        "timeout": job.timeout,
        "state": job.state,
        "attempts_made": job.attempts_made,
        "next_attempt_at": job.next_attempt_at,
        "created_at": job.created_at,
        "updated_at": job.updated_at,
        "last_status": job.last_status,
        "last_error": job.last_error,
        "subscription_id": job.subscription_id,
        "source": job.source,
        "profile": job.profile,
        "fault": job.fault,
    }


def _job_from_row(row) -> Job:
    return Job(
        id=row["id"],
        event=row["event"],
        platform=row["platform"],
        url=row["url"],
        body=bytes(row["body"]),
        auth=Auth.from_dict(json.loads(row["auth_json"])),
        headers=json.loads(row["headers_json"]),
        retry_delays=tuple(json.loads(row["retry_delays_json"])),
        timeout=row["timeout"],
        state=row["state"],
        attempts_made=row["attempts_made"],
        next_attempt_at=row["next_attempt_at"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        last_status=row["last_status"],
        last_error=row["last_error"],
        subscription_id=row["subscription_id"],
        source=row["source"],
        profile=row["profile"],
        body_length=row["body_length"],
        body_sha256=row["body_sha256"],
        fault=row["fault"],
    )


def _attempt_from_row(row) -> Attempt:
    return Attempt(
        id=row["id"],
        job_id=row["job_id"],
        number=row["number"],
        started_at=row["started_at"],
        duration_ms=row["duration_ms"],
        url=row["url"],
        request_headers=json.loads(row["request_headers_json"]),
        request_body=bytes(row["request_body"]),
        status=row["status"],
        response_headers=json.loads(row["response_headers_json"]),
        response_body=bytes(row["response_body"]),
        error=row["error"],
        request_body_length=row["request_body_length"],
        request_body_sha256=row["request_body_sha256"],
    )
