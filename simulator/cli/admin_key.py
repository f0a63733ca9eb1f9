"""`accessrc-sim admin-key`: make a new admin API key for a database (only its hash is kept)."""

from __future__ import annotations

import time
from pathlib import Path

import click

from ..config import ENV_API_KEY
from .errors import UsageProblem
from .files import open_store
from .options import db_option

ROTATION_SETTLES = 2.0  # seconds: twice services.KEY_REFRESH, the time a running server takes to use a new key


@click.command("admin-key")
@click.option(
    "--rotate",
    is_flag=True,
    help="Make a new admin key, keep its hash and print it (once), two seconds later: by then a running server "
    "uses it, and the old key and every dashboard session opened with it no longer work.",
)
@db_option
def admin_key_cmd(rotate: bool, db_path) -> None:
    """Make a new admin API key for the database's server (--rotate), printed once.

    The database keeps only the key's SHA-256, so a key cannot be shown again; without --rotate this says whether
    one is set and how to get a new one. A server started with ACCESSRC_SIM_API_KEY uses that key instead.

    Example: KEY=$(accessrc-sim admin-key --rotate)
    """
    from ..services import API_KEY_HASH_SETTING, API_KEY_SETTING, rotate_api_key
    from ..store import display, is_postgres_url
    from ..subscriptions import SubscriptionRepo

    shown = display(db_path)
    if not rotate and not is_postgres_url(str(db_path)) and not Path(db_path).exists():
        raise UsageProblem(
            f"no database at {shown}; start `accessrc-sim serve` first, or make a key with "
            f"`accessrc-sim admin-key --rotate --db {shown}`"
        )
    repo = SubscriptionRepo(open_store(db_path))
    if rotate:
        key = rotate_api_key(repo)
        # A running server re-reads the key's hash every KEY_REFRESH s: print once it has, so that a script that
        # uses the new key at once is not refused
        time.sleep(ROTATION_SETTLES)
        click.echo(key)
        click.echo(
            f"new admin API key for {shown} (shown once; only its hash is kept; the previous key no longer "
            f"works; a server started with {ENV_API_KEY} uses that key instead)",
            err=True,
        )
        return
    kept = repo.setting(API_KEY_HASH_SETTING) or repo.setting(API_KEY_SETTING)
    state = "holds the hash of an admin key" if kept else "holds no admin key yet"
    raise UsageProblem(
        f"{shown} {state}; a key is shown only once, when it is made, and cannot be printed "
        f"again. Make a new one with `accessrc-sim admin-key --rotate --db {shown}` (the old one "
        f"stops working), or serve with {ENV_API_KEY} set to a key of your choice"
    )
