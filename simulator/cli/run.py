"""`accessrc-sim run`: scenario files against a receiver."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from .. import catalogue, platforms
from ..scenarios import reports
from ..scenarios.loader import Scenario, ScenarioFileError, Step, collect_files, load_file
from ..scenarios.positions import parse
from ..scenarios.runner import Runner
from .errors import EXIT_FAILED, EXIT_OK, EXIT_USAGE, UsageProblem
from .files import open_keys, open_store
from .options import db_option, keys_option
from .platform_api import serve_platform_api
from .targets import check_url, parse_url_for

CONFORMANCE_DIR = "conformance"  # scenarios/conformance/<platform>/: the sets `accessrc-sim conformance` runs


def parse_vars(values: tuple[str, ...]) -> dict[str, str]:
    """`--var NAME=VALUE` options as a mapping; a bad one is a usage error."""
    out = {}
    for text in values:
        name, sep, value = text.partition("=")
        if not sep or not name.strip().isidentifier():
            raise UsageProblem(f"--var takes NAME=VALUE, got {text!r}")
        out[name.strip()] = value
    return out


@click.command("run")
@click.argument("targets", nargs=-1, required=True, metavar="FILE|DIR ...")
@click.option("--url", help="Target URL of every scenario (replaces each file's url).")
@click.option(
    "--url-for",
    "url_for_values",
    multiple=True,
    metavar="PLATFORM=URL|EVENT=URL",
    help="Target URL of the scenarios of one platform, or of every step sending one event (repeatable; an event's "
    "URL wins over its platform's, which wins over --url). AccessRC subscribes one callbackUrl per event type: give "
    "one EVENT=URL per event your receiver serves at its own URL.",
)
@click.option(
    "--include-conformance",
    is_flag=True,
    help="Also run the conformance sets found in a folder (conformance/ below it; skipped by default: "
    "`accessrc-sim conformance` runs them with their variables).",
)
@click.option("--var", "var_values", multiple=True, metavar="NAME=VALUE", help="Set a variable (repeatable).")
@click.option("--junit", "junit_path", type=click.Path(dir_okay=False), help="Write a JUnit XML report here.")
@click.option("--report", "report_path", type=click.Path(dir_okay=False), help="Write a JSON report here.")
@click.option("--fail-fast", is_flag=True, help="Stop at the first failed step.")
@click.option("--strict", is_flag=True, help="Steps of inferred rules fail like the others (default: they warn).")
@click.option(
    "--api-port",
    type=click.IntRange(1, 65535),
    help="Serve the platform APIs a receiver calls back (AccessRC Sync/Create, Accredit Print Queue) on "
    "127.0.0.1:PORT for the run's duration, on --db: await_call steps need it. Without it, a folder's scenarios "
    "with await_call steps are skipped and a file named with some is refused.",
)
@db_option
@keys_option
def run_cmd(
    targets,
    url,
    url_for_values,
    include_conformance,
    var_values,
    junit_path,
    report_path,
    fail_fast,
    strict,
    api_port,
    db_path,
    keys_dir,
) -> None:
    """Run scenario files (YAML or JSON; a folder: every file below it) against a receiver.

    Every file is checked first; any problem is listed as file:line:column and nothing is sent (exit 2).
    Then one line per step, and the summary `N passed, M failed` (`, K warned` when steps whose `rule:` is
    inferred failed: advice, not failures, unless --strict). Exit 0 when nothing failed, 1 otherwise.
    A folder's conformance/ sets are skipped unless --include-conformance (or the folder named is one).

    \b
    Example: accessrc-sim run scenarios/accessrc --var RECEIVER_URL=http://127.0.0.1:9001/hook --junit report.xml
    Example: accessrc-sim run scenarios --url-for accessrc=http://127.0.0.1:9001/hook \\
      --url-for accredit=http://127.0.0.1:9002/notify --url-for reachfive=http://127.0.0.1:9003/jobs
    Example: accessrc-sim run scenarios/accessrc/loop-delivery-request-sync.yaml --api-port 9510 \\
      --var RECEIVER_URL=http://127.0.0.1:9001/hook
    Example: accessrc-sim run scenarios/accessrc --url-for DELIVERY_CHANNEL_STATUS_UPDATED=http://127.0.0.1:9001/dcsu \\
      --url-for DELIVERY_REFUND_REQUESTED=http://127.0.0.1:9001/refund --var RECEIVER_URL=http://127.0.0.1:9001/hook
    """
    cli_vars = parse_vars(var_values)
    if url:
        check_url(url)
    url_for, event_urls = _split_url_for(url_for_values)
    files, problems, skipped = scenario_files(targets, include_conformance)
    scenarios = []
    for path in files:
        try:
            scenarios.append(
                route_events(load_file(path, cli_vars, url_for.get(_platform_of(path)) or url), event_urls)
            )
        except ScenarioFileError as exc:
            problems.extend(exc.problems)
    for note in (n for sc in scenarios for n in sc.notes):  # inferred rules a `set:` breaks: refused with --strict
        if strict:
            problems.append(f"{note} - refused: --strict")
        else:
            click.echo(note.replace(": set ", ": note: set ", 1) + " - advice only (refused with --strict)", err=True)
    loop_skipped = 0
    if api_port is None:
        scenarios, loop_skipped = _without_loops(scenarios, targets, problems)
        if loop_skipped and not scenarios and not problems:
            problems.append(
                f"{', '.join(map(str, targets))}: only scenarios with await_call steps (they wait for the receiver's "
                "calls back): add --api-port PORT to serve the platform APIs"
            )
    elif str(db_path) == ":memory:":
        problems.append("--api-port: the platform APIs record calls in --db, which the run reads: give a file")
    if problems:
        for problem in problems:
            click.echo(problem, err=True)
        click.echo(f"{len(problems)} problem(s); nothing was sent", err=True)
        sys.exit(EXIT_USAGE)
    if skipped:
        click.echo(
            f"note: {skipped} conformance file(s) skipped (run them with `accessrc-sim conformance`, "
            "or add --include-conformance)"
        )
    if api_port is None and loop_skipped:
        click.echo(
            f"note: {loop_skipped} scenario(s) with await_call steps skipped (they wait for the receiver's calls "
            "back: add --api-port PORT to serve the platform APIs)"
        )
    results, stopped = run_scenarios(scenarios, db_path, keys_dir, fail_fast, strict=strict, api_port=api_port)
    if junit_path:
        reports.write_junit(results, junit_path)
    if report_path:
        reports.write_json(results, report_path, stopped)
    failed = sum(r.failed for r in results)
    sys.exit(EXIT_FAILED if failed else EXIT_OK)


def _split_url_for(values: tuple[str, ...]) -> tuple[dict[str, str], dict[str, str]]:
    """`--url-for` values as (platform -> URL, event -> URL); a key that is neither is a usage error."""
    platform_urls, event_urls = {}, {}
    for key, target in parse_url_for(values, "PLATFORM or EVENT").items():
        if key in platforms.NAMES:
            platform_urls[key] = target
            continue
        try:
            event_urls[catalogue.get_event(key).name] = target
        except catalogue.CatalogueError:
            raise UsageProblem(
                f"--url-for {key}={target}: PLATFORM must be one of {', '.join(platforms.NAMES)}, or EVENT an event "
                "name (accessrc-sim events lists them)"
            ) from None
    return platform_urls, event_urls


def route_events(scenario: Scenario, event_urls: dict[str, str]) -> Scenario:
    """Each send or fault step of an event given `--url-for EVENT=URL` (and no `url:` of its own) goes to that URL:
    with one callback URL per event type, no step posts an event to another event's URL."""

    def walk(steps: list[Step]) -> None:
        for step in steps:
            if step.kind in ("send", "fault") and step.event in event_urls and "url" not in step.data:
                step.data["url"] = event_urls[step.event]
            walk(step.children)

    if event_urls:
        walk(scenario.steps)
    return scenario


def scenario_files(targets, include_conformance: bool) -> tuple[list[Path], list[str], int]:
    """The files to run, the problems of the targets, and how many conformance files a folder held and were
    skipped (a folder's conformance/ below it, unless asked; a conformance folder named itself is run)."""
    files, problems, skipped = [], [], 0
    for target in targets:
        found, missing = collect_files([target])
        problems.extend(missing)
        if not Path(target).is_dir() or include_conformance:
            files.extend(found)
            continue
        kept = [f for f in found if CONFORMANCE_DIR not in f.relative_to(target).parts[:-1]]
        skipped += len(found) - len(kept)
        if found and not kept:
            problems.append(
                f"{target}: only conformance sets below this folder; add --include-conformance, or run "
                "`accessrc-sim conformance`"
            )
        files.extend(kept)
    return files, problems, skipped


def _platform_of(path: Path) -> str | None:
    """The `platform:` a scenario file names (None when it cannot tell: loading it reports why)."""
    try:
        data, _ = parse(path.read_text("utf-8"), str(path), path.suffix.lower() == ".json")
    except (OSError, UnicodeDecodeError, ScenarioFileError):
        return None
    return data.get("platform") if isinstance(data, dict) and isinstance(data.get("platform"), str) else None


def awaits_calls(steps: list[Step]) -> Step | None:
    """The first await_call step (in repeats too), or None."""
    for step in steps:
        if step.kind == "await_call":
            return step
        found = awaits_calls(step.children)
        if found is not None:
            return found
    return None


def _without_loops(scenarios: list[Scenario], targets, problems: list[str]) -> tuple[list[Scenario], int]:
    """Without --api-port no call back can come: a file named on the command line that waits for one is a usage
    problem (it would only time out); one found in a folder is skipped (counted)."""
    named = {str(Path(t)) for t in targets if not Path(t).is_dir()}
    kept, skipped = [], 0
    for sc in scenarios:
        step = awaits_calls(sc.steps)
        if step is None:
            kept.append(sc)
        elif str(Path(sc.path)) in named:
            problems.append(
                f"{step.where}: {step.name}: this scenario waits for the receiver's call back; serve the platform "
                "APIs for the run with --api-port PORT (on 127.0.0.1) and point the receiver at them"
            )
        else:
            skipped += 1
    return kept, skipped


def run_scenarios(
    scenarios, db_path, keys_dir, fail_fast: bool, echo=click.echo, strict: bool = False, api_port: int | None = None
):
    console = reports.Console(echo, color=sys.stdout.isatty(), style=click.style)
    # a bad --keys-dir or --db stops the run before its first request (the keys only when a scenario signs)
    keys = open_keys(keys_dir) if any(sc.auth.kind == "rsa" for sc in scenarios) else lambda: open_keys(keys_dir)
    store = open_store(db_path)
    api = None
    try:
        if api_port is not None:
            api = serve_platform_api(api_port, db_path, keys_dir, echo, strict=strict)
        runner = Runner(
            store,
            keys=keys,
            on_step=console.step,
            on_scenario=console.scenario,
            fail_fast=fail_fast,
            strict=strict,
            calls_api=api.url if api else None,
        )
        results = runner.run(scenarios)
    finally:
        if api is not None:
            api.stop()
        store.close()
    if runner.stopped:
        echo("stopped at the first failure (--fail-fast); later steps were not run")
    for url in unanswered(results):
        echo(f"Nothing answered at {url} (connection refused): is your receiver running at {url}?")
    echo(reports.summary_line(results))
    return results, runner.stopped


def unanswered(results) -> list[str]:
    """The target URLs where every request of every failed step found nothing listening."""
    refused: dict[str, bool] = {}
    for result in results:
        for step in result.steps:
            if step.passed is not False:
                continue
            for exchange in step.exchanges:
                refused[exchange.url] = refused.get(exchange.url, True) and "refused" in (exchange.error or "").lower()
    return [url for url, nothing in refused.items() if nothing]
