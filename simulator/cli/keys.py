"""`accessrc-sim keys show|generate`: the Accredit RSA key pair."""

from __future__ import annotations

from pathlib import Path

import click

from .. import signing
from .errors import UsageProblem
from .files import open_keys
from .options import keys_option


@click.group("keys")
def keys_group() -> None:
    """The Accredit RSA key pair (the private key never leaves the keys folder)."""


@keys_group.command("show")
@keys_option
def keys_show(keys_dir) -> None:
    """Print the public key (PEM) that receivers verify X-Signature with; generates the pair on first use.

    Example: accessrc-sim keys show > accredit_public.pem
    """
    click.echo(open_keys(keys_dir).public_pem, nl=False)


@keys_group.command("generate")
@keys_option
@click.option("--force", is_flag=True, help="Replace an existing key pair.")
def keys_generate(keys_dir, force: bool) -> None:
    """Create a new RSA-2048 key pair in the keys folder.

    Example: accessrc-sim keys generate --force
    """
    try:
        signing.generate_keys(keys_dir, force=force)
    except (FileExistsError, signing.KeyFileError) as exc:
        raise UsageProblem(str(exc)) from exc
    click.echo(f"new key pair in {Path(keys_dir)} (public key: {Path(keys_dir) / signing.PUBLIC_FILE})")
