"""The `accessrc-sim` command line: a thin Click layer over the library; errors become messages and exit codes.

The group lives here and names one module per command in `COMMANDS`; a command's module is imported only when that
command runs (or its own help is asked for), so `accessrc-sim events` does not pay for Flask, requests, Faker or
jsonschema (tests/test_startup.py checks which modules it loads). The group's help lists every command with the first
paragraph of its docstring, read from the module's source, not imported. A new command: its module, and one line in
COMMANDS. The command modules share options.py, files.py, payloads.py, targets.py and errors.py, and never import
this package back.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import click

from .. import __version__

__all__ = ["main", "COMMANDS"]

# name -> (module in simulator.cli, the command object's name in it)
COMMANDS: dict[str, tuple[str, str]] = {
    "admin-key": ("admin_key", "admin_key_cmd"),
    "conformance": ("conformance", "conformance_cmd"),
    "events": ("events", "events_cmd"),
    "keys": ("keys", "keys_group"),
    "load": ("load", "load_cmd"),
    "receiver": ("receiver", "receiver_cmd"),
    "rules": ("rules", "rules_cmd"),
    "run": ("run", "run_cmd"),
    "sample": ("sample", "sample_cmd"),
    "send": ("send", "send_cmd"),
    "serve": ("serve", "serve_cmd"),
    "tail": ("tail", "tail_cmd"),
    "trigger": ("trigger", "trigger_cmd"),
    "verify": ("verify", "verify_cmd"),
}


def docstring(name: str) -> str | None:
    """The docstring of command `name`'s function, read from its module's source without importing it (the
    group's help shows every command's first paragraph; importing them all would cost what laziness saves).
    None when the source cannot be read (then the command is imported instead)."""
    module, attribute = COMMANDS[name]
    try:
        tree = ast.parse(Path(__file__).with_name(f"{module}.py").read_text("utf-8"))
    except (OSError, SyntaxError, UnicodeError):
        return None
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == attribute:
            return ast.get_docstring(node)
    return None


class LazyGroup(click.Group):
    """A group whose commands are imported on first use (Click's lazy-loading pattern: `list_commands` names them,
    `get_command` imports one), and whose help lists them from `COMMANDS` without importing any."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in COMMANDS:
            module, attribute = COMMANDS[cmd_name]
            command = getattr(importlib.import_module(f"{__name__}.{module}"), attribute)
            self.add_command(command, cmd_name)
        return super().get_command(ctx, cmd_name)

    def load_all(self) -> dict[str, click.Command]:
        """Every command, imported: for tools and tests that walk the whole tree."""
        ctx = click.Context(self)
        return {name: self.get_command(ctx, name) for name in self.list_commands(ctx)}

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        names = self.list_commands(ctx)
        if not names:
            return
        limit = formatter.width - 6 - max(len(name) for name in names)
        rows = []
        for name in names:
            if name in COMMANDS and name not in self.commands and (doc := docstring(name)) is not None:
                rows.append((name, click.Command(name, help=doc).get_short_help_str(limit)))
                continue
            command = self.get_command(ctx, name)
            if command is not None and not command.hidden:
                rows.append((name, command.get_short_help_str(limit)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="accessrc-sim")
def main() -> None:
    """Mock webhook sender for AccessRC, Accredit and ReachFive receivers.

    Example: accessrc-sim send BadgeExportZipFile.Created --url http://127.0.0.1:9000/baseWebhookNotification
    """
