"""Shared fixtures: real key pairs, real SQLite files, real receivers on 127.0.0.1 with random ports, and the
simulator's app (`make_app`, `app`, `client`) on a temp database with the session keys and sim_helpers.API_KEY."""

from __future__ import annotations

import os

import pytest
from sim_helpers import API_KEY

from simulator import config, signing
from simulator.app import create_app
from simulator.auth import Auth
from simulator.receiver import ReceiverConfig, ServerThread, create_receiver
from simulator.store import Store


@pytest.fixture(scope="session", autouse=True)
def sim_home(tmp_path_factory):
    """The suite never writes in the real user's data folder: ACCESSRC_SIM_HOME is a temp folder for the whole
    session (set in os.environ, so every app, CLI run and child process defaults to it)."""
    home = tmp_path_factory.mktemp("sim-home") / "accessrc-sim"
    before = os.environ.get(config.ENV_HOME)
    os.environ[config.ENV_HOME] = str(home)
    yield home
    if before is None:
        os.environ.pop(config.ENV_HOME, None)
    else:
        os.environ[config.ENV_HOME] = before


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


@pytest.fixture(scope="session")
def pg_server():
    """One throwaway PostgreSQL server for the session (tests/postgres_server.py); each test takes a new database."""
    from postgres_server import PostgresServer

    server = PostgresServer().start()
    yield server
    server.stop()


@pytest.fixture
def pg_url(pg_server):
    """The URL of a new, empty PostgreSQL database."""
    return pg_server.new_database()


@pytest.fixture(params=["sqlite", "postgresql"])
def backend_store(request, tmp_path):
    """The same test on both backends: a Store on a new SQLite file, then on a new PostgreSQL database."""
    where = tmp_path / "sim.db" if request.param == "sqlite" else request.getfixturevalue("pg_url")
    s = Store(where)
    yield s
    s.close()


@pytest.fixture
def start_receiver(keys):
    """Start the reference receiver: start_receiver(platform, auth=None, fail_first=0, event=None,
    public_key_pem=<the session key>, strict=False) -> ServerThread with `.received`."""
    servers = []

    def start(
        platform: str = "accredit",
        auth: Auth | None = None,
        fail_first: int = 0,
        event: str | None = None,
        public_key_pem: str | None = None,
        strict: bool = False,
    ):
        auth = auth or (Auth("rsa") if platform == "accredit" else Auth("none"))
        config = ReceiverConfig(platform, auth, public_key_pem or keys.public_pem, event, fail_first, strict=strict)
        app = create_receiver(config)
        server = ServerThread(app).start()
        server.received = app.extensions["received"]
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def make_app(tmp_path, keys_dir):
    """make_app(**config) -> Flask app on tmp_path/sim.db with the session keys; stopped after the test."""
    apps = []

    def make(**config):
        settings = {
            "DB_PATH": str(tmp_path / "sim.db"),
            "KEYS_DIR": str(keys_dir),
            "API_KEY": API_KEY,
            "RETRY_DELAYS": (0.1, 0.1, 0.1, 0.1, 0.1),
            "TIMEOUT": 5,
        }
        settings.update(config)
        app = create_app(settings)
        apps.append(app)
        return app

    yield make
    for app in apps:
        app.extensions["accessrc_sim"].stop(5)


@pytest.fixture
def app(make_app):
    return make_app()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def receiver(start_receiver):
    """receiver(platform, auth=None, public_key_pem=None, fail_first=0): start_receiver with AccessRC first."""

    def start(platform="accessrc", auth=None, public_key_pem=None, fail_first=0):
        return start_receiver(platform, auth, fail_first, public_key_pem=public_key_pem)

    return start
