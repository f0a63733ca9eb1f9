"""`accessrc-sim load`: the Click edge of simulator.load."""

from __future__ import annotations

import dataclasses
import json
import os
import sys

import click

from .. import catalogue, platforms
from ..load import (
    MAX_CONCURRENCY,
    MAX_DURATION,
    MAX_RATE,
    MAX_REQUESTS,
    LoadError,
    LoadPlan,
    LoadResult,
    LoadRun,
    run_load,
)
from ..load.locust_run import LOCUSTFILE, MAX_WORKERS, LocustResult, run_locust, users_for
from ..load.signers import MAX_SIGNERS, PROCESS_SIGNING_FROM, SIGNS_PER_PROCESS
from .errors import EXIT_FAILED, EXIT_OK, UsageProblem
from .files import open_keys
from .options import auth_options, build_auth, keys_option, payload_options, profile_option, timeout_option
from .payloads import make_payload, parse_sets


class Number(click.FloatRange):
    """A float in a range, whose refusal of a non-number reads "'abc' is not a valid number"."""

    name = "number"


def signing_processes(n: int) -> str:
    return f"{n} signing process{'es' if n > 1 else ''}"


def signing_note(processes: int) -> str:
    return f"events signed in {signing_processes(processes)}" if processes else "events signed in the sending threads"


CPU_BOUND = 0.8  # the sending process busy this share of a core (or more): it, not --concurrency, set the pace


def fmt_ms(value) -> str:
    return "-" if value is None else f"{value:.1f}"


def summary_lines(result: LoadResult, concurrency: int) -> list[str]:
    s = result.summary()
    lines = [
        f"sent {s['sent']}, accepted {s['accepted']}, failed {s['failed']}"
        + (f" ({', '.join(f'{k}: {v}' for k, v in s['failed_by_status'].items())})" if s["failed"] else "")
        + (f", not sent {s['unsent']} (the sender fell behind)" if s["unsent"] else ""),
        "latency ms: p50 {} p95 {} p99 {} max {}".format(
            *(fmt_ms(s["latency_ms"][k]) for k in ("p50", "p95", "p99", "max"))
        ),
        f"achieved rate {s['achieved_rate']:.1f}/s (requested {s['requested_rate']:g}/s), "
        f"start lag p99 {fmt_ms(s['start_lag_ms']['p99'])} ms, {s['elapsed_s']:.2f} s in all; "
        + signing_note(s["signing_processes"]),
    ]
    if s["sent"] >= 2 and s["achieved_rate"] < 0.95 * s["requested_rate"]:
        p50 = (s["latency_ms"]["p50"] or 0) / 1000
        busy = s["sender_cpu_s"] / s["elapsed_s"] if s["elapsed_s"] > 0 else 0.0  # cores the sender kept busy
        if busy >= CPU_BOUND:  # more requests in flight would only queue for the same CPU
            lines.append(
                f"the requested rate was not held: the sender is at this machine's ceiling for this event "
                f"(it kept {busy:.0%} of a core busy; see the README's performance section); lower --rate"
            )
        elif p50 * s["requested_rate"] > 0.8 * concurrency:
            lines.append(
                f"the requested rate was not held: answers take {p50 * 1000:.0f} ms, so {concurrency} in "
                f"flight carry about {concurrency / p50 if p50 else 0:.0f}/s; raise --concurrency"
            )
        elif s["signing_processes"]:
            lines.append(
                f"the requested rate was not held: the {signing_processes(s['signing_processes'])} could "
                "not build events faster, or other work on this machine took the CPU; raise --signers if "
                "cores are free, or lower --rate"
            )
        else:
            lines.append(
                f"the requested rate was not held, though the sender kept only {busy:.0%} of a core busy: "
                "other work on this machine took the CPU; lower --rate"
            )
    for sample in s["failure_samples"]:
        what = [f"HTTP {sample['status']}" if sample["status"] is not None else "no answer"]
        if sample["error"]:
            what.append(sample["error"])
        if sample["response_body"]:
            what.append(f"answer {sample['response_body'][:120]!r}")
        lines.append(f"  failure: job {sample['job_id']}: " + ", ".join(what))
    return lines


def locust_summary_lines(result: LocustResult) -> list[str]:
    """Our reading of Locust's CSV, after Locust's own tables: counts against the plan, and what failed."""
    s = result.summary()
    lines = [
        f"sent {s['sent']}, accepted {s['accepted']}, failed {s['failed']}"
        + (f" ({', '.join(f'{k}: {v}' for k, v in s['failed_by_status'].items())})" if s["failed"] else "")
        + (f", not sent {s['unsent']} of {s['planned']}" if s["unsent"] else ""),
        "latency ms (Locust, approximated): p50 {} p95 {} p99 {} max {}".format(
            *(fmt_ms(s["latency_ms"][k]) for k in ("p50", "p95", "p99", "max"))
        ),
    ]
    if result.csv_prefix:
        lines.append(f"Locust's CSV: {result.csv_prefix}_stats.csv, _stats_history.csv, _failures.csv, _exceptions.csv")
    return lines


def print_locustfile(ctx: click.Context, _param, value: bool) -> None:
    if value and not ctx.resilient_parsing:
        click.echo(str(LOCUSTFILE))
        ctx.exit(EXIT_OK)


@click.command("load")
@click.option(
    "--print-locustfile",
    is_flag=True,
    is_eager=True,
    expose_value=False,
    callback=print_locustfile,
    help="Print the path of the Locust user class (for `locust -f`, across machines) and exit.",
)
@click.argument("event")
@click.option("--url", required=True, help="The receiver's callback URL (loopback or ACCESSRC_SIM_ALLOW_HOSTS).")
@click.option(
    "--rate",
    type=Number(0, MAX_RATE, min_open=True),
    required=True,
    help=f"Requests per second, held steady (at most {MAX_RATE:g}).",
)
@click.option(
    "--duration",
    type=Number(0, MAX_DURATION, min_open=True),
    required=True,
    help=f"Seconds to send for (at most {MAX_DURATION:g}).",
)
@click.option(
    "--concurrency",
    type=click.IntRange(1, MAX_CONCURRENCY),
    default=4,
    show_default=True,
    help="Requests in flight at most (worker threads).",
)
@click.option(
    "--max-requests",
    type=click.IntRange(1, MAX_REQUESTS),
    help="Stop after this many requests [default: rate × duration].",
)
@click.option(
    "--signers",
    type=click.IntRange(0, MAX_SIGNERS),
    help="Processes that generate and sign the events just before their slots; 0: the worker threads do "
    f"it [default: for RSA-signed events from {PROCESS_SIGNING_FROM:g}/s, one per "
    f"{SIGNS_PER_PROCESS:,}/s of rate, at most cores - 1; otherwise 0].",
)
@click.option(
    "--engine",
    type=click.Choice(["native", "locust"]),
    default="native",
    show_default=True,
    help="native: this process's open-loop senders (the faster on one machine); locust: a Locust master and "
    "--workers worker processes (docs/operations.md, load across machines).",
)
@click.option(
    "--workers",
    type=click.IntRange(1, MAX_WORKERS),
    help="--engine locust: worker processes on this machine [default: one per core].",
)
@click.option("--csv", "csv_prefix", metavar="PREFIX", help="--engine locust: write Locust's CSV files PREFIX_*.csv.")
@payload_options
@auth_options
@timeout_option
@profile_option
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON (no progress line).")
@keys_option
def load_cmd(
    event,
    url,
    rate,
    duration,
    concurrency,
    max_requests,
    signers,
    engine,
    workers,
    csv_prefix,
    seed,
    sets,
    count,
    force,
    hmac_secret,
    api_key_header,
    api_key,
    basic,
    authorization,
    rsa_padding,
    timeout,
    profile,
    as_json,
    keys_dir,
) -> None:
    """Send fresh signed EVENTs to URL at a steady rate; print live progress and a latency summary.

    Every request is a new event (new ids, timestamps of now; X-JobId and X-JobAttempt 0 where the profile sends
    them: Accredit, AccessRC with --profile accredit-like), signed as its platform signs; no retries, nothing
    written to the delivery log. Exit 0 when every request got a 2xx, 1 otherwise.

    Example: accessrc-sim load BadgeExportZipFile.Created --url http://127.0.0.1:9000/hook --rate 200 --duration 10
    """
    spec, _ = make_payload(event, seed, sets, count, force)  # refuses bad --set / --count with a clear message
    auth = build_auth(spec.platform, hmac_secret, api_key_header, api_key, basic, authorization, rsa_padding)
    plan = LoadPlan(
        spec.name,
        url,
        rate,
        duration,
        concurrency,
        max_requests,
        timeout,
        auth,
        parse_sets(sets),
        count,
        force,
        seed,
        signers,
        profile,
    )
    keys = open_keys(keys_dir) if platforms.get(spec.platform).signs_with_keys else None
    if engine == "locust":
        run_on_locust(plan, workers, keys, keys_dir, csv_prefix, as_json)
    elif workers is not None or csv_prefix is not None:
        raise UsageProblem(f"{'--workers' if workers is not None else '--csv'} applies to --engine locust only")
    tty = sys.stdout.isatty() and not as_json

    def progress(snap: dict) -> None:
        line = (
            f"{snap['t']:6.1f} s  sent {snap['sent']}  ok {snap['accepted']}  failed {snap['failed']}  "
            f"{snap['rate']:.1f}/s  p50 {fmt_ms(snap['p50_ms'])} ms"
        )
        if tty:
            click.echo("\r" + line.ljust(78), nl=False)
        else:
            click.echo(line)

    try:  # every setting is checked (and the signing processes started) before anything is printed or sent
        run = LoadRun(plan, keys)
    except (LoadError, catalogue.CatalogueError) as exc:
        raise UsageProblem(str(exc)) from exc
    try:
        if not as_json:
            click.echo(
                f"{spec.name} ({spec.platform}) -> {url}: {rate:g}/s for {duration:g} s, "
                f"{concurrency} in flight at most, {plan.total} requests at most, "
                f"{signing_note(run.result.signers)}"
            )
            cores = os.cpu_count() or 1
            if run.result.signers > cores - 1:
                click.echo(
                    f"note: {signing_processes(run.result.signers)} on {cores} core{'s' if cores > 1 else ''}"
                    " leave no core to the sending threads; they will compete for the CPU"
                )
        result = run_load(run, None if as_json else progress, 0.25 if tty else 1.0)
    finally:
        run.close()
    if tty:
        click.echo()
    if as_json:
        click.echo(json.dumps(result.summary(), indent=2))
    else:
        for line in summary_lines(result, concurrency):
            click.echo(line)
    sys.exit(EXIT_OK if result.failures == 0 and result.unsent == 0 else EXIT_FAILED)


def run_on_locust(plan: LoadPlan, workers, keys, keys_dir, csv_prefix, as_json: bool) -> None:
    """`--engine locust`: the same checks as the native engine (the outbound guard included) before Locust starts."""
    if plan.signers is not None:
        raise UsageProblem("--signers applies to --engine native only (each Locust worker signs its own events)")
    workers = workers or os.cpu_count() or 1
    try:  # every setting checked as the native engine checks it, without sending anything
        LoadRun(dataclasses.replace(plan, signers=0), keys).close()
    except (LoadError, catalogue.CatalogueError) as exc:
        raise UsageProblem(str(exc)) from exc
    if not as_json:
        click.echo(
            f"{plan.event} -> {plan.url}: {plan.rate:g}/s for {plan.duration:g} s, {plan.total} requests at most, "
            f"on Locust: a master and {workers} worker process{'es' if workers > 1 else ''}, "
            f"{users_for(plan, workers)} users in flight at most"
        )
    echo = (lambda line: click.echo(line, err=True)) if as_json else click.echo  # JSON alone on stdout
    try:
        result = run_locust(plan, workers, keys_dir if keys is not None else None, csv_prefix, echo)
    except LoadError as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(EXIT_FAILED)
    if as_json:
        click.echo(json.dumps(result.summary(), indent=2))
    else:
        for line in locust_summary_lines(result):
            click.echo(line)
    ok = result.failed == 0 and result.unsent == 0 and result.exit_code == 0
    sys.exit(EXIT_OK if ok else EXIT_FAILED)
