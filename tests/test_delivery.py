import base64
import json

import pytest
from scripted_server import ScriptedServer, refused_url

from simulator import catalogue, delivery
from simulator.auth import Auth
from simulator.delivery import Deliverer, DeliveryError
from simulator.signing import hmac_signature, rsa_verify

FAIL = (500, b'{"status":"failed","error":{"code":500,"message":"Internal Server Error","type":"Exception"}}', 0, {})
BAD = (400, b'{"status":"failed"}', 0, {})
OK = (200, b'{"status":"success","message":"Callback successfully received","data":{}}', 0, {})


class FakeClock:
    """Wall time that only moves when the deliverer sleeps: retry gaps become exact and instant."""

    def __init__(self):
        self.now = 1_700_000_000.0
        self.sleeps = []

    def wall(self):
        return self.now

    def sleep(self, seconds):
        self.sleeps.append(round(seconds, 6))
        self.now += seconds


def make_job(platform, event, url, auth=None, delays=(0, 0, 0, 0, 0), timeout=5.0, seed=1):
    body = catalogue.body_bytes(catalogue.generate(event, seed=seed))
    return delivery.new_job(
        event,
        platform,
        url,
        body,
        auth or Auth("rsa" if platform == "accredit" else "none"),
        delays=delays,
        timeout=timeout,
    )


def test_accredit_first_attempt_headers_and_signature(store, keys):
    with ScriptedServer([OK]) as srv:
        job = make_job("accredit", "BadgeExportZipFile.Created", srv.url + "/baseWebhookNotification")
        Deliverer(store, keys).submit(job)
    [req] = srv.requests
    assert req["path"] == "/baseWebhookNotification"
    assert req["headers"]["Content-Type"] == "application/json"
    assert req["headers"]["X-JobId"] == job.id
    assert req["headers"]["X-JobAttempt"] == "0"
    assert req["body"] == job.body
    rsa_verify(keys.public_pem, req["body"], req["headers"]["X-Signature"])
    assert job.state == "succeeded" and job.attempts_made == 1


@pytest.mark.parametrize("failure", [FAIL, BAD], ids=["500", "400"])
def test_retries_until_success_with_same_job_id_and_counting_attempts(store, keys, failure):
    clock = FakeClock()
    with ScriptedServer([failure, failure, OK]) as srv:
        job = make_job("accredit", "Entity.Event", srv.url, delays=(1, 2, 4, 8, 16))
        Deliverer(store, keys, wall=clock.wall, sleep=clock.sleep).submit(job)
    assert [r["headers"]["X-JobAttempt"] for r in srv.requests] == ["0", "1", "2"]
    assert {r["headers"]["X-JobId"] for r in srv.requests} == {job.id}
    assert all(r["body"] == job.body for r in srv.requests)
    assert clock.sleeps == [1, 2]
    assert job.state == "succeeded"
    rows = store.attempts(job.id)
    assert [(a.number, a.status) for a in rows] == [(0, failure[0]), (1, failure[0]), (2, 200)]


def test_at_most_five_retries_then_exhausted(store, keys):
    with ScriptedServer(default=FAIL) as srv:
        job = make_job("accredit", "Entity.Event", srv.url)
        Deliverer(store, keys).submit(job)
    assert [r["headers"]["X-JobAttempt"] for r in srv.requests] == ["0", "1", "2", "3", "4", "5"]
    assert job.state == "exhausted"
    assert store.get_job(job.id).state == "exhausted"
    assert store.get_job(job.id).attempts_made == 6


def test_accessrc_hmac_retried_like_accredit_without_job_headers(store):
    """Retried (our inferred policy), but with no X-JobId/X-JobAttempt: AccessRC documents none."""
    with ScriptedServer([FAIL, OK]) as srv:
        job = make_job("accessrc", "DELIVERY_REFUND_REQUESTED", srv.url, Auth("hmac", secret="abcd1234"))
        Deliverer(store, None).submit(job)
    assert len(srv.requests) == 2
    for r in srv.requests:
        assert r["headers"]["x-signature"] == hmac_signature("abcd1234", job.body)
        assert "X-JobId" not in r["headers"] and "X-JobAttempt" not in r["headers"]


def test_reachfive_is_fire_and_forget_with_static_authorization(store):
    with ScriptedServer(default=FAIL) as srv:
        job = make_job(
            "reachfive",
            "END_JOB_NOTIFICATION",
            srv.url,
            Auth("authorization", authorization="Bearer mF_9.B5f-4.1JqM"),
            delays=None,
        )
        Deliverer(store, None).submit(job)
    [req] = srv.requests
    assert req["headers"]["Authorization"] == "Bearer mF_9.B5f-4.1JqM"
    assert "X-JobId" not in req["headers"] and "X-Signature" not in req["headers"]
    assert job.state == "exhausted" and job.attempts_made == 1


def test_timeout_is_a_failed_attempt_and_is_retried(store, keys):
    with ScriptedServer([(200, b"{}", 1.5, {}), OK]) as srv:
        job = make_job("accredit", "Entity.Event", srv.url, timeout=0.4)
        Deliverer(store, keys).submit(job)
    first, second = store.attempts(job.id)
    assert first.status is None and "timeout" in first.error
    assert first.duration_ms < 1400
    assert second.status == 200
    assert job.state == "succeeded"


def test_reachfive_timeout_gives_up_after_one_attempt(store):
    with ScriptedServer([(200, b"{}", 1.5, {})]) as srv:
        job = make_job("reachfive", "END_JOB_NOTIFICATION", srv.url, delays=None, timeout=0.3)
        Deliverer(store, None).submit(job)
    [only] = store.attempts(job.id)
    assert "timeout" in only.error and job.state == "exhausted"


def test_refused_connection_is_recorded_and_retried(store, keys):
    job = make_job("accredit", "Entity.Event", refused_url(), delays=(0, 0))
    Deliverer(store, keys).submit(job)
    rows = store.attempts(job.id)
    assert len(rows) == 3
    assert all(a.status is None and "Connection refused" in a.error for a in rows)


def test_redirect_is_a_failure_and_never_followed(store, keys):
    with ScriptedServer(default=(302, b"", 0, {"Location": "/elsewhere"})) as srv:
        job = make_job("accredit", "Entity.Event", srv.url + "/hook", delays=(0,))
        Deliverer(store, keys).submit(job)
    assert [r["path"] for r in srv.requests] == ["/hook", "/hook"]
    assert all(a.status == 302 and "redirect not followed" in a.error for a in store.attempts(job.id))
    assert job.state == "exhausted"


def test_attempt_rows_keep_request_and_bounded_response(store):
    huge = b"x" * (delivery.RESPONSE_BODY_CAP * 3)
    with ScriptedServer([(500, huge, 0, {"X-Trace": "t1"}), OK]) as srv:
        job = make_job(
            "accessrc", "DELIVERY_REFUND_REQUESTED", srv.url, Auth("basic", username="u", password="topsecret")
        )
        Deliverer(store, None).submit(job)
    first = store.attempts(job.id)[0]
    assert first.request_body == job.body
    assert first.request_headers["Authorization"] == "***"  # credentials never stored in clear
    assert first.number == 0 and "X-JobAttempt" not in first.request_headers  # AccessRC: documented profile
    assert len(first.response_body) == delivery.RESPONSE_BODY_CAP
    assert first.response_headers["X-Trace"] == "t1"
    assert first.duration_ms > 0
    second = store.attempts(job.id)[1]
    assert json.loads(second.response_body)["status"] == "success"


def test_retry_schedule_and_timeout_are_validated():
    with pytest.raises(DeliveryError, match="at most 5"):
        delivery.parse_delays("1,1,1,1,1,1")
    with pytest.raises(DeliveryError, match="numbers"):
        delivery.parse_delays("1,x")
    with pytest.raises(DeliveryError, match="0 or more"):
        delivery.parse_delays("-1")
    assert delivery.parse_delays("0,0,0,0,0") == (0, 0, 0, 0, 0)
    with pytest.raises(DeliveryError, match="timeout"):
        delivery.check_timeout(0)
    with pytest.raises(DeliveryError, match="http"):
        delivery.new_job("Entity.Event", "accredit", "ftp://x", b"{}", Auth("rsa"))


def test_interrupted_job_resumes_with_the_next_attempt_number(store, keys):
    """A crash while delivering: once the dead server's lease has run out the job goes back to pending, and
    X-JobAttempt continues."""
    from simulator.store import LEASE_SECONDS

    with ScriptedServer([FAIL, OK]) as srv:
        job = make_job("accredit", "Entity.Event", srv.url)
        job.source = "api"  # a queued job: the queue never claims the CLI's own jobs (store.SELF_DRIVEN)
        store.add_job(job)
        deliverer = Deliverer(store, keys)
        [claimed] = store.claim_due(now=job.next_attempt_at + 1)
        deliverer.run_once(claimed)  # attempt 0 fails, job pending again
        crashed_at = claimed.next_attempt_at + 1
        [claimed] = store.claim_due(now=crashed_at, owner="dead-server")  # "crash" while delivering attempt 1
        assert store.recover_interrupted(now=crashed_at + 1) == [job.id]  # its lease still holds: left alone
        assert store.get_job(job.id).state == "delivering"
        assert store.recover_interrupted(now=crashed_at + LEASE_SECONDS + 0.01) == [job.id]
        resumed = store.get_job(job.id)
        assert resumed.state == "pending" and resumed.attempts_made == 1
        deliverer.run_to_end(resumed)
    assert [r["headers"]["X-JobAttempt"] for r in srv.requests] == ["0", "1"]


def test_a_receiver_echoing_credentials_has_them_masked_in_the_log(store):
    """A receiver that answers with the credentials it got: the delivery log keeps *** instead."""
    password = "pa55-w0rd-echoed"
    token = base64.b64encode(f"u:{password}".encode()).decode()
    echo = (401, f'{{"got":"Basic {token}","password":"{password}"}}'.encode(), 0, {"X-Echo": f"Basic {token}"})
    with ScriptedServer([echo]) as srv:
        job = make_job(
            "accessrc", "DELIVERY_REFUND_REQUESTED", srv.url, Auth("basic", username="u", password=password), delays=()
        )
        Deliverer(store, None).submit(job)
    [attempt] = store.attempts(job.id)
    assert password.encode() not in attempt.response_body and token.encode() not in attempt.response_body
    assert json.loads(attempt.response_body) == {"got": "***", "password": "***"}
    assert attempt.response_headers["X-Echo"] == "***"
