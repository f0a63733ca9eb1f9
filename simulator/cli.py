"""The `accessrc-sim` command line: a thin Click layer over the library; errors become messages and exit codes."""
from __future__ import annotations

import json
import os
import sqlite3
import stat
import sys
from pathlib import Path
from typing import Any

import click

from . import __version__, catalogue, delivery, limits, signing
from .auth import Auth, AuthError
from .auth import from_options as auth_from_options
from .config import DEFAULT_DB, DEFAULT_KEYS_DIR, ENV_API_KEY, ENV_DB, ENV_KEYS
from .delivery import DeliveryError

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class UsageProblem(click.ClickException):
    """Bad usage: printed as `Error: ...`, exit code 2."""

    exit_code = EXIT_USAGE


SQLITE_HEADER = b"SQLite format 3\x00"


def check_db(db_path: str | Path) -> None:
    """Refuse a --db that cannot be the simulator's SQLite file (exit 2, before anything is written): a folder, a
    special file (SQLite would block on a FIFO, or write its journal beside a device), a file that is not SQLite,
    a path below a file, a folder that cannot be written."""
    if str(db_path) == ":memory:":
        return
    path = Path(db_path)
    try:
        st = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        st = None
    except OSError as exc:
        raise UsageProblem(f"--db {db_path}: {exc.strerror or exc}") from exc
    if st is None:
        folder = path.absolute().parent
        while not folder.exists() and folder != folder.parent:
            folder = folder.parent
        if not folder.is_dir():
            raise UsageProblem(f"--db {db_path}: cannot create it: {folder} is a file, not a folder")
        if not os.access(folder, os.W_OK | os.X_OK):
            raise UsageProblem(f"--db {db_path}: cannot create it: the folder {folder} is not writable")
        return
    if stat.S_ISDIR(st.st_mode):
        raise UsageProblem(f"--db {db_path}: is a folder; give the path of a database file")
    if not stat.S_ISREG(st.st_mode):
        raise UsageProblem(f"--db {db_path}: is not a regular file (a device, FIFO or socket); give the path of a "
                           "database file")
    if st.st_size:
        try:
            with open(path, "rb") as fh:
                head = fh.read(len(SQLITE_HEADER))
        except OSError as exc:
            raise UsageProblem(f"--db {db_path}: cannot read it: {exc.strerror or exc}") from exc
        if head != SQLITE_HEADER:
            raise UsageProblem(f"--db {db_path}: is not an SQLite database (it does not start with SQLite's "
                               "header); give another path, or move the file away")


def open_store(db_path: str | Path):
    """The Store at --db, or exit 2 with what is wrong with the file (check_db, then SQLite's own refusal)."""
    from .store import Store

    check_db(db_path)
    try:
        return Store(db_path)
    except sqlite3.Error as exc:
        raise UsageProblem(f"--db {db_path}: cannot use it as the database: {exc}") from exc
    except OSError as exc:
        raise UsageProblem(f"--db {db_path}: cannot use it as the database: {exc.strerror or exc}") from exc


def open_keys(keys_dir: str | Path) -> signing.KeyPair:
    """The key pair in --keys-dir (generated on first use), or exit 2 naming the file that is not a key."""
    try:
        return signing.load_keys(keys_dir)
    except signing.KeyFileError as exc:
        raise UsageProblem(f"--keys-dir {keys_dir}: {exc}") from exc


def db_option(f):
    return click.option("--db", "db_path", type=click.Path(dir_okay=False), envvar=ENV_DB, default=DEFAULT_DB,
                        show_default=True, help=f"SQLite file for jobs and attempts (env {ENV_DB}).")(f)


def keys_option(f):
    return click.option("--keys-dir", type=click.Path(file_okay=False), envvar=ENV_KEYS, default=DEFAULT_KEYS_DIR,
                        show_default=True, help=f"Folder of the RSA key pair, created on first use (env {ENV_KEYS}).")(f)


def auth_options(f):
    """The credential options of every platform; which ones apply depends on the event's platform."""
    options = [
        click.option("--hmac-secret", help="AccessRC hmac auth: secret for `x-signature: sha256=<hex>`."),
        click.option("--api-key-header", default=None, help="AccessRC header auth: header name [default: x-api-key]."),
        click.option("--api-key", help="AccessRC header auth: the header's value."),
        click.option("--basic", metavar="USER:PASS", help="AccessRC basic auth."),
        click.option("--authorization", metavar="VALUE", help="ReachFive: static Authorization header value."),
        click.option("--rsa-padding", type=click.Choice(signing.PADDINGS), default="pkcs1v15", show_default=True,
                     help="Accredit RSA signature padding."),
    ]
    for option in reversed(options):
        f = option(f)
    return f


def build_auth(platform: str, hmac_secret=None, api_key_header=None, api_key=None, basic=None, authorization=None,
               rsa_padding="pkcs1v15") -> Auth:
    """The auth the command's options ask for (simulator.auth.from_options), or a usage error naming the options."""
    try:
        return auth_from_options(platform, hmac_secret=hmac_secret, api_key_header=api_key_header, api_key=api_key,
                                 basic=basic, authorization=authorization, rsa_padding=rsa_padding,
                                 spell=lambda name: "--" + name.replace("_", "-"))
    except AuthError as exc:
        raise UsageProblem(str(exc)) from exc


def parse_sets(values: tuple[str, ...]) -> dict[str, Any]:
    overrides = {}
    for text in values:
        try:
            path, value = catalogue.paths.parse_assignment(text)
        except catalogue.PathError as exc:
            raise UsageProblem(f"--set {text!r}: {exc}") from exc
        overrides[path] = value
    return overrides


def make_payload(event: str, seed, sets, count, force, example: str | None = None, strict: bool = False,
                 event_name: str | None = None, echo=None) -> tuple[catalogue.EventSpec, dict]:
    """The payload to print or send: generated (or the documents' example), overrides applied, checked against the
    documented rules (refused: exit 2); the inferred rules it breaks are printed as notes (refused with --strict)."""
    try:
        spec = catalogue.get_event(event)
        overrides = parse_sets(sets)
        if event_name is not None:
            if spec.name != "Entity.Event":
                raise UsageProblem(f"--event-name goes with Entity.Event, Accredit's base notification (send "
                                   f"Entity.Event --event-name Contact.Updated); {spec.name} has its own name")
            overrides = {"Event": event_name, **overrides}
        payload = catalogue.generate(spec.name, seed=seed, overrides=overrides, count=count, force=force,
                                     strict=strict, example=example)
    except catalogue.CatalogueError as exc:
        detail = "".join(f"\n  - {p}" for p in exc.problems) if len(exc.problems) > 1 or \
            (exc.problems and exc.problems[0] not in str(exc)) else ""
        hint = "" if force else "\n(use --force to send it anyway)" if exc.problems else ""
        raise UsageProblem(f"{exc}{detail}{hint}") from exc
    say = echo or (lambda line: click.echo(line, err=True))
    if example is not None:
        shown = catalogue.find_example(spec, example or None)
        say(f"example {shown.name} of {spec.name}, as written in {shown.source}"
            + (f" ({shown.note})" if shown.note else ""))
    if not force:
        for advice in catalogue.advise(spec, payload):
            say(f"note: {advice} - advice only, see `accessrc-sim rules {spec.name}`")
    return spec, payload


def payload_options(f):
    options = [
        click.option("--seed", type=int, help="Seed for the generated values: the same seed gives the same bytes."),
        click.option("--set", "sets", multiple=True, metavar="PATH=VALUE",
                     help="Override a field by dotted path (JSON value, else string), e.g. --set status=Rejected."),
        click.option("--count", type=click.IntRange(0, 10_000), help="Size of the event's main list "
                     "(eligibility applications, delivery request deliveries)."),
        click.option("--force", is_flag=True, help="Allow paths and values that break the event's schema."),
    ]
    for option in reversed(options):
        f = option(f)
    return f


def document_options(f):
    """Options of the commands that make one payload: the documents' examples, strict rules, Accredit names."""
    options = [
        click.option("--example", is_flag=False, flag_value="", default=None, metavar="[NAME]",
                     help="Start from the documents' own example payload (NAME: which one; `events --json` lists "
                          "them) instead of a generated one."),
        click.option("--strict", is_flag=True, help="Refuse values that break an inferred rule too "
                     "(by default they are printed as notes: `accessrc-sim rules`)."),
        click.option("--event-name", metavar="ENTITY.ACTION", help="Accredit: send Entity.Event under this name, "
                     "e.g. Contact.Updated; add its fields with --set (the documents allow extra fields)."),
    ]
    for option in reversed(options):
        f = option(f)
    return f


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="accessrc-sim")
def main() -> None:
    """Mock webhook sender for AccessRC, Accredit and ReachFive receivers.

    Example: accessrc-sim send BadgeExportZipFile.Created --url http://127.0.0.1:9000/baseWebhookNotification
    """


@main.command("events")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list for machines.")
@click.option("--platform", type=click.Choice(catalogue.PLATFORMS), help="Only this platform's events.")
def events_cmd(as_json: bool, platform: str | None) -> None:
    """List every event the simulator can send.

    Example: accessrc-sim events --platform accessrc
    """
    specs = catalogue.events(platform)
    if as_json:
        click.echo(json.dumps([s.to_dict() for s in specs], indent=2))
        return
    width = max(len(s.name) for s in specs)
    for s in specs:
        click.echo(f"{s.name:<{width}}  {s.platform:<9}  {s.availability:<7}  {s.description}")


@main.command("rules")
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
    from . import rules

    if event:
        try:
            spec = catalogue.get_event(event, platform)
        except catalogue.CatalogueError as exc:
            raise UsageProblem(str(exc)) from exc
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
            click.echo(f"    quote ({r.where}): \"{' '.join(r.quote.split())}\"")
        if r.reason:
            click.echo(f"    {'why' if not r.documented else 'note'}: {r.reason}")
    counts = {s: sum(1 for r in selected if r.source == s) for s in ("documented", "inferred")}
    click.echo(f"{len(selected)} rules: {counts['documented']} documented, {counts['inferred']} inferred")


@main.command("sample")
@click.argument("event")
@payload_options
@document_options
@click.option("--compact", is_flag=True, help="Print the exact bytes that would be sent (compact JSON).")
def sample_cmd(event: str, seed, sets, count, force, example, strict, event_name, compact: bool) -> None:
    """Print a generated payload for EVENT (or, with --example, the documents' own).

    Example: accessrc-sim sample APPLICATIONS_IMPORT_RESULT --seed 7 --set summary.totalRecords=120 --set summary.failureCount=5
    """
    _, payload = make_payload(event, seed, sets, count, force, example, strict, event_name)
    if compact:
        click.echo(catalogue.body_bytes(payload).decode("utf-8"))
    else:
        click.echo(json.dumps(payload, indent=2, ensure_ascii=False))


@main.command("send")
@click.argument("event")
@click.option("--url", required=True, help="The receiver's callback URL.")
@payload_options
@document_options
@auth_options
@click.option("--retry-delays", metavar="LIST", help="Seconds before each retry, e.g. 0,0,0,0,0 "
              f"[default: {','.join(f'{d:g}' for d in delivery.DEFAULT_RETRY_DELAYS)}, our choice: AccessRC documents "
              "no retry policy; ReachFive never retries].")
@click.option("--timeout", type=float, default=delivery.DEFAULT_TIMEOUT, show_default=True,
              help="Seconds to wait for each answer.")
@click.option("--profile", type=click.Choice(delivery.PROFILE_NAMES), default=None,
              help="Delivery profile [default: documented]. accredit-like (AccessRC only) adds Accredit's "
                   "X-JobId/X-JobAttempt headers, which AccessRC does not document.")
@click.option("--json", "as_json", is_flag=True, help="Print the job and its attempts as JSON.")
@db_option
@keys_option
def send_cmd(event, url, seed, sets, count, force, example, strict, event_name, hmac_secret, api_key_header,
             api_key, basic, authorization, rsa_padding, retry_delays, timeout, profile, as_json, db_path,
             keys_dir) -> None:
    """Send EVENT to URL, signed and retried as its platform does; every attempt is recorded.

    Exit 0 when a 2xx came back, 1 when every attempt failed, 2 on bad usage.

    Example: accessrc-sim send DELIVERY_CHANNEL_STATUS_UPDATED --url http://127.0.0.1:9001/hook --hmac-secret abcd1234
    """
    spec, payload = make_payload(event, seed, sets, count, force, example, strict, event_name)
    auth = build_auth(spec.platform, hmac_secret, api_key_header, api_key, basic, authorization, rsa_padding)
    try:
        job = delivery.new_job(spec.name, spec.platform, url, catalogue.body_bytes(payload), auth,
                               delays=delivery.parse_delays(retry_delays), timeout=timeout, profile=profile)
    except DeliveryError as exc:
        raise UsageProblem(str(exc)) from exc
    keys = open_keys(keys_dir) if spec.platform == "accredit" else None
    store = open_store(db_path)
    color = sys.stdout.isatty() and not as_json

    def report(job, attempt) -> None:
        if as_json:
            return
        ok = attempt.ok
        status = str(attempt.status) if attempt.status is not None else "---"
        mark = click.style("ok  ", fg="green") if ok and color else "ok  " if ok else \
            click.style("FAIL", fg="red") if color else "FAIL"
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
    except sqlite3.Error as exc:  # a full disk (SQLITE_FULL), an I/O error: say so, no traceback
        sent = " (its last attempt may have reached the receiver)" if job.attempts_made else ""
        raise click.ClickException(f"--db {db_path}: {exc}: the delivery could not be recorded{sent}; free some "
                                   "space and send again") from exc
    if as_json:
        click.echo(json.dumps(job_json(job, store.attempts(job.id)), indent=2))
    elif job.state == "succeeded":
        click.echo(f"delivered after {job.attempts_made} attempt(s)")
    else:
        click.echo(f"not delivered: {job.attempts_made} attempt(s) failed", err=True)
    sys.exit(EXIT_OK if job.state == "succeeded" else EXIT_FAILED)


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
    text = " ".join(body[:limit * 2].decode("utf-8", "replace").split())
    return (text[:limit] + "…") if len(text) > limit else text or None


def job_json(job, attempts) -> dict:
    return {
        "id": job.id, "event": job.event, "platform": job.platform, "profile": job.profile, "url": job.url,
        "state": job.state,
        "attempts_made": job.attempts_made, "last_status": job.last_status, "last_error": job.last_error,
        "body": job.body.decode("utf-8", "replace"),
        "attempts": [{"number": a.number, "status": a.status, "duration_ms": a.duration_ms, "error": a.error,
                      "request_headers": a.request_headers,
                      "response_body": a.response_body.decode("utf-8", "replace")} for a in attempts],
    }


@main.group("keys")
def keys_group() -> None:
    """The Accredit RSA key pair (the private key never leaves the keys folder)."""


@keys_group.command("show")
@keys_option
def keys_show(keys_dir) -> None:
    """Print the public key (PEM) that receivers verify X-Signature with; generates the pair on first use.

    Example: accessrc-sim keys show > accredit_public.pem
    """
    click.echo(open_keys(keys_dir).public_pem, nl=False)


@keys_group.command("generate")
@keys_option
@click.option("--force", is_flag=True, help="Replace an existing key pair.")
def keys_generate(keys_dir, force: bool) -> None:
    """Create a new RSA-2048 key pair in the keys folder.

    Example: accessrc-sim keys generate --force
    """
    try:
        signing.generate_keys(keys_dir, force=force)
    except (FileExistsError, signing.KeyFileError) as exc:
        raise UsageProblem(str(exc)) from exc
    click.echo(f"new key pair in {Path(keys_dir)} (public key: {Path(keys_dir) / signing.PUBLIC_FILE})")


@main.command("receiver")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(1, 65535), default=9000, show_default=True)
@click.option("--platform", type=click.Choice(catalogue.PLATFORMS), default="accredit", show_default=True)
@click.option("--event", help="Expect only this event (default: tell it from the body).")
@click.option("--fail-first", type=click.IntRange(0), default=0, show_default=True,
              help="Answer 500 to the first N attempts of each job.")
@click.option("--strict", is_flag=True, help="Refuse (400) bodies that break inferred rules too; by default they "
              "are accepted and logged as advice.")
@auth_options
@click.option("--public-key", type=click.Path(exists=True, dir_okay=False),
              help="Accredit: PEM public key to verify with [default: the one in --keys-dir].")
@keys_option
def receiver_cmd(host, port, platform, event, fail_first, strict, hmac_secret, api_key_header, api_key, basic,
                 authorization, rsa_padding, public_key, keys_dir) -> None:
    """Run the reference receiver: verifies signatures, validates bodies, dedupes X-JobId, answers the envelopes.

    Example: accessrc-sim receiver --port 9001 --platform accessrc --hmac-secret abcd1234
    """
    from .receiver import ReceiverConfig, create_receiver

    auth = build_auth(platform, hmac_secret, api_key_header, api_key, basic, authorization, rsa_padding)
    if event:
        try:
            event = catalogue.get_event(event, platform).name
        except catalogue.CatalogueError as exc:
            raise UsageProblem(str(exc)) from exc
    pem = None
    if platform == "accredit":
        pem = _public_key_pem(public_key) if public_key else open_keys(keys_dir).public_pem
    app = create_receiver(ReceiverConfig(platform, auth, pem, event, fail_first,
                                         log=lambda line: click.echo(line), strict=strict))
    from waitress.server import create_server

    try:
        server = create_server(app, host=host, port=port, threads=8)
    except (OSError, ValueError) as exc:  # ValueError: waitress refuses the host
        raise UsageProblem(f"cannot listen on {host}:{port}: {exc.strerror or exc} "
                           "(another receiver running?); choose another --port") from exc
    click.echo(f"reference receiver for {platform} on http://{host}:{port}/ (auth: {auth.kind})")
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()


def _public_key_pem(path: str) -> str:
    """--public-key: a PEM RSA public key, or exit 2 saying the file is not one."""
    try:
        pem = Path(path).read_text("ascii")
        signing.load_public_key(pem)
    except (OSError, UnicodeDecodeError, ValueError, TypeError) as exc:
        raise UsageProblem(f"--public-key {path}: not a PEM RSA public key ({str(exc).split('.')[0]})") from exc
    return pem


@main.command("admin-key")
@click.option("--rotate", is_flag=True, help="Make a new admin key, keep its hash and print it (once); the old key "
              "stops working at once, in a running server too.")
@db_option
def admin_key_cmd(rotate: bool, db_path) -> None:
    """Make a new admin API key for the database's server (--rotate), printed once.

    The database keeps only the key's SHA-256, so a key cannot be shown again; without --rotate this says whether
    one is set and how to get a new one. A server started with ACCESSRC_SIM_API_KEY uses that key instead.

    Example: KEY=$(accessrc-sim admin-key --rotate --db accessrc-sim.db)
    """
    from .services import API_KEY_HASH_SETTING, API_KEY_SETTING, rotate_api_key
    from .subscriptions import SubscriptionRepo

    if not rotate and not Path(db_path).exists():
        raise UsageProblem(f"no database at {db_path}; start `accessrc-sim serve` first, or make a key with "
                           f"`accessrc-sim admin-key --rotate --db {db_path}`")
    repo = SubscriptionRepo(open_store(db_path))
    if rotate:
        click.echo(rotate_api_key(repo))
        click.echo(f"new admin API key for {db_path} (shown once; only its hash is kept; the previous key no longer "
                   f"works; a server started with {ENV_API_KEY} uses that key instead)", err=True)
        return
    kept = repo.setting(API_KEY_HASH_SETTING) or repo.setting(API_KEY_SETTING)
    state = "holds the hash of an admin key" if kept else "holds no admin key yet"
    raise UsageProblem(f"{db_path} {state}; a key is shown only once, when it is made, and cannot be printed "
                       f"again. Make a new one with `accessrc-sim admin-key --rotate --db {db_path}` (the old one "
                       f"stops working), or serve with {ENV_API_KEY} set to a key of your choice")


from .serve import serve_cmd  # noqa: E402

main.add_command(serve_cmd)

from .load_cli import load_cmd  # noqa: E402

main.add_command(load_cmd)

from .scenarios.commands import conformance_cmd, run_cmd  # noqa: E402

main.add_command(run_cmd)
main.add_command(conformance_cmd)

if __name__ == "__main__":
    main()
