"""The shared delivery watchdog: each answer is cut at its own deadline, and a finished one is never touched."""

from __future__ import annotations

import threading
import time

import requests
from scripted_server import RawServer, ScriptedServer

from simulator import delivery


def drip(conn):
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n")
    try:
        for _ in range(400):
            conn.sendall(b"x")
            time.sleep(0.02)
    except OSError:
        pass


def test_concurrent_slow_answers_are_each_cut_at_their_own_deadline():
    results = {}

    def one(timeout):
        session = requests.Session()
        started = time.monotonic()
        resp = delivery.post(session, server.url, b"{}", {"Content-Type": "application/json"}, timeout)
        results[timeout] = (time.monotonic() - started, resp)

    with RawServer(drip) as server:
        threads = [threading.Thread(target=one, args=(t,)) for t in (0.6, 1.2, 1.8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
    for timeout, (took, resp) in results.items():
        assert timeout <= took < timeout + 0.5, (timeout, took)
        assert resp.error and "timeout" in resp.error
    assert len(results) == 3


def test_finished_answers_are_never_cut_later():
    """Short timeouts on a kept-alive connection: once their deadlines pass, the pooled socket still works."""
    session = requests.Session()
    with ScriptedServer() as server:
        for _ in range(50):
            assert delivery.post(session, server.url, b"{}", {}, 0.2).status == 200
        time.sleep(0.4)  # every deadline above has passed
        later = [delivery.post(session, server.url, b"{}", {}, 5).status for _ in range(20)]
    assert later == [200] * 20
    assert sum(t.name == "delivery-watchdog" for t in threading.enumerate()) == 1
