"""`accessrc-sim run`: scenario files against a receiver."""

from __future__ import annotations

import sys

import click

from ..scenarios import reports
from ..scenarios.loader import ScenarioFileError, load_all
from ..scenarios.runner import Runner
from .errors import EXIT_FAILED, EXIT_OK, EXIT_USAGE, UsageProblem
from .files import open_keys, open_store
from .options import db_option, keys_option
from .targets import check_url


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
@click.option("--var", "var_values", multiple=True, metavar="NAME=VALUE", help="Set a variable (repeatable).")
@click.option("--junit", "junit_path", type=click.Path(dir_okay=False), help="Write a JUnit XML report here.")
@click.option("--report", "report_path", type=click.Path(dir_okay=False), help="Write a JSON report here.")
@click.option("--fail-fast", is_flag=True, help="Stop at the first failed step.")
@click.option("--strict", is_flag=True, help="Steps of inferred rules fail like the others (default: they warn).")
@db_option
@keys_option
def run_cmd(targets, url, var_values, junit_path, report_path, fail_fast, strict, db_path, keys_dir) -> None:
    """Run scenario files (YAML or JSON; a folder: every file below it) against a receiver.

    Every file is checked first; any problem is listed as file:line:column and nothing is sent (exit 2).
    Then one line per step, and the summary `N passed, M failed` (`, K warned` when steps whose `rule:` is
    inferred failed: advice, not failures, unless --strict). Exit 0 when nothing failed, 1 otherwise.

    Example: accessrc-sim run scenarios/accessrc --var RECEIVER_URL=http://127.0.0.1:9001/hook --junit report.xml
    """
    cli_vars = parse_vars(var_values)
    if url:
        check_url(url)
    try:
        scenarios = load_all(targets, cli_vars=cli_vars, url=url)
    except ScenarioFileError as exc:
        for problem in exc.problems:
            click.echo(problem, err=True)
        click.echo(f"{len(exc.problems)} problem(s); nothing was sent", err=True)
        sys.exit(EXIT_USAGE)
    results, stopped = run_scenarios(scenarios, db_path, keys_dir, fail_fast, strict=strict)
    if junit_path:
        reports.write_junit(results, junit_path)
    if report_path:
        reports.write_json(results, report_path, stopped)
    failed = sum(r.failed for r in results)
    sys.exit(EXIT_FAILED if failed else EXIT_OK)


def run_scenarios(scenarios, db_path, keys_dir, fail_fast: bool, echo=click.echo, strict: bool = False):
    console = reports.Console(echo, color=sys.stdout.isatty(), style=click.style)
    # a bad --keys-dir or --db stops the run before its first request (the keys only when a scenario signs)
    keys = open_keys(keys_dir) if any(sc.auth.kind == "rsa" for sc in scenarios) else lambda: open_keys(keys_dir)
    store = open_store(db_path)
    runner = Runner(
        store, keys=keys, on_step=console.step, on_scenario=console.scenario, fail_fast=fail_fast, strict=strict
    )
    try:
        results = runner.run(scenarios)
    finally:
        store.close()
    if runner.stopped:
        echo("stopped at the first failure (--fail-fast); later steps were not run")
    echo(reports.summary_line(results))
    return results, runner.stopped
