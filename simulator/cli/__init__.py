"""The `accessrc-sim` command line: a thin Click layer over the library; errors become messages and exit codes.

The group lives here and registers one module per command; the command modules share options.py, files.py,
payloads.py, targets.py and errors.py, and never import this package back.
"""

from __future__ import annotations

import click

from .. import __version__
from .admin_key import admin_key_cmd
from .conformance import conformance_cmd
from .events import events_cmd
from .keys import keys_group
from .load import load_cmd
from .receiver import receiver_cmd
from .rules import rules_cmd
from .run import run_cmd
from .sample import sample_cmd
from .send import send_cmd
from .serve import serve_cmd
from .tail import tail_cmd
from .trigger import trigger_cmd
from .verify import verify_cmd

__all__ = ["main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="accessrc-sim")
def main() -> None:
    """Mock webhook sender for AccessRC, Accredit and ReachFive receivers.

    Example: accessrc-sim send BadgeExportZipFile.Created --url http://127.0.0.1:9000/baseWebhookNotification
    """


for command in (
    events_cmd,
    rules_cmd,
    sample_cmd,
    send_cmd,
    keys_group,
    receiver_cmd,
    admin_key_cmd,
    serve_cmd,
    load_cmd,
    run_cmd,
    conformance_cmd,
    tail_cmd,
    trigger_cmd,
    verify_cmd,
):
    main.add_command(command)
