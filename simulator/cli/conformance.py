"""`accessrc-sim conformance`: a receiver's go-live readiness, as a table and a verdict."""

from __future__ import annotations

import sys

import click

from ..scenarios import conformance, reports
from ..scenarios.loader import ScenarioFileError
from ..scenarios.runner import Runner
from .errors import EXIT_FAILED, EXIT_OK, EXIT_USAGE, UsageProblem
from .files import open_keys, open_store
from .options import auth_options, build_auth, db_option, keys_option
from .platform_api import serve_platform_api
from .targets import check_url, parse_url_for


@click.command("conformance")
@click.option(
    "--url",
    help="The receiver's callback URL (AccessRC: of DELIVERY_CHANNEL_STATUS_UPDATED, the event "
    "tested by default, unless --url-for names it).",
)
@click.option(
    "--url-for",
    "url_for_values",
    multiple=True,
    metavar="EVENT=URL",
    help="AccessRC: the callback URL subscribed for EVENT (repeatable); every row runs for each.",
)
@click.option("--platform", type=click.Choice(conformance.PLATFORMS), required=True)
@auth_options
@click.option(
    "--timeout",
    type=click.FloatRange(0, 600, min_open=True),
    default=10.0,
    show_default=True,
    help="Seconds the platform waits for an answer (ReachFive: the console's Timeout).",
)
@click.option("--report", "report_path", type=click.Path(dir_okay=False), help="Write the verdict as JSON here.")
@click.option("--junit", "junit_path", type=click.Path(dir_okay=False), help="Write a JUnit XML report here.")
@click.option(
    "--scenarios-dir",
    type=click.Path(file_okay=False, exists=True),
    help="Folder holding conformance/<platform>/ [default: env ACCESSRC_SIM_SCENARIOS_DIR, else the "
    "shipped scenarios/].",
)
@click.option(
    "--strict",
    is_flag=True,
    help="Checks of inferred rules count like documented ones (default: they only give advice).",
)
@click.option("--verbose", "-v", is_flag=True, help="Also print one line per step.")
@click.option(
    "--follow-up",
    is_flag=True,
    help="Add a row: after the event the receiver's system calls the platform back (AccessRC: DeliveryRequest/Sync "
    "after DELIVERY_REQUEST_SENT, whose URL --url-for names; Accredit: the Print Queue download). Its rule is "
    "inferred: no call back is a WARN (advice, the verdict stays READY), a FAIL only with --strict. Needs --api-port.",
)
@click.option(
    "--api-port",
    type=click.IntRange(1, 65535),
    help="With --follow-up: serve the platform APIs on 127.0.0.1:PORT during the check (the receiver must call there).",
)
@click.option(
    "--follow-up-within",
    type=click.FloatRange(0, 600, min_open=True),
    default=conformance.FOLLOW_UP_WITHIN,
    show_default=True,
    metavar="SECONDS",
    help="With --follow-up: how long to wait for the call.",
)
@db_option
@keys_option
def conformance_cmd(
    url,
    url_for_values,
    platform,
    hmac_secret,
    api_key_header,
    api_key,
    basic,
    authorization,
    rsa_padding,
    timeout,
    report_path,
    junit_path,
    scenarios_dir,
    strict,
    verbose,
    follow_up,
    api_port,
    follow_up_within,
    db_path,
    keys_dir,
) -> None:
    """Is a receiver ready for go-live? Runs the platform's conformance set and prints a readiness table.

    Rows: credentials, payload validation, idempotency, envelopes, timeout, retries (PASS, FAIL, WARN or N/A with
    evidence, one line per check), `advice:` lines for checks of inferred rules that failed, then the verdict:
    READY when every documented check passed (with --strict: every check). Exit 0 when ready, 1 when not, 2 on
    bad usage.

    \b
    Example: accessrc-sim conformance --platform accessrc --hmac-secret abcd1234 \\
      --url-for DELIVERY_CHANNEL_STATUS_UPDATED=http://127.0.0.1:9001/dcsu \\
      --url-for DELIVERY_REFUND_REQUESTED=http://127.0.0.1:9001/refund
    Example: accessrc-sim conformance --platform accredit --url http://127.0.0.1:9002/notify --follow-up --api-port 9510
    """
    if follow_up and api_port is None:
        raise UsageProblem(
            "--follow-up needs --api-port PORT: the platform APIs are served there for the check, and the receiver "
            "must be configured to call them (http://127.0.0.1:PORT)"
        )
    if api_port is not None and not follow_up:
        raise UsageProblem("--api-port serves the platform APIs for the follow-up row: add --follow-up")
    if follow_up and str(db_path) == ":memory:":
        raise UsageProblem("--follow-up: the platform APIs record calls in --db, which the check reads: give a file")
    auth = build_auth(platform, hmac_secret, api_key_header, api_key, basic, authorization, rsa_padding)
    if url:
        check_url(url)
    url_for = parse_url_for(url_for_values)
    try:
        plan = conformance.plan(
            platform,
            url,
            auth,
            timeout,
            scenarios_dir,
            url_for=url_for,
            follow_up=follow_up,
            follow_up_within=follow_up_within,
        )
    except ScenarioFileError as exc:
        for problem in exc.problems:
            click.echo(problem, err=True)
        sys.exit(EXIT_USAGE)
    except conformance.ConformanceError as exc:
        raise UsageProblem(str(exc)) from exc
    console = reports.Console(click.echo, color=sys.stdout.isatty(), style=click.style)
    keys = open_keys(keys_dir) if auth.kind == "rsa" else lambda: open_keys(keys_dir)
    store = open_store(db_path)
    api = None
    try:
        if follow_up and platform in conformance.FOLLOW_UP_EVENT:
            api = serve_platform_api(api_port, db_path, keys_dir, strict=strict)
        runner = Runner(
            store,
            keys=keys,
            strict=strict,
            on_step=console.step if verbose else None,
            on_scenario=console.scenario if verbose else None,
            calls_api=api.url if api else None,
        )
        verdict = conformance.run(plan, runner)
    finally:
        if api is not None:
            api.stop()
        store.close()
    for line in conformance.table(verdict, color=sys.stdout.isatty(), style=click.style):
        click.echo(line)
    if report_path:
        reports.atomic_write(report_path, conformance.to_json_text(verdict))
    if junit_path:
        reports.write_junit(verdict.results, junit_path)
    sys.exit(EXIT_OK if verdict.ready else EXIT_FAILED)
