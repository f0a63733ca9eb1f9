"""`accessrc-sim serve`: the running simulator on waitress (not Flask's development server, no reloader).

SIGTERM or Ctrl-C stops it gracefully: no new claims, in-flight attempts finish (or stay due for the next start).
A server holds a lock beside its SQLite file for its whole life: a second server on the same file exits 2.
The HTTP edge is bounded (see `server_options`): connections, idle time and request bodies.
"""

from __future__ import annotations

import logging
import signal
import socket
import sys

import click

from .. import __version__, delivery
from ..config import ENV_API_KEY, Settings
from ..delivery import DeliveryError
from ..limits import CONNECTION_LIMIT, IDLE_TIMEOUT, server_options
from ..platforms.provider_calls import REVIEW_DELAY, REVIEW_MODES
from ..store import DATABASE_ERRORS
from .errors import UsageProblem
from .files import check_db, make_db_folder, open_keys
from .options import db_option, keys_option

STOP_TIMEOUT = 30.0
FD_HEADROOM = 256  # descriptors beyond the connection limit: database, logs, outbound deliveries, threads


def raise_open_files_limit(connection_limit: int) -> int:
    """Raise the soft RLIMIT_NOFILE to what `connection_limit` needs (up to the hard limit); the connection
    limit that fits the result."""
    try:
        import resource
    except ImportError:  # not on this system
        return connection_limit
    needed = connection_limit + FD_HEADROOM
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    if soft == resource.RLIM_INFINITY:
        return connection_limit
    return max(1, min(connection_limit, soft - FD_HEADROOM))


def login_url(host: str, port: int, token: str) -> str:
    """The dashboard's log-in link; a wildcard listen address is reached through loopback."""
    host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}/?token={token}"


def check_port(host: str, port: int, option: str = "--port") -> None:
    """Exit 2 when `host:port` cannot be listened on, before the database, a key pair or an admin key is made.
    A bind test on each address waitress will bind (same SO_REUSEADDR), released at once; port 0 is always free."""
    if port == 0:
        return
    try:
        addresses = {
            info[4][:2]: info[0] for info in socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM, 0, socket.AI_PASSIVE)
        }
        for address, family in addresses.items():
            with socket.socket(family, socket.SOCK_STREAM) as probe:
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                probe.bind(address)
                probe.listen(1)
    except OSError as exc:
        raise UsageProblem(
            f"cannot listen on {host}:{port}: {exc.strerror or exc} (another accessrc-sim running?); "
            f"choose another {option}"
        ) from exc


def serve_settings(db_path: str, keys_dir: str, retry_delays: str | None, timeout: float | None) -> Settings:
    """The server's one Settings: defaults, environment, flags; the delays and the timeout checked here, once."""
    try:
        delays = delivery.parse_delays(retry_delays)
        if timeout is not None:
            timeout = delivery.check_timeout(timeout)
    except DeliveryError as exc:
        raise UsageProblem(str(exc)) from exc
    return Settings.load(db_path=db_path, keys_dir=keys_dir, retry_delays=delays, timeout=timeout)


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on (loopback by default).")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8080,
    show_default=True,
    help="Port to listen on (0: any free port, printed at start).",
)
@db_option(
    help="SQLite file (one server), or postgresql://user@host/db shared by any number of servers: subscriptions, "
    "jobs, attempts."
)
@keys_option(help="Folder of the Accredit RSA key pair, created on first use.")
@click.option(
    "--retry-delays",
    metavar="LIST",
    help="Seconds before each retry, e.g. 0,0,0,0,0 "
    f"[default: {','.join(f'{d:g}' for d in delivery.DEFAULT_RETRY_DELAYS)}; ReachFive never retries].",
)
@click.option("--timeout", type=float, help=f"Seconds to wait for each answer [default: {delivery.DEFAULT_TIMEOUT:g}].")
@click.option("--allow-planned", is_flag=True, help="Let AccessRC Subscribe accept planned event types.")
@click.option(
    "--delivery-threads",
    type=click.IntRange(1, 64),
    default=4,
    show_default=True,
    help="Attempts sent at the same time.",
)
@click.option(
    "--http-threads",
    type=click.IntRange(2, 256),
    default=16,
    show_default=True,
    help="Waitress worker threads (each open /api/stream holds one).",
)
@click.option(
    "--connection-limit",
    type=click.IntRange(10, 100_000),
    default=CONNECTION_LIMIT,
    show_default=True,
    help="Open connections at most; beyond it new ones wait until some close.",
)
@click.option(
    "--idle-timeout",
    type=click.IntRange(1, 3600),
    default=IDLE_TIMEOUT,
    show_default=True,
    help="Seconds before a connection with no request in progress and no bytes moving is closed.",
)
@click.option(
    "--demo",
    is_flag=True,
    help="Also run the reference receivers in-process (127.0.0.1) and point the "
    "dashboard's samples and demo subscriptions at them.",
)
@click.option(
    "--demo-port",
    type=click.IntRange(0, 65535),
    default=0,
    show_default=True,
    help="With --demo: the port of the demo receivers on 127.0.0.1 (one server, a path per receiver); 0: any free "
    "port.",
)
@click.option(
    "--no-auth-local",
    is_flag=True,
    help="Let any browser on this machine (loopback address and name) "
    "use the dashboard without logging in. Every local account can then act as the admin.",
)
@click.option(
    "--retention",
    type=click.FloatRange(0, min_open=True),
    metavar="DAYS",
    default=None,
    help="Delete jobs (and their attempts) that finished more than DAYS days ago, at start and every hour "
    "[default: keep every job].",
)
@click.option(
    "--review",
    type=click.Choice(REVIEW_MODES),
    default="approve",
    show_default=True,
    help="How a DeliveryChannel/Create is decided: approve or reject after --review-delay, or manual (the trainer "
    "decides with POST /api/reviews/<providerDeliveryChannelId>); answered by DELIVERY_CHANNEL_STATUS_UPDATED.",
)
@click.option(
    "--review-delay",
    type=click.FloatRange(0, 86400),
    default=REVIEW_DELAY,
    show_default=True,
    metavar="SECONDS",
    help="Seconds before an automatic review decides a proposed delivery channel.",
)
@click.option(
    "--strict",
    is_flag=True,
    help="The APIs a receiver calls back (DeliveryChannel/Create, DeliveryRequest/Sync, Delivery/Sync, the Print "
    "Queue) refuse what only an inferred rule breaks (400 naming it); by default they accept it with `advice`.",
)
def serve_cmd(
    host,
    port,
    db_path,
    keys_dir,
    retry_delays,
    timeout,
    allow_planned,
    delivery_threads,
    http_threads,
    connection_limit=CONNECTION_LIMIT,
    idle_timeout=IDLE_TIMEOUT,
    demo=False,
    demo_port=0,
    no_auth_local=False,
    retention=None,
    review="approve",
    review_delay=REVIEW_DELAY,
    strict=False,
) -> None:
    """Serve the subscription APIs, the schedules, the delivery queue and the delivery log.

    The admin API key comes from ACCESSRC_SIM_API_KEY, or is generated at first start and printed once; the database
    keeps only its hash (`accessrc-sim admin-key --rotate` makes a new one). One server per database file.
    The dashboard's one-time log-in link (`/?token=…`) is printed at each start.

    Example: accessrc-sim serve --port 8080 --retry-delays 1,2,4,8,16
    """
    from ..api.edge import create_guarded_server
    from ..api.session import EXTENSION as SESSIONS
    from ..app import create_app
    from ..dashboard.demo import serve_demo
    from ..services import EXTENSION
    from ..store import DatabaseInUse, display, lock_for_serving

    settings = serve_settings(db_path, keys_dir, retry_delays, timeout)
    db_path, keys_dir = settings.db_path, settings.keys_dir
    check_port(host, port)  # a busy port: exit 2 before any database, key pair or admin key is made or printed
    if demo:
        check_port("127.0.0.1", demo_port, "--demo-port")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)  # streams hold threads by design
    logging.getLogger("apscheduler").setLevel(logging.WARNING)  # not a line per firing
    check_db(db_path)  # a bad --db or --keys-dir: exit 2 with what is wrong, before the database is written
    make_db_folder(db_path)
    try:  # one server per database file, held until this process ends (kill -9 included)
        lock_for_serving(db_path)
    except DatabaseInUse as exc:
        raise UsageProblem(str(exc)) from exc
    except OSError as exc:
        raise UsageProblem(f"--db {db_path}: cannot lock it ({db_path}.lock): {exc.strerror or exc}") from exc
    open_keys(keys_dir)
    try:
        app = create_app(
            {
                "ALLOW_PLANNED": allow_planned,
                "DELIVERY_THREADS": delivery_threads,
                "START_WORKERS": False,
                "NO_AUTH_LOCAL": no_auth_local,
                "RETENTION_DAYS": retention,
                "REVIEW": review,
                "REVIEW_DELAY": review_delay,
                "STRICT": strict,
            },
            settings=settings,
        )
    except DATABASE_ERRORS as exc:
        raise UsageProblem(f"--db {display(db_path)}: cannot use it as the database: {exc}") from exc
    services = app.extensions[EXTENSION]
    new_key_line = (
        f"admin API key (generated now, shown once; only its hash is kept in {display(db_path)}): "
        f"{services.settings.api_key}"
    )
    fitting = raise_open_files_limit(connection_limit)
    if fitting < connection_limit:
        click.echo(
            f"warning: the open-files limit allows {fitting} connections, not {connection_limit} (raise `ulimit -n`)",
            err=True,
        )
    try:
        server = create_guarded_server(  # waitress, the key checked before a body is read (simulator.api.edge)
            app,
            host=host,
            port=port,
            threads=http_threads,
            ident="accessrc-sim",
            clear_untrusted_proxy_headers=True,
            **server_options(app.config["MAX_CONTENT_LENGTH"], fitting, idle_timeout),
        )
    except OSError as exc:
        if services.settings.api_key_generated:  # generated and stored: say it now, or it is never shown
            click.echo(new_key_line)
        raise UsageProblem(
            f"cannot listen on {host}:{port}: {exc.strerror or exc} "
            "(another accessrc-sim running?); choose another --port"
        ) from exc

    def stop(signum, frame):
        services.stopping.set()  # open event streams end, freeing their threads
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    services.start()
    url = f"http://{server.effective_host}:{server.effective_port}/"
    click.echo(f"accessrc-sim {__version__} serving on {url} (db {display(db_path)}, keys {keys_dir})")
    token = app.extensions[SESSIONS].login_token
    click.echo(
        f"dashboard: {login_url(server.effective_host, server.effective_port, token)} "
        "(one-time log-in link for your browser; once used, log in with the admin key on the page)"
    )
    if no_auth_local:
        click.echo(
            f"warning: --no-auth-local: any browser on this machine opening {url} uses the dashboard "
            "without logging in, so every local account can act as the admin",
            err=True,
        )
    demo_receiver = serve_demo(app, url, click.echo, port=demo_port) if demo else None
    if services.queue.recovered:
        click.echo(
            f"resumed {len(services.queue.recovered)} job(s) interrupted by the last stop (an attempt in "
            f"flight is sent again once its lease has run out, within {services.queue.lease:g} s)"
        )
    if retention is not None:
        click.echo(f"retention: jobs that finished more than {retention:g} day(s) ago are deleted, now and every hour")
    if services.settings.api_key_generated:
        click.echo(new_key_line)
    elif settings.api_key:
        click.echo(f"admin API key: from {ENV_API_KEY}")
    else:
        click.echo(
            f"admin API key: the one generated at first start or by `admin-key --rotate` (only its hash is "
            f"kept; lost it? `accessrc-sim admin-key --rotate --db {display(db_path)}` makes a new one); set "
            f"{ENV_API_KEY} to choose your own"
        )
    sys.stdout.flush()
    try:
        server.run()
    finally:
        services.stopping.set()
        server.close()
        if demo_receiver:
            demo_receiver.stop()
        services.stop(STOP_TIMEOUT)
        click.echo("stopped")
