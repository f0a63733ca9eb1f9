"""DNS rebinding past the outbound guard (issue 14, item 6): a delivery connects to the address the guard checked,
never to a second DNS answer, and keeps the name for the Host header and the TLS server name.

Inside loopback only: a name on the allow-list first resolves to 127.0.0.1, then to 127.0.0.2; two real servers
listen on 127.0.0.1 and 127.0.0.2 with the same port. The patched resolver answers only 127.x addresses, so no
test here can send traffic anywhere else.
"""

from __future__ import annotations

import datetime
import http.server
import socket
import ssl
import sys
import threading

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from simulator import delivery, guard, transport
from simulator.auth import Auth
from simulator.guard import ENV_ALLOW_HOSTS
from simulator.load import LoadPlan, LoadRun

NAME = "rebind.test"  # RFC 2606: never a real name
REAL_GETADDRINFO = socket.getaddrinfo


class Recorder(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):  # noqa: N802
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.server.seen.append(self.headers.get("Host"))
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    disable_nagle_algorithm = True


def _twin_servers(tls: ssl.SSLContext | None = None) -> tuple[int, dict[str, Server]]:
    """One server on 127.0.0.1 and one on 127.0.0.2, on the same free port."""
    for _ in range(20):
        first = Server(("127.0.0.1", 0), Recorder)
        port = first.server_address[1]
        try:
            second = Server(("127.0.0.2", port), Recorder)
        except OSError:
            first.server_close()
            continue
        servers = {"127.0.0.1": first, "127.0.0.2": second}
        for srv in servers.values():
            srv.seen = []
            srv.sni = []
            if tls is not None:
                srv.socket = tls.wrap_socket(srv.socket, server_side=True)
            threading.Thread(target=srv.serve_forever, daemon=True).start()
        return port, servers
    raise RuntimeError("no port free on both 127.0.0.1 and 127.0.0.2")


@pytest.fixture
def rebinding(monkeypatch):
    """NAME is on the allow-list; its first answer is 127.0.0.1, every later one 127.0.0.2. `lookups` counts them."""
    monkeypatch.setenv(ENV_ALLOW_HOSTS, NAME)
    lookups = []

    def fake_getaddrinfo(host, port, *args, **kwargs):
        if isinstance(host, str) and host.rstrip(".").lower() == NAME:
            address = "127.0.0.1" if not lookups else "127.0.0.2"
            lookups.append(address)
            return REAL_GETADDRINFO(address, port, *args, **kwargs)
        return REAL_GETADDRINFO(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", fake_getaddrinfo)
    return lookups


@pytest.fixture
def twins():
    port, servers = _twin_servers()
    yield port, servers
    for srv in servers.values():
        srv.shutdown()
        srv.server_close()


@pytest.mark.parametrize("session", [requests.Session, transport.new_session], ids=["plain session", "new_session"])
def test_a_second_dns_answer_cannot_redirect_the_request(rebinding, twins, session):
    port, servers = twins
    resp = delivery.post(session(), f"http://{NAME}:{port}/hook", b"{}", {"Content-Type": "application/json"}, 5)
    assert resp.error is None and resp.status == 200
    assert servers["127.0.0.1"].seen == [f"{NAME}:{port}"]  # reached the checked address, with the name as Host
    assert servers["127.0.0.2"].seen == []
    assert rebinding == ["127.0.0.1"]  # one lookup: the guard's; the connection made none


def test_the_deliverer_connects_to_the_checked_address(split_answers, twins, store):
    """The server's queue and `accessrc-sim send` deliver through Deliverer: same pinning, every attempt."""
    port, servers = twins
    job = delivery.new_job(
        "DELIVERY_REFUND_REQUESTED", "accessrc", f"http://{NAME}:{port}/hook", b"{}", Auth("none"), delays=()
    )
    delivery.Deliverer(store, None).submit(job)
    assert job.state == "succeeded"
    assert servers["127.0.0.1"].seen == [f"{NAME}:{port}"] and servers["127.0.0.2"].seen == []


def test_each_attempt_connects_to_what_its_own_check_saw(rebinding, twins):
    """The second attempt's check sees 127.0.0.2: it goes there, not over the first attempt's kept-alive connection."""
    port, servers = twins
    session = transport.new_session()
    for _ in range(2):
        resp = delivery.post(session, f"http://{NAME}:{port}/hook", b"{}", {}, 5)
        assert resp.status == 200
    assert servers["127.0.0.1"].seen == [f"{NAME}:{port}"] and servers["127.0.0.2"].seen == [f"{NAME}:{port}"]


def test_a_pinned_session_used_directly_checks_once_and_connects_there(rebinding, twins):
    port, servers = twins
    resp = transport.new_session().post(f"http://{NAME}:{port}/hook", data=b"{}", timeout=5)
    assert resp.status_code == 200
    assert servers["127.0.0.1"].seen == [f"{NAME}:{port}"] and servers["127.0.0.2"].seen == []


@pytest.fixture
def split_answers(monkeypatch):
    """NAME is on the allow-list; the guard's lookups get 127.0.0.1, any other lookup 127.0.0.2 (the answer a
    rebinding DNS server gives the HTTP stack's own lookup, however many checks come first)."""
    monkeypatch.setenv(ENV_ALLOW_HOSTS, NAME)

    def fake_getaddrinfo(host, port, *args, **kwargs):
        if isinstance(host, str) and host.rstrip(".").lower() == NAME:
            by_guard = sys._getframe(1).f_code is guard.system_resolve.__code__
            return REAL_GETADDRINFO("127.0.0.1" if by_guard else "127.0.0.2", port, *args, **kwargs)
        return REAL_GETADDRINFO(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", fake_getaddrinfo)


def test_load_mode_connects_to_the_checked_address(split_answers, twins):
    port, servers = twins
    plan = LoadPlan(
        "DELIVERY_REFUND_REQUESTED",
        f"http://{NAME}:{port}/hook",
        rate=50,
        duration=0.1,
        concurrency=1,
        max_requests=3,
        timeout=5,
        auth=Auth("none"),
        signers=0,
    )
    run = LoadRun(plan, None)
    try:
        result = run.run()
    finally:
        run.close()
    assert result.sent == 3 and result.failures == 0
    assert servers["127.0.0.2"].seen == [] and len(servers["127.0.0.1"].seen) == 3


def _certificate(tmp_path):
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, NAME)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(NAME)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


def test_https_keeps_the_name_for_sni_and_the_certificate_check(rebinding, tmp_path):
    cert_path, key_path = _certificate(tmp_path)
    server_names = []
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(cert_path, key_path)
    tls.sni_callback = lambda sock, name, ctx: server_names.append(name)
    port, servers = _twin_servers(tls)
    try:
        session = transport.new_session()
        session.verify = str(cert_path)  # the certificate names rebind.test only: verified against the name
        resp = delivery.post(session, f"https://{NAME}:{port}/hook", b"{}", {}, 5)
        assert resp.error is None and resp.status == 200
        assert server_names == [NAME]
        assert servers["127.0.0.1"].seen == [f"{NAME}:{port}"] and servers["127.0.0.2"].seen == []
    finally:
        for srv in servers.values():
            srv.shutdown()
            srv.server_close()


def test_a_session_with_a_proxy_sends_nothing(rebinding, twins):
    """Through a proxy the proxy would resolve the name: a pinned session refuses instead of going around the guard."""
    port, servers = twins
    session = transport.new_session()
    session.proxies = {"http": f"http://127.0.0.1:{port}"}
    resp = delivery.post(session, f"http://{NAME}:{port}/hook", b"{}", {}, 5)
    assert resp.status is None and "never go through a proxy" in resp.error
    assert servers["127.0.0.1"].seen == [] and servers["127.0.0.2"].seen == []
