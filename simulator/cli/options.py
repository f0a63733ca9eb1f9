"""Options shared by several commands, and the auth they ask for."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import click

from .. import config, delivery, platforms, signing
from ..auth import Auth, AuthError
from ..config import DB_FILE, ENV_DB, ENV_HOME, ENV_KEYS, KEYS_FOLDER
from .errors import UsageProblem

F = TypeVar("F", bound=Callable)

DB_HELP = f"SQLite file for jobs and attempts, or a postgresql:// URL (env {ENV_DB})."
KEYS_HELP = f"Folder of the RSA key pair, created on first use (env {ENV_KEYS})."
DATA_FOLDER = f"${ENV_HOME}, else in {config.home({})}"  # the data folder, for --help


class EnvOption(click.Option):
    """An option backed by a setting: its environment variable (`envvar`) is read by simulator.config, the one
    reader of the environment; Click checks that value as it checks a flag, and a flag given wins over it."""

    def resolve_envvar_value(self, ctx: click.Context) -> str | None:
        return config.from_environment().get(self.name)


def _apply(options: list, f: F) -> F:
    for option in reversed(options):
        f = option(f)
    return f


def db_option(f: F | None = None, *, help: str = DB_HELP):
    """`--db` (env ACCESSRC_SIM_DB, default config.default_db()); `@db_option` or `@db_option(help=...)`."""
    option = click.option(
        "--db",
        "db_path",
        cls=EnvOption,
        type=click.Path(dir_okay=False),
        envvar=ENV_DB,
        default=config.default_db,
        show_default=f"{DB_FILE} in {DATA_FOLDER}",
        help=help,
    )
    return option if f is None else option(f)


def keys_option(f: F | None = None, *, help: str = KEYS_HELP):
    """`--keys-dir` (env ACCESSRC_SIM_KEYS_DIR, default config.default_keys_dir()); `@keys_option` or with help=."""
    option = click.option(
        "--keys-dir",
        cls=EnvOption,
        type=click.Path(file_okay=False),
        envvar=ENV_KEYS,
        default=config.default_keys_dir,
        show_default=f"{KEYS_FOLDER}/ in {DATA_FOLDER}",
        help=help,
    )
    return option if f is None else option(f)


def auth_options(f: F) -> F:
    """The credential options of every platform; which ones apply depends on the event's platform."""
    return _apply(
        [
            click.option("--hmac-secret", help="AccessRC hmac auth: secret for `x-signature: sha256=<hex>`."),
            click.option(
                "--api-key-header", default=None, help="AccessRC header auth: header name [default: x-api-key]."
            ),
            click.option("--api-key", help="AccessRC header auth: the header's value."),
            click.option("--basic", metavar="USER:PASS", help="AccessRC basic auth."),
            click.option("--authorization", metavar="VALUE", help="ReachFive: static Authorization header value."),
            click.option(
                "--rsa-padding",
                type=click.Choice(signing.PADDINGS),
                default="pkcs1v15",
                show_default=True,
                help="Accredit RSA signature padding.",
            ),
        ],
        f,
    )


def build_auth(
    platform: str,
    hmac_secret: str | None = None,
    api_key_header: str | None = None,
    api_key: str | None = None,
    basic: str | None = None,
    authorization: str | None = None,
    rsa_padding: str = "pkcs1v15",
) -> Auth:
    """The auth the command's options ask for (Platform.auth_from_options), or a usage error naming the options."""
    try:
        return platforms.get(platform).auth_from_options(
            lambda name: "--" + name.replace("_", "-"),
            rsa_padding=rsa_padding,
            hmac_secret=hmac_secret,
            api_key_header=api_key_header,
            api_key=api_key,
            basic=basic,
            authorization=authorization,
        )
    except AuthError as exc:
        raise UsageProblem(str(exc)) from exc


def payload_options(f: F) -> F:
    return _apply(
        [
            click.option("--seed", type=int, help="Seed for the generated values: the same seed gives the same bytes."),
            click.option(
                "--set",
                "sets",
                multiple=True,
                metavar="PATH=VALUE",
                help="Override a field by dotted path (JSON value, else string), e.g. --set status=Rejected.",
            ),
            click.option(
                "--count",
                type=click.IntRange(0, 10_000),
                help="Size of the event's main list (eligibility applications, delivery request deliveries).",
            ),
            click.option("--force", is_flag=True, help="Allow paths and values that break the event's schema."),
        ],
        f,
    )


def document_options(f: F) -> F:
    """Options of the commands that make one payload: the documents' examples, strict rules, Accredit names."""
    return _apply(
        [
            click.option(
                "--example",
                is_flag=False,
                flag_value="",
                default=None,
                metavar="[NAME]",
                help="Start from the documents' own example payload (NAME: which one; `events --json` lists "
                "them) instead of a generated one.",
            ),
            click.option(
                "--strict",
                is_flag=True,
                help="Refuse values that break an inferred rule too "
                "(by default they are printed as notes: `accessrc-sim rules`).",
            ),
            click.option(
                "--event-name",
                metavar="ENTITY.ACTION",
                help="Accredit: send Entity.Event under this name, "
                "e.g. Contact.Updated; add its fields with --set (the documents allow extra fields).",
            ),
        ],
        f,
    )


def timeout_option(f):
    """`--timeout`: seconds to wait for each answer (send, load)."""
    return click.option(
        "--timeout",
        type=float,
        default=delivery.DEFAULT_TIMEOUT,
        show_default=True,
        help="Seconds to wait for each answer.",
    )(f)


def profile_option(f):
    """`--profile`: the delivery profile (documented, or AccessRC's opt-in accredit-like)."""
    return click.option(
        "--profile",
        type=click.Choice(platforms.PROFILE_NAMES),
        default=None,
        help="Delivery profile [default: documented]. accredit-like (AccessRC only) adds Accredit's "
        "X-JobId/X-JobAttempt headers, which AccessRC does not document.",
    )(f)
