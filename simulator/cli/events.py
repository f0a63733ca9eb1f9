"""`accessrc-sim events`: the catalogue's events."""

from __future__ import annotations

import json

import click

from .. import catalogue


@click.command("events")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list for machines.")
@click.option("--platform", type=click.Choice(catalogue.PLATFORMS), help="Only this platform's events.")
def events_cmd(as_json: bool, platform: str | None) -> None:
    """List every event the simulator can send.

    Example: accessrc-sim events --platform accessrc
    """
    specs = catalogue.events(platform)
    if as_json:
        click.echo(json.dumps([s.to_dict() for s in specs], indent=2))
        return
    width = max(len(s.name) for s in specs)
    for s in specs:
        click.echo(f"{s.name:<{width}}  {s.platform:<9}  {s.availability:<7}  {s.description}")
