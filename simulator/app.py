"""`create_app(config)`: the simulator's Flask app (defaults, then overrides), its services and blueprints."""
from __future__ import annotations

import os
from pathlib import Path

from flask import Flask

from .config import DEFAULT_DB, DEFAULT_KEYS_DIR, ENV_API_KEY, ENV_DB, ENV_KEYS
from .services import EXTENSION, Services


def create_app(config: dict | None = None) -> Flask:
    """Build the app. START_WORKERS (default True) starts the queue worker and the scheduler once; a caller
    that serves the app calls `app.extensions["accessrc_sim"].stop()` when done."""
    app = Flask("accessrc_sim", static_folder=None)  # no /static/ from the current folder; the dashboard has its own
    app.config.from_mapping(
        DB_PATH=os.environ.get(ENV_DB, DEFAULT_DB),
        KEYS_DIR=os.environ.get(ENV_KEYS, DEFAULT_KEYS_DIR),
        API_KEY=os.environ.get(ENV_API_KEY) or None,  # None: generated on first start, kept in the database
        ALLOW_PLANNED=False,
        RETRY_DELAYS=None,  # None: 1, 2, 4, 8, 16 s
        TIMEOUT=None,  # None: 10 s
        DELIVERY_THREADS=4,
        RETENTION_DAYS=None,  # None: finished jobs are kept; else deleted that many days after they finish
        START_WORKERS=True,
        MAX_CONTENT_LENGTH=1024 * 1024,
        LOGIN_TOKEN=None,  # None: a fresh one; `serve` prints the dashboard's login URL with it
        NO_AUTH_LOCAL=False,  # True: a browser on this machine by a loopback name gets a session without a key
        JSON_SORT_KEYS=False,
    )
    if config:
        app.config.from_mapping(config)

    services = Services.build(Path(app.config["DB_PATH"]), Path(app.config["KEYS_DIR"]),
                              api_key=app.config["API_KEY"] or "", allow_planned=app.config["ALLOW_PLANNED"],
                              retry_delays=app.config["RETRY_DELAYS"], timeout=app.config["TIMEOUT"],
                              threads=app.config["DELIVERY_THREADS"], retention_days=app.config["RETENTION_DAYS"])
    app.extensions[EXTENSION] = services

    from . import dashboard
    from .api import accessrc, accredit, errors, jobs, openapi, session, sim
    from .scenarios import api as scenarios_api

    errors.init_app(app)
    session.init_app(app)
    # Blueprints: one line each (the dashboard and scenarios add theirs here).
    app.register_blueprint(sim.bp)
    app.register_blueprint(accredit.bp)
    app.register_blueprint(accessrc.bp)
    app.register_blueprint(jobs.bp)
    app.register_blueprint(openapi.bp)
    app.register_blueprint(dashboard.bp)
    app.register_blueprint(scenarios_api.bp)

    if app.config["START_WORKERS"]:
        services.start()
    return app
