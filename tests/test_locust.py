"""Load mode on Locust: a real master and real worker processes against the reference receiver, which verifies
every signature; the receiver's count and Locust's own count (its CSV) must both be the planned count."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from simulator.auth import Auth
from simulator.cli import main
from simulator.load import LoadPlan
from simulator.load.locust_run import LOCUSTFILE, free_port, plan_environment, read_stats

SECRET = "locust-secret"
RUN_LIMIT = 120  # seconds any Locust process may take before the test calls it hung


def aggregated(prefix: Path) -> dict:
    with open(f"{prefix}_stats.csv", newline="") as f:
        return next(row for row in csv.DictReader(f) if row["Name"] == "Aggregated")


def clean_env(tmp_path: Path, **extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ACCESSRC_SIM_")}
    return env | {"ACCESSRC_SIM_HOME": str(tmp_path / "home")} | extra


def locust(*args: str, env: dict, **kwargs) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), *args]
    return subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, text=True, **kwargs)


@pytest.mark.slow
def test_cli_runs_a_master_and_two_workers_hmac(start_receiver, tmp_path):
    """`load --engine locust --workers 2`: 200 AccessRC events, each HMAC-verified by the receiver; Locust counted
    the same 200, printed its stats and percentiles and wrote its CSV."""
    server = start_receiver("accessrc", Auth("hmac", secret=SECRET))
    prefix = tmp_path / "run"
    cmd = [sys.executable, "-m", "simulator.cli", "load", "DELIVERY_CHANNEL_STATUS_UPDATED"]
    cmd += ["--url", server.url + "/hook", "--hmac-secret", SECRET, "--rate", "100", "--duration", "2"]
    cmd += ["--engine", "locust", "--workers", "2", "--csv", str(prefix)]
    done = subprocess.run(cmd, env=clean_env(tmp_path), capture_output=True, text=True, timeout=RUN_LIMIT)
    got = list(server.received)
    assert done.returncode == 0, done.stdout + done.stderr
    assert len(got) == 200
    assert {r.outcome for r in got} == {"accepted"}  # signature verified, body valid, never a duplicate body
    assert len({r.body for r in got}) == 200
    row = aggregated(prefix)
    assert (row["Request Count"], row["Failure Count"]) == ("200", "0")  # Locust's count is the receiver's
    out = done.stdout
    assert "on Locust: a master and 2 worker processes" in out.splitlines()[0]
    assert "Response time percentiles (approximated)" in out and "Aggregated" in out  # Locust's own tables
    assert "sent 200, accepted 200, failed 0" in out
    for suffix in ("_stats.csv", "_stats_history.csv", "_failures.csv", "_exceptions.csv"):
        assert Path(f"{prefix}{suffix}").is_file(), suffix


@pytest.mark.slow
def test_documented_master_worker_pair_rsa(start_receiver, keys_dir, tmp_path):
    """`locust --master` and two `locust --worker` by hand, as across machines: 150 Accredit events, each
    RSA-verified with the public key, each its own X-JobId; the workers read the key pair from their own
    ACCESSRC_SIM_KEYS_DIR, the settings come from the master."""
    server = start_receiver("accredit")
    port, prefix = free_port(), tmp_path / "pair"
    env = clean_env(tmp_path, ACCESSRC_SIM_KEYS_DIR=str(keys_dir))
    master = locust(
        *("--headless", "--master", "--master-bind-host", "127.0.0.1", "--master-bind-port", str(port)),
        *("--expect-workers", "2", "--expect-workers-max-wait", "60", "-u", "4", "-r", "40", "-t", "60s"),
        *("--csv", str(prefix), "--only-summary"),
        *("--sim-event", "BadgeExportZipFile.Created", "--sim-url", server.url + "/baseWebhookNotification"),
        *("--sim-rate", "100", "--sim-requests", "150"),
        env=clean_env(tmp_path),  # the master never signs: no key pair where it runs
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    workers = [locust("--worker", "--master-host", "127.0.0.1", "--master-port", str(port), env=env) for _ in range(2)]
    try:
        output, _ = master.communicate(timeout=RUN_LIMIT)
        for worker in workers:
            assert worker.wait(30) == 0
    finally:
        for proc in (master, *workers):
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    got = list(server.received)
    assert master.returncode == 0, output
    assert len(got) == 150, output
    assert {r.outcome for r in got} == {"accepted"}, output  # every RSA signature verified
    assert len({r.job_id for r in got}) == 150 and {r.attempt for r in got} == {"0"}
    row = aggregated(prefix)
    assert (row["Request Count"], row["Failure Count"]) == ("150", "0")
    assert "Response time percentiles (approximated)" in output


@pytest.mark.slow
def test_without_a_master_failures_are_named_as_load_mode_names_them(start_receiver, tmp_path):
    """`locust --headless` alone (no master): the dealer runs in the process. A wrong secret: the receiver refuses
    each of the 20 requests (401), and Locust counts 20 failures named `HTTP 401`."""
    server = start_receiver("accessrc", Auth("hmac", secret=SECRET))
    prefix = tmp_path / "alone"
    env = clean_env(tmp_path, ACCESSRC_SIM_LOAD_HMAC_SECRET="not-the-secret")
    proc = locust(
        *("--headless", "-u", "2", "-r", "10", "-t", "60s", "--csv", str(prefix), "--only-summary"),
        *("--sim-event", "DELIVERY_CHANNEL_STATUS_UPDATED", "--sim-url", server.url + "/hook"),
        *("--sim-rate", "50", "--sim-requests", "20"),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    output, _ = proc.communicate(timeout=RUN_LIMIT)
    got = list(server.received)
    assert proc.returncode == 1, output  # Locust's exit code when requests failed
    assert len(got) == 20 and {r.status for r in got} == {401}
    result = read_stats(str(prefix), 20)
    assert (result.sent, result.failed, result.failed_by_error) == (20, 20, {"HTTP 401": 20})


def test_a_target_off_the_allow_list_is_refused_before_locust_starts(tmp_path):
    result = CliRunner().invoke(
        main,
        ["load", "DELIVERY_CHANNEL_STATUS_UPDATED", "--url", "http://203.0.113.7/hook", "--rate", "10"]
        + ["--duration", "1", "--engine", "locust", "--workers", "2"],
    )
    assert result.exit_code == 2, result.output
    assert "refusing to send to 203.0.113.7" in result.output


@pytest.mark.slow
def test_the_locustfile_refuses_a_target_off_the_allow_list(tmp_path):
    """By hand too: the master (or a lone locust) exits 2 with the guard's message, before any user starts."""
    proc = locust(
        *("--headless", "-u", "1", "-t", "5s"),
        *("--sim-event", "DELIVERY_CHANNEL_STATUS_UPDATED", "--sim-url", "http://203.0.113.7/hook", "--sim-rate", "5"),
        env=clean_env(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    output, _ = proc.communicate(timeout=RUN_LIMIT)
    assert proc.returncode == 2, output
    assert "refusing to send to 203.0.113.7" in output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--engine", "locust", "--signers", "1"], "--signers applies to --engine native only"),
        (["--workers", "2"], "--workers applies to --engine locust only"),
        (["--csv", "x"], "--csv applies to --engine locust only"),
        (["--engine", "locust", "--workers", "0"], "0 is not in the range"),
    ],
)
def test_engine_options_that_do_not_fit(args, message):
    result = CliRunner().invoke(
        main,
        ["load", "DELIVERY_CHANNEL_STATUS_UPDATED", "--url", "http://127.0.0.1:9/h", "--rate", "1"]
        + ["--duration", "1", *args],
    )
    assert result.exit_code == 2, result.output
    assert message in result.output


def test_print_locustfile_names_the_shipped_user_class():
    result = CliRunner().invoke(main, ["load", "--print-locustfile"])
    assert result.exit_code == 0
    path = Path(result.output.strip())
    assert path == LOCUSTFILE and path.is_file() and "class SignedEventUser(User)" in path.read_text()


def test_settings_reach_the_master_in_its_environment_never_its_command_line():
    plan = LoadPlan(
        "DELIVERY_CHANNEL_STATUS_UPDATED", "http://127.0.0.1:9/h", 50, 2, auth=Auth("hmac", secret="s3cr3t")
    )
    env = plan_environment(plan)
    assert env["ACCESSRC_SIM_LOAD_HMAC_SECRET"] == "s3cr3t"
    assert (env["ACCESSRC_SIM_LOAD_RATE"], env["ACCESSRC_SIM_LOAD_REQUESTS"]) == ("50.0", "100")
