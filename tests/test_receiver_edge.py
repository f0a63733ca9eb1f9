"""`accessrc-sim receiver` as a process: its HTTP edge is bounded as `serve`'s is (issue 14, items 3 and 4 for the
reference receiver): idle connections, huge bodies (with Content-Length and chunked), and a bad --host."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import time

import pytest
import requests
from sim_helpers import wait_until

from simulator.receiver import MAX_BODY

CLI = [sys.executable, "-c", "import sys; from simulator.cli import main; sys.argv[0] = 'accessrc-sim'; main()"]
CAP = 2 * MAX_BODY  # waitress's max_request_body_size for the receiver, as serve's is twice its app's limit


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def receiver(tmp_path_factory, keys_dir):
    """The real `accessrc-sim receiver` (AccessRC, no auth) on a free loopback port: its base URL."""
    workdir = tmp_path_factory.mktemp("receiver-edge")
    port = _free_port()
    log = open(workdir / "receiver.log", "w")
    proc = subprocess.Popen(
        [*CLI, "receiver", "--port", str(port), "--platform", "accessrc", "--keys-dir", str(keys_dir)],
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=workdir,
    )
    url = f"http://127.0.0.1:{port}"

    def up():
        assert proc.poll() is None, (workdir / "receiver.log").read_text()
        try:
            return requests.get(url + "/_received", timeout=1).status_code == 200
        except requests.RequestException:
            return False

    wait_until(up, 20, what="receiver start")
    yield url
    proc.terminate()
    proc.wait(10)
    log.close()
    assert "Traceback" not in (workdir / "receiver.log").read_text()


def _connect(url: str) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=5)


def _answer(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes (or the 5 s socket timeout fails the test)."""
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def test_200_idle_connections_leave_the_receiver_answering(receiver):
    """waitress's defaults (100 connections, 120 s idle) kept `GET /_received` waiting 40 s behind 200 idle sockets."""
    idle = []
    try:
        for _ in range(200):
            idle.append(_connect(receiver))
        time.sleep(0.5)  # accepted by now
        assert requests.get(receiver + "/_received", timeout=1).status_code == 200
    finally:
        for sock in idle:
            sock.close()


def test_a_100_mb_body_is_refused_right_after_its_headers(receiver):
    """Content-Length over the cap: waitress's 413 without reading the body (before: 100 MB read, then 413)."""
    with _connect(receiver) as sock:
        sock.sendall(
            b"POST /hook HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Content-Length: 104857600\r\n\r\n"
        )
        answer = _answer(sock)  # nothing of the body sent: an answer now means it is not waited for
    assert answer.startswith(b"HTTP/1.1 413 "), answer[:200]
    assert f"exceeds max_body of {CAP}".encode() in answer and b"Connection: close" in answer


def test_a_chunked_body_is_cut_at_the_cap(receiver):
    """No Content-Length: waitress stops at the cap and answers 413 (before: it read on, up to 1 GB)."""
    with _connect(receiver) as sock:
        sock.sendall(
            b"POST /hook HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
        )
        piece = b"x" * 65536
        chunk = f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
        for _ in range(CAP // len(piece)):  # the cap's bytes plus the chunks' framing: just over it, then silence
            sock.sendall(chunk)
        answer = _answer(sock)
    assert answer.startswith(b"HTTP/1.1 413 "), answer[:200]
    assert f"exceeds max_body of {CAP}".encode() in answer


def test_bodies_up_to_the_cap_still_get_the_receivers_own_413_envelope(receiver):
    resp = requests.post(receiver + "/hook", data=b"{" + b" " * MAX_BODY + b"}", timeout=10)
    assert resp.status_code == 413 and resp.json()["error"]["type"] == "PayloadTooLarge"
    ok = requests.post(receiver + "/hook", json={}, timeout=10)
    assert ok.status_code == 400 and ok.json()["status"] == "failed"  # read and judged on its content


@pytest.mark.parametrize("host", ["999.1.1.1", "bad host"])
def test_a_bad_host_is_a_clear_usage_error(tmp_path, host):
    """Before: AttributeError: 'ValueError' object has no attribute 'strerror', exit 1."""
    done = subprocess.run(
        [*CLI, "receiver", "--port", str(_free_port()), "--host", host],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=tmp_path,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert re.search(rf"cannot listen on {re.escape(host)}:\d+: ", done.stderr), done.stderr
    assert "Traceback" not in done.stdout + done.stderr


def test_the_receiver_takes_the_largest_body_the_simulators_send_makes(receiver, tmp_path, keys_dir):
    """Issue 12: `send --count 200` makes a ~410 KB body; the reference receiver (no --strict) acknowledges it, with
    the advice of its inferred 256 KiB limit (before: 413 to the simulator's own valid body)."""
    result = subprocess.run(
        [
            *CLI,
            "send",
            "PROGRAM_ELIGIBILITY_EVALUATED",
            "--count",
            "200",
            "--seed",
            "3",
            "--url",
            receiver + "/hook",
            "--db",
            str(tmp_path / "send.db"),
            "--keys-dir",
            str(keys_dir),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    last = requests.get(receiver + "/_received", timeout=5).json()[-1]
    assert last["status"] == 200 and last["outcome"] == "accepted"
    assert any("(inferred rule accessrc.conformance.body-limit)" in a for a in last["advice"])


def test_the_demo_receivers_of_serve_are_bounded_as_the_server_is(make_app):
    """`serve --demo` ran its receivers on werkzeug's threaded server in the server's own process: 200 idle sockets
    stayed open (a thread each) and a 300 MB body was read before its 413. Now they are on waitress with the
    server's limits (limits.server_options): idle sockets leave them answering, a body over the cap is refused
    right after its headers, and each request still gets its log line."""
    from simulator.dashboard import demo
    from simulator.receiver import WaitressThread

    running = demo.start_demo(make_app())
    try:
        assert isinstance(running.server, WaitressThread)
        url = running.url
        idle = [_connect(url) for _ in range(200)]
        try:
            time.sleep(0.5)
            assert requests.get(url + "/nowhere", timeout=1).status_code == 404
        finally:
            for sock in idle:
                sock.close()
        with _connect(url) as sock:
            sock.sendall(
                b"POST /accessrc/hook HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                b"Content-Length: 314572800\r\n\r\n"
            )
            answer = _answer(sock)
        assert answer.startswith(b"HTTP/1.1 413 "), answer[:200]
        assert f"exceeds max_body of {CAP}".encode() in answer
    finally:
        running.stop()
