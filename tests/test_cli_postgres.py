"""The CLI with --db postgresql://… (issue 16): a URL is used as given (no file checks, no lock), its password is
never printed, and a database that cannot be used is a usage error (exit 2) naming it."""

from __future__ import annotations

from click.testing import CliRunner

from simulator.cli import main
from simulator.store import display

PASSWORD = "pw-7c41e0"


def _with_password(url: str) -> str:
    return url.replace("postgresql://sim@", f"postgresql://sim:{PASSWORD}@")  # the test server trusts, any password


def test_display_hides_a_urls_password_and_leaves_paths_alone():
    assert display(f"postgresql://u:{PASSWORD}@h:5432/db") == "postgresql://u:***@h:5432/db"
    assert display(f"postgres://u:{PASSWORD}@h/db?sslmode=require") == "postgres://u:***@h/db?sslmode=require"
    assert display("postgresql://u@h/db") == "postgresql://u@h/db"
    assert display("/tmp/x:y@z.db") == "/tmp/x:y@z.db"


def test_admin_key_on_a_postgresql_database_never_prints_its_password(pg_url):
    url = _with_password(pg_url)
    runner = CliRunner()
    none_yet = runner.invoke(main, ["admin-key", "--db", url])
    assert none_yet.exit_code == 2 and "holds no admin key yet" in none_yet.output
    made = runner.invoke(main, ["admin-key", "--rotate", "--db", url])
    assert made.exit_code == 0, made.output
    key = made.stdout.strip().splitlines()[0]
    assert len(key) > 20
    again = runner.invoke(main, ["admin-key", "--db", url])
    assert again.exit_code == 2 and "holds the hash of an admin key" in again.output
    for out in (none_yet.output, made.output, again.output):
        assert PASSWORD not in out and "sim:***@" in out


def test_a_postgresql_database_that_cannot_be_used_is_a_usage_error(pg_server):
    url = _with_password(pg_server.url("no_such_database"))
    result = CliRunner().invoke(
        main, ["send", "DELIVERY_REFUND_REQUESTED", "--url", "http://127.0.0.1:9/h", "--db", url]
    )
    assert result.exit_code == 2
    assert "cannot use it as the database" in result.output and 'database "no_such_database" does not exist' in (
        result.output
    )
    assert PASSWORD not in result.output
