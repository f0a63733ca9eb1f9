"""`accessrc-sim receiver`: the reference receiver on waitress, its HTTP edge bounded as `serve`'s is
(simulator.cli.serve.server_options): connections, idle time, request bodies."""

from __future__ import annotations

from pathlib import Path

import click

from .. import catalogue, platforms, signing
from .errors import UsageProblem
from .files import open_keys
from .options import auth_options, build_auth, keys_option
from .serve import check_port, server_options


@click.command("receiver")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(1, 65535), default=9000, show_default=True)
@click.option("--platform", type=click.Choice(catalogue.PLATFORMS), default="accredit", show_default=True)
@click.option("--event", help="Expect only this event (default: tell it from the body).")
@click.option(
    "--fail-first",
    type=click.IntRange(0),
    default=0,
    show_default=True,
    help="Answer 500 to the first N attempts of each job.",
)
@click.option(
    "--strict",
    is_flag=True,
    help="Refuse bodies that break inferred rules too (400; over 256 KiB: 413; a Content-Type that is not JSON: 400); "
    "by default they are accepted and logged as advice, each naming its rule.",
)
@auth_options
@click.option(
    "--public-key",
    type=click.Path(exists=True, dir_okay=False),
    help="Accredit: PEM public key to verify with [default: the one in --keys-dir].",
)
@keys_option
def receiver_cmd(
    host,
    port,
    platform,
    event,
    fail_first,
    strict,
    hmac_secret,
    api_key_header,
    api_key,
    basic,
    authorization,
    rsa_padding,
    public_key,
    keys_dir,
) -> None:
    """Run the reference receiver: verifies signatures, validates bodies, dedupes repeats, answers the envelopes.

    Repeats are acknowledged (2xx) without being processed again: Accredit's by X-JobId (its guide's advice);
    AccessRC's and ReachFive's, which document no dedup header, by an exact duplicate body.

    Bodies up to 1 MiB (the most the simulator generates) are read; a JSON body under another Content-Type is read as
    JSON. Both are advice (rules PLATFORM.conformance.body-limit, PLATFORM.conformance.content-type), refused with
    --strict.

    Example: accessrc-sim receiver --port 9001 --platform accessrc --hmac-secret abcd1234
    """
    from ..receiver import MAX_BODY, ReceiverConfig, create_receiver

    auth = build_auth(platform, hmac_secret, api_key_header, api_key, basic, authorization, rsa_padding)
    if event:
        try:
            event = catalogue.get_event(event, platform).name
        except catalogue.CatalogueError as exc:
            raise UsageProblem(str(exc)) from exc
    pem = None
    if platforms.get(platform).signs_with_keys:
        pem = public_key_pem(public_key) if public_key else open_keys(keys_dir).public_pem
    app = create_receiver(
        ReceiverConfig(platform, auth, pem, event, fail_first, log=lambda line: click.echo(line), strict=strict)
    )
    from waitress.server import create_server

    check_port(host, port)  # a bad --host or a busy --port: exit 2 saying so, as serve does
    try:  # bounded as serve is: connections, idle time, and bodies cut by waitress over twice MAX_BODY (2 MiB)
        server = create_server(app, host=host, port=port, threads=8, **server_options(MAX_BODY))
    except (OSError, ValueError) as exc:  # ValueError: waitress refuses the host
        raise UsageProblem(
            f"cannot listen on {host}:{port}: {getattr(exc, 'strerror', None) or exc} (another receiver running?); "
            "choose another --port"
        ) from exc
    click.echo(f"reference receiver for {platform} on http://{host}:{port}/ (auth: {auth.kind})")
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()


def public_key_pem(path: str) -> str:
    """--public-key: a PEM RSA public key, or exit 2 saying the file is not one."""
    try:
        pem = Path(path).read_text("ascii")
        signing.load_public_key(pem)
    except (OSError, UnicodeDecodeError, ValueError, TypeError) as exc:
        raise UsageProblem(f"--public-key {path}: not a PEM RSA public key ({str(exc).split('.')[0]})") from exc
    return pem
