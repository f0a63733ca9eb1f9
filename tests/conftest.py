"""Shared fixtures: real key pairs, real SQLite files, real receivers on 127.0.0.1 with random ports."""
from __future__ import annotations

import pytest

from simulator import signing
from simulator.auth import Auth
from simulator.receiver import ReceiverConfig, ServerThread, create_receiver
from simulator.store import Store


@pytest.fixture(scope="session")
def keys_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("keys")
    signing.generate_keys(path)
    return path


@pytest.fixture(scope="session")
def keys(keys_dir):
    return signing.load_keys(keys_dir)


@pytest.fixture
def store(tmp_path):
    s = Store(tmp_path / "sim.db")
    yield s
    s.close()


@pytest.fixture
def start_receiver(keys):
    """Start the reference receiver: start_receiver(platform, auth=None, fail_first=0, event=None,
    public_key_pem=<the session key>) -> ServerThread with `.received`."""
    servers = []

    def start(platform: str = "accredit", auth: Auth | None = None, fail_first: int = 0, event: str | None = None,
              public_key_pem: str | None = None):
        auth = auth or (Auth("rsa") if platform == "accredit" else Auth("none"))
        app = create_receiver(ReceiverConfig(platform, auth, public_key_pem or keys.public_pem, event, fail_first))
        server = ServerThread(app).start()
        server.received = app.extensions["received"]
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()
