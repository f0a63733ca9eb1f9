"""`accessrc-sim send`: one event, signed and retried as its platform does, every attempt recorded."""

from __future__ import annotations

import json
import sys

import click

from .. import catalogue, delivery, limits, platforms
from ..delivery import DeliveryError
from ..store import DATABASE_ERRORS
from .errors import EXIT_FAILED, EXIT_OK, UsageProblem
from .files import open_keys, open_store
from .options import (
    auth_options,
    build_auth,
    db_option,
    document_options,
    keys_option,
    payload_options,
    profile_option,
    timeout_option,
)
from .payloads import make_payload


@click.command("send")
@click.argument("event")
@click.option("--url", required=True, help="The receiver's callback URL.")
@payload_options
@document_options
@auth_options
@click.option(
    "--retry-delays",
    metavar="LIST",
    help="Seconds before each retry, e.g. 0,0,0,0,0 "
    f"[default: {','.join(f'{d:g}' for d in delivery.DEFAULT_RETRY_DELAYS)}, our choice: AccessRC documents "
    "no retry policy; ReachFive never retries].",
)
@timeout_option
@profile_option
@click.option("--json", "as_json", is_flag=True, help="Print the job and its attempts as JSON.")
@db_option
@keys_option
def send_cmd(
    event,
    url,
    seed,
    sets,
    count,
    force,
    example,
    strict,
    event_name,
    hmac_secret,
    api_key_header,
    api_key,
    basic,
    authorization,
    rsa_padding,
    retry_delays,
    timeout,
    profile,
    as_json,
    db_path,
    keys_dir,
) -> None:
    """Send EVENT to URL, signed and retried as its platform does; every attempt is recorded.

    Exit 0 when a 2xx came back, 1 when every attempt failed, 2 on bad usage.

    Example: accessrc-sim send DELIVERY_CHANNEL_STATUS_UPDATED --url http://127.0.0.1:9001/hook --hmac-secret abcd1234
    """
    spec, payload = make_payload(event, seed, sets, count, force, example, strict, event_name)
    auth = build_auth(spec.platform, hmac_secret, api_key_header, api_key, basic, authorization, rsa_padding)
    try:
        job = delivery.new_job(
            spec.name,
            spec.platform,
            url,
            catalogue.body_bytes(payload),
            auth,
            delays=delivery.parse_delays(retry_delays),
            timeout=timeout,
            profile=profile,
        )
    except DeliveryError as exc:
        raise UsageProblem(str(exc)) from exc
    keys = open_keys(keys_dir) if platforms.get(spec.platform).signs_with_keys else None
    store = open_store(db_path)
    color = sys.stdout.isatty() and not as_json

    def report(job, attempt) -> None:
        if as_json:
            return
        ok = attempt.ok
        status = str(attempt.status) if attempt.status is not None else "---"
        mark = (
            click.style("ok  ", fg="green")
            if ok and color
            else "ok  "
            if ok
            else click.style("FAIL", fg="red")
            if color
            else "FAIL"
        )
        line = f"{mark} attempt {attempt.number}  {status}  {attempt.duration_ms:.0f} ms"
        if attempt.error:
            line += f"  {attempt.error}"
        said = answer_message(attempt.response_body) if not ok else None
        if said:
            line += f": {said}"
        if not ok and job.next_attempt_at is not None:
            line += f"  (retry in {job.retry_delays[attempt.number]:g} s)"
        click.echo(line)

    if not as_json:
        click.echo(f"{spec.name} ({spec.platform}) -> {url}  job {job.id}")
        note = delivery.profile_of(job).note(job.retry_delays)
        if note:
            click.echo(f"note: {note}")
    deliverer = delivery.Deliverer(store, keys, on_attempt=report)
    try:
        deliverer.submit(job)
    except DATABASE_ERRORS as exc:  # a full disk (SQLITE_FULL), an I/O error: say so, no traceback
        sent = " (its last attempt may have reached the receiver)" if job.attempts_made else ""
        raise click.ClickException(
            f"--db {db_path}: {exc}: the delivery could not be recorded{sent}; free some space and send again"
        ) from exc
    if as_json:
        click.echo(json.dumps(job_json(job, store.attempts(job.id)), indent=2))
    elif job.state == "succeeded":
        click.echo(f"delivered after {job.attempts_made} attempt(s)")
    else:
        click.echo(f"not delivered: {job.attempts_made} attempt(s) failed", err=True)
        hint = credentials_hint(spec.platform, auth, job.last_status, keys_dir)
        if hint:
            click.echo(f"hint: {hint}", err=True)
    sys.exit(EXIT_OK if job.state == "succeeded" else EXIT_FAILED)


def credentials_hint(platform: str, auth, status: int | None, keys_dir: str) -> str | None:
    """What a refusal of the credentials (the platform's credential-fault statuses, e.g. 401) probably means."""
    p = platforms.get(platform)
    if status is None or status not in p.credential_fault_statuses:
        return None
    flags = [f"--{name.replace('_', '-')}" for name in OPTION_ORDER if name in p.options]
    if p.signs_with_keys:
        return (
            f"the receiver answered {status}: check it verifies X-Signature with the public key from "
            f"`accessrc-sim keys show --keys-dir {keys_dir}` (and the same RSA padding, --rsa-padding)"
        )
    if auth.kind == "none":
        return (
            f"the receiver answered {status} and no credential was sent: the receiver wants credentials; "
            f"add {'/'.join(flags)} as its subscription says"
        )
    return (
        f"the receiver answered {status} to the {auth.kind} credentials sent: check they are the ones its "
        f"subscription says ({'/'.join(flags)})"
    )


OPTION_ORDER = ("hmac_secret", "api_key", "basic", "authorization")  # the credential flags, as --help lists them


def answer_message(body: bytes, limit: int = 120) -> str | None:
    """What a receiver said when it refused: the envelope's error message, else the start of its answer."""
    if not body:
        return None
    try:
        data = limits.loads(body)
    except ValueError:
        data = None
    if isinstance(data, dict):
        err = data.get("error")
        said = err.get("message") if isinstance(err, dict) else data.get("message")
        if isinstance(said, str) and said:
            return said[:limit]
    text = " ".join(body[: limit * 2].decode("utf-8", "replace").split())
    return (text[:limit] + "…") if len(text) > limit else text or None


def job_json(job, attempts) -> dict:
    """`send --json`: the job and every attempt, bodies as text."""
    return {
        "id": job.id,
        "event": job.event,
        "platform": job.platform,
        "profile": job.profile,
        "url": job.url,
        "state": job.state,
        "attempts_made": job.attempts_made,
        "last_status": job.last_status,
        "last_error": job.last_error,
        "body": job.body.decode("utf-8", "replace"),
        "attempts": [
            {
                "number": a.number,
                "status": a.status,
                "duration_ms": a.duration_ms,
                "error": a.error,
                "request_headers": a.request_headers,
                "response_body": a.response_body.decode("utf-8", "replace"),
            }
            for a in attempts
        ],
    }
