"""`accessrc-sim trigger`: a platform action (approve a delivery channel, finish an import, …) on a running server,
like `stripe trigger`: `POST /api/actions/<name>`; `--list` reads `GET /api/actions`."""

from __future__ import annotations

import json

import click

from .. import limits
from .errors import UsageProblem
from .remote import Server, server_options
from .targets import check_url

OPTIONS = ("url", "auth", "seed", "profile")  # action inputs given by their own options, not --param


def parse_params(values: tuple[str, ...]) -> dict:
    """`--param NAME=VALUE` (a JSON value, else a string) as a mapping; a bad one is a usage error."""
    out: dict = {}
    for text in values:
        name, sep, value = text.partition("=")
        if not sep or not name.strip():
            raise UsageProblem(f"--param takes NAME=VALUE, got {limits.quote(text)}")
        try:
            out[name.strip()] = limits.loads(value)
        except limits.TooDeep as exc:
            raise UsageProblem(f"--param {name.strip()}: the JSON value is {exc.msg}") from None
        except ValueError:
            out[name.strip()] = value
    return out


@click.command("trigger")
@click.argument("name", required=False)
@click.option("--list", "list_only", is_flag=True, help="List the actions (name, event, parameters, description).")
@click.option(
    "--param",
    "-p",
    "params",
    multiple=True,
    metavar="NAME=VALUE",
    help="An action parameter (JSON value, else string), e.g. -p records=120 -p failures=5 (repeatable).",
)
@click.option(
    "--url",
    help="Deliver to this URL instead of every active subscription of the action's event.",
)
@click.option(
    "--auth",
    "auth_json",
    metavar="JSON",
    help='With --url: the receiver\'s auth as the platform\'s API takes it, e.g. \'{"type":"hmac","secret":"s"}\'.',
)
@click.option("--seed", type=int, help="Seed for the generated values: the same seed gives the same payload.")
@server_options
@click.option("--json", "as_json", is_flag=True, help="Print the server's answer (the action and its jobs) as JSON.")
def trigger_cmd(name, list_only, params, url, auth_json, seed, server, api_key, as_json) -> None:
    """Make a running `accessrc-sim serve` do what a platform user does, sent as the event it causes.

    NAME is an action of `trigger --list` (approve-delivery-channel, reject-delivery-channel, finish-import, …);
    the server delivers it to every active subscription of its event, or to --url. The jobs it created are
    printed; follow their attempts with `accessrc-sim tail`. Exit 0 when the server took the action, 2 on bad
    usage (an unknown NAME, a bad parameter, a server that cannot be reached or refuses the admin key).

    \b
    Example: accessrc-sim trigger --list
    Example: accessrc-sim trigger finish-import -p records=120 -p failures=5 --api-key "$KEY"
    Example: accessrc-sim trigger approve-delivery-channel --url http://127.0.0.1:9001/hook
    """
    remote = Server(server, api_key)
    if list_only:
        if name:
            raise UsageProblem("give NAME or --list, not both")
        _print_list(_actions(remote), as_json)
        return
    if not name:
        raise UsageProblem("give the NAME of an action (accessrc-sim trigger --list shows them)")
    given = parse_params(params)
    body = dict(given)
    if url:
        check_url(url)
        body["url"] = url
    if auth_json is not None:
        if not url:
            raise UsageProblem("--auth goes with --url (subscriptions bring their own auth)")
        try:
            body["auth"] = limits.loads(auth_json)
        except limits.TooDeep as exc:
            raise UsageProblem(f"--auth: the JSON is {exc.msg}") from None
        except ValueError as exc:
            raise UsageProblem(f"--auth is not JSON: {exc}") from None
    if seed is not None:
        body["seed"] = seed
    actions = {a["name"]: a for a in _actions(remote)}
    if name not in actions:
        raise UsageProblem(f"no action {name!r}; known: {', '.join(actions)}")
    takes = [p for p in actions[name].get("params") or [] if p not in OPTIONS]
    unknown = sorted(set(given) - set(takes))
    if unknown:
        raise UsageProblem(f"--param {unknown[0]}: {name} takes {', '.join(takes) or 'no parameters'}")
    answer = remote.json("POST", f"/api/actions/{name}", json=body)
    if as_json:
        click.echo(json.dumps(answer, indent=2))
        return
    jobs = answer.get("jobs") or []
    click.echo(f"{name}: {answer.get('event')} -> {len(jobs)} job(s)")
    for job in jobs:
        click.echo(f"  job {job.get('id')}  -> {job.get('url')}  {job.get('state')}")


def _actions(remote: Server) -> list[dict]:
    data = remote.json("GET", "/api/actions")
    actions = data.get("actions") if isinstance(data, dict) else data
    if not isinstance(actions, list):
        raise UsageProblem(f"{remote.url}/api/actions did not list actions: is --server an accessrc-sim serve?")
    return actions


def _print_list(actions: list[dict], as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(actions, indent=2))
        return
    width = max((len(a["name"]) for a in actions), default=0)
    for a in actions:
        click.echo(f"{a['name']:<{width}}  {a.get('description', '')}")
        click.echo(
            f"{'':<{width}}  event {a.get('event')} ({a.get('platform')}); params: {', '.join(a.get('params') or [])}"
        )
