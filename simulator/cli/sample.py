"""`accessrc-sim sample`: print a payload without sending it."""

from __future__ import annotations

import json

import click

from .. import catalogue
from .options import document_options, payload_options
from .payloads import make_payload


@click.command("sample")
@click.argument("event")
@payload_options
@document_options
@click.option("--compact", is_flag=True, help="Print the exact bytes that would be sent (compact JSON).")
def sample_cmd(event: str, seed, sets, count, force, example, strict, event_name, compact: bool) -> None:
    """Print a generated payload for EVENT (or, with --example, the documents' own).

    Example: accessrc-sim sample APPLICATIONS_IMPORT_RESULT --seed 7 --set summary.failureCount=5
    """
    _, payload = make_payload(event, seed, sets, count, force, example, strict, event_name)
    if compact:
        click.echo(catalogue.body_bytes(payload).decode("utf-8"))
    else:
        click.echo(json.dumps(payload, indent=2, ensure_ascii=False))
