"""`create_app(config)`: the simulator's Flask app (defaults, then overrides), its services and blueprints."""

from __future__ import annotations

from pathlib import Path

from flask import Flask

from .config import Settings
from .platforms.provider_calls import REVIEW_MODES
from .services import EXTENSION, Services


def create_app(config: dict | None = None, settings: Settings | None = None) -> Flask:
    """Build the app: defaults from `settings` (None: config.Settings.load(), the environment's), then `config`.
    START_WORKERS (default True) starts the queue worker and the scheduler once; a caller that serves the app
    calls `app.extensions["accessrc_sim"].stop()` when done."""
    settings = settings if settings is not None else Settings.load()
    # Rooted at this package, not the working directory: no /static/ and no templates/ of the app's own (the
    # dashboard's are in its package), and instance_path beside the package, so nothing is read from the folder the
    # server was started in.
    app = Flask(__package__, root_path=str(Path(__file__).resolve().parent), static_folder=None, template_folder=None)
    app.config.from_mapping(
        DB_PATH=settings.db_path,
        KEYS_DIR=settings.keys_dir,
        API_KEY=settings.api_key,  # None: generated on first start, kept in the database
        ALLOW_PLANNED=False,
        RETRY_DELAYS=settings.retry_delays,  # None: 1, 2, 4, 8, 16 s
        TIMEOUT=settings.timeout,  # None: 10 s
        DELIVERY_THREADS=4,
        RETENTION_DAYS=None,  # None: finished jobs are kept; else deleted that many days after they finish
        START_WORKERS=True,
        MAX_CONTENT_LENGTH=1024 * 1024,
        LOGIN_TOKEN=None,  # None: a fresh one; `serve` prints the dashboard's login URL with it
        NO_AUTH_LOCAL=False,  # True: a browser on this machine by a loopback name gets a session without a key
        JSON_SORT_KEYS=False,
        REVIEW="approve",  # how a DeliveryChannel/Create is decided: approve | reject | manual (serve --review)
        REVIEW_DELAY=3.0,  # seconds before an automatic decision (serve --review-delay)
        STRICT=False,  # True: the platform APIs refuse on inferred rules too (serve --strict); else advice
    )
    if config:
        app.config.from_mapping(config)

    services = Services.build(
        str(app.config["DB_PATH"]),  # a file's path or a postgresql:// URL (a Path would fold its //)
        Path(app.config["KEYS_DIR"]),
        api_key=app.config["API_KEY"],
        allow_planned=app.config["ALLOW_PLANNED"],
        retry_delays=app.config["RETRY_DELAYS"],
        timeout=app.config["TIMEOUT"],
        threads=app.config["DELIVERY_THREADS"],
        retention_days=app.config["RETENTION_DAYS"],
    )
    if app.config["REVIEW"] not in REVIEW_MODES or not 0 <= float(app.config["REVIEW_DELAY"]) <= 86400:
        raise ValueError(f"REVIEW must be one of {', '.join(REVIEW_MODES)} and REVIEW_DELAY 0 to 86400 seconds")
    services.settings.review_mode = app.config["REVIEW"]
    services.settings.review_delay = float(app.config["REVIEW_DELAY"])
    app.extensions[EXTENSION] = services

    from . import dashboard
    from .api import (
        access,
        accessrc,
        accredit,
        actions,
        errors,
        events,
        health,
        jobs,
        loop,
        openapi,
        print_queue,
        provider_calls,
        scenario_runs,
        send,
        session,
        stream,
        subscriptions,
    )
    from .dashboard import readiness

    errors.init_app(app)
    session.init_app(app)
    loop.init_app(app)  # its clock starts before the access check, so a refused call is recorded with its timing
    access.init_app(app)  # the one access decision of every route (RULES)
    # Blueprints: one line each (the dashboard and scenarios add theirs here).
    app.register_blueprint(health.bp)
    app.register_blueprint(events.bp)
    app.register_blueprint(subscriptions.bp)
    app.register_blueprint(send.bp)
    app.register_blueprint(actions.bp)
    app.register_blueprint(stream.bp)
    app.register_blueprint(accredit.bp)
    app.register_blueprint(accessrc.bp)
    app.register_blueprint(provider_calls.bp)
    app.register_blueprint(print_queue.bp)
    app.register_blueprint(loop.bp)
    app.register_blueprint(jobs.bp)
    app.register_blueprint(openapi.bp)
    app.register_blueprint(dashboard.bp)
    app.register_blueprint(readiness.bp)
    app.register_blueprint(scenario_runs.bp)

    if app.config["START_WORKERS"]:
        services.start()
    return app
