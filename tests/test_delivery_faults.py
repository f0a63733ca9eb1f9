"""Receiver faults the sender survives and records (issue 7, item 3), against raw loopback servers."""

import resource
import socket
import time

from scripted_server import RawServer

from simulator import catalogue, delivery
from simulator.auth import Auth
from simulator.delivery import Deliverer


def job_for(url, timeout=1.0, delays=()):
    body = catalogue.body_bytes(catalogue.generate("DELIVERY_REFUND_REQUESTED", seed=1))
    return delivery.new_job(
        "DELIVERY_REFUND_REQUESTED", "accessrc", url, body, Auth("none"), delays=delays, timeout=timeout
    )


def test_reset_mid_response_is_a_failure(store):
    def reset(conn):
        conn.sendall(b'HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n{"status":')
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        conn.close()

    with RawServer(reset) as srv:
        job = job_for(srv.url, delays=(0,))
        Deliverer(store, None).submit(job)
    attempts = store.attempts(job.id)
    assert len(attempts) == 2 and job.state == "exhausted"
    assert all("cut off" in a.error for a in attempts)
    assert attempts[0].status == 200 and attempts[0].response_body.startswith(b'{"status":')


def test_slow_drip_answer_is_cut_at_the_timeout(store):
    def drip(conn):
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n")
        for _ in range(100):
            conn.sendall(b"x")
            time.sleep(0.1)

    with RawServer(drip) as srv:
        job = job_for(srv.url, timeout=1.0)
        started = time.monotonic()
        Deliverer(store, None).submit(job)
        elapsed = time.monotonic() - started
    [attempt] = store.attempts(job.id)
    assert "timeout" in attempt.error
    assert 0.9 < elapsed < 2.0, elapsed  # within 1 s of the limit
    assert 0 < len(attempt.response_body) < 100


def test_silent_receiver_times_out_within_a_second_of_the_limit(store):
    with RawServer(lambda conn: time.sleep(4)) as srv:
        job = job_for(srv.url, timeout=1.0)
        started = time.monotonic()
        Deliverer(store, None).submit(job)
        elapsed = time.monotonic() - started
    assert "timeout" in store.attempts(job.id)[0].error
    assert 0.9 < elapsed < 2.0, elapsed


def test_huge_answer_is_read_only_up_to_the_cap_with_flat_memory(store):
    chunk = b"y" * 65536

    def huge(conn):
        conn.sendall(b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: %d\r\n\r\n" % (200 * 1024 * 1024))
        try:
            for _ in range(3200):  # 200 MiB offered
                conn.sendall(chunk)
        except OSError:
            pass

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with RawServer(huge) as srv:
        job = job_for(srv.url, timeout=5.0)
        Deliverer(store, None).submit(job)
    grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    [attempt] = store.attempts(job.id)
    assert attempt.status == 500
    assert len(attempt.response_body) == delivery.RESPONSE_BODY_CAP
    assert grown_kib < 50 * 1024, f"memory grew {grown_kib} KiB"
