"""Load mode's HTTP/1.1 sender (simulator.load.Poster) against a real TCP server that answers with scripted bytes:
how answers are framed (length, chunked, until close, interim 1xx), keep-alive reuse, the body cap, timeouts,
refusals. Real sockets on 127.0.0.1; no timing assertions beyond the bound the sender promises."""

from __future__ import annotations

import socket
import threading
import time

import pytest
from scripted_server import refused_url

from simulator import delivery
from simulator.load import Poster


class RawServer:
    """Accepts connections; for each request read (head + Content-Length body) sends the next scripted answer
    bytes. An answer may be a list of pieces sent with pauses (float seconds), or "close" (close the connection)."""

    def __init__(self, answers):
        self.answers = list(answers)
        self.requests: list[bytes] = []
        self.connections = 0
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/hook?x=1"
        self.stop = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn):
        try:
            self._answer(conn)
        except OSError:  # the sender closed or reset the connection: what some tests do on purpose
            pass

    def _answer(self, conn):
        buffer = b""
        with conn:
            while self.answers:
                while b"\r\n\r\n" not in buffer:
                    data = conn.recv(65536)
                    if not data:
                        return
                    buffer += data
                head, _, rest = buffer.partition(b"\r\n\r\n")
                length = next(
                    (
                        int(line.split(b":")[1])
                        for line in head.split(b"\r\n")
                        if line.lower().startswith(b"content-length")
                    ),
                    0,
                )
                while len(rest) < length:
                    rest += conn.recv(65536)
                self.requests.append(head + b"\r\n\r\n" + rest[:length])
                buffer = rest[length:]
                answer = self.answers.pop(0)
                if answer == "close":
                    return
                for piece in answer if isinstance(answer, list) else [answer]:
                    if piece == "close":
                        return
                    if isinstance(piece, float):
                        self.stop.wait(piece)
                    else:
                        conn.sendall(piece)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.sock.close()


OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


def test_sends_exact_bytes_with_host_and_length_and_reuses_the_connection():
    with RawServer([OK, OK, OK]) as server:
        poster = Poster(server.url, 5)
        for _ in range(3):
            resp = poster.post(b'{"a":1}', {"Content-Type": "application/json", "X-JobId": "j1"})
            assert (resp.status, resp.body, resp.error) == (200, b"ok", None)
        poster.close()
    assert server.connections == 1
    head, _, body = server.requests[0].partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    assert lines[0] == b"POST /hook?x=1 HTTP/1.1"
    assert f"Host: 127.0.0.1:{server.url.split(':')[2].split('/')[0]}".encode() in lines
    assert b"Content-Length: 7" in lines and b"X-JobId: j1" in lines and b"Accept-Encoding: identity" in lines
    assert body == b'{"a":1}'


@pytest.mark.parametrize(
    "answer, status, body",
    [
        (b"HTTP/1.1 500 Oops\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n", 500, b"abcde"),
        (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 3\r\n\r\nnew", 201, b"new"),
        (b"HTTP/1.1 204 No Content\r\n\r\n", 204, b""),
        ([b"HTTP/1.1 200 OK\r\nContent-Le", 0.05, b"ngth: 5\r\n\r\nsp", 0.05, b"lit"], 200, b"split"),
    ],
    ids=["chunked", "interim-100", "no-content", "split-across-packets"],
)
def test_answers_framed_every_way_are_read_whole(answer, status, body):
    with RawServer([answer, OK]) as server:
        poster = Poster(server.url, 5)
        resp = poster.post(b"{}", {})
        assert (resp.status, resp.body, resp.error) == (status, body, None)
        assert poster.post(b"{}", {}).status == 200  # the connection is still in step
        poster.close()
    assert server.connections == 1


def test_an_answer_delimited_by_close_is_read_to_the_end_and_the_next_request_reconnects():
    with RawServer([[b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nall of it", "close"], OK]) as server:
        poster = Poster(server.url, 5)
        resp = poster.post(b"{}", {})
        assert (resp.status, resp.body, resp.error) == (200, b"all of it", None)
        assert poster.post(b"{}", {}).body == b"ok"
    assert server.connections == 2


def test_a_connection_the_receiver_closed_while_idle_is_not_reused():
    with RawServer([[OK, "close"], OK]) as server:
        poster = Poster(server.url, 5)
        assert poster.post(b"{}", {}).status == 200
        time.sleep(0.1)  # the receiver closes its end after answering; the sender notices before reusing it
        second = poster.post(b"{}", {})
        assert (second.status, second.error) == (200, None)
    assert server.connections == 2


def test_a_request_that_meets_a_closing_connection_is_a_connection_error():
    with RawServer([OK, "close", OK]) as server:
        poster = Poster(server.url, 5)
        assert poster.post(b"{}", {}).status == 200
        second = poster.post(b"{}", {})  # the receiver reads it and closes without a word
        assert second.status is None and second.error.startswith("connection error")
        assert poster.post(b"{}", {}).status == 200
    assert server.connections == 2


def test_an_answer_over_the_cap_is_kept_to_the_cap_and_its_connection_dropped():
    big = delivery.RESPONSE_BODY_CAP * 16  # far more than one read takes in: the rest stays unread
    answer = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % big + b"x" * big
    with RawServer([answer, OK]) as server:
        poster = Poster(server.url, 5)
        resp = poster.post(b"{}", {})
        assert resp.status == 200 and resp.error is None and len(resp.body) == delivery.RESPONSE_BODY_CAP
        assert poster.post(b"{}", {}).body == b"ok"
    assert server.connections == 2


def test_a_cut_answer_and_a_silent_receiver_are_failures_not_crashes():
    cut = [b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly this", "close"]
    with RawServer([cut]) as server:
        resp = Poster(server.url, 5).post(b"{}", {})
    assert resp.status == 200 and resp.error.startswith("answer cut off") and resp.body == b"only this"
    with RawServer(["close"]) as server:
        resp = Poster(server.url, 5).post(b"{}", {})
    assert resp.status is None and "closed connection without response" in resp.error
    resp = Poster(refused_url(), 5).post(b"{}", {})
    assert resp.status is None and resp.error.startswith("connection error") and "refused" in resp.error


def test_a_receiver_that_never_answers_is_a_timeout():
    with RawServer([[3.0, OK]]) as server:
        resp = Poster(server.url, 0.3).post(b"{}", {})
    assert resp.status is None and resp.error == "timeout after 0.3 s"


def test_a_header_with_a_line_break_is_refused_before_sending():
    with RawServer([OK]) as server:
        resp = Poster(server.url, 5).post(b"{}", {"X-Evil": "a\r\nX-Injected: 1"})
        assert resp.error.startswith("request error") and server.requests == []


def test_a_target_off_the_allow_list_is_not_sent(monkeypatch):
    monkeypatch.delenv("ACCESSRC_SIM_ALLOW_HOSTS", raising=False)
    resp = Poster("http://203.0.113.9/hook", 5).post(b"{}", {})
    assert resp.status is None and resp.error.startswith("not sent: refusing to send to 203.0.113.9")
