"""One delivery path: what a scenario step keeps, what the store records and what the receiver got are the same
request, byte for byte, for RSA-PSS (a new signature at every signing) and for every fault."""

from __future__ import annotations

import pytest
from scripted_server import ScriptedServer

from simulator.auth import MASK
from simulator.scenarios import faults
from simulator.scenarios.loader import load_text
from simulator.scenarios.runner import Runner

EVERY_FAULT = faults.NAMES + ("duplicate", "replay", "out_of_order")


def _scenario(platform: str, event: str, auth: str, url: str, kinds) -> str:
    steps = [f"  - send: {event}\n    as: genuine\n    retry: none"]
    for kind in kinds:
        if kind == "duplicate":
            steps.append(f"  - fault: {kind}\n    of: genuine")
        elif kind == "replay":
            steps.append(f"  - fault: {kind}\n    of: genuine\n    after: 0")
        elif kind == "oversized_body":
            steps.append(f"  - fault: {kind}\n    event: {event}\n    size: 4096")
        else:
            steps.append(f"  - fault: {kind}\n    event: {event}")
    return f"name: record is sent\nplatform: {platform}\nurl: {url}\nauth: {auth}\nsteps:\n" + "\n".join(steps)


def _same_request(recorded_headers: dict, recorded_body: bytes, got: dict, credential: set[str]) -> None:
    """The store's copy equals what arrived: every header sent is recorded, equal, or masked when it is the one
    carrying the credential (a real one, or the fake a fault forged)."""
    assert recorded_body == got["body"]
    arrived = {k.lower(): v for k, v in got["headers"].items()}
    for name, value in recorded_headers.items():
        sent = arrived.get(name.lower())
        assert sent is not None, f"{name} recorded but not received"
        assert value == sent or (value == MASK and name.lower() in credential), (name, value, sent)
    wire_only = {"host", "content-length", "accept-encoding", "accept", "connection"}
    assert {k for k in arrived if k not in wire_only} == {k.lower() for k in recorded_headers}


@pytest.mark.parametrize(
    "platform,event,auth",
    [
        ("accredit", "BadgeExportZipFile.Created", "{kind: rsa, rsa_padding: pss}"),
        ("accredit", "BadgeExportZipFile.Created", "{kind: rsa}"),
        ("accessrc", "DELIVERY_REFUND_REQUESTED", "{kind: hmac, secret: abcd1234}"),
        ("accessrc", "DELIVERY_REFUND_REQUESTED", "{kind: basic, username: u, password: p4ss}"),
        ("accessrc", "DELIVERY_REFUND_REQUESTED", "{kind: header, header_name: X-Key, header_value: k-123}"),
        ("reachfive", "END_JOB_NOTIFICATION", "{kind: authorization, authorization: Bearer t0ken}"),
    ],
)
def test_recorded_equals_sent_for_every_fault(platform, event, auth, store, keys):
    kinds = [k for k in EVERY_FAULT if k != "tampered_body" or "rsa" in auth or "hmac" in auth]
    with ScriptedServer() as server:
        scenario = load_text(_scenario(platform, event, auth, server.url + "/hook", kinds), "record.yaml")
        result = Runner(store, keys).run([scenario])[0]
        got = list(server.requests)
    exchanges = [ex for step in result.steps for ex in step.exchanges]
    assert len(exchanges) == len(got) == 1 + len(kinds) + 1  # out_of_order sends two; duplicate/replay resend `of`
    credential = {(scenario.auth.credential_header or "").lower(), "authorization"}
    for ex, arrived in zip(exchanges, got, strict=True):
        # the step's own copy (its references and expectations use it) is the request that arrived
        assert ex.body == arrived["body"]
        assert {k.lower(): v for k, v in ex.headers.items()} == {
            k.lower(): v
            for k, v in arrived["headers"].items()
            if k.lower() not in ("host", "content-length", "accept-encoding", "accept", "connection")
        }
        # and so is the store's record of it, credentials masked
        [attempt] = store.attempts(ex.job.id)
        _same_request(attempt.request_headers, attempt.request_body, arrived, credential)
    if "pss" in auth:  # PSS signs anew every time: the kept copy could only match by being the one sent
        genuine = exchanges[0]
        assert genuine.headers["X-Signature"] == got[0]["headers"]["X-Signature"]
        assert store.attempts(genuine.job.id)[0].request_headers["X-Signature"] == genuine.headers["X-Signature"]


def test_a_retried_send_keeps_the_last_request_sent(store, keys):
    """With retries, the step's copy is the last attempt's request (its X-JobAttempt, its PSS signature)."""
    script = [(500, b'{"status":"failed"}', 0.0, {})] * 2
    with ScriptedServer(script) as server:
        text = (
            f"name: retried\nplatform: accredit\nurl: {server.url}/hook\nauth: {{kind: rsa, rsa_padding: pss}}\n"
            "steps:\n  - send: BadgeExportZipFile.Created\n    retry: {delays: [0, 0]}\n"
        )
        result = Runner(store, keys).run([load_text(text, "retried.yaml")])[0]
        got = list(server.requests)
    [ex] = result.steps[0].exchanges
    assert len(got) == 3 and ex.number == 2 and ex.status == 200
    assert ex.headers["X-Signature"] == got[-1]["headers"]["X-Signature"]
    assert ex.headers["X-JobAttempt"] == got[-1]["headers"]["X-JobAttempt"] == "2"
    recorded = store.attempts(ex.job.id)
    assert [a.request_headers["X-Signature"] for a in recorded] == [g["headers"]["X-Signature"] for g in got]


def test_a_redirect_answer_says_it_was_not_followed(store, keys):
    """Scenario steps and the queue share one attempt: a 3xx is noted the same way in both."""
    with ScriptedServer([(302, b"", 0.0, {"Location": "http://127.0.0.1:9/elsewhere"})]) as server:
        text = (
            f"name: redirect\nplatform: accessrc\nurl: {server.url}/hook\n"
            "steps:\n  - fault: malformed_json\n    event: DELIVERY_REFUND_REQUESTED\n"
        )
        result = Runner(store, keys).run([load_text(text, "redirect.yaml")])[0]
    [ex] = result.steps[0].exchanges
    assert ex.error == "HTTP 302 (redirect not followed)"
    assert store.attempts(ex.job.id)[0].error == "HTTP 302 (redirect not followed)"


def test_a_header_from_a_whole_reference_is_sent_as_text(store, keys):
    """`${step.response.status}` alone keeps its number type; in a header it is sent as the text `200`."""
    with ScriptedServer() as server:
        text = (
            f"name: echo status\nplatform: accessrc\nurl: {server.url}/hook\nsteps:\n"
            "  - send: DELIVERY_REFUND_REQUESTED\n    as: first\n"
            "  - send: DELIVERY_REFUND_REQUESTED\n    headers: {X-Previous-Status: '${first.response.status}'}\n"
        )
        result = Runner(store, keys).run([load_text(text, "echo.yaml")])[0]
        got = list(server.requests)
    assert [step.failures for step in result.steps] == [[], []]
    assert got[1]["headers"]["X-Previous-Status"] == "200"
