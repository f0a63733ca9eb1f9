"""Request bodies over the size limit (1 MiB) are refused with 413 in each API family's envelope, nothing is
stored, and the server keeps serving (issue 7, item 6); bodies over twice the limit are cut by waitress itself,
before anyone reads them, key or no key; idle connections neither exhaust the server nor stay open past the idle
timeout (issue 14, items 3 and 4). Against the real `accessrc-sim serve` on waitress, so chunked bodies (no
Content-Length) and raw sockets are covered too."""

from __future__ import annotations

import json
import socket
import sqlite3
import time
from urllib.parse import urlsplit

import pytest
import requests
from reliability_helpers import API_KEY, XKEY, ServeProcess

LIMIT = 1024 * 1024
SERVER_CAP = 2 * LIMIT  # waitress's max_request_body_size
BOTH = {"x-api-key": API_KEY, "Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json"}


@pytest.fixture(scope="module")
def served(tmp_path_factory, keys_dir):
    server = ServeProcess(tmp_path_factory.mktemp("limits"), keys_dir)
    yield server.start()
    server.stop()


def _json_of_size(size: int) -> bytes:
    """A JSON object of exactly `size` bytes: {"event":"…","pad":"xxx…"}."""
    head = b'{"event":"DELIVERY_REFUND_REQUESTED","pad":"'
    return head + b"x" * (size - len(head) - 2) + b'"}'


def _rows(served) -> int:
    db = sqlite3.connect(served.db)
    try:
        return sum(db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in ("jobs", "subscriptions"))
    finally:
        db.close()


@pytest.mark.parametrize(
    "path", ["/api/send", "/api/subscriptions", "/api/Event/Subscribe", "/api/Event/Unsubscribe", "/dashboard/api/send"]
)
def test_over_the_limit_is_413_in_the_accessrc_envelope(served, path):
    before = _rows(served)
    resp = requests.post(served.url + path, headers=BOTH, data=_json_of_size(LIMIT + 1), timeout=30)
    assert resp.status_code == 413
    assert resp.json() == {
        "error": {
            "code": 413,
            "message": f"request body is larger than the {LIMIT}-byte limit",
            "type": "PayloadTooLarge",
        },
        "data": None,
        "status": "failed",
    }
    assert _rows(served) == before


def test_over_the_limit_on_accredit_routes_is_413_in_the_acr_envelope(served):
    body = json.dumps({"event": "BadgeExportZipFile.Created", "callbackUrl": "http://127.0.0.1:9/" + "p" * LIMIT})
    for path in ("/api/webhookSubscription", "/api/webhookSubscription/triggerSampleEventNotification"):
        resp = requests.post(served.url + path, headers=BOTH, data=body, timeout=30)
        assert resp.status_code == 413
        assert resp.json()["message"] == f"request body is larger than the {LIMIT}-byte limit"
        assert resp.json()["code"].startswith("ACR_")
    assert _rows(served) == 0


def test_exactly_the_limit_is_read_and_judged_on_its_content(served):
    resp = requests.post(served.url + "/api/send", headers=BOTH, data=_json_of_size(LIMIT), timeout=30)
    assert resp.status_code == 400 and resp.json()["error"]["field"] == "pad"  # unknown field, not too large


def _chunks(total, counter=None):
    sent = 0
    while sent < total:
        yield b"x" * 65536
        sent += 65536
        if counter is not None:
            counter[0] = sent


def _waitress_413(resp) -> bool:
    return (
        resp.status_code == 413
        and resp.headers["Content-Type"].startswith("text/plain")
        and f"exceeds max_body of {SERVER_CAP}" in resp.text
        and resp.headers.get("Connection") == "close"
    )


def test_chunked_and_huge_bodies_are_refused_and_the_server_carries_on(served):
    chunked = requests.post(served.url + "/api/send", headers=BOTH, data=_chunks(LIMIT + LIMIT // 2), timeout=30)
    assert chunked.status_code == 413 and chunked.json()["error"]["type"] == "PayloadTooLarge"
    beyond = requests.post(served.url + "/api/send", headers=BOTH, data=_chunks(4 * LIMIT), timeout=30)
    assert _waitress_413(beyond)  # over twice the limit: cut by the HTTP server, in plain text
    huge = requests.post(served.url + "/api/send", headers=BOTH, data=b"{" * (40 * LIMIT), timeout=60)
    assert _waitress_413(huge)
    assert _rows(served) == 0
    ok = requests.get(served.url + "/api/jobs", headers=XKEY, timeout=10)
    assert ok.status_code == 200 and requests.get(served.url + "/healthz", timeout=5).json()["data"]["status"] == "ok"
    assert "Traceback" not in served.output


# -- bodies without a key (issue 14, item 4) -----------------------------------------------------------------------
def _written(served) -> int:
    """Bytes the server process has written with write() and friends so far (files, pipes, sockets)."""
    with open(f"/proc/{served.proc.pid}/io") as io:
        return int(next(line for line in io if line.startswith("wchar:")).split()[1])


def _connect(served) -> socket.socket:
    parts = urlsplit(served.url)
    return socket.create_connection((parts.hostname, parts.port), timeout=5)


def _read_head(sock: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def test_a_300_mb_body_without_a_key_is_refused_right_after_its_headers(served):
    """The trial: a 300 MB POST without a key was spooled to disk and answered 401 after 3 s."""
    before = _written(served)
    with _connect(served) as sock:
        sock.sendall(
            b"POST /api/send HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Content-Length: 314572800\r\n\r\n"
        )
        started = time.monotonic()
        head = _read_head(sock)
        elapsed = time.monotonic() - started
    assert head.startswith(b"HTTP/1.1 413 "), head
    assert elapsed < 0.5, f"answered {elapsed:.2f} s after the headers"
    counter = [0]
    chunked = requests.post(
        served.url + "/api/send",
        data=_chunks(300 * LIMIT, counter),
        timeout=30,
        headers={"Content-Type": "application/json"},
    )
    assert chunked.status_code == 401 and chunked.json()["error"]["type"] == "Unauthorized"  # after the headers
    assert counter[0] < 64 * LIMIT, f"{counter[0]} bytes sent before the server cut the body"
    assert _written(served) - before < 16 * LIMIT  # no hundreds of MB spooled anywhere
    assert requests.get(served.url + "/healthz", timeout=5).json()["data"]["status"] == "ok"


def test_a_body_without_a_key_is_not_looked_at(served):
    """Under the server's cap, over the app's limit: the key is checked first (after the headers), 401, not 413."""
    resp = requests.post(
        served.url + "/api/send",
        data=_json_of_size(LIMIT + 1),
        timeout=30,
        headers={"Content-Type": "application/json"},
    )
    assert resp.status_code == 401 and resp.json()["error"]["type"] == "Unauthorized"


# -- the key checked before the body is read (issue 14, item 4) ---------------------------------------------------
BIG = LIMIT + LIMIT // 2  # 1.5 MiB: under waitress's cap, so only the check after the headers keeps it unread
ROUTES = [  # (path, headers with a credential the route does not take or a wrong one): each route's own terms
    ("/api/send", {}),
    ("/api/send", {"x-api-key": "wrong"}),
    ("/api/subscriptions", {"Authorization": "Bearer wrong"}),
    ("/dashboard/api/send", {}),
    ("/api/Event/Subscribe", {"Authorization": f"Bearer {API_KEY}"}),  # AccessRC takes x-api-key only
    ("/api/DeliveryRequest/Sync", {}),
    ("/api/webhookSubscription", {"x-api-key": API_KEY}),  # Accredit takes Bearer only
    ("/api/printQueue/ZIP-1/printStatus", {}),  # a PUT
]


def _request_head(path: str, headers: dict, body_header: str) -> bytes:
    method = "PUT" if path.startswith("/api/printQueue/") else "POST"
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", "Content-Type: application/json", body_header]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _answer(sock: socket.socket) -> tuple[bytes, dict, bytes]:
    """Status line, headers and body of the one answer on `sock`, read until the server closes."""
    data = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status, *lines = head.decode("latin-1").split("\r\n")
    return status.encode(), {k.lower(): v for k, v in (line.split(": ", 1) for line in lines)}, body


@pytest.mark.parametrize("path, headers", ROUTES)
@pytest.mark.parametrize("body_header", [f"Content-Length: {BIG}", "Transfer-Encoding: chunked"])
def test_a_body_without_a_valid_key_is_answered_401_after_its_headers_and_never_read(
    served, path, headers, body_header
):
    """The headers only, then nothing: the 401 comes at once (before, waitress waited for the 1.5 MiB to arrive
    before the app could refuse it), in the route's envelope, byte for byte what the app answers, and the server
    closes the connection without reading on."""
    method = "PUT" if path.startswith("/api/printQueue/") else "POST"
    expected = requests.request(method, served.url + path, headers=headers, data=b"", timeout=10)  # the app's
    assert expected.status_code == 401
    with _connect(served) as sock:
        sock.sendall(_request_head(path, headers, body_header))
        status, answer_headers, body = _answer(sock)  # times out (5 s) if the server waits for the body
    assert status.startswith(b"HTTP/1.1 401 "), status
    assert answer_headers["content-type"] == "application/json" and answer_headers["connection"] == "close"
    assert json.loads(body) == expected.json()
    if path.startswith(("/api/webhookSubscription", "/api/printQueue")):
        assert expected.json()["code"] == "ACR_00.001.002"  # Accredit's envelope
    else:
        assert expected.json()["error"]["type"] == "Unauthorized" and expected.json()["status"] == "failed"


def test_expect_100_continue_without_a_key_gets_the_401_instead(served):
    with _connect(served) as sock:
        sock.sendall(_request_head("/api/send", {"Expect": "100-continue"}, f"Content-Length: {BIG}"))
        status, _, body = _answer(sock)
    assert status.startswith(b"HTTP/1.1 401 ") and json.loads(body)["error"]["type"] == "Unauthorized"


def test_with_a_valid_credential_the_body_is_read_and_judged(served):
    """The same requests with the route's credential reach the app: read in full and answered on their content."""
    big = _json_of_size(BIG)
    for headers in (XKEY, {"Authorization": f"Bearer {API_KEY}"}):
        resp = requests.post(served.url + "/api/send", headers=headers, data=big, timeout=30)
        assert resp.status_code == 413 and resp.json()["error"]["type"] == "PayloadTooLarge"  # read: too large
        chunked = requests.post(served.url + "/api/send", headers=headers, data=_chunks(BIG), timeout=30)
        assert chunked.status_code == 413 and chunked.json()["error"]["type"] == "PayloadTooLarge"
    send = {"event": "DELIVERY_REFUND_REQUESTED", "url": "http://127.0.0.1:9/h"}
    assert requests.post(served.url + "/api/send", headers=XKEY, json=send, timeout=10).status_code == 201
    accessrc = requests.post(
        served.url + "/api/Event/Subscribe",
        headers=XKEY,
        json={"eventType": "DELIVERY_REFUND_REQUESTED", "callbackUrl": "http://127.0.0.1:9/a"},
        timeout=10,
    )
    assert accessrc.status_code == 200 and accessrc.json()["status"] == "success", accessrc.text
    accredit = requests.post(
        served.url + "/api/webhookSubscription",
        headers={"Authorization": f"Bearer {API_KEY}"},
        json={"event": "BadgeExportZipFile.Created", "callbackUrl": "http://127.0.0.1:9/b"},
        timeout=10,
    )
    assert accredit.status_code in (200, 201) and "code" not in accredit.json(), accredit.text


def test_a_dashboard_session_passes_the_check_after_the_headers(served):
    """A session (the page's form) counts on the simulator's own routes: with X-Requested-With for a change."""
    browser = requests.Session()
    browser.trust_env = False
    assert browser.post(served.url + "/dashboard/login", json={"key": API_KEY}, timeout=10).status_code == 200
    send = {"event": "DELIVERY_REFUND_REQUESTED", "url": "http://127.0.0.1:9/h"}
    made = browser.post(served.url + "/api/send", json=send, headers={"X-Requested-With": "accessrc-sim"}, timeout=10)
    assert made.status_code == 201
    cookie = "; ".join(f"{c.name}={c.value}" for c in browser.cookies)
    with _connect(served) as sock:  # the same session without the header: a change another site could make
        sock.sendall(_request_head("/api/send", {"Cookie": cookie}, f"Content-Length: {BIG}"))
        status, _, body = _answer(sock)
    assert status.startswith(b"HTTP/1.1 401 ") and "X-Requested-With" in json.loads(body)["error"]["message"]
    assert (
        browser.post(  # and not on the platforms' stand-ins, whose callers have their own credentials
            served.url + "/api/Event/Subscribe", json={}, headers={"X-Requested-With": "accessrc-sim"}, timeout=10
        ).status_code
        == 401
    )


# -- a body to a path no route takes (issue 14 "Hardening", item 4, third pass) --------------------------------------
NO_ROUTE = [  # the trial's spellings: each was read in full (up to 2 MiB) before its 404
    "/api/send/",
    "/API/send",
    "/api/send.",
    "/api/./send",
    "/api/x/../send",
    "/api/send;x",
    "/./api/send",
    "/dashboard/api/x",
    "//dashboard/api/runs",  # no POST route there, even with its slashes merged
    "/api/webhookSubscription/nope/more",  # an Accredit path: Accredit's envelope
]
REDIRECTED = [  # the app would redirect these (308, an HTML page) once it had read the body
    ("//api//subscriptions", "/api/subscriptions"),
    ("/dashboard//api/send", "/dashboard/api/send"),
]


def _headers_only(served, method: str, path: str, headers: dict | None = None, length: int = 1_000_000):
    """`method path` (sent as it is spelled: an HTTP client would remove its dot segments) with `Content-Length:
    length` and no body: the answer, read until the server closes (a 5 s socket timeout if the server waits for the
    body). With length 0, a request without a body: the app's own answer."""
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", "Content-Type: application/json", "Connection: close"]
    lines += [f"Content-Length: {length}", *(f"{k}: {v}" for k, v in (headers or {}).items())]
    with _connect(served) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        return _answer(sock)


@pytest.mark.parametrize("path", NO_ROUTE)
@pytest.mark.parametrize("headers", [{}, XKEY, {"Authorization": f"Bearer {API_KEY}"}], ids=["no-key", "key", "bearer"])
def test_a_body_to_a_path_no_route_takes_is_answered_404_after_its_headers_and_never_read(served, path, headers):
    """Key or no key: the app's own 404 (what it answers the same request without a body), in the path's envelope,
    with Connection: close, before the body is read."""
    app_status, _, app_body = _headers_only(served, "POST", path, headers, length=0)
    assert app_status.startswith(b"HTTP/1.1 404 "), app_status
    expected = json.loads(app_body)
    status, answer_headers, body = _headers_only(served, "POST", path, headers)
    assert status.startswith(b"HTTP/1.1 404 "), status
    assert answer_headers["content-type"] == "application/json" and answer_headers["connection"] == "close"
    assert json.loads(body) == expected
    if path.startswith("/api/webhookSubscription"):
        assert expected["code"] == "ACR_01.000.000"  # Accredit's envelope
    else:
        assert (
            expected["error"]["type"] == "NotFound"
            and expected["error"]["message"] == f"no route POST /{path.lstrip('/')}"
        )


@pytest.mark.parametrize("path, route", REDIRECTED)
def test_a_body_to_a_path_the_app_would_redirect_gets_a_404_naming_the_route_not_a_308(served, path, route):
    status, answer_headers, body = _headers_only(served, "POST", path)
    assert status.startswith(b"HTTP/1.1 404 "), status
    assert answer_headers["content-type"] == "application/json" and answer_headers["connection"] == "close"
    error = json.loads(body)["error"]
    assert error["type"] == "NotFound" and f"use {route})" in error["message"], error


@pytest.mark.parametrize("path", ["//dashboard/api/send", "//api/send", "///api/subscriptions"])
def test_a_route_spelled_with_leading_slashes_is_judged_by_its_route(served, path):
    """The router takes `//dashboard/api/send` as the dashboard's send (request.path drops the extra slashes), so
    its rule is the dashboard API's: a body without a key is refused after the headers, not read as if open."""
    status, answer_headers, body = _headers_only(served, "POST", path)
    assert status.startswith(b"HTTP/1.1 401 "), status
    assert answer_headers["connection"] == "close" and json.loads(body)["error"]["type"] == "Unauthorized"


def test_a_body_with_a_method_the_route_does_not_take_is_answered_405_after_its_headers(served):
    expected = requests.put(served.url + "/api/send", headers=XKEY, timeout=10)
    assert expected.status_code == 405
    for headers in ({}, XKEY):
        status, answer_headers, body = _headers_only(served, "PUT", "/api/send", headers)
        assert status.startswith(b"HTTP/1.1 405 "), status
        assert answer_headers["allow"] == expected.headers["Allow"] and answer_headers["connection"] == "close"
        assert json.loads(body) == expected.json() and expected.json()["error"]["type"] == "MethodNotAllowed"


def test_without_a_body_the_app_answers_as_before(served):
    """A request without a body is the app's to answer: its 404, and its redirect for a GET (nothing to re-send)."""
    assert requests.post(served.url + "/api/send/", timeout=10).status_code == 404
    redirect = requests.get(served.url + "//api//subscriptions", headers=XKEY, allow_redirects=False, timeout=10)
    assert redirect.status_code == 308 and redirect.headers["Location"].endswith("/api/subscriptions")


# -- connections (issue 14, item 3) --------------------------------------------------------------------------------
def test_200_idle_connections_leave_the_server_answering(served):
    """The trial: 100 idle TCP connections (waitress's default limit) stopped the server accepting."""
    idle = []
    try:
        for _ in range(200):
            idle.append(_connect(served))
        time.sleep(0.5)  # accepted by now
        started = time.monotonic()
        health = requests.get(served.url + "/healthz", timeout=1)
        assert health.json()["data"]["status"] == "ok" and time.monotonic() - started < 1
        assert requests.get(served.url + "/api/jobs", headers=XKEY, timeout=1).status_code == 200
    finally:
        for sock in idle:
            sock.close()


def _closed_by_server(sock: socket.socket) -> bool:
    """Reads what is left (the rest of an answer) until the server closes: True, or False at the socket timeout."""
    try:
        while sock.recv(65536):
            pass
        return True
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def test_idle_connections_are_closed_after_the_idle_timeout(tmp_path, keys_dir):
    server = ServeProcess(tmp_path, keys_dir, "--idle-timeout", "1").start()
    try:
        silent = _connect(server)
        silent.settimeout(10)
        kept_alive = _connect(server)
        kept_alive.settimeout(10)
        kept_alive.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert _read_head(kept_alive).startswith(b"HTTP/1.1 200 ")
        started = time.monotonic()
        stream = requests.get(server.url + "/api/stream?max_seconds=4", headers=XKEY, stream=True, timeout=10)
        assert _closed_by_server(silent) and _closed_by_server(kept_alive)
        assert 0.5 < time.monotonic() - started < 4.5
        silent.close()
        kept_alive.close()
        streamed = b"".join(stream.iter_content(None))  # a request in progress is not idle: it runs to its end
        assert stream.status_code == 200 and time.monotonic() - started > 3.5 and b"retry:" in streamed
        assert requests.get(server.url + "/healthz", timeout=5).json()["data"]["status"] == "ok"
    finally:
        server.stop()


def test_connections_beyond_descriptor_1023_are_served(tmp_path, keys_dir):
    """select() cannot watch descriptors above 1023: the server polls, so 1,100 open connections are no crash."""
    server = ServeProcess(tmp_path, keys_dir, "--connection-limit", "1200").start()
    idle = []
    try:
        for _ in range(1100):
            idle.append(_connect(server))
        time.sleep(1.0)
        started = time.monotonic()
        assert requests.get(server.url + "/healthz", timeout=2).json()["data"]["status"] == "ok"
        assert time.monotonic() - started < 1
        assert server.proc.poll() is None and "Traceback" not in server.output
    finally:
        for sock in idle:
            sock.close()
        server.stop()


@pytest.mark.parametrize("hard, soft_after, fitting", [(None, 1256, 1000), (600, 600, 344)])
def test_the_open_files_limit_is_raised_to_fit_the_connection_limit(hard, soft_after, fitting):
    """In a child process (a lowered hard limit cannot be raised again): soft 512 becomes what 1,000 connections
    need (+256 for the rest), or as much as the hard limit allows, and the connection limit shrinks to fit."""
    import subprocess
    import sys

    code = (
        "import resource, sys; h = resource.getrlimit(resource.RLIMIT_NOFILE)[1]; "
        "h = int(sys.argv[1]) if sys.argv[1] != 'None' else h; "
        "resource.setrlimit(resource.RLIMIT_NOFILE, (512, h)); "
        "from simulator.cli.serve import raise_open_files_limit; "
        "print(raise_open_files_limit(1000), resource.getrlimit(resource.RLIMIT_NOFILE)[0])"
    )
    out = subprocess.run([sys.executable, "-c", code, str(hard)], capture_output=True, text=True, timeout=30)
    assert out.stdout.split() == [str(fitting), str(soft_after)], out.stderr
