"""The `run` and `conformance` commands (registered on the `accessrc-sim` group in simulator/cli.py)."""
from __future__ import annotations

import sys

import click

from .. import guard
from ..cli import (EXIT_FAILED, EXIT_OK, EXIT_USAGE, UsageProblem, auth_options, build_auth, db_option,
                   keys_option, open_keys, open_store)
from . import conformance, reports
from .loader import ScenarioFileError, load_all
from .runner import Runner


def parse_vars(values: tuple[str, ...]) -> dict[str, str]:
    out = {}
    for text in values:
        name, sep, value = text.partition("=")
        if not sep or not name.strip().isidentifier():
            raise UsageProblem(f"--var takes NAME=VALUE, got {text!r}")
        out[name.strip()] = value
    return out


def check_url(url: str) -> None:
    """A target we may not send to (not http(s), or not loopback / ACCESSRC_SIM_ALLOW_HOSTS) is bad usage."""
    if not url.lower().startswith(("http://", "https://")):
        raise UsageProblem(f"--url must be an http:// or https:// URL, got {url!r}")
    try:
        guard.check_target(url)
    except guard.TargetNotAllowed as exc:
        raise UsageProblem(str(exc)) from exc


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
    runner = Runner(store, keys=keys, on_step=console.step,
                    on_scenario=console.scenario, fail_fast=fail_fast, strict=strict)
    try:
        results = runner.run(scenarios)
    finally:
        store.close()
    if runner.stopped:
        echo("stopped at the first failure (--fail-fast); later steps were not run")
    echo(reports.summary_line(results))
    return results, runner.stopped


def parse_url_for(values: tuple[str, ...]) -> dict[str, str]:
    out: dict[str, str] = {}
    for text in values:
        event, sep, url = text.partition("=")
        if not sep or not event.strip() or not url.strip():
            raise UsageProblem(f"--url-for takes EVENT=URL, got {text!r}")
        if event.strip() in out:
            raise UsageProblem(f"--url-for: {event.strip()} is given twice")
        check_url(url.strip())
        out[event.strip()] = url.strip()
    return out


@click.command("conformance")
@click.option("--url", help="The receiver's callback URL (AccessRC: of DELIVERY_CHANNEL_STATUS_UPDATED, the event "
                            "tested by default, unless --url-for names it).")
@click.option("--url-for", "url_for_values", multiple=True, metavar="EVENT=URL",
              help="AccessRC: the callback URL subscribed for EVENT (repeatable); every row runs for each.")
@click.option("--platform", type=click.Choice(conformance.PLATFORMS), required=True)
@auth_options
@click.option("--timeout", type=click.FloatRange(0, 600, min_open=True), default=10.0, show_default=True,
              help="Seconds the platform waits for an answer (ReachFive: the console's Timeout).")
@click.option("--report", "report_path", type=click.Path(dir_okay=False), help="Write the verdict as JSON here.")
@click.option("--junit", "junit_path", type=click.Path(dir_okay=False), help="Write a JUnit XML report here.")
@click.option("--scenarios-dir", type=click.Path(file_okay=False, exists=True),
              help="Folder holding conformance/<platform>/ [default: env ACCESSRC_SIM_SCENARIOS_DIR, else the "
                   "shipped scenarios/].")
@click.option("--strict", is_flag=True, help="Checks of inferred rules count like documented ones (default: they only "
                                            "give advice).")
@click.option("--verbose", "-v", is_flag=True, help="Also print one line per step.")
@db_option
@keys_option
def conformance_cmd(url, url_for_values, platform, hmac_secret, api_key_header, api_key, basic, authorization,
                    rsa_padding, timeout, report_path, junit_path, scenarios_dir, strict, verbose, db_path,
                    keys_dir) -> None:
    """Is a receiver ready for go-live? Runs the platform's conformance set and prints a readiness table.

    Rows: credentials, payload validation, idempotency, envelopes, timeout, retries (PASS, FAIL, WARN or N/A with
    evidence, one line per check), `advice:` lines for checks of inferred rules that failed, then the verdict:
    READY when every documented check passed (with --strict: every check). Exit 0 when ready, 1 when not, 2 on
    bad usage.

    \b
    Example: accessrc-sim conformance --platform accessrc --hmac-secret abcd1234 \\
      --url-for DELIVERY_CHANNEL_STATUS_UPDATED=http://127.0.0.1:9001/dcsu \\
      --url-for DELIVERY_REFUND_REQUESTED=http://127.0.0.1:9001/refund
    """
    auth = build_auth(platform, hmac_secret, api_key_header, api_key, basic, authorization, rsa_padding)
    if url:
        check_url(url)
    url_for = parse_url_for(url_for_values)
    try:
        plan = conformance.plan(platform, url, auth, timeout, scenarios_dir, url_for=url_for)
    except ScenarioFileError as exc:
        for problem in exc.problems:
            click.echo(problem, err=True)
        sys.exit(EXIT_USAGE)
    except conformance.ConformanceError as exc:
        raise UsageProblem(str(exc)) from exc
    console = reports.Console(click.echo, color=sys.stdout.isatty(), style=click.style)
    keys = open_keys(keys_dir) if auth.kind == "rsa" else lambda: open_keys(keys_dir)
    store = open_store(db_path)
    try:
        runner = Runner(store, keys=keys, strict=strict,
                        on_step=console.step if verbose else None, on_scenario=console.scenario if verbose else None)
        verdict = conformance.run(plan, runner)
    finally:
        store.close()
    for line in conformance.table(verdict, color=sys.stdout.isatty(), style=click.style):
        click.echo(line)
    if report_path:
        reports._atomic_write(report_path, conformance.to_json_text(verdict))
    if junit_path:
        reports.write_junit(verdict.results, junit_path)
    sys.exit(EXIT_OK if verdict.ready else EXIT_FAILED)
