import json
import os
import sqlite3
import subprocess
import sys
import time

import click
import pytest
import requests
from click.testing import CliRunner
from scripted_server import ScriptedServer, refused_url

from simulator import catalogue, signing
from simulator.cli import main


@pytest.fixture
def run(tmp_path, keys_dir):
    def invoke(*args):
        env = {"ACCESSRC_SIM_DB": str(tmp_path / "cli.db"), "ACCESSRC_SIM_KEYS_DIR": str(keys_dir)}
        return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)

    return invoke


def test_events_lists_every_event_and_json_has_required_fields(run):
    out = run("events")
    assert out.exit_code == 0
    for spec in catalogue.EVENTS:
        assert spec.name in out.output
    items = json.loads(run("events", "--json").output)
    assert {i["name"] for i in items} == {e.name for e in catalogue.EVENTS}
    assert all({"name", "platform", "description", "availability"} <= set(i) for i in items)


def test_sample_same_seed_same_bytes_and_sets_parse_json(run):
    a = run(
        "sample",
        "APPLICATIONS_IMPORT_RESULT",
        "--seed",
        "7",
        "--compact",
        "--set",
        "summary.totalRecords=120",
        "--set",
        "summary.failureCount=5",
    )
    b = run(
        "sample",
        "APPLICATIONS_IMPORT_RESULT",
        "--seed",
        "7",
        "--compact",
        "--set",
        "summary.totalRecords=120",
        "--set",
        "summary.failureCount=5",
    )
    assert a.exit_code == 0 and a.output == b.output
    payload = json.loads(a.stdout)
    assert payload["summary"] == {"totalRecords": 120, "successCount": 115, "failureCount": 5}
    assert payload["status"] == "PARTIAL_SUCCESS"
    assert a.stdout.strip().encode() == catalogue.body_bytes(payload)


def test_sample_string_value_and_unknown_path_and_bad_value(run):
    out = run(
        "sample",
        "DELIVERY_CHANNEL_STATUS_UPDATED",
        "--set",
        "message=Description is not clear enough",
        "--set",
        "status=Rejected",
    )
    assert json.loads(out.stdout)["message"] == "Description is not clear enough"
    typo = run("sample", "DELIVERY_CHANNEL_STATUS_UPDATED", "--set", "nope=1")  # an added field: a visible note
    assert typo.exit_code == 0 and json.loads(typo.stdout)["nope"] == 1
    assert "note: nope: extra field 'nope', not in the documents (inferred rule accessrc.payload.no-extra-fields)" in (
        typo.stderr
    )
    bad_path = run("sample", "DELIVERY_CHANNEL_STATUS_UPDATED", "--set", "nope.deeper=1")  # through no object
    assert bad_path.exit_code == 2 and "path 'nope.deeper' does not exist (no field 'nope')" in bad_path.output
    bad_value = run("sample", "DELIVERY_CHANNEL_STATUS_UPDATED", "--set", "status=Maybe")
    assert bad_value.exit_code == 2 and "status:" in bad_value.output and "--force" in bad_value.output
    forced = run("sample", "DELIVERY_CHANNEL_STATUS_UPDATED", "--set", "status=Maybe", "--force")
    assert forced.exit_code == 0 and json.loads(forced.stdout)["status"] == "Maybe"


ADDED_FIELDS = [  # issue 12: each is advice of an inferred rule, so --set adds it; only --strict refuses it
    ("DELIVERY_REQUEST_SENT", "delivery.0.amount=12.5", "accessrc.payload.no-extra-fields"),
    ("DELIVERY_CHANNEL_STATUS_UPDATED", "extraField=1", "accessrc.payload.no-extra-fields"),
    ("END_JOB_NOTIFICATION", "extra=1", "reachfive.payload.no-extra-fields"),
    ("BadgeExportZipFile.Created", "Extra=1", "accredit.payload.no-extra-fields"),
]


@pytest.mark.parametrize("event,assignment,rule", ADDED_FIELDS, ids=[a[0] for a in ADDED_FIELDS])
def test_set_adds_a_new_field_with_a_note_and_strict_refuses_it_naming_the_rule(run, event, assignment, rule):
    path, _, value = assignment.partition("=")
    out = run("sample", event, "--seed", "1", "--set", assignment)
    assert out.exit_code == 0, out.output
    assert catalogue.paths.get(json.loads(out.stdout), path) == json.loads(value)
    assert f"note: {path}: extra field {path.split('.')[-1]!r}, not in the documents (inferred rule {rule})" in (
        out.stderr
    )
    strict = run("sample", event, "--seed", "1", "--set", assignment, "--strict")
    assert strict.exit_code == 2 and "--strict" in strict.output and f"(inferred rule {rule})" in strict.output
    assert strict.stdout == ""


def test_send_prints_one_line_per_attempt_and_exits_0_on_2xx(run, tmp_path, keys):
    ok = (200, b'{"status":"success"}', 0, {})
    with ScriptedServer([(500, b"{}", 0, {}), (400, b"{}", 0, {}), ok]) as srv:
        out = run(
            "send",
            "BadgeExportZipFile.Created",
            "--url",
            srv.url + "/baseWebhookNotification",
            "--retry-delays",
            "0,0,0,0,0",
            "--seed",
            "3",
        )
    assert out.exit_code == 0, out.output
    lines = [line for line in out.output.splitlines() if "attempt" in line and " ms" in line]
    assert len(lines) == 3
    assert "attempt 0  500" in lines[0] and "attempt 1  400" in lines[1] and "attempt 2  200" in lines[2]
    body = srv.requests[0]["body"]
    assert body == catalogue.body_bytes(catalogue.generate("BadgeExportZipFile.Created", seed=3))
    signing.rsa_verify(keys.public_pem, body, srv.requests[2]["headers"]["X-Signature"])
    db = sqlite3.connect(tmp_path / "cli.db")
    assert db.execute("SELECT state, attempts_made FROM jobs").fetchall() == [("succeeded", 3)]
    assert [r[0] for r in db.execute("SELECT status FROM attempts ORDER BY number")] == [500, 400, 200]


def test_send_exits_1_when_every_attempt_failed(run):
    out = run("send", "Entity.Event", "--url", refused_url(), "--retry-delays", "0,0")
    assert out.exit_code == 1
    assert out.output.count("Connection refused") == 3


def test_send_json_output(run):
    with ScriptedServer() as srv:
        out = run("send", "DELIVERY_REFUND_REQUESTED", "--url", srv.url, "--json", "--hmac-secret", "abcd1234")
    data = json.loads(out.stdout)
    assert data["state"] == "succeeded" and data["attempts"][0]["status"] == 200
    assert data["attempts"][0]["request_headers"]["x-signature"].startswith("sha256=")


@pytest.mark.parametrize(
    "args, message",
    [
        (["Entity.Event", "--url", "http://127.0.0.1:1/", "--hmac-secret", "x"], "does not apply to accredit"),
        (["END_JOB_NOTIFICATION", "--url", "http://127.0.0.1:1/", "--basic", "u:p"], "does not apply to reachfive"),
        (["DELIVERY_REFUND_REQUESTED", "--url", "http://127.0.0.1:1/", "--basic", "nocolon"], "USER:PASS"),
        (
            ["DELIVERY_REFUND_REQUESTED", "--url", "http://127.0.0.1:1/", "--basic", "u:p", "--hmac-secret", "s"],
            "choose one auth",
        ),
        (["Entity.Event", "--url", "http://127.0.0.1:1/", "--retry-delays", "1,2,3,4,5,6"], "at most 5"),
        (["Entity.Event", "--url", "not-a-url"], "http:// or https://"),
        (["NOPE", "--url", "http://127.0.0.1:1/"], "unknown event"),
    ],
)
def test_send_bad_usage_exits_2_with_a_clear_message(run, args, message):
    out = run("send", *args)
    assert out.exit_code == 2
    assert message in out.output


def test_keys_show_prints_public_pem_only(run, keys, keys_dir):
    out = run("keys", "show")
    assert out.stdout == keys.public_pem  # stdout: the PEM alone (`keys show > accredit_public.pem`)
    assert "PRIVATE" not in out.output
    assert out.stderr == f"accessrc-sim: the key pair is in {keys_dir}\n"  # stderr: where the key folder is


def test_keys_generate_refuses_without_force(run, tmp_path):
    d = str(tmp_path / "newkeys")
    assert run("keys", "generate", "--keys-dir", d).exit_code == 0
    again = run("keys", "generate", "--keys-dir", d)
    assert again.exit_code == 2 and "--force" in again.output
    assert run("keys", "generate", "--keys-dir", d, "--force").exit_code == 0


def test_every_command_has_help_with_an_example():
    def walk(group, prefix=()):
        ctx = click.Context(group)  # list_commands/get_command: the group imports its commands lazily
        for name in group.list_commands(ctx):
            cmd = group.get_command(ctx, name)
            if hasattr(cmd, "commands"):
                yield from walk(cmd, prefix + (name,))
            else:
                yield prefix + (name,), cmd

    for path, cmd in walk(main):
        assert cmd.help and "Example:" in cmd.help, f"{' '.join(path)} has no help with an example"


def test_console_script_sends_to_the_reference_receiver(tmp_path, keys_dir):
    """The tour's first delivery, as processes: receiver and sender from the installed console script."""
    exe = os.path.join(os.path.dirname(sys.executable), "accessrc-sim")
    port = int(refused_url().split(":")[2].split("/")[0])
    env = dict(os.environ, ACCESSRC_SIM_DB=str(tmp_path / "q.db"), ACCESSRC_SIM_KEYS_DIR=str(keys_dir))
    log = open(tmp_path / "receiver.log", "w")
    receiver = subprocess.Popen([exe, "receiver", "--port", str(port)], stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        for _ in range(100):
            try:
                requests.get(f"http://127.0.0.1:{port}/_received", timeout=0.2)
                break
            except requests.RequestException:
                time.sleep(0.05)
        sent = subprocess.run(
            [exe, "send", "BadgeExportZipFile.Created", "--url", f"http://127.0.0.1:{port}/baseWebhookNotification"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert sent.returncode == 0, sent.stdout + sent.stderr
        assert "delivered after 1 attempt(s)" in sent.stdout
        got = requests.get(f"http://127.0.0.1:{port}/_received", timeout=2).json()
        assert [(r["status"], r["outcome"]) for r in got] == [(200, "accepted")]
    finally:
        receiver.terminate()
        receiver.wait(10)
        log.close()
    assert "-> 200 accepted" in (tmp_path / "receiver.log").read_text()


def test_failed_attempt_lines_say_what_the_receiver_answered(run, start_receiver):
    srv = start_receiver("accredit")  # an Accredit receiver: an AccessRC HMAC send is refused with 401
    out = run("send", "DELIVERY_REFUND_REQUESTED", "--url", srv.url, "--hmac-secret", "abcd1234", "--retry-delays", "")
    assert out.exit_code == 1
    assert "attempt 0  401" in out.output and "HTTP 401: Verification failed" in out.output


def test_receiver_on_a_busy_port_is_a_clear_usage_error(run):
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        out = run("receiver", "--port", str(busy.getsockname()[1]))
    assert out.exit_code == 2
    assert "cannot listen on 127.0.0.1" in out.output and "choose another --port" in out.output
    assert "Traceback" not in out.output


def _settings(db) -> dict:
    with sqlite3.connect(db) as conn:
        return dict(conn.execute("SELECT name, value FROM sim_settings"))


def test_admin_key_is_kept_as_a_hash_and_rotate_makes_a_new_one(run, tmp_path, keys_dir):
    """Issue 14, item 12: the database keeps the key's SHA-256, never the key; `admin-key` cannot print it and says
    how to get a new one; `admin-key --rotate` prints a new key, which works at once, and the old one stops."""
    import hashlib

    from simulator.services import Services

    db = tmp_path / "served.db"
    services = Services.build(db, keys_dir, api_key="")
    key = services.settings.api_key
    assert services.settings.api_key_generated and key
    stored = _settings(db)
    assert stored == {"admin_api_key_sha256": hashlib.sha256(key.encode()).hexdigest()}
    files = [db, db.with_name(db.name + "-wal")]
    assert not [f.name for f in files if f.exists() and key.encode() in f.read_bytes()]
    assert services.check_api_key(key) and not services.check_api_key(key + "x") and not services.check_api_key("")

    shown = run("admin-key", "--db", str(db))
    assert shown.exit_code == 2 and key not in shown.output
    assert "cannot be printed again" in shown.output and f"accessrc-sim admin-key --rotate --db {db}" in shown.output

    rotated = run("admin-key", "--rotate", "--db", str(db))
    assert rotated.exit_code == 0, rotated.output
    new_key = rotated.stdout.strip()
    assert new_key.startswith("sim_") and new_key != key and "shown once" in rotated.stderr
    assert _settings(db) == {"admin_api_key_sha256": hashlib.sha256(new_key.encode()).hexdigest()}
    assert services.check_api_key(new_key) and not services.check_api_key(key)  # a running server: at once
    restarted = Services.build(db, keys_dir, api_key="")
    assert not restarted.settings.api_key_generated and restarted.settings.api_key is None
    assert restarted.check_api_key(new_key)

    missing = run("admin-key", "--db", str(tmp_path / "nope.db"))
    assert missing.exit_code == 2 and "no database" in missing.output


def test_a_key_kept_in_clear_by_an_older_version_is_replaced_by_its_hash(tmp_path, keys_dir):
    import hashlib

    from simulator.services import Services

    db = tmp_path / "old.db"
    Services.build(db, keys_dir, api_key="")
    with sqlite3.connect(db) as conn:  # as versions before issue 14 left it
        conn.execute("DELETE FROM sim_settings")
        conn.execute("INSERT INTO sim_settings (name, value) VALUES ('admin_api_key', 'sim_old-clear-key')")
    services = Services.build(db, keys_dir, api_key="")
    assert not services.settings.api_key_generated
    assert _settings(db) == {"admin_api_key_sha256": hashlib.sha256(b"sim_old-clear-key").hexdigest()}
    assert services.check_api_key("sim_old-clear-key")


# -- bad files and ports (issue 14, item 10): a clear `Error: …` naming the file, exit 2, never a traceback -----------
# As root (our CI) a read-only folder is writable, so "cannot create the database or the keys there" is reproduced with
# a path below a regular file; as another user, with a folder of mode 0555.
def _unwritable(tmp_path, name):
    if os.geteuid() == 0:
        (tmp_path / "file.txt").write_text("a file, not a folder\n")
        return tmp_path / "file.txt" / "sub" / name
    folder = tmp_path / "read-only"
    folder.mkdir(mode=0o555)
    return folder / name


def _bad_db(tmp_path, kind):
    path = tmp_path / f"{kind}.db"
    if kind == "text":
        path.write_text("not a database\n")
    elif kind == "random":
        path.write_bytes(bytes(range(256)) * 8)
    elif kind == "corrupt":  # SQLite's header, then garbage
        path.write_bytes(b"SQLite format 3\x00" + b"\xff" * 4080)
    elif kind == "fifo":
        os.mkfifo(path)
    elif kind == "dev-null":
        return "/dev/null"
    elif kind == "unwritable":
        return str(_unwritable(tmp_path, "x.db"))
    return str(path)


DB_PROBLEMS = {
    "text": "is not an SQLite database",
    "random": "is not an SQLite database",
    "corrupt": "cannot use it as the database: file is not a database",
    "fifo": "is not a regular file (a device, FIFO or socket)",
    "dev-null": "is not a regular file (a device, FIFO or socket)",
    "unwritable": "cannot create it",
}


@pytest.mark.parametrize("kind", list(DB_PROBLEMS))
def test_a_db_that_cannot_be_the_database_is_a_clear_error(run, tmp_path, start_receiver, kind):
    srv = start_receiver("accessrc")
    journal_before = os.path.exists("/dev/null-journal")
    db = _bad_db(tmp_path, kind)
    out = run("send", "DELIVERY_REFUND_REQUESTED", "--url", srv.url + "/hook", "--db", db, "--retry-delays", "")
    assert out.exit_code == 2, out.output
    assert out.output.startswith(f"Error: --db {db}: {DB_PROBLEMS[kind]}"), out.output
    assert srv.received == []  # refused before anything was sent
    assert os.path.exists("/dev/null-journal") == journal_before  # SQLite wrote nothing beside /dev/null
    for command in (["admin-key"], ["serve", "--port", "0", "--keys-dir", str(tmp_path / "keys")]):
        if command == ["admin-key"] and not os.path.exists(db):
            continue  # admin-key first says there is no database
        out = run(*command, "--db", db)
        assert out.exit_code == 2 and f"Error: --db {db}: {DB_PROBLEMS[kind]}" in out.output, out.output


def _bad_keys(tmp_path, kind):
    folder = tmp_path / f"keys-{kind}"
    private = folder / signing.PRIVATE_FILE
    if kind == "unwritable":
        return _unwritable(tmp_path, "keys")
    folder.mkdir()
    if kind == "garbage":
        private.write_text("-----BEGIN PRIVATE KEY-----\nnot base64 at all\n-----END PRIVATE KEY-----\n")
    elif kind == "dangling":
        private.symlink_to(tmp_path / "gone.pem")
    elif kind == "folder":
        private.mkdir()
    elif kind == "fifo":
        os.mkfifo(private)
    return folder


KEY_PROBLEMS = {
    "garbage": "is not an unencrypted PEM private key",
    "dangling": "which does not exist",
    "folder": "is a folder, not a private key file",
    "fifo": "is not a regular file",
    "unwritable": "cannot create the keys folder",
}


@pytest.mark.parametrize("kind", list(KEY_PROBLEMS))
def test_a_keys_dir_without_a_usable_private_key_is_a_clear_error(run, tmp_path, start_receiver, kind):
    srv = start_receiver("accredit")
    keys = _bad_keys(tmp_path, kind)
    scenario = os.path.join(os.path.dirname(__file__), "..", "scenarios", "accredit", "sample-notification.yaml")
    commands = [
        [
            "send",
            "BadgeExportZipFile.Created",
            "--url",
            srv.url + "/hook",
            "--retry-delays",
            "",
            "--db",
            str(tmp_path / "send.db"),
        ],
        ["keys", "show"],
        ["receiver", "--port", "1"],
        ["load", "BadgeExportZipFile.Created", "--url", srv.url + "/hook", "--rate", "1", "--duration", "1"],
        ["run", scenario, "--url", srv.url + "/hook", "--db", str(tmp_path / "run.db")],
        ["serve", "--port", "0", "--db", str(tmp_path / "serve.db")],
    ]
    for command in commands:
        out = run(*command, "--keys-dir", str(keys))
        assert out.exit_code == 2, (command, out.output)
        assert f"Error: --keys-dir {keys}: " in out.output and KEY_PROBLEMS[kind] in out.output, (command, out.output)
    assert srv.received == []
    assert not any((tmp_path / f"{name}.db").exists() for name in ("send", "run", "serve"))  # nothing half-made


def test_keys_generate_in_a_folder_that_cannot_be_written_is_a_clear_error(run, tmp_path):
    keys = _unwritable(tmp_path, "keys")
    out = run("keys", "generate", "--keys-dir", str(keys))
    assert out.exit_code == 2 and out.output.startswith("Error: cannot create the keys folder"), out.output


@pytest.mark.parametrize("port", ["99999", "-1", "0", "65536"])
def test_receiver_ports_outside_1_to_65535_are_refused(port, tmp_path):
    """A process with a time limit: before, --port 99999 announced :99999 and listened on another port, forever."""
    exe = os.path.join(os.path.dirname(sys.executable), "accessrc-sim")
    out = subprocess.run([exe, "receiver", "--port", port], capture_output=True, text=True, timeout=30, cwd=tmp_path)
    assert out.returncode == 2
    assert f"Invalid value for '--port': {port} is not in the range 1<=x<=65535" in out.stderr
    assert "Traceback" not in out.stderr and out.stdout == ""


def test_receiver_public_key_that_is_not_one_is_a_clear_error(tmp_path):
    """A process with a time limit: before, the receiver started with it and failed every request."""
    (tmp_path / "pub.pem").write_text("not a key\n")
    exe = os.path.join(os.path.dirname(sys.executable), "accessrc-sim")
    port = refused_url().split(":")[2].split("/")[0]
    out = subprocess.run(
        [exe, "receiver", "--port", port, "--public-key", "pub.pem"],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=tmp_path,
    )
    assert out.returncode == 2 and out.stderr.startswith("Error: --public-key pub.pem: not a PEM RSA public key")


@pytest.mark.parametrize(
    "command",
    [["send", "DELIVERY_REFUND_REQUESTED"], ["load", "DELIVERY_REFUND_REQUESTED", "--rate", "1", "--duration", "1"]],
)
@pytest.mark.parametrize("port", ["0", "99999"])
def test_target_url_ports_outside_1_to_65535_are_refused(run, command, port):
    out = run(*command, "--url", f"http://127.0.0.1:{port}/hook")
    assert out.exit_code == 2 and "Error: " in out.output and "port" in out.output.lower(), out.output


def test_an_answer_nested_100k_deep_is_reported_not_a_traceback(run):
    with ScriptedServer(default=(400, b"[" * 100_000, 0.0, {})) as srv:
        out = run("send", "DELIVERY_REFUND_REQUESTED", "--url", srv.url + "/hook", "--retry-delays", "")
    assert out.exit_code == 1 and "attempt 0  400" in out.output


def test_send_on_a_disk_that_fills_up_is_a_clear_error(tmp_path, keys_dir, start_receiver):
    """Issue 14, item 11 from the command line: the database's files may not grow (RLIMIT_FSIZE on the process, a
    real OS limit; the real disk is not filled), so recording fails; `send` says so, exit 1, no traceback."""
    import resource

    from simulator.store import Store

    target = start_receiver("accessrc")
    db = tmp_path / "full.db"
    Store(db).close()
    size = 32 * 1024  # the -shm (wal-index) file SQLite needs to open the file; the WAL cannot hold a delivery

    def small_files():
        resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))

    cli = [sys.executable, "-c", "import sys; from simulator.cli import main; sys.argv[0] = 'accessrc-sim'; main()"]
    done = subprocess.run(
        [
            *cli,
            "send",
            "DELIVERY_REFUND_REQUESTED",
            "--url",
            target.url + "/h",
            "--retry-delays",
            "",
            "--db",
            str(db),
            "--keys-dir",
            str(keys_dir),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        preexec_fn=small_files,
        cwd=tmp_path,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"Error: --db {db}: " in done.stderr and "could not be recorded" in done.stderr
    assert "Traceback" not in done.stderr


def test_send_refused_with_401_says_which_credential_flag_is_missing(run, start_receiver):
    from simulator.auth import Auth

    rx = start_receiver("accessrc", Auth("hmac", secret="abcd1234"))
    out = run("send", "DELIVERY_REFUND_REQUESTED", "--url", rx.url + "/hook", "--retry-delays", "")
    assert out.exit_code == 1
    assert "hint: the receiver answered 401 and no credential was sent" in out.output
    assert "add --hmac-secret/--api-key/--basic as its subscription says" in out.output
    out = run(
        "send", "DELIVERY_REFUND_REQUESTED", "--url", rx.url + "/hook", "--retry-delays", "", "--hmac-secret", "x"
    )
    assert out.exit_code == 1 and "to the hmac credentials sent: check they are the ones" in out.output


def test_send_refused_by_an_accredit_receiver_points_at_keys_show(run, start_receiver, tmp_path):
    other = signing.generate_keys(tmp_path / "other-keys")
    rx = start_receiver("accredit", public_key_pem=other.public_pem)
    out = run("send", "BadgeExportZipFile.Created", "--url", rx.url + "/hook", "--retry-delays", "")
    assert out.exit_code == 1
    assert "hint: the receiver answered 401: check it verifies X-Signature with the public key from" in out.output
    assert "accessrc-sim keys show" in out.output


@pytest.fixture
def read_only_folder(tmp_path):
    """A folder that cannot be written, holding an existing database and an empty keys folder: a read-only tmpfs
    mount when root (our CI: a mode-0555 folder would stay writable for root), else a mode-0555 folder. Yields
    (folder, existing database, empty keys folder)."""
    folder = tmp_path / "ro"
    folder.mkdir()
    mounted = False
    try:
        if os.geteuid() == 0:
            made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(folder)], capture_output=True)
            assert made.returncode == 0, f"as root, a tmpfs must mount here to make a read-only folder: {made.stderr}"
            mounted = True
        made = subprocess.run(  # a real database, made (by a process that has ended) while the folder was writable
            [sys.executable, "-m", "simulator.cli", "admin-key", "--rotate", "--db", str(folder / "existing.db")],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert made.returncode == 0, made.stderr
        (folder / "keys-empty").mkdir()
        if mounted:
            remount = subprocess.run(["mount", "-o", "remount,ro", str(folder)], capture_output=True)
            assert remount.returncode == 0, remount.stderr
        else:
            for path in (folder / "keys-empty", folder):
                path.chmod(0o555)
        yield folder, folder / "existing.db", folder / "keys-empty"
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(folder)], check=False)
        else:
            for path in (folder, folder / "keys-empty"):
                if path.exists():
                    path.chmod(0o755)


def test_a_read_only_folder_for_the_database_or_the_keys_is_a_clear_error(run, read_only_folder, start_receiver):
    """Issue 14, item 10, as the trial had it: the database's or the keys' folder is read-only (here a read-only
    mount, also as root). Every case is `Error: …` naming the path and why, exit 2, nothing sent."""
    folder, existing, keys_empty = read_only_folder
    srv = start_receiver("accessrc")
    send = ["send", "DELIVERY_REFUND_REQUESTED", "--url", srv.url + "/hook", "--retry-delays", ""]
    new_db = run(*send, "--db", str(folder / "new.db"))
    assert new_db.exit_code == 2, new_db.output
    assert new_db.output.startswith(f"Error: --db {folder / 'new.db'}: cannot create it: the folder {folder} is not"), (
        new_db.output
    )
    old_db = run(*send, "--db", str(existing))
    assert old_db.exit_code == 2, old_db.output
    assert old_db.output.startswith(f"Error: --db {existing}: cannot write it: "), old_db.output
    assert "not writable" in old_db.output or "read-only" in old_db.output, old_db.output
    for keys, says in ((folder / "keys-new", "cannot create the keys folder"), (keys_empty, "cannot write")):
        out = run("keys", "generate", "--keys-dir", str(keys))
        assert out.exit_code == 2 and out.output.startswith("Error: "), out.output
        assert says in out.output and str(keys) in out.output, out.output
        assert "Traceback" not in out.output
    assert srv.received == []
