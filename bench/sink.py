"""The bench's receiver: a raw keep-alive (and pipelining) HTTP/1.1 responder in its own process, so it takes no
GIL from what is measured; every bench script uses it (`with Receiver() as r: r.url, r.count(), r.ceiling()`).

    python bench/sink.py --serve-receiver            # the child: prints its port, answers 200 to every request
    python bench/sink.py --drive-receiver PORT SECS  # the ceiling's client: raw sockets, prints requests answered
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import time
import urllib.request

RESPONSE = b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 20\r\n\r\n{"status":"success"}'


def serve_receiver() -> None:
    """Keep-alive (and pipelining) HTTP/1.1 sink on 127.0.0.1: 200 to every request; GET /count tells how many."""
    received = 0

    class Sink(asyncio.Protocol):
        def connection_made(self, transport):
            self.transport, self.buffer = transport, b""

        def data_received(self, data):
            nonlocal received
            self.buffer += data
            out = []
            while True:
                end = self.buffer.find(b"\r\n\r\n")
                if end < 0:
                    break
                head = self.buffer[:end]
                at = head.lower().find(b"content-length:")
                length = (
                    int(head[at + 15 : head.find(b"\r\n", at) if head.find(b"\r\n", at) > 0 else None])
                    if at >= 0
                    else 0
                )
                if len(self.buffer) < end + 4 + length:
                    break
                self.buffer = self.buffer[end + 4 + length :]
                if head.startswith(b"GET /count"):
                    text = str(received).encode()
                    out.append(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(text), text))
                else:
                    received += 1
                    out.append(RESPONSE)
            if out:
                self.transport.write(b"".join(out))

    async def main():
        server = await asyncio.get_running_loop().create_server(Sink, "127.0.0.1", 0, backlog=1024)
        print(server.sockets[0].getsockname()[1], flush=True)
        await server.serve_forever()

    asyncio.run(main())


def drive_receiver(port: int, seconds: float, connections: int = 16, depth: int = 1) -> None:
    """Child process: raw sockets, `depth` pipelined POSTs per connection, for `seconds`; prints requests answered."""
    import selectors

    body = b'{"x":1}'
    request = (
        b"POST /ceiling HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
    )
    sel = selectors.DefaultSelector()
    socks = []
    for _ in range(connections):
        s = socket.create_connection(("127.0.0.1", port))
        s.setblocking(False)
        s.sendall(request * depth)
        sel.register(s, selectors.EVENT_READ, [0, b""])
        socks.append(s)
    answered = 0
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        for key, _ in sel.select(0.1):
            data = key.fileobj.recv(65536)
            state = key.data
            state[1] += data
            n = state[1].count(b"HTTP/1.1 200")
            if n:
                state[1] = state[1][state[1].rfind(b"HTTP/1.1 200") + 1 :]  # keep the tail of a cut answer
                answered += n
                key.fileobj.sendall(request * n)
    print(answered, flush=True)


class Receiver:
    def __enter__(self):
        self.proc = subprocess.Popen([sys.executable, __file__, "--serve-receiver"], stdout=subprocess.PIPE, text=True)
        self.port = int(self.proc.stdout.readline())
        self.url = f"http://127.0.0.1:{self.port}"
        return self

    def count(self) -> int:
        with urllib.request.urlopen(self.url + "/count", timeout=5) as resp:
            return int(resp.read())

    def ceiling(self, seconds: float = 2.0) -> float:
        """Requests/s the receiver answers to a client that costs it little (a raw-socket process)."""
        out = subprocess.run(
            [sys.executable, __file__, "--drive-receiver", str(self.port), str(seconds)],
            capture_output=True,
            text=True,
            timeout=seconds + 30,
            check=True,
        )
        return int(out.stdout.split()[-1]) / seconds

    def __exit__(self, *exc):
        self.proc.terminate()
        self.proc.wait(5)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--serve-receiver"]:
        serve_receiver()
    elif sys.argv[1:2] == ["--drive-receiver"]:
        drive_receiver(int(sys.argv[2]), float(sys.argv[3]))
    else:
        sys.exit(__doc__)
