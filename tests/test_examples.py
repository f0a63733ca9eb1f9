"""The documents' own example payloads: shipped as written, valid, accepted end to end, producible through --set."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import requests
from click.testing import CliRunner

from simulator import catalogue, delivery, rules
from simulator.auth import Auth
from simulator.cli import main

EXAMPLES = [(spec, ex) for spec in catalogue.EVENTS for ex in spec.examples]
AUTH = {
    "accessrc": Auth("hmac", secret="abcd1234"),
    "accredit": Auth("rsa"),
    "reachfive": Auth("authorization", authorization="Bearer mF_9.B5f-4.1JqM"),
}


def test_every_seed_example_is_shipped():
    sources = {ex.source.split("#")[0] for _, ex in EXAMPLES}
    assert {
        "seeds/000-accessrc-applications-import-result.txt",
        "seeds/001-accessrc-eligibility-evaluated.txt",
        "seeds/002-accessrc-delivery-channel-status-updated.txt",
        "seeds/003-accredit-webhook-notification-integration.txt",
        "seeds/004-reachfive-import-job-end-notification.txt",
    } <= sources
    named = {(spec.name, ex.name) for spec, ex in EXAMPLES}
    assert {
        ("DELIVERY_CHANNEL_STATUS_UPDATED", "seed-002-approved"),
        ("DELIVERY_CHANNEL_STATUS_UPDATED", "seed-002-rejected"),
    } <= named
    # as written: the seeds' own quirks are kept
    seed0 = catalogue.example("APPLICATIONS_IMPORT_RESULT", "seed-000")
    assert seed0["summary"]["failureCount"] == 5 and len(seed0["errors"]) == 2
    seed1 = catalogue.example("PROGRAM_ELIGIBILITY_EVALUATED", "seed-001")["applications"][0]
    assert seed1["finalEvaluation"]["evaluationKey"] == "FITS_CRITERIA"
    assert {c["evaluationKey"] for c in seed1["mandotaryCriteria"]} == {"FITS_CRITERIA", "NOT_VALIDATED"}
    assert catalogue.example("END_JOB_NOTIFICATION")["id"] == "AXVLj...y8Qkpxt"


@pytest.mark.parametrize("spec,ex", EXAMPLES, ids=lambda v: getattr(v, "name", ""))
def test_example_validates_and_can_be_produced_through_set(spec, ex):
    assert catalogue.validate(spec, ex.payload) == []
    for advice in catalogue.advise(spec, ex.payload):  # advice only ever names an inferred rule
        assert rules.get(advice.rule).source == "inferred"
    made = catalogue.generate(spec.name, seed=3, overrides={k: v for k, v in ex.payload.items()})
    assert made == ex.payload
    if ex.note:
        assert ex.source.startswith("seeds/")


@pytest.mark.parametrize("spec,ex", EXAMPLES, ids=lambda v: getattr(v, "name", ""))
def test_example_signed_is_accepted_by_the_reference_receiver(spec, ex, start_receiver, keys):
    auth = AUTH[spec.platform]
    server = start_receiver(spec.platform, auth)
    body = catalogue.body_bytes(ex.payload)
    job = delivery.new_job(spec.name, spec.platform, server.url + "/hook", body, auth)
    headers = delivery.request_headers(job, 0, keys if spec.platform == "accredit" else None)
    resp = requests.post(job.url, data=body, headers=headers, timeout=5)
    assert resp.status_code == 200, resp.text
    assert server.received[-1].event == spec.name
    if spec.reply_data:
        assert resp.json()["data"] == spec.reply_data(ex.payload)


def test_accredit_extra_fields_seven_digit_fractions_and_other_event_names_get_2xx(start_receiver, keys):
    server = start_receiver("accredit")
    bodies = [
        {"Event": "Contact.Updated", "Timestamp": "2024-05-10T11:09:21.248Z", "ContactId": "8b0f6f5e"},
        {
            "Event": "BadgeExportZipFile.Created",
            "Timestamp": "2024-05-10T11:09:21.2480000Z",
            "BadgeExportZipFileId": "5e0c2d7a-91b4-4f3e-8a6d-2b7c1f09e4d3",
            "PageCount": 12,
        },
    ]
    for payload in bodies:
        body = catalogue.body_bytes(payload)
        job = delivery.new_job("Entity.Event", "accredit", server.url + "/baseWebhookNotification", body, Auth("rsa"))
        resp = requests.post(job.url, data=body, headers=delivery.request_headers(job, 0, keys), timeout=5)
        assert resp.status_code == 200, resp.text
    assert server.received[-1].outcome == "accepted"
    assert {a.split("(inferred rule ")[1].rstrip(")") for a in server.received[-1].advice} == {
        "accredit.payload.timestamp-millis",
        "accredit.payload.no-extra-fields",
    }


def test_strict_receiver_refuses_what_only_inferred_rules_forbid(keys):
    from simulator.receiver import ReceiverConfig, ServerThread, create_receiver

    app = create_receiver(ReceiverConfig("accessrc", Auth("none"), strict=True))
    with ServerThread(app) as server:
        seed0 = catalogue.body_bytes(catalogue.example("APPLICATIONS_IMPORT_RESULT", "seed-000"))
        resp = requests.post(server.url + "/hook", data=seed0, headers={"Content-Type": "application/json"}, timeout=5)
        assert resp.status_code == 400 and resp.json()["error"]["type"] == "BadRequest"


@pytest.fixture
def cli(tmp_path, keys_dir):
    def invoke(*args):
        env = {"ACCESSRC_SIM_DB": str(tmp_path / "cli.db"), "ACCESSRC_SIM_KEYS_DIR": str(keys_dir)}
        return CliRunner().invoke(main, list(args), env=env)

    return invoke


def test_the_seed_000_and_001_shapes_come_out_of_sample_set_with_exit_0(cli):
    errors = json.dumps(catalogue.example("APPLICATIONS_IMPORT_RESULT", "seed-000")["errors"])
    out = cli(
        "sample",
        "APPLICATIONS_IMPORT_RESULT",
        "--seed",
        "1",
        "--set",
        "summary.totalRecords=120",
        "--set",
        "summary.failureCount=5",
        "--set",
        f"errors={errors}",
        "--compact",
    )
    assert out.exit_code == 0, out.output
    assert (
        "note: errors: 2 entries for failureCount 5" in out.output
        and "accessrc.import.one-error-per-failure" in out.output
    )
    apps = json.dumps(catalogue.example("PROGRAM_ELIGIBILITY_EVALUATED", "seed-001")["applications"])
    out = cli("sample", "PROGRAM_ELIGIBILITY_EVALUATED", "--set", f"applications={apps}")
    assert out.exit_code == 0, out.output
    strict = cli("sample", "PROGRAM_ELIGIBILITY_EVALUATED", "--set", f"applications={apps}", "--strict")
    assert strict.exit_code == 2 and "accessrc.eligibility.final-evaluation" in strict.output


def test_sample_example_prints_it_as_written_and_unknown_names_are_listed(cli):
    out = cli("sample", "DELIVERY_CHANNEL_STATUS_UPDATED", "--example", "seed-002-rejected", "--compact")
    assert out.exit_code == 0
    assert json.loads(out.stdout) == catalogue.example("DELIVERY_CHANNEL_STATUS_UPDATED", "seed-002-rejected")
    first = cli("sample", "END_JOB_NOTIFICATION", "--example", "--compact")
    assert json.loads(first.stdout) == catalogue.example("END_JOB_NOTIFICATION", "seed-004")
    bad = cli("sample", "DELIVERY_CHANNEL_STATUS_UPDATED", "--example", "nope")
    assert bad.exit_code == 2 and "seed-002-approved" in bad.output
    listed = json.loads(cli("events", "--json").output)
    assert {"seed-002-approved", "seed-002-rejected"} <= {
        e["name"] for e in next(e for e in listed if e["name"] == "DELIVERY_CHANNEL_STATUS_UPDATED")["examples"]
    }
    mended = cli("sample", "PROGRAM_ELIGIBILITY_EVALUATED", "--example", "seed-001", "--compact")
    assert "example seed-001 of PROGRAM_ELIGIBILITY_EVALUATED, as written in seeds/001-" in mended.stderr
    assert "[email protected]" in mended.stderr  # what was mended is said


def test_send_example_and_event_name_are_signed_and_accepted(cli, start_receiver):
    accessrc = start_receiver("accessrc", Auth("hmac", secret="abcd1234"))
    out = cli(
        "send",
        "APPLICATIONS_IMPORT_RESULT",
        "--example",
        "--url",
        accessrc.url + "/import",
        "--hmac-secret",
        "abcd1234",
    )
    assert out.exit_code == 0, out.output
    assert json.loads(accessrc.received[-1].body) == catalogue.example("APPLICATIONS_IMPORT_RESULT")
    accredit = start_receiver("accredit")
    out = cli(
        "send",
        "Entity.Event",
        "--event-name",
        "Contact.Updated",
        "--set",
        "ContactId=8b0f6f5e",
        "--url",
        accredit.url + "/baseWebhookNotification",
    )
    assert out.exit_code == 0, out.output
    sent = json.loads(accredit.received[-1].body)
    assert sent["Event"] == "Contact.Updated" and sent["ContactId"] == "8b0f6f5e"
    wrong = cli("send", "DELIVERY_REFUND_REQUESTED", "--event-name", "Contact.Updated", "--url", accredit.url)
    assert wrong.exit_code == 2 and "--event-name goes with Entity.Event" in wrong.output


@pytest.mark.parametrize("platform", ["accessrc", "accredit", "reachfive"])
def test_each_seed_example_signed_gets_2xx_from_the_receiver_command(platform, keys_dir, keys, tmp_path):
    """`accessrc-sim receiver --platform P` itself (a real process), fed every example of its platform."""
    import socket
    import subprocess
    import sys

    from sim_helpers import wait_until

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    auth = AUTH[platform]
    flags = {
        "accessrc": ["--hmac-secret", "abcd1234"],
        "accredit": [],
        "reachfive": ["--authorization", "Bearer mF_9.B5f-4.1JqM"],
    }[platform]
    log = open(tmp_path / "receiver.log", "w")
    command = str(Path(sys.executable).with_name("accessrc-sim"))  # the installed command, as a user runs it
    proc = subprocess.Popen(
        [command, "receiver", "--port", str(port), "--platform", platform, "--keys-dir", str(keys_dir), *flags],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:

        def up():
            with socket.socket() as c:
                return c.connect_ex(("127.0.0.1", port)) == 0

        wait_until(up, what="the receiver to listen")
        examples = [(spec, ex) for spec, ex in EXAMPLES if spec.platform == platform]
        assert examples
        for spec, ex in examples:
            body = catalogue.body_bytes(ex.payload)
            job = delivery.new_job(spec.name, platform, f"http://127.0.0.1:{port}/hook", body, auth)
            headers = delivery.request_headers(job, 0, keys if platform == "accredit" else None)
            resp = requests.post(job.url, data=body, headers=headers, timeout=5)
            assert resp.status_code == 200, (ex.name, resp.text)
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()
