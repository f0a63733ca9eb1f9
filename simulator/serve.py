"""`accessrc-sim serve`: the running simulator on waitress (not Flask's development server, no reloader).

SIGTERM or Ctrl-C stops it gracefully: no new claims, in-flight attempts finish (or stay due for the next start).
"""
from __future__ import annotations

import logging
import signal
import sys

import click

from . import __version__, delivery
from .config import ENV_API_KEY
from .delivery import DeliveryError

STOP_TIMEOUT = 30.0


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on (loopback by default).")
@click.option("--port", type=click.IntRange(0, 65535), default=8080, show_default=True,
              help="Port to listen on (0: any free port, printed at start).")
@click.option("--db", "db_path", type=click.Path(dir_okay=False), envvar="ACCESSRC_SIM_DB",
              default="accessrc-sim.db", show_default=True, help="SQLite file: subscriptions, jobs, attempts.")
@click.option("--keys-dir", type=click.Path(file_okay=False), envvar="ACCESSRC_SIM_KEYS_DIR", default="keys",
              show_default=True, help="Folder of the Accredit RSA key pair, created on first use.")
@click.option("--retry-delays", metavar="LIST", help="Seconds before each retry, e.g. 0,0,0,0,0 "
              f"[default: {','.join(f'{d:g}' for d in delivery.DEFAULT_RETRY_DELAYS)}; ReachFive never retries].")
@click.option("--timeout", type=float, help=f"Seconds to wait for each answer [default: {delivery.DEFAULT_TIMEOUT:g}].")
@click.option("--allow-planned", is_flag=True, help="Let AccessRC Subscribe accept planned event types.")
@click.option("--delivery-threads", type=click.IntRange(1, 64), default=4, show_default=True,
              help="Attempts sent at the same time.")
@click.option("--http-threads", type=click.IntRange(2, 256), default=16, show_default=True,
              help="Waitress worker threads (each open /api/stream holds one).")
@click.option("--demo", is_flag=True, help="Also run the reference receivers in-process (127.0.0.1) and point the "
              "dashboard's samples and demo subscriptions at them.")
def serve_cmd(host, port, db_path, keys_dir, retry_delays, timeout, allow_planned, delivery_threads,
              http_threads, demo=False) -> None:
    """Serve the subscription APIs, the schedules, the delivery queue and the delivery log.

    The admin API key comes from ACCESSRC_SIM_API_KEY, or is generated at first start, printed once and kept
    in the database.

    Example: accessrc-sim serve --port 8080 --retry-delays 1,2,4,8,16
    """
    from waitress.server import create_server

    from .app import create_app
    from .cli import UsageProblem
    from .dashboard.demo import serve_demo
    from .services import EXTENSION

    try:
        delays = delivery.parse_delays(retry_delays)
        if timeout is not None:
            delivery.check_timeout(timeout)
    except DeliveryError as exc:
        raise UsageProblem(str(exc)) from exc
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        stream=sys.stderr)
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)  # streams hold threads by design
    logging.getLogger("apscheduler").setLevel(logging.WARNING)  # not a line per firing
    app = create_app({"DB_PATH": db_path, "KEYS_DIR": keys_dir, "ALLOW_PLANNED": allow_planned,
                      "RETRY_DELAYS": delays, "TIMEOUT": timeout, "DELIVERY_THREADS": delivery_threads,
                      "START_WORKERS": False})
    services = app.extensions[EXTENSION]
    try:
        server = create_server(app, host=host, port=port, threads=http_threads, ident="accessrc-sim",
                               clear_untrusted_proxy_headers=True)
    except OSError as exc:
        if services.settings.api_key_generated:  # generated and stored: say it now, or it is never shown
            click.echo(f"admin API key (generated now, shown once; kept in {db_path}): {services.settings.api_key}")
        raise UsageProblem(f"cannot listen on {host}:{port}: {exc.strerror or exc} "
                           "(another accessrc-sim running?); choose another --port") from exc

    def stop(signum, frame):
        services.stopping.set()  # open event streams end, freeing their threads
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    services.start()
    url = f"http://{server.effective_host}:{server.effective_port}/"
    click.echo(f"accessrc-sim {__version__} serving on {url} (db {db_path}, keys {keys_dir})")
    demo_receiver = serve_demo(app, url, click.echo) if demo else None
    if services.queue.recovered:
        click.echo(f"resumed {len(services.queue.recovered)} job(s) interrupted by the last stop")
    if services.settings.api_key_generated:
        click.echo(f"admin API key (generated now, shown once; kept in {db_path}): {services.settings.api_key}")
    elif app.config["API_KEY"]:
        click.echo(f"admin API key: from {ENV_API_KEY}")
    else:
        click.echo(f"admin API key: the one generated at first start (`accessrc-sim admin-key --db {db_path}` "
                   f"prints it); set {ENV_API_KEY} to choose your own")
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
