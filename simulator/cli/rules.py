"""`accessrc-sim rules`: every rule, documented (with its quote) or inferred (with its reason)."""

from __future__ import annotations

import json
import re
import sys

import click

from .. import catalogue
from .errors import UsageProblem

BASE_NOTIFICATION = "Entity.Event"  # Accredit's base notification: `send Entity.Event --event-name Contact.Updated`
ENTITY_ACTION = re.compile(r"[^.\s]+\.[^.\s]+")  # any Entity.Action name is sent through it


@click.command("rules")
@click.argument("event", required=False)
@click.option("--platform", type=click.Choice(catalogue.PLATFORMS), help="Only this platform's rules.")
@click.option("--source", type=click.Choice(("documented", "inferred")), help="Only documented or only inferred rules.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list for machines.")
def rules_cmd(event: str | None, platform: str | None, source: str | None, as_json: bool) -> None:
    """List every rule the simulator applies or checks, with its source.

    A documented rule quotes the platform's document; an inferred one says why we chose it. Inferred rules never
    refuse a value or fail a receiver unless --strict is asked for. EVENT narrows to one event (and its platform's
    rules for every event).

    Example: accessrc-sim rules APPLICATIONS_IMPORT_RESULT --source inferred
    """
    from .. import rules

    if event:
        try:
            spec = catalogue.get_event(event, platform)
        except catalogue.CatalogueError as exc:
            spec = catalogue.get_event(BASE_NOTIFICATION)  # any Entity.Action name is sent as Entity.Event
            if platform not in (None, spec.platform) or not ENTITY_ACTION.fullmatch(event):
                raise UsageProblem(str(exc)) from exc
            click.echo(
                f"{event}: an Accredit Entity.Action name, sent through {BASE_NOTIFICATION}: its rules", err=True
            )
        event, platform = spec.name, spec.platform
    selected = [r for r in rules.select(platform, event) if source is None or r.source == source]
    selected.sort(key=lambda r: r.event is None)  # an event's own rules first, then its platform's general ones
    if as_json:
        click.echo(json.dumps([r.to_dict() for r in selected], indent=2, ensure_ascii=False))
        return
    color = sys.stdout.isatty()
    for r in selected:
        tag = click.style(r.source, fg="green" if r.documented else "yellow") if color else r.source
        click.echo(f"{r.id}  [{tag}]  {r.text}")
        if r.documented:
            click.echo(f'    quote ({r.where}): "{" ".join(r.quote.split())}"')
        if r.reason:
            click.echo(f"    {'why' if not r.documented else 'note'}: {r.reason}")
    counts = {s: sum(1 for r in selected if r.source == s) for s in ("documented", "inferred")}
    click.echo(f"{len(selected)} rules: {counts['documented']} documented, {counts['inferred']} inferred")
