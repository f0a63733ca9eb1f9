"""The admin key's hash is kept in memory and re-read by a thread of its own (issue 14 "Hardening", items 1 and 4,
third pass): the HTTP server's check after a request's headers runs on waitress's one event-loop thread, which every
connection goes through, so it must never wait on the database; a rotation still applies within about a second.
Dashboard sessions and login links are bound to the key they were made under, and a session ends after 12 h."""

from __future__ import annotations

import json
import socket
import threading

import pytest
import requests
from sim_helpers import wait_until

from simulator.api.edge import create_guarded_server
from simulator.api.session import SESSION_LIFETIME, Sessions
from simulator.services import API_KEY_HASH_SETTING, hash_api_key, rotate_api_key

LOOP_THREAD = "edge-event-loop"


@pytest.fixture
def guarded(make_app):
    """The app as `serve` runs it (waitress, the check after the headers; the services started), with the key
    generated and stored (no configured key: the stored hash is the one in force). Yields (app, base URL, key)."""
    app = make_app(API_KEY="")
    services = app.extensions["accessrc_sim"]
    assert services.started and services.settings.api_key_generated
    server = create_guarded_server(app, host="127.0.0.1", port=0, threads=4)
    loop = threading.Thread(target=server.run, name=LOOP_THREAD, daemon=True)
    loop.start()
    yield app, f"http://127.0.0.1:{server.effective_port}", services.settings.api_key
    server.close()
    loop.join(5)


def _headers_only(base: str, path: str, headers: dict) -> tuple[bytes, dict]:
    """A POST with `Content-Length: 1000000` and no body: (status line, JSON body), read until the server closes
    (a 5 s socket timeout if it waits for the body)."""
    lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", "Content-Type: application/json", "Content-Length: 1000000"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    port = int(base.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return head.split(b"\r\n", 1)[0], json.loads(body)


def test_the_check_after_the_headers_reads_no_database_and_answers_while_reads_fail(guarded):
    """Every read of the stored key fails (a database that errors or stalls): the refusals after the headers, the
    app's own checks and /healthz all still answer, from the hash in memory; no read is ever made on the event-loop
    thread, and the re-reading thread's failures keep the last hash in force."""
    app, base, key = guarded
    store = app.extensions["accessrc_sim"].store
    readers: list[str] = []
    real_setting = store.setting

    def setting(name):
        readers.append(threading.current_thread().name)
        if name == API_KEY_HASH_SETTING:
            raise OSError("the database does not answer")
        return real_setting(name)

    store.setting = setting
    try:
        wait_until(lambda: readers, 5, what="the key's hash re-read (and failing)")
        for headers in ({}, {"x-api-key": "wrong"}, {"Authorization": "Bearer wrong"}):
            status, body = _headers_only(base, "/api/send", headers)
            assert status.startswith(b"HTTP/1.1 401 ") and body["error"]["type"] == "Unauthorized", (status, body)
        status, body = _headers_only(base, "/api/nope", {})
        assert status.startswith(b"HTTP/1.1 404 "), (status, body)
        assert requests.get(base + "/healthz", timeout=5).json()["data"]["status"] == "ok"
        send = {"event": "DELIVERY_REFUND_REQUESTED", "url": "http://127.0.0.1:9/h"}
        assert requests.post(base + "/api/send", headers={"x-api-key": key}, json=send, timeout=10).status_code == 201
        assert requests.get(base + "/api/jobs", headers={"x-api-key": "wrong"}, timeout=5).status_code == 401
    finally:
        store.setting = real_setting
    assert LOOP_THREAD not in readers, readers
    assert set(readers) == {"accessrc-sim-key"}, readers  # the re-reading thread only


def test_a_rotation_by_another_process_applies_within_the_re_read(guarded):
    """The stored hash replaced under the running server (as `admin-key --rotate` does): the new key works and the
    old one stops after the next re-read (KEY_REFRESH, 1 s), after the headers and in the app alike."""
    app, base, old = guarded
    new = rotate_api_key(app.extensions["accessrc_sim"].subscriptions)
    assert app.extensions["accessrc_sim"].subscriptions.setting(API_KEY_HASH_SETTING) == hash_api_key(new)

    def old_refused():
        return requests.get(base + "/api/jobs", headers={"x-api-key": old}, timeout=5).status_code == 401

    wait_until(old_refused, 5, what="the old key refused")
    status, _ = _headers_only(base, "/api/send", {"x-api-key": old})  # the same hash after the headers
    assert status.startswith(b"HTTP/1.1 401 "), status
    assert requests.get(base + "/api/jobs", headers={"x-api-key": new}, timeout=5).status_code == 200
    send = {"event": "DELIVERY_REFUND_REQUESTED", "url": "http://127.0.0.1:9/h"}
    assert requests.post(base + "/api/send", headers={"x-api-key": new}, json=send, timeout=10).status_code == 201


# -- sessions: bound to the key, and a lifetime ---------------------------------------------------------------------
class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_session_ends_after_its_lifetime_however_busy():
    clock = Clock()
    sessions = Sessions(key_hash=lambda: "k1", clock=clock)
    assert SESSION_LIFETIME == 12 * 3600
    session_id = sessions.open()
    clock.now += SESSION_LIFETIME - 1
    assert sessions.valid(session_id) and sessions.allows(session_id, "GET", None)
    clock.now += 1
    assert not sessions.valid(session_id) and not sessions.allows(session_id, "GET", None)
    clock.now -= 10  # forgotten once ended: no way back
    assert not sessions.valid(session_id)
    assert sessions.valid(sessions.open())  # a new login opens a new one


def test_sessions_and_login_links_are_bound_to_the_key_they_were_made_under():
    key = ["k1"]
    sessions = Sessions("printed-at-start", key_hash=lambda: key[0])
    session_id = sessions.open()
    unused = sessions.new_login_token()
    assert sessions.valid(session_id)
    key[0] = "k2"  # the admin key rotated
    assert not sessions.valid(session_id)
    assert sessions.redeem("printed-at-start") == "rotated" and sessions.redeem(unused) == "rotated"
    assert sessions.redeem(unused) == "invalid"  # spent by the attempt: it says nothing more
    fresh = sessions.new_login_token()
    assert sessions.redeem(fresh) == "ok" and sessions.redeem(fresh) == "used"
    after = sessions.open()
    assert sessions.valid(after)
    key[0] = "k1"  # even the old key coming back does not revive the sessions it ended
    assert not sessions.valid(session_id) and not sessions.valid(after)
    key[0] = None  # no key stored at all: nothing is valid
    assert not sessions.valid(sessions.open())
