"""The platform APIs served for one command's duration (`run --api-port`, `conformance --follow-up --api-port`):
the same Flask app as `serve` (simulator.app.create_app) on waitress, in a thread, on 127.0.0.1 only, on the
database the command writes to, so that the calls a receiver makes back are recorded where the run reads them.

No queue worker and no scheduler are started (the command delivers its own jobs), and a DeliveryChannel/Create is
never decided on its own (review `manual`): in a scenario, its send step plays the IM team's answer.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import click

from ..config import ENV_API_KEY, Settings
from ..store import DATABASE_ERRORS, display
from .errors import UsageProblem
from .serve import check_port, server_options

HOST = "127.0.0.1"
HTTP_THREADS = 8
JOIN_SECONDS = 5.0


@dataclass
class PlatformApi:
    url: str
    key: str | None  # the admin key when known (configured, or generated now); else only its hash is kept
    server: object
    thread: threading.Thread
    services: object

    def busy(self) -> bool:
        """A request still queued, being answered or its answer not yet written (a receiver's call in flight)."""
        if self.server.task_dispatcher.queue:
            return True
        for channel in list(self.server._map.values()):
            if channel is self.server or channel is self.server.trigger:
                continue
            if getattr(channel, "requests", None) or getattr(channel, "total_outbufs_len", 0) > 0:
                return True
        return False

    def stop(self) -> None:
        """Let the calls in flight be answered (an await_call step may have matched a call recorded before its
        answer was written), then close every connection and the listening socket from the server's own loop."""
        deadline = time.monotonic() + JOIN_SECONDS
        while self.busy() and time.monotonic() < deadline:
            time.sleep(0.02)
        from ..receiver import stop_waitress  # Flask with it: only once a platform API was served

        stop_waitress(self.server, self.thread, JOIN_SECONDS)
        self.services.stop(JOIN_SECONDS)


def serve_platform_api(port: int, db_path: str, keys_dir: str, echo=click.echo, strict: bool = False) -> PlatformApi:
    """Listen on 127.0.0.1:`port` (exit 2 when it cannot) and say where, and with which key, a receiver calls.
    `strict` (the command's --strict): the APIs refuse on inferred rules too, as `serve --strict`."""
    from ..api.edge import create_guarded_server
    from ..app import create_app
    from ..services import EXTENSION

    check_port(HOST, port, "--api-port")
    settings = Settings.load(db_path=db_path, keys_dir=keys_dir)
    try:
        app = create_app({"START_WORKERS": False, "REVIEW": "manual", "STRICT": strict}, settings=settings)
    except DATABASE_ERRORS as exc:
        raise UsageProblem(f"--db {display(db_path)}: cannot use it as the database: {exc}") from exc
    services = app.extensions[EXTENSION]
    try:
        server = create_guarded_server(  # as serve's: the key checked before a body is read
            app,
            host=HOST,
            port=port,
            threads=HTTP_THREADS,
            ident="accessrc-sim",
            clear_untrusted_proxy_headers=True,
            **server_options(app.config["MAX_CONTENT_LENGTH"]),
        )
    except OSError as exc:
        services.stop(JOIN_SECONDS)
        raise UsageProblem(f"cannot listen on {HOST}:{port}: {exc.strerror or exc}; choose another --api-port") from exc
    thread = threading.Thread(target=server.run, name="accessrc-sim-platform-api", daemon=True)
    thread.start()
    url = f"http://{HOST}:{server.effective_port}"
    key = services.settings.api_key
    echo(f"platform APIs for the receiver's calls back: {url} (db {display(settings.db_path)})")
    if services.settings.api_key_generated:
        echo(f"  key: x-api-key (AccessRC) or Authorization: Bearer (Accredit): {key} (generated now, shown once)")
    elif key:
        echo(f"  key: x-api-key (AccessRC) or Authorization: Bearer (Accredit): the admin key from {ENV_API_KEY}")
    else:
        echo(
            "  key: x-api-key (AccessRC) or Authorization: Bearer (Accredit): the admin key generated at this "
            f"database's first start (only its hash is kept; set {ENV_API_KEY} to choose one)"
        )
    return PlatformApi(url, key, server, thread, services)
