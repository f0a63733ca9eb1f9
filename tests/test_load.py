"""Load mode: a steady rate of fresh signed events to real loopback receivers, bounded, with an honest summary."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
from datetime import datetime
from pathlib import Path

import pytest
from click.testing import CliRunner
from scripted_server import ScriptedServer, refused_url
from test_guard import ConnectSpy

from simulator import catalogue, load
from simulator.auth import Auth
from simulator.cli import main
from simulator.load import LoadError, LoadPlan, LoadRun, PayloadSource, percentile
from simulator.load.signers import SignerPool, default_signers

OK = (200, b'{"status":"success"}', 0.0, {})


def invoke(*args):
    return CliRunner().invoke(main, ["load", *map(str, args)])


def test_holds_the_rate_with_fresh_rsa_signed_events(start_receiver, keys_dir):
    """100 Accredit events at 50/s: every one verified by the reference receiver, each a new X-JobId and body."""
    server = start_receiver("accredit")
    result = invoke(
        "BadgeExportZipFile.Created",
        "--url",
        server.url + "/baseWebhookNotification",
        "--rate",
        50,
        "--duration",
        2,
        "--keys-dir",
        keys_dir,
    )
    got = list(server.received)
    assert result.exit_code == 0, result.output + "\n".join(r.outcome for r in got if r.outcome != "accepted")
    assert len(got) == 100
    assert [r.outcome for r in got] == ["accepted"] * 100  # signature, schema and first sight of the X-JobId
    assert len({r.job_id for r in got}) == 100 and {r.attempt for r in got} == {"0"}
    assert len({r.body for r in got}) == 100
    spread = got[-1].at - got[0].at
    assert 1.7 <= spread <= 2.3, (spread, result.output)  # 99 gaps of 20 ms, not a burst
    lines = result.output.splitlines()
    assert lines[0].startswith("BadgeExportZipFile.Created (accredit) -> http://127.0.0.1:")
    assert lines[0].endswith("100 requests at most, events signed in the sending threads")  # 50/s: no process
    ticks = [
        float(m.group(1))
        for m in (
            re.match(r"\s+([\d.]+) s  sent \d+  ok \d+  failed 0  [\d.]+/s  p50 [\d.]+ ms", line) for line in lines
        )
        if m
    ]
    assert ticks and 0.9 <= ticks[0] <= 1.5, result.output  # one line a second (a busy CI host may tick late)
    assert "sent 100, accepted 100, failed 0" in lines
    assert re.search(r"latency ms: p50 [\d.]+ p95 [\d.]+ p99 [\d.]+ max [\d.]+", result.output)
    rate = float(re.search(r"achieved rate ([\d.]+)/s \(requested 50/s\)", result.output).group(1))
    assert 45 <= rate <= 55, result.output


def test_json_summary_with_hmac_events(start_receiver):
    secret = "load-secret"
    server = start_receiver("accessrc", Auth("hmac", secret=secret))
    result = invoke(
        "DELIVERY_CHANNEL_STATUS_UPDATED",
        "--url",
        server.url + "/hook",
        "--rate",
        50,
        "--duration",
        1,
        "--hmac-secret",
        secret,
        "--set",
        "status=Rejected",
        "--json",
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["sent"] == summary["accepted"] == 50 and summary["failed"] == 0 and summary["unsent"] == 0
    assert 45 <= summary["achieved_rate"] <= 55, summary
    assert all(summary["latency_ms"][k] > 0 for k in ("p50", "p95", "p99"))
    assert [r.outcome for r in server.received] == ["accepted"] * 50
    assert all(json.loads(r.body)["status"] == "Rejected" for r in server.received)
    assert secret not in result.output


def test_failures_are_tallied_by_status_and_sampled():
    script = [(500, b'{"status":"failed"}', 0.0, {}), OK, (429, b"slow down", 0.0, {}), OK] * 5
    with ScriptedServer(script) as server:
        result = invoke(
            "END_JOB_NOTIFICATION",
            "--url",
            server.url + "/jobs",
            "--rate",
            40,
            "--duration",
            0.5,
            "--concurrency",
            1,
            "--json",
        )
    assert result.exit_code == 1, result.output
    summary = json.loads(result.output)
    assert summary["sent"] == 20 and summary["accepted"] == 10
    assert summary["failed_by_status"] == {"HTTP 429": 5, "HTTP 500": 5}
    assert len(summary["failure_samples"]) == 5 and summary["failure_samples"][0]["status"] == 500
    # ReachFive: no job headers, fire-and-forget
    assert all("X-JobId" not in r["headers"] for r in server.requests)


def test_refused_connections_are_failures_not_crashes():
    result = invoke("DELIVERY_REFUND_REQUESTED", "--url", refused_url(), "--rate", 20, "--duration", 0.25, "--json")
    assert result.exit_code == 1, result.output
    summary = json.loads(result.output)
    assert summary["failed_by_status"] == {"connection error": 5} and summary["accepted"] == 0
    text = invoke("DELIVERY_REFUND_REQUESTED", "--url", refused_url(), "--rate", 20, "--duration", 0.1)
    assert re.search(r"  failure: job [0-9a-f-]{36}: no answer, connection error: .*refused", text.output), text.output


def test_bounded_by_count():
    with ScriptedServer() as server:
        started = time.monotonic()
        result = invoke(
            "DELIVERY_REFUND_REQUESTED",
            "--url",
            server.url,
            "--rate",
            100,
            "--duration",
            60,
            "--max-requests",
            7,
            "--json",
        )
        took = time.monotonic() - started
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["sent"] == 7 and len(server.requests) == 7
    assert took < 5


def test_bounded_by_time_when_the_receiver_is_slow():
    """Answers take 0.4 s with one in flight: the run still ends by duration + 1 s grace + one answer,
    and the slots it could not start are reported, not silently dropped."""
    with ScriptedServer(default=(200, b"{}", 0.4, {})) as server:
        started = time.monotonic()
        result = invoke(
            "DELIVERY_REFUND_REQUESTED", "--url", server.url, "--rate", 20, "--duration", 1, "--concurrency", 1
        )
        took = time.monotonic() - started
    assert result.exit_code == 1, result.output
    assert took < 1 + load.GRACE + 0.4 + 1.0
    sent = len(server.requests)
    assert 3 <= sent <= 6
    assert f"not sent {20 - sent} (the sender fell behind)" in result.output
    assert "answers take" in result.output and "raise --concurrency" in result.output


def test_refuses_a_target_off_the_allow_list_before_sending(monkeypatch):
    monkeypatch.delenv("ACCESSRC_SIM_ALLOW_HOSTS", raising=False)
    with ConnectSpy() as spy:
        result = invoke("DELIVERY_REFUND_REQUESTED", "--url", "http://203.0.113.9/hook", "--rate", 10, "--duration", 1)
    assert result.exit_code == 2
    assert "refusing to send to 203.0.113.9" in result.output and "ACCESSRC_SIM_ALLOW_HOSTS" in result.output
    assert "in flight at most" not in result.output  # refused before the run's first line, not after it
    assert spy.calls == []


@pytest.mark.parametrize(
    "args, message",
    [
        (["--rate", 0, "--duration", 1], "--rate"),
        (["--rate", "abc", "--duration", 1], "'abc' is not a valid number"),
        (["--rate", 10, "--duration", 4000], "--duration"),
        (["--rate", 10000, "--duration", 3600], "at most 1,000,000 per run"),
        (["--rate", 0.5, "--duration", 1], "nothing to send"),
        (["--rate", 10, "--duration", 1, "--concurrency", 0], "--concurrency"),
        (["--rate", 10, "--duration", 1, "--signers", 17], "--signers"),
        (["--rate", 10, "--duration", 1, "--set", "no.pe=1"], "no.pe"),
        (["--rate", 10, "--duration", 1, "--hmac-secret", "x"], "does not apply to accredit"),
    ],
)
def test_bad_settings_are_refused_with_exit_2(args, message, keys_dir):
    with ScriptedServer() as server:
        result = invoke("BadgeExportZipFile.Created", "--url", server.url, *args, "--keys-dir", keys_dir)
        assert server.requests == []
    assert result.exit_code == 2, result.output
    assert message in result.output


@pytest.mark.parametrize("spec", catalogue.EVENTS, ids=lambda s: s.name)
def test_pooled_generation_gives_fresh_valid_payloads(spec):
    source = PayloadSource(spec.name)
    payloads = [source.payload() for _ in range(150)]
    for payload in payloads:
        assert catalogue.validate(spec, payload) == []
    if spec.name != "Entity.Event":  # the base notification is only Event + Timestamp: the X-JobId tells them apart
        assert len({catalogue.body_bytes(p) for p in payloads}) == 150


def test_pooled_generation_is_reproducible_with_a_seed():
    def bodies(seed):
        src = PayloadSource(
            "PROGRAM_ELIGIBILITY_EVALUATED", pools=load.FakerPools(seed), now=lambda: catalogue.SEEDED_EPOCH
        )
        return [src.worker(0, seed).body() for _ in range(3)]

    assert bodies(5) == bodies(5) != bodies(6)


def test_overrides_that_break_the_schema_are_refused_before_the_run():
    with ScriptedServer() as server:
        plan = LoadPlan("DELIVERY_CHANNEL_STATUS_UPDATED", server.url, 10, 1, overrides={"status": 42})
        with pytest.raises(LoadError, match="status"):
            LoadRun(plan, None)
        assert server.requests == []


def test_percentile_is_nearest_rank():
    values = sorted(float(v) for v in range(1, 101))
    assert percentile(values, 50) == 50 and percentile(values, 99) == 99 and percentile(values, 100) == 100
    assert percentile([], 50) is None and percentile([7.0], 99) == 7.0


def test_an_event_that_cannot_be_built_is_counted_not_lost(monkeypatch):
    """If generation fails mid-run (here: forced), the slot is a counted failure, and the run still ends."""
    calls = {"n": 0}
    real = PayloadSource.body

    def sometimes(self):
        calls["n"] += 1
        if calls["n"] % 4 == 0:
            raise ValueError("boom")
        return real(self)

    with ScriptedServer() as server:
        plan = LoadPlan("DELIVERY_REFUND_REQUESTED", server.url, 40, 0.5, concurrency=1)
        run = LoadRun(plan, None)
        monkeypatch.setattr(PayloadSource, "body", sometimes)
        result = run.run()
    summary = result.summary()
    assert summary["sent"] == 15 == len(server.requests) and summary["accepted"] == 15
    assert summary["failed_by_status"] == {"not sent: could not build the event": 5}
    assert summary["failure_samples"][0]["error"] == "ValueError: boom"


# -- signing processes --------------------------------------------------------------------------------
def test_signing_processes_send_fresh_events_the_receiver_verifies(start_receiver, keys_dir):
    """`--signers 2`: events built and RSA-signed in two other processes, each verified by the reference receiver
    (signature, schema, new X-JobId), sent at the requested pace, their timestamps those of their sending."""
    server = start_receiver("accredit")
    result = invoke(
        "BadgeExportZipFile.Created",
        "--url",
        server.url + "/baseWebhookNotification",
        "--rate",
        150,
        "--duration",
        1,
        "--signers",
        2,
        "--keys-dir",
        keys_dir,
    )
    got = list(server.received)
    assert result.exit_code == 0, result.output + "\n".join(r.outcome for r in got if r.outcome != "accepted")
    assert [r.outcome for r in got] == ["accepted"] * 150
    assert len({r.job_id for r in got}) == 150 and len({r.body for r in got}) == 150
    # paced over the second, not a burst; how closely the rate is held on this host is bench/'s to measure (a 2-core
    # CI host with both cores signing spread it over 1.21 s once)
    assert 0.8 <= got[-1].at - got[0].at <= 1.6, result.output
    for r in got:
        stamp = datetime.fromisoformat(json.loads(r.body)["Timestamp"].replace("Z", "+00:00")).timestamp()
        assert 0 <= r.at - stamp < 0.5, r.at - stamp  # built just before its slot, not at the start
    assert "sent 150, accepted 150, failed 0" in result.output
    assert "events signed in 2 signing processes" in result.output


def test_a_signing_process_that_dies_ends_the_run_with_the_rest_counted(keys):
    with ScriptedServer() as server:
        run = LoadRun(
            LoadPlan("BadgeExportZipFile.Created", server.url, 50, 4, concurrency=2, auth=Auth("rsa"), signers=1), keys
        )
        killer = threading.Timer(0.5, run.pool.procs[0].kill)
        killer.start()
        started = time.monotonic()
        result = run.run()
        took = time.monotonic() - started
    summary = result.summary()
    assert took < 2.5, took  # not the whole 4 s: the run stops once the process is gone
    assert 10 <= summary["sent"] <= 60 and summary["accepted"] == summary["sent"] == len(server.requests)
    reason = "not sent: the signing process stopped (exit code -9)"
    assert summary["failed_by_status"] == {reason: 200 - summary["sent"]}, summary
    assert run.pool.procs[0].poll() == -9


def test_a_signing_process_reports_events_it_cannot_build():
    """An RSA template without a key: the process answers every slot with the reason, the run counts them."""
    spec = catalogue.get_event("BadgeExportZipFile.Created")
    template = load.delivery.new_job(spec.name, spec.platform, "http://127.0.0.1:9/", b"", Auth("rsa"), delays=())
    pool = SignerPool(1, template, None, {"event": spec.name})
    try:
        pool.start(time.monotonic(), 100, 3)
        events = [pool.get(slot) for slot in range(3)]
    finally:
        pool.close()
    assert [e.error for e in events] == ["AuthError: RSA signing needs the key pair"] * 3
    assert len({e.job_id for e in events}) == 3 and all(e.body == b"" for e in events)
    assert pool.procs[0].poll() == 0  # closed: it read the end of the run and exited


def test_a_signing_process_that_cannot_start_refuses_the_run():
    spec = catalogue.get_event("DELIVERY_REFUND_REQUESTED")
    template = load.delivery.new_job(spec.name, spec.platform, "http://127.0.0.1:9/", b"", Auth(), delays=())
    with pytest.raises(LoadError, match="the signing process could not start: CatalogueError: .*NoSuchEvent"):
        SignerPool(1, template, None, {"event": "NoSuchEvent"})


def test_signing_processes_by_default_only_where_they_pay():
    assert default_signers(rsa=False, rate=5000, cpus=8) == 0  # HMAC and plain headers cost microseconds
    assert default_signers(rsa=True, rate=100, cpus=8) == 0  # a thread signs 100/s with a few % of a core
    assert default_signers(rsa=True, rate=5000, cpus=1) == 0  # one core: a process would only compete
    assert default_signers(rsa=True, rate=1000, cpus=2) == 1
    assert default_signers(rsa=True, rate=10000, cpus=4) == 3  # a core left for the posting threads
    assert default_signers(rsa=True, rate=3000, cpus=16) == 3  # one per 1,200/s


@pytest.mark.parametrize(
    "cpu_s, signers, p50_ms, expected",
    [
        (1.9, 0, 8.0, "the sender is at this machine's ceiling for this event (it kept 95% of a core busy"),
        (0.1, 0, 400.0, "answers take 400 ms, so 4 in flight carry about 10/s; raise --concurrency"),
        (0.3, 1, 1.0, "the 1 signing process could not build events faster"),
        (0.3, 0, 1.0, "though the sender kept only 15% of a core busy: other work on this machine"),
    ],
)
def test_the_summary_says_what_held_the_rate_back(cpu_s, signers, p50_ms, expected):
    """A busy sender is told to lower the rate (more in flight would queue for the same CPU), not to raise
    --concurrency; slow answers are; a starved signing process or machine is named as such."""
    from simulator.cli.load import summary_lines

    result = load.LoadResult(
        planned=2000,
        requested_rate=1000,
        sent=500,
        accepted=500,
        first_start=0.0,
        last_start=1.0,
        elapsed=2.0,
        cpu_s=cpu_s,
        signers=signers,
    )
    result.latencies_ms.extend([p50_ms] * 500)
    hints = [line for line in summary_lines(result, 4) if line.startswith("the requested rate was not held")]
    assert len(hints) == 1 and expected in hints[0], hints


def test_more_signing_processes_than_spare_cores_are_allowed_with_a_note(keys_dir):
    cores = os.cpu_count() or 1
    with ScriptedServer() as server:
        result = invoke(
            "BadgeExportZipFile.Created",
            "--url",
            server.url,
            "--rate",
            20,
            "--duration",
            0.25,
            "--signers",
            cores,
            "--keys-dir",
            keys_dir,
        )
    assert result.exit_code == 0, result.output
    plural = "es" if cores > 1 else ""
    assert f"note: {cores} signing process{plural} on {cores} core{plural[1:]}" in result.output
    assert "sent 5, accepted 5, failed 0" in result.output


def test_signing_processes_work_from_a_script_read_on_stdin(keys_dir):
    """The children do not re-run the parent's main script (multiprocessing's spawn does, and fails for `python -`)."""
    script = f"""
import sys
sys.path.insert(0, {str(Path(__file__).parent)!r})
from scripted_server import ScriptedServer
from simulator import signing
from simulator.auth import Auth
from simulator.load import LoadPlan, LoadRun
with ScriptedServer() as server:
    plan = LoadPlan("BadgeExportZipFile.Created", server.url, 40, 0.25, auth=Auth("rsa"), signers=1)
    result = LoadRun(plan, signing.load_keys({str(keys_dir)!r})).run()
    print(result.signers, result.sent, result.accepted, len(server.requests))
"""
    done = subprocess.run([sys.executable, "-"], input=script, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["1", "10", "10", "10"]
