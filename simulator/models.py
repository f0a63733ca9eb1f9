"""The records that travel between modules: a Job (one notification, retried) and its Attempts."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass, field

from .auth import Auth

# Job states. `pending` waits for next_attempt_at; `delivering` has an attempt in flight;
# `succeeded` got a 2xx; `exhausted` has no attempts left (for ReachFive, its one attempt failed).
PENDING, DELIVERING, SUCCEEDED, EXHAUSTED = "pending", "delivering", "succeeded", "exhausted"
STATES = (PENDING, DELIVERING, SUCCEEDED, EXHAUSTED)
FINAL_STATES = (SUCCEEDED, EXHAUSTED)


def new_job_id() -> str:
    return str(uuid.uuid4())


# A stored body may be only the head of what was sent (the store caps it); its whole length and SHA-256 are kept
# beside it then (None: the head is the whole body). One reading of that for jobs and attempts alike:
def _truncated(head: bytes, length: int | None) -> bool:
    return length is not None and length > len(head)


def _full_length(head: bytes, length: int | None) -> int:
    return len(head) if length is None else length


def _full_sha256(head: bytes, sha256: str | None) -> str:
    return sha256 or hashlib.sha256(head).hexdigest()


@dataclass
class Job:
    event: str
    platform: str
    url: str
    body: bytes
    auth: Auth
    retry_delays: tuple[float, ...]
    timeout: float
    id: str = field(default_factory=new_job_id)
    state: str = PENDING
    attempts_made: int = 0
    next_attempt_at: float | None = None
    created_at: float = 0.0
    updated_at: float = 0.0
    last_status: int | None = None
    last_error: str | None = None
    subscription_id: str | None = None
    source: str = "cli"
    headers: dict = field(default_factory=dict)  # extra headers; a None value removes a default one
    profile: str = "documented"  # delivery profile (simulator.platforms): documented | accredit-like
    body_length: int | None = None  # the whole body's length when `body` holds only its first bytes (see Store)
    body_sha256: str | None = None
    fault: str | None = None  # the scenario fault this request carries (scenarios/faults.py), if any

    @property
    def max_attempts(self) -> int:
        return 1 + len(self.retry_delays)

    @property
    def body_truncated(self) -> bool:
        """True when `body` is only the stored head of what was sent (it cannot be sent again)."""
        return _truncated(self.body, self.body_length)

    @property
    def full_body_length(self) -> int:
        return _full_length(self.body, self.body_length)

    @property
    def full_body_sha256(self) -> str:
        return _full_sha256(self.body, self.body_sha256)

    @property
    def finished(self) -> bool:
        return self.state in FINAL_STATES


@dataclass
class Attempt:
    job_id: str
    number: int  # X-JobAttempt: 0 for the first try
    started_at: float
    duration_ms: float
    url: str
    request_headers: dict
    request_body: bytes
    status: int | None = None
    response_headers: dict = field(default_factory=dict)
    response_body: bytes = b""
    error: str | None = None
    id: int | None = None
    request_body_length: int | None = None  # the whole body's length when `request_body` holds only its head
    request_body_sha256: str | None = None

    @property
    def request_body_truncated(self) -> bool:
        return _truncated(self.request_body, self.request_body_length)

    @property
    def full_request_body_length(self) -> int:
        return _full_length(self.request_body, self.request_body_length)

    @property
    def full_request_body_sha256(self) -> str:
        return _full_sha256(self.request_body, self.request_body_sha256)

    @property
    def ok(self) -> bool:
        return self.error is None and self.status is not None and 200 <= self.status < 300
