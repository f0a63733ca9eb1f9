"""The retry decision (`delivery.advance`) on its own: a 2xx succeeds; anything else retries while the schedule has
delays left, at `now + delay`; then the job is exhausted. No HTTP, no store, no clock."""

from __future__ import annotations

import pytest

from simulator.auth import Auth
from simulator.delivery import advance
from simulator.models import EXHAUSTED, PENDING, SUCCEEDED, Attempt, Job


def _job(delays=(1.0, 2.0, 4.0)) -> Job:
    return Job(
        event="E",
        platform="accredit",
        url="http://127.0.0.1:9/",
        body=b"{}",
        auth=Auth("rsa"),
        retry_delays=tuple(delays),
        timeout=10.0,
    )


def _attempt(number: int, status: int | None, error: str | None = None) -> Attempt:
    if error is None and status is not None and not 200 <= status < 300:
        error = f"HTTP {status}"
    return Attempt(
        job_id="j",
        number=number,
        started_at=0.0,
        duration_ms=1.0,
        url="u",
        request_headers={},
        request_body=b"",
        status=status,
        error=error,
    )


def test_a_2xx_succeeds_at_once():
    job = advance(_job(), _attempt(0, 204), now=100.0)
    assert (job.state, job.attempts_made, job.next_attempt_at, job.last_status, job.last_error) == (
        SUCCEEDED,
        1,
        None,
        204,
        None,
    )


@pytest.mark.parametrize(
    "status,error",
    [
        (400, None),
        (500, None),
        (301, "HTTP 301 (redirect not followed)"),
        (None, "timeout after 10 s"),
        (None, "connection error: refused"),
    ],
)
def test_anything_else_is_retried_after_the_next_delay(status, error):
    """Accredit documents that a 400 is retried too: the decision does not look at which failure it was."""
    job = advance(_job(), _attempt(0, status, error), now=100.0)
    assert (job.state, job.attempts_made, job.next_attempt_at) == (PENDING, 1, 101.0)
    assert job.last_error == (error or f"HTTP {status}")
    job = advance(job, _attempt(1, status, error), now=200.0)
    assert (job.state, job.next_attempt_at) == (PENDING, 202.0)  # the second delay, from the time of the answer


def test_the_schedule_running_out_exhausts_the_job():
    job = _job(delays=(0.5,))
    advance(job, _attempt(0, 500), now=10.0)
    assert (job.state, job.next_attempt_at) == (PENDING, 10.5)
    advance(job, _attempt(1, 503), now=11.0)
    assert (job.state, job.attempts_made, job.next_attempt_at, job.last_status) == (EXHAUSTED, 2, None, 503)


def test_no_delays_means_one_attempt():
    """ReachFive's fire-and-forget: one failure is final."""
    job = advance(_job(delays=()), _attempt(0, 500), now=1.0)
    assert (job.state, job.attempts_made) == (EXHAUSTED, 1)


def test_a_success_after_failures_clears_the_error():
    job = _job()
    advance(job, _attempt(0, 500), now=1.0)
    advance(job, _attempt(1, 200), now=2.0)
    assert (job.state, job.last_error, job.last_status, job.attempts_made) == (SUCCEEDED, None, 200, 2)


def test_attempts_are_counted_from_the_attempt_number_not_by_calls():
    """A job resumed after a crash (attempt 3 made elsewhere) continues the schedule from there."""
    job = advance(_job(), _attempt(2, 500), now=50.0)
    assert (job.attempts_made, job.state, job.next_attempt_at) == (3, PENDING, 54.0)
