"""The queue's RSA signing process and its keep-alive client: what is sent verifies, is recorded exactly, and a
signing process that dies or hangs never loses, fails or holds back a job."""

from __future__ import annotations

import os
import signal
import time

import pytest
from scripted_server import RawServer, ScriptedServer
from sim_helpers import wait_until

from simulator import catalogue, delivery, sign_process, signing
from simulator.auth import MASK, Auth
from simulator.models import EXHAUSTED, FINAL_STATES, SUCCEEDED
from simulator.queue import QueueWorker
from simulator.sign_process import SigningProcess

pytestmark = pytest.mark.skipif(not sign_process.SUPPORTED, reason="signing processes need POSIX")

RSA_EVENT = "BadgeExportZipFile.Created"


def rsa_job(url, seed=1, padding="pkcs1v15", delays=()):
    spec = catalogue.get_event(RSA_EVENT)
    body = catalogue.body_bytes(catalogue.generate(spec.name, seed=seed))
    auth = Auth("rsa", rsa_padding=padding)
    return delivery.new_job(spec.name, spec.platform, url, body, auth, delays=delays, timeout=5, source="test")


def started_signing(worker: QueueWorker, store, url) -> SigningProcess:
    """Start `worker` and wait until its signing process is up (the first RSA job starts it)."""
    store.add_job(rsa_job(url, seed=999))
    worker.start()
    wait_until(lambda: worker.signing_process is not None, timeout=30)
    wait_until(lambda: store.count_jobs(SUCCEEDED) >= 1, timeout=10)
    return worker.signing_process


def drain(store, n, timeout=30):
    wait_until(lambda: sum(store.count_jobs(state) for state in FINAL_STATES) >= n, timeout=timeout)


@pytest.mark.parametrize("padding", ["pkcs1v15", "pss"])
def test_rsa_jobs_signed_by_the_process_verify_and_are_recorded_as_sent(store, keys, padding):
    with ScriptedServer() as server:
        worker = QueueWorker(store, keys, threads=3, poll=0.05, signers=1)
        try:
            process = started_signing(worker, store, server.url + "/warm")
            jobs = [rsa_job(server.url + "/hook", seed=i, padding=padding) for i in range(40)]
            for job in jobs:
                store.add_job(job)
            drain(store, 41)
            assert process.signed >= 40  # these 40 were signed in the child, not in the delivery threads
            assert worker.signing_process is process  # and it is still the same, healthy process
        finally:
            worker.stop(10)
        got = {r["headers"]["X-JobId"]: r for r in server.requests if r["path"] == "/hook"}
    assert sorted(got) == sorted(job.id for job in jobs)
    for job in jobs:
        assert store.get_job(job.id).state == SUCCEEDED
        request = got[job.id]
        signing.rsa_verify(keys.public_key, request["body"], request["headers"]["X-Signature"], padding)
        (attempt,) = store.attempts(job.id)
        assert attempt.request_body == request["body"]
        for name, value in attempt.request_headers.items():  # exactly the headers sent (none is a credential)
            assert value != MASK and request["headers"][name] == value, name
        assert attempt.request_headers["X-Signature"] == request["headers"]["X-Signature"]


def test_the_process_signs_with_the_same_code_as_in_process_signing(keys):
    process = SigningProcess(keys)
    try:
        body = b'{"a": 1}'
        (ok, made), (ok_pss, pss) = process.sign([("pkcs1v15", body), ("pss", body)])
        assert ok and made == Auth("rsa").headers(body, keys)["X-Signature"]  # PKCS#1 v1.5 is deterministic
        assert ok_pss
        signing.rsa_verify(keys.public_key, body, pss, "pss")
        ((bad, reason),) = process.sign([("no-such-padding", body)])
        assert not bad and reason  # the in-process code's error, not a dead process
        assert process.sign([("pkcs1v15", body)])[0][0]  # and the process goes on signing
    finally:
        process.close()
    assert process.proc.poll() is not None  # closed: the child is gone


def test_a_killed_signing_process_loses_no_job_and_is_replaced(store, keys, monkeypatch):
    monkeypatch.setattr(sign_process, "SIGNER_RESTART", 0.2)
    with ScriptedServer() as server:
        worker = QueueWorker(store, keys, threads=2, poll=0.05, signers=1)
        try:
            first = started_signing(worker, store, server.url + "/warm")
            os.kill(first.pid, signal.SIGKILL)
            first.proc.wait(5)
            jobs = [rsa_job(server.url + "/hook", seed=i) for i in range(30)]
            for job in jobs:
                store.add_job(job)
            drain(store, 31)
            assert any("the signing process stopped (exit code -9)" in reason for reason in worker.signer_failures)
            for job in jobs:  # signed in the delivery threads meanwhile: delivered, not failed
                assert store.get_job(job.id).state == SUCCEEDED
            later = rsa_job(server.url + "/later", seed=77)
            time.sleep(0.3)  # past SIGNER_RESTART: the next RSA job starts another process
            store.add_job(later)
            wait_until(lambda: worker.signing_process not in (None, first), timeout=30)
            wait_until(lambda: store.get_job(later.id).state == SUCCEEDED, timeout=10)
        finally:
            worker.stop(10)
        received = [r for r in server.requests if r["path"] != "/warm"]
    assert len(received) == 31  # each job sent once
    for request in received:
        signing.rsa_verify(keys.public_key, request["body"], request["headers"]["X-Signature"], "pkcs1v15")


def test_a_hung_signing_process_is_given_up_within_its_timeout(store, keys, monkeypatch):
    monkeypatch.setattr(sign_process, "ANSWER_TIMEOUT", 0.5)
    monkeypatch.setattr(sign_process, "SIGNER_RESTART", 60.0)  # no new process in this test
    with ScriptedServer() as server:
        worker = QueueWorker(store, keys, threads=2, poll=0.05, signers=1)
        try:
            process = started_signing(worker, store, server.url + "/warm")
            os.kill(process.pid, signal.SIGSTOP)  # alive but never answers
            jobs = [rsa_job(server.url + "/hook", seed=i) for i in range(5)]
            for job in jobs:
                store.add_job(job)
            drain(store, 6)
            assert any("did not answer within 0.5 s" in reason for reason in worker.signer_failures)
            assert process.proc.poll() is not None  # killed, not left stopped
            assert worker.signing_process is None
            for job in jobs:
                assert store.get_job(job.id).state == SUCCEEDED
        finally:
            worker.stop(10)


def test_a_body_the_process_cannot_sign_ends_the_job_with_the_reason(store, keys):
    with ScriptedServer() as server:
        worker = QueueWorker(store, keys, threads=2, poll=0.05, signers=1)
        try:
            process = started_signing(worker, store, server.url + "/warm")
            job = rsa_job(server.url + "/hook")
            job.auth = Auth("rsa", rsa_padding="no-such-padding")  # stored as is: only signing finds it out
            store.add_job(job)
            drain(store, 2)
            assert worker.signing_process is process  # the process is fine; only the job failed
        finally:
            worker.stop(10)
    failed = store.get_job(job.id)
    assert failed.state == EXHAUSTED and failed.last_error.startswith("simulator error:")
    assert not [r for r in server.requests if r["path"] == "/hook"]


def test_the_queue_client_bounds_a_dripping_answer_by_the_timeout(store, keys):
    def drip(conn):
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n")
        try:
            for _ in range(400):
                conn.sendall(b"x")
                time.sleep(0.02)
        except OSError:
            pass

    with RawServer(drip) as server:
        job = rsa_job(server.url)
        job.timeout = 0.5
        store.add_job(job)
        worker = QueueWorker(store, keys, threads=1, poll=0.05, signers=0).start()
        try:
            drain(store, 1, timeout=4)  # the drip would last 8 s: the watchdog cut it
        finally:
            worker.stop(10)
    done = store.get_job(job.id)
    assert done.state == EXHAUSTED
    assert done.last_error == "timeout after 0.5 s while reading the answer"


def test_the_queue_client_does_not_follow_a_redirect(store, keys):
    script = [(302, b"", 0.0, {"Location": "http://127.0.0.1:9/elsewhere"})]
    with ScriptedServer(script) as server:
        job = rsa_job(server.url + "/hook")
        store.add_job(job)
        worker = QueueWorker(store, keys, threads=1, poll=0.05, signers=0).start()
        try:
            drain(store, 1)
        finally:
            worker.stop(10)
        assert [r["path"] for r in server.requests] == ["/hook"]
    (attempt,) = store.attempts(job.id)
    assert attempt.status == 302 and attempt.error == "HTTP 302 (redirect not followed)"
