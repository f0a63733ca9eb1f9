"""`accessrc-sim tail`: follow a running server's deliveries, one line per attempt (like `stripe logs tail`), and
the calls receivers make back to the platform APIs, one line per call (`--no-calls` for attempts only).

Reads the server-sent event stream `GET /api/stream` (its `attempt` and `call` events); when the server ends the
stream (it does after at most 600 s) the command reconnects with Last-Event-ID, so no line is shown twice or
missed. Calls come from the same stream rather than from polling `GET /api/calls`: one feed, one cursor, one
reconnect rule for everything that happens, in the order it was recorded.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterable, Iterator
from datetime import datetime

import click
import requests

from .. import catalogue
from .errors import EXIT_FAILED, EXIT_OK
from .remote import Server, server_options
from .send import answer_message

STATUSES = ("ok", "failed")
READ_TIMEOUT = 60.0  # the server sends a keep-alive comment every 15 s of silence
RECONNECT_FOR = 30.0  # seconds to keep trying when the server goes away mid-tail


@click.command("tail")
@server_options
@click.option(
    "--event",
    "events",
    multiple=True,
    metavar="EVENT",
    help="Only attempts of this event, and calls that follow a job of it (repeatable).",
)
@click.option(
    "--status", type=click.Choice(STATUSES), help="Only attempts (and calls) answered 2xx (ok), or not (failed)."
)
@click.option(
    "--calls/--no-calls",
    default=True,
    show_default=True,
    help="Also show each call to the platform APIs (a receiver calling back: DeliveryRequest/Sync, the Print "
    "Queue…) as it is recorded.",
)
@click.option(
    "--json", "as_json", is_flag=True, help="One JSON object per line: {attempt, job} or, for a call, {call, job}."
)
def tail_cmd(server, api_key, events, status, calls, as_json) -> None:
    """Follow the deliveries of a running `accessrc-sim serve`, one line per attempt, and the calls receivers make
    back to its platform APIs, one line per call, until Ctrl-C.

    An attempt's line: time, ok/FAIL, the receiver's status, the event, the attempt number, the duration, the URL
    and job, and what the receiver said when it refused. A call's line: time, `call`, the status the simulator
    answered, method and path, the duration, the job it follows (and its event) or `no job`, and the reason of a
    refusal. --event keeps the calls that follow a job of that event; --status applies to calls too (ok: 2xx).
    Ctrl-C ends it (exit 0). A server that cannot be reached or refuses the admin key: a message and exit 2; a
    server that goes away and stays away for 30 s: exit 1.

    \b
    Example: accessrc-sim tail --server http://127.0.0.1:8080 --api-key "$KEY" --status failed
    Example: accessrc-sim tail --event DELIVERY_CHANNEL_STATUS_UPDATED --json | jq .attempt.status
    Example: accessrc-sim tail --no-calls
    """
    remote = Server(server, api_key)
    known = {spec.name for spec in catalogue.EVENTS}
    for name in events:
        if name not in known:
            click.echo(
                f"note: {name} is not in the catalogue (`accessrc-sim events`); only jobs named so are shown", err=True
            )
    color = sys.stdout.isatty() and not as_json
    try:
        for kind, data in follow(remote, calls=calls):
            job = data.get("job") or {}
            if events and job.get("event") not in events:
                continue
            if kind == "call":
                call = data.get("call") or {}
                if status and (status == "ok") != _is_2xx(call.get("status")):
                    continue
                click.echo(json.dumps(data) if as_json else call_line(call, job, color))
                continue
            attempt = data.get("attempt") or {}
            if status and (status == "ok") != bool(attempt.get("ok")):
                continue
            click.echo(json.dumps(data) if as_json else attempt_line(attempt, job, color))
    except KeyboardInterrupt:
        sys.exit(EXIT_OK)
    except ServerGone as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(EXIT_FAILED)


class ServerGone(Exception):
    """The server was followed, then stopped answering."""


def follow(remote: Server, calls: bool = False) -> Iterator[tuple[str, dict]]:
    """(kind, data) of every `attempt` event (and `call` event, with `calls`) from now on, reconnecting with
    Last-Event-ID when the stream ends."""
    last_id: str | None = None
    connected = False
    lost_since: float | None = None
    while True:
        extra = {"Accept": "text/event-stream"} | ({"Last-Event-ID": last_id} if last_id else {})
        try:
            resp = remote.session.get(
                remote.url + "/api/stream", headers=remote.headers(**extra), stream=True, timeout=(5, READ_TIMEOUT)
            )
        except requests.RequestException as exc:
            if not connected:
                raise remote.unreachable(exc) from exc
            lost_since = lost_since or time.monotonic()
            if time.monotonic() - lost_since > RECONNECT_FOR:
                raise ServerGone(f"the simulator at {remote.url} stopped answering") from exc
            time.sleep(1)
            continue
        remote.check(resp)
        lost_since = None
        if not connected and not resp.headers.get("Content-Type", "").startswith("text/event-stream"):
            resp.close()
            raise remote.unreachable(ValueError("not an event stream"))
        if not connected:
            what = "deliveries and calls" if calls else "deliveries"
            click.echo(f"following the {what} of {remote.url} (Ctrl-C to stop)", err=True)
        connected = True
        try:
            for event_id, kind, data in sse_events(resp.iter_lines(chunk_size=None, decode_unicode=True)):
                if event_id is not None:
                    last_id = event_id
                if kind == "attempt" or (calls and kind == "call"):
                    yield kind, json.loads(data)
        except requests.RequestException:
            pass  # the connection dropped: reconnect from last_id
        finally:
            resp.close()


def sse_events(lines: Iterable[str]) -> Iterator[tuple[str | None, str, str]]:
    """(id, event, data) per server-sent event; comments (`: keep-alive`) and `retry:` are skipped."""
    event_id, kind, data = None, "message", []
    for line in lines:
        if not line:
            if data:
                yield event_id, kind, "\n".join(data)
            event_id, kind, data = None, "message", []
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "id":
            event_id = value
        elif name == "event":
            kind = value
        elif name == "data":
            data.append(value)


def attempt_line(attempt: dict, job: dict, color: bool = False) -> str:
    """`12:00:01  ok    200  EVENT  attempt 1/6  12 ms  -> URL  job ID`, then what a refusing receiver said."""
    ok = bool(attempt.get("ok"))
    mark = "ok  " if ok else "FAIL"
    if color:
        mark = click.style(mark, fg="green" if ok else "red")
    started = attempt.get("started_at")
    when = datetime.fromtimestamp(started).strftime("%H:%M:%S") if isinstance(started, (int, float)) else "--:--:--"
    status = attempt.get("status")
    number = attempt.get("number")
    of = job.get("max_attempts")
    tries = f"attempt {number + 1 if isinstance(number, int) else '?'}" + (f"/{of}" if of else "")
    line = (
        f"{when}  {mark}  {status if status is not None else '---'}  {job.get('event', '?')}  {tries}  "
        f"{attempt.get('duration_ms') or 0:.0f} ms  -> {attempt.get('url') or job.get('url')}  "
        f"job {attempt.get('job_id')}"
    )
    if attempt.get("error"):
        line += f"  {attempt['error']}"
    said = None if ok else answer_message((attempt.get("response_body") or "").encode("utf-8"))
    if said:
        line += f": {said}"
    return line


def _is_2xx(status) -> bool:
    return isinstance(status, int) and 200 <= status < 300


def call_line(call: dict, job: dict, color: bool = False) -> str:
    """`12:00:03  call  200  POST /api/DeliveryRequest/Sync  3 ms  follows job ID (EVENT)`, then the reason of a
    refusal (the simulator's answer)."""
    code = call.get("status")
    mark = "call"
    if color:
        mark = click.style(mark, fg="cyan" if _is_2xx(code) else "red")
    started = call.get("started_at")
    when = datetime.fromtimestamp(started).strftime("%H:%M:%S") if isinstance(started, (int, float)) else "--:--:--"
    path = call.get("path") or "?"
    if call.get("query"):
        path += "?" + call["query"]
    job_id = call.get("job_id")
    follows = f"follows job {job_id}" + (f" ({job['event']})" if job.get("event") else "") if job_id else "no job"
    line = (
        f"{when}  {mark}  {code if code is not None else '---'}  {call.get('method', '?')} {path}  "
        f"{call.get('duration_ms') or 0:.0f} ms  {follows}"
    )
    said = None if _is_2xx(code) else answer_message((call.get("response_body") or "").encode("utf-8"))
    if said:
        line += f": {said}"
    return line
