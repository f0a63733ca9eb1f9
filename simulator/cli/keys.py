"""`accessrc-sim keys show|generate`: the Accredit RSA key pair."""

from __future__ import annotations

from pathlib import Path

import click

from .. import config, signing
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

    The PEM goes to stdout; where the key folder is goes to stderr.

    Example: accessrc-sim keys show > accredit_public.pem
    """
    existed = (Path(keys_dir) / signing.PRIVATE_FILE).exists()
    pem = open_keys(keys_dir).public_pem  # a new pair is announced on stderr, with its folder
    if existed:
        click.echo(f"accessrc-sim: the key pair is in {Path(keys_dir).absolute()}", err=True)
    click.echo(pem, nl=False)


@keys_group.command("generate")
@keys_option
@click.option("--force", is_flag=True, help="Replace an existing key pair.")
def keys_generate(keys_dir, force: bool) -> None:
    """Create a new RSA-2048 key pair in the keys folder.

    Example: accessrc-sim keys generate --force
    """
    try:
        config.make_folder(Path(keys_dir).absolute().parent)
    except OSError as exc:
        raise UsageProblem(f"cannot create the keys folder {keys_dir}: {exc.strerror or exc}") from exc
    try:
        signing.generate_keys(keys_dir, force=force)
    except (FileExistsError, signing.KeyFileError) as exc:
        raise UsageProblem(str(exc)) from exc
    click.echo(f"new key pair in {Path(keys_dir)} (public key: {Path(keys_dir) / signing.PUBLIC_FILE})")
