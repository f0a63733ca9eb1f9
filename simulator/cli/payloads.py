"""The payload a command prints or sends: generated or the documents' example, `--set` applied, rules checked."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from .. import catalogue, limits
from .errors import UsageProblem


def parse_sets(values: tuple[str, ...]) -> dict[str, Any]:
    """`--set PATH=VALUE` options as overrides by dotted path; a bad one is a usage error."""
    overrides = {}
    for text in values:
        try:
            path, value = catalogue.paths.parse_assignment(text)
        except catalogue.PathError as exc:
            raise UsageProblem(f"--set {limits.quote(text)}: {exc}") from None
        overrides[path] = value
    return overrides


def make_payload(
    event: str,
    seed: int | None,
    sets: tuple[str, ...],
    count: int | None,
    force: bool,
    example: str | None = None,
    strict: bool = False,
    event_name: str | None = None,
    echo: Callable[[str], None] | None = None,
) -> tuple[catalogue.EventSpec, dict]:
    """The payload to print or send: generated (or the documents' example), overrides applied, checked against the
    documented rules (refused: exit 2); the inferred rules it breaks are printed as notes (refused with --strict)."""
    try:
        spec = catalogue.get_event(event)
        overrides = parse_sets(sets)
        if event_name is not None:
            if spec.name != "Entity.Event":
                raise UsageProblem(
                    f"--event-name goes with Entity.Event, Accredit's base notification (send "
                    f"Entity.Event --event-name Contact.Updated); {spec.name} has its own name"
                )
            overrides = {"Event": event_name, **overrides}
        payload = catalogue.generate(
            spec.name, seed=seed, overrides=overrides, count=count, force=force, strict=strict, example=example
        )
    except catalogue.CatalogueError as exc:
        detail = (
            "".join(f"\n  - {p}" for p in exc.problems)
            if len(exc.problems) > 1 or (exc.problems and exc.problems[0] not in str(exc))
            else ""
        )
        hint = "" if force else "\n(use --force to send it anyway)" if exc.problems else ""
        raise UsageProblem(f"{exc}{detail}{hint}") from exc
    say = echo or (lambda line: click.echo(line, err=True))
    if example is not None:
        shown = catalogue.find_example(spec, example or None)
        say(
            f"example {shown.name} of {spec.name}, as written in {shown.source}"
            + (f" ({shown.note})" if shown.note else "")
        )
    if not force:
        for advice in catalogue.advise(spec, payload):
            say(f"note: {advice} - advice only, see `accessrc-sim rules {spec.name}`")
    return spec, payload
