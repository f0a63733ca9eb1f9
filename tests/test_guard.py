"""The outbound guard: loopback always, configured hosts/CIDRs, everything else refused before any connection.

Refused targets are TEST-NET addresses (RFC 5737, never routed) and they are still never contacted: an audit hook
records every socket.connect made while a refused call runs, and the tests assert there was none.
"""

from __future__ import annotations

import sys
import threading

import pytest
import requests
from click.testing import CliRunner

from simulator import catalogue, delivery
from simulator.auth import Auth
from simulator.cli import main
from simulator.guard import ENV_ALLOW_HOSTS, TargetNotAllowed, check_target

PUBLIC = "203.0.113.7"  # TEST-NET-3


class ConnectSpy:
    """Records socket.connect calls made by this thread while active (audit hooks cannot be removed)."""

    active: ConnectSpy | None = None
    installed = False

    def __init__(self):
        self.calls: list = []
        self.thread = threading.get_ident()

    @classmethod
    def hook(cls, event, args):
        spy = cls.active
        if spy is not None and event == "socket.connect" and threading.get_ident() == spy.thread:
            spy.calls.append(args[1])

    def __enter__(self):
        if not ConnectSpy.installed:
            sys.addaudithook(ConnectSpy.hook)
            ConnectSpy.installed = True
        ConnectSpy.active = self
        return self

    def __exit__(self, *exc):
        ConnectSpy.active = None


@pytest.fixture(autouse=True)
def no_env_allow_list(monkeypatch):
    monkeypatch.delenv(ENV_ALLOW_HOSTS, raising=False)


def test_spy_sees_real_connections(start_receiver):
    """The spy itself works: a real loopback POST is seen (so 'no connection' below means something)."""
    server = start_receiver("accessrc")
    with ConnectSpy() as spy:
        requests.post(server.url + "/hook", data=b"{}", timeout=5)
    assert any(addr[0] == "127.0.0.1" for addr in spy.calls)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9/x",
        "http://127.8.9.10/hook",
        "https://[::1]:8443/",
        "http://localhost:9000/hook",
        "HTTP://LOCALHOST./x",
    ],
)
def test_loopback_is_always_allowed(url):
    addresses = check_target(url)
    assert addresses and all(a.startswith("127.") or a == "::1" for a in addresses)


def test_a_name_resolving_to_loopback_is_allowed():
    assert check_target("http://receiver.test:9000/hook", resolve=lambda host, port: ["127.0.0.1", "::1"]) == [
        "127.0.0.1",
        "::1",
    ]


@pytest.mark.parametrize(
    "url",
    [
        f"http://{PUBLIC}/hook",
        "http://10.1.2.3:8080/",
        "http://192.168.1.10/",
        "http://0.0.0.0:8080/",
        "http://[2001:db8::1]/",
        "http://[::ffff:203.0.113.7]/",
    ],
)
def test_public_and_private_literals_are_refused_without_a_connection(url):
    with ConnectSpy() as spy, pytest.raises(TargetNotAllowed) as info:
        check_target(url)
    assert spy.calls == []
    message = str(info.value)
    assert "not loopback and not on the allow-list" in message and ENV_ALLOW_HOSTS in message


def test_a_name_is_judged_by_what_it_resolves_to():
    with pytest.raises(TargetNotAllowed, match=r"evil\.test \(resolves to 203\.0\.113\.7\)"):
        check_target("http://evil.test/hook", resolve=lambda host, port: [PUBLIC])
    # one public address among loopback ones is enough to refuse: the client may pick any of them
    with pytest.raises(TargetNotAllowed):
        check_target("http://mixed.test/hook", resolve=lambda host, port: ["127.0.0.1", PUBLIC])


def test_a_name_that_does_not_resolve_is_refused_with_the_reason():
    def fail(host, port):
        raise OSError("Name or service not known")

    with pytest.raises(TargetNotAllowed, match="nowhere.test: the name does not resolve"):
        check_target("http://nowhere.test/hook", resolve=fail)


def test_allowed_by_environment_cidr_and_ip(monkeypatch):
    monkeypatch.setenv(ENV_ALLOW_HOSTS, "203.0.113.0/24, 2001:db8::/32")
    with ConnectSpy() as spy:
        assert check_target(f"http://{PUBLIC}:8080/hook") == [PUBLIC]
        assert check_target("http://[2001:db8::5]/") == ["2001:db8::5"]
    assert spy.calls == []
    with pytest.raises(TargetNotAllowed, match=r"allow-list \(loopback, 203\.0\.113\.0/24, 2001:db8::/32\)"):
        check_target("http://198.51.100.1/")


def test_allowed_by_host_name_and_argument():
    resolve = lambda host, port: [PUBLIC]  # noqa: E731
    assert check_target("http://Partner.Example:443/", allow=["partner.example"], resolve=resolve) == [PUBLIC]
    assert check_target("http://x.example/", allow="198.51.100.0/24,203.0.113.7", resolve=resolve) == [PUBLIC]
    with pytest.raises(TargetNotAllowed):
        check_target("http://other.example/", allow=["partner.example"], resolve=resolve)


def test_a_bad_allow_list_entry_is_a_clear_error(monkeypatch):
    monkeypatch.setenv(ENV_ALLOW_HOSTS, "10.0.0.0/33")
    with pytest.raises(TargetNotAllowed, match=f"env {ENV_ALLOW_HOSTS}: '10.0.0.0/33' is neither"):
        check_target("http://127.0.0.1/")


def test_new_job_refuses_a_public_target():
    with pytest.raises(delivery.DeliveryError, match="refusing to send to 203.0.113.7"):
        delivery.new_job("DELIVERY_REFUND_REQUESTED", "accessrc", f"http://{PUBLIC}/hook", b"{}", Auth("none"))


def test_post_refuses_without_connecting_and_records_why(monkeypatch):
    """A stored job whose target is no longer allowed fails its attempt without any traffic."""
    monkeypatch.setenv(ENV_ALLOW_HOSTS, PUBLIC)
    job = delivery.new_job(
        "DELIVERY_REFUND_REQUESTED", "accessrc", f"http://{PUBLIC}/hook", b"{}", Auth("none"), delays=()
    )
    monkeypatch.delenv(ENV_ALLOW_HOSTS)
    with ConnectSpy() as spy:
        result = delivery.attempt(job, requests.Session(), None)
    assert spy.calls == []
    assert result.status is None and not result.ok
    assert result.error.startswith("not sent: refusing to send to 203.0.113.7")


def test_send_refuses_a_public_target_with_exit_2(tmp_path):
    with ConnectSpy() as spy:
        result = CliRunner().invoke(
            main,
            ["send", "DELIVERY_REFUND_REQUESTED", "--url", f"http://{PUBLIC}/hook", "--db", str(tmp_path / "sim.db")],
        )
    assert result.exit_code == 2, result.output
    assert "refusing to send to 203.0.113.7" in result.output
    assert spy.calls == []


def test_send_to_loopback_still_works(start_receiver, tmp_path):
    server = start_receiver("accessrc")
    body = catalogue.body_bytes(catalogue.generate("DELIVERY_REFUND_REQUESTED", seed=1))
    assert body
    result = CliRunner().invoke(
        main,
        [
            "send",
            "DELIVERY_REFUND_REQUESTED",
            "--url",
            server.url + "/hook",
            "--db",
            str(tmp_path / "sim.db"),
            "--retry-delays",
            "",
        ],
    )
    assert result.exit_code == 0, result.output
    assert [r.outcome for r in server.received] == ["accepted"]


@pytest.mark.parametrize("port", ["0", "99999", "-1", "65536"])
def test_a_target_port_outside_1_to_65535_is_refused_without_a_connection(port):
    """Issue 14, item 10: port 0 was checked as port 80 and then connected to as port 0."""
    with ConnectSpy() as spy, pytest.raises(TargetNotAllowed, match="port"):
        check_target(f"http://127.0.0.1:{port}/hook")
    assert spy.calls == []
