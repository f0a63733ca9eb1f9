"""docs/receivers.md cannot drift: its Python, Node.js and Java receivers are cut out of the markdown, run as real
processes on 127.0.0.1, sent real deliveries by the simulator (valid, tampered, re-serialised, incomplete, replayed),
and judged by `accessrc-sim conformance` for each platform, which must say READY."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import requests
from click.testing import CliRunner

from simulator import catalogue, delivery, signing
from simulator.auth import Auth
from simulator.cli import main
from simulator.delivery import Deliverer

GUIDE = Path(__file__).resolve().parent.parent / "docs" / "receivers.md"
SECRET = "abcd1234"
API_KEY = "k-123"
BASIC = ("webhook-user", "s3cr3t")
BEARER = "Bearer mF_9.B5f-4.1JqM"


def snippets() -> dict[str, tuple[str, str]]:
    """file name → (language, code) for every fenced block whose first line names a file."""
    found = {}
    for lang, code in re.findall(r"^```(\w+)\n(.*?)^```", GUIDE.read_text("utf-8"), re.S | re.M):
        match = re.match(r"(?://|#) file: (\S+)", code)
        if match:
            found[match.group(1)] = (lang, code)
    return found


def test_the_guide_has_a_receiver_per_language():
    assert {name: lang for name, (lang, _) in snippets().items()} == {
        "receiver.py": "python",
        "receiver.js": "javascript",
        "Receiver.java": "java",
    }  # C#: verification functions only (no .NET SDK here to run a receiver), never a receiver nobody runs
    text = GUIDE.read_text("utf-8")
    for must in (
        "keys show",
        "PKCS#1 v1.5",
        "sha256=",
        "X-JobId",
        "constant time",
        "re-serialised",
        "accredit-like",
        "/accessrc/DELIVERY_CHANNEL_STATUS_UPDATED",
        "What an AccessRC success must echo in `data`",
        "--url-for DELIVERY_REFUND_REQUESTED=",
    ):
        assert must in text
    for event in catalogue.events("accessrc"):  # the echo table names every AccessRC event type
        assert f"| `{event.name}` |" in text


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def command(name: str, path: Path) -> list[str]:
    if name.endswith(".py"):
        return [sys.executable, str(path)]
    if name.endswith(".js"):
        node = shutil.which("node")
        if node is None:
            pytest.fail("Node.js is needed to run the guide's receiver.js (it is on our CI machines)")
        return [node, str(path)]
    java = shutil.which("java")
    if java is None:
        pytest.skip("no JDK on this machine")
    return [java, str(path)]


class GuideReceiver:
    """A snippet from the guide, running as its own process; its output goes to a file (never an unread pipe)."""

    def __init__(self, name: str, workdir: Path, env: dict[str, str]):
        self.name = name
        _, code = snippets()[name]
        path = workdir / name
        path.write_text(code, "utf-8")
        self.port = free_port()
        self.log_path = workdir / f"{name}.log"
        self.url = f"http://127.0.0.1:{self.port}"
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                command(name, path),
                cwd=workdir,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, **env, "PORT": str(self.port)},
            )
        deadline = time.monotonic() + 30
        while "listening on" not in self.log():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                pytest.fail(f"{name} did not start:\n{self.log()}")
            time.sleep(0.05)

    def log(self) -> str:
        return self.log_path.read_text("utf-8", "replace")

    def lines(self) -> list[str]:
        return [line for line in self.log().splitlines() if not line.startswith("listening on")]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


LANGUAGES = ["receiver.py", "receiver.js", "Receiver.java"]
ACCESSRC_ENV = {
    "hmac": {"ACCESSRC_AUTH": "hmac", "ACCESSRC_HMAC_SECRET": SECRET},
    "header": {"ACCESSRC_AUTH": "header", "ACCESSRC_API_KEY_HEADER": "X-API-Key", "ACCESSRC_API_KEY": API_KEY},
    "basic": {"ACCESSRC_AUTH": "basic", "ACCESSRC_BASIC_USER": BASIC[0], "ACCESSRC_BASIC_PASSWORD": BASIC[1]},
}
ACCESSRC_AUTH = {
    "hmac": Auth("hmac", secret=SECRET),
    "header": Auth("header", header_name="X-API-Key", header_value=API_KEY),
    "basic": Auth("basic", username=BASIC[0], password=BASIC[1]),
}
ACCESSRC_WRONG = {
    "hmac": Auth("hmac", secret=SECRET + "x"),
    "header": Auth("header", header_name="X-API-Key", header_value=API_KEY[:-1] + "4"),
    "basic": Auth("basic", username=BASIC[0], password=BASIC[1] + "!"),
}


@pytest.fixture(scope="module")
def public_key_file(tmp_path_factory, keys_dir):
    """The public key exactly as the guide says to get it: `accessrc-sim keys show > accredit_public.pem`."""
    result = CliRunner().invoke(main, ["keys", "show", "--keys-dir", str(keys_dir)])
    assert result.exit_code == 0
    path = tmp_path_factory.mktemp("pem") / "accredit_public.pem"
    path.write_text(result.stdout)  # what `>` keeps; where the keys are goes to stderr
    return path


@pytest.fixture(scope="module", params=LANGUAGES)
def receiver(request, tmp_path_factory, public_key_file):
    """One guide receiver per language: Accredit key, AccessRC hmac, ReachFive bearer."""
    rx = GuideReceiver(
        request.param,
        tmp_path_factory.mktemp(request.param.replace(".", "_")),
        {"ACCREDIT_PUBLIC_KEY_FILE": str(public_key_file), **ACCESSRC_ENV["hmac"], "REACHFIVE_AUTHORIZATION": BEARER},
    )
    yield rx
    rx.stop()


def accessrc_url(rx: GuideReceiver, event: str) -> str:
    """The URL of the AccessRC subscription for `event`: one path per event type, as the guide serves them."""
    return f"{rx.url}/accessrc/{event}"


def body_key(body: bytes) -> str:
    """The key the guide's receivers log for AccessRC and ReachFive deliveries: the SHA-256 of the raw body."""
    return "sha256:" + hashlib.sha256(body).hexdigest()


def deliver(store, keys, event, url, auth, profile=None, **gen) -> tuple:
    """A real delivery by the simulator's sender: the job and its (only) attempt."""
    body = catalogue.body_bytes(catalogue.generate(event, **gen))
    spec = catalogue.get_event(event)
    job = delivery.new_job(spec.name, spec.platform, url, body, auth, delays=(), timeout=5, profile=profile)
    Deliverer(store, keys).submit(job)
    return job, store.attempts(job.id)[-1]


def resend(job, keys, number: int, body: bytes | None = None, drop: str | None = None, **extra) -> requests.Response:
    """Send `job` again as attempt `number`, optionally with another body or without a header."""
    headers = delivery.request_headers(job, number, keys)
    if drop:
        headers = {k: v for k, v in headers.items() if k.lower() != drop.lower()}
    headers.update(extra)
    return requests.post(job.url, data=job.body if body is None else body, headers=headers, timeout=5)


def post_signed(url: str, payload, keys=None, raw: bytes | None = None, **extra) -> requests.Response:
    """POST a body signed as its platform signs, chosen by the path: RSA for /accredit (with a fresh X-JobId),
    the HMAC for /accessrc/…, the bearer for /reachfive."""
    body = raw if raw is not None else catalogue.body_bytes(payload)
    headers = {"Content-Type": "application/json"}
    if "/accredit" in url:
        headers.update(
            {"X-Signature": signing.rsa_sign(keys.private_key, body), "X-JobId": str(uuid.uuid4()), "X-JobAttempt": "0"}
        )
    elif "/accessrc/" in url:
        headers["x-signature"] = signing.hmac_signature(SECRET, body)
    else:
        headers["Authorization"] = BEARER
    headers.update(extra)
    return requests.post(url, data=body, headers=headers, timeout=5)


def reserialised(body: bytes) -> bytes:
    """What a framework's parse-then-dump gives back: same data, different bytes."""
    return json.dumps(json.loads(body), indent=2, ensure_ascii=True).encode()


BAD_REQUEST = {
    "status": "failed",
    "error": {"code": 400, "message": "Validation failed. Please check your input.", "type": "BadRequest"},
}


# -- Accredit -------------------------------------------------------------------------------------------
def test_accredit_signed_delivery_is_accepted_once(receiver, store, keys):
    job, first = deliver(store, keys, "BadgeExportZipFile.Created", receiver.url + "/accredit", Auth("rsa"))
    assert first.status == 200 and job.state == "succeeded", receiver.log()
    assert json.loads(first.response_body)["message"] == "Callback successfully received"
    assert f"accepted {job.id} attempt=0" in receiver.lines()
    again = resend(job, keys, 1)  # a retry of a job already processed (its 200 was lost, say)
    assert again.status_code == 200
    assert f"duplicate {job.id} attempt=1" in receiver.lines()
    assert sum(job.id in line for line in receiver.lines()) == 2


def test_accredit_verifies_the_raw_bytes_not_reserialised_json(receiver, store, keys):
    job, first = deliver(store, keys, "Entity.Event", receiver.url + "/accredit", Auth("rsa"))
    assert first.status == 200
    same_data = reserialised(job.body)
    assert json.loads(same_data) == json.loads(job.body) and same_data != job.body
    answer = resend(job, keys, 1, body=same_data)
    assert answer.status_code == 401
    assert answer.json()["error"] == {"code": 401, "message": "Verification failed", "type": "Unauthorized"}


@pytest.mark.parametrize("break_it", ["one byte", "no signature", "pss padding", "not base64", "other key"])
def test_accredit_refuses_what_the_key_did_not_sign(receiver, keys, break_it, tmp_path):
    body = catalogue.body_bytes(catalogue.generate("BadgeExportZipFile.Created", seed=3))
    job = delivery.new_job(
        "BadgeExportZipFile.Created", "accredit", receiver.url + "/accredit", body, Auth("rsa"), delays=()
    )
    if break_it == "one byte":
        answer = resend(job, keys, 0, body=body.replace(b"Created", b"Createe"))
    elif break_it == "no signature":
        answer = resend(job, keys, 0, drop="X-Signature")
    elif break_it == "pss padding":
        answer = resend(job, keys, 0, **{"X-Signature": signing.rsa_sign(keys.private_key, body, "pss")})
    elif break_it == "not base64":
        answer = resend(job, keys, 0, **{"X-Signature": "%%%not-base64%%%"})
    else:
        other = signing.generate_keys(tmp_path / "other")
        answer = resend(job, keys, 0, **{"X-Signature": signing.rsa_sign(other.private_key, body)})
    assert answer.status_code == 401
    assert "rejected accredit: verification failed" in receiver.lines()
    assert not any(job.id in line for line in receiver.lines())


ACCREDIT_BADGE = {
    "Event": "BadgeExportZipFile.Created",
    "Timestamp": "2025-03-18T14:02:45.913Z",
    "BadgeExportZipFileId": "5e0c2d7a-91b4-4f3e-8a6d-2b7c1f09e4d3",
}


@pytest.mark.parametrize(
    "payload",
    [
        ACCREDIT_BADGE,
        {**ACCREDIT_BADGE, "PrintBatch": 7},  # seed 003: "additional fields depend on the subscribed event"
        {**ACCREDIT_BADGE, "Timestamp": "2024-05-10T11:09:21.2480000Z"},  # a .NET-style 7-digit fraction
        {**ACCREDIT_BADGE, "Timestamp": "2024-05-10T11:09:21Z"},
        {"Event": "Entity.Event", "Timestamp": "2024-05-10T11:09:21.248Z"},  # seed 003's own example
        {
            "Event": "Contact.Updated",
            "Timestamp": "2024-05-10T11:09:21.248Z",
            "ContactId": "0f5c3a9e-2b1d-4e7f-8a6c-9d0e1f2a3b4c",
        },  # any Entity.Action name, with its own fields
    ],
    ids=["documented", "extra field", "7-digit fraction", "no fraction", "seed example", "another event"],
)
def test_accredit_accepts_what_the_documents_allow(receiver, keys, payload):
    answer = post_signed(receiver.url + "/accredit", payload, keys)
    assert answer.status_code == 200, receiver.log()


@pytest.mark.parametrize(
    "payload, reason",
    [
        ({k: v for k, v in ACCREDIT_BADGE.items() if k != "BadgeExportZipFileId"}, "missing BadgeExportZipFileId"),
        ({**ACCREDIT_BADGE, "BadgeExportZipFileId": None}, "missing BadgeExportZipFileId"),
        ({k: v for k, v in ACCREDIT_BADGE.items() if k != "Event"}, "Event must be a string"),
        ({**ACCREDIT_BADGE, "Timestamp": 1715339361}, "Timestamp must be a string"),
        ([ACCREDIT_BADGE], "body is not a JSON object"),
    ],
    ids=["no BadgeExportZipFileId", "null BadgeExportZipFileId", "no Event", "numeric Timestamp", "an array"],
)
def test_accredit_refuses_what_the_documents_rule_out(receiver, keys, payload, reason):
    answer = post_signed(receiver.url + "/accredit", payload, keys)
    assert answer.status_code == 400 and answer.json() == BAD_REQUEST
    assert f"rejected accredit: {reason}" in receiver.lines()


# -- AccessRC ---------------------------------------------------------------------------------------------
def test_accessrc_hmac_delivery_and_a_wrong_secret(receiver, store, keys):
    url = accessrc_url(receiver, "DELIVERY_CHANNEL_STATUS_UPDATED")
    job, first = deliver(
        store,
        keys,
        "DELIVERY_CHANNEL_STATUS_UPDATED",
        url,
        ACCESSRC_AUTH["hmac"],
        overrides={"message": "Café — naïve ✓"},
        force=True,
    )
    assert b"\\u" not in job.body and "Café".encode() in job.body  # raw UTF-8 on the wire
    assert first.status == 200, receiver.log()
    assert f"accepted {body_key(job.body)} attempt=-" in receiver.lines()
    wrong_job, wrong = deliver(
        store,
        keys,
        "DELIVERY_REFUND_REQUESTED",
        accessrc_url(receiver, "DELIVERY_REFUND_REQUESTED"),
        ACCESSRC_WRONG["hmac"],
    )
    assert wrong.status == 401
    assert resend(job, keys, 1, body=reserialised(job.body)).status_code == 401  # é became \u00e9


def test_accessrc_hmac_matches_the_fact_sheet_vector(receiver):
    body = b'{"deliveryId":"3f2b8c1e-7a41-4d2e-9c55-0b6e1d7a9f10"}'
    signature = "sha256=e08c47f29a5b3f990629281b650e6f0d88de97c5a63006f5f6504451ee0b43bf"
    assert signing.hmac_signature(SECRET, body) == signature
    url = accessrc_url(receiver, "DELIVERY_REFUND_REQUESTED")
    answer = requests.post(
        url, data=body, timeout=5, headers={"Content-Type": "application/json", "x-signature": signature}
    )
    assert answer.status_code == 200
    assert answer.json()["data"] == {"deliveryId": "3f2b8c1e-7a41-4d2e-9c55-0b6e1d7a9f10"}
    upper = requests.post(
        url, data=body, timeout=5, headers={"Content-Type": "application/json", "x-signature": signature.upper()}
    )
    assert upper.status_code == 401


@pytest.mark.parametrize(
    "body",
    [b'{"deliveryId": ', b'["3f2b8c1e-7a41-4d2e-9c55-0b6e1d7a9f10"]', b'"text"'],
    ids=["cut short", "an array", "a string"],
)
def test_a_verified_body_that_is_not_a_json_object_is_a_400(receiver, body):
    answer = post_signed(accessrc_url(receiver, "DELIVERY_REFUND_REQUESTED"), None, raw=body)
    assert answer.status_code == 400 and answer.json() == BAD_REQUEST


ACCESSRC_EXAMPLES = [(spec.name, example.name) for spec in catalogue.events("accessrc") for example in spec.examples]


@pytest.mark.parametrize("event, example", ACCESSRC_EXAMPLES, ids=[f"{e}-{x}" for e, x in ACCESSRC_EXAMPLES])
def test_accessrc_answers_each_documented_example_with_its_documented_data(receiver, event, example):
    """Each document's example body at its event's URL: 200, `data` as the documents say, the same answer again
    for an exact resend (not processed twice)."""
    spec = catalogue.get_event(event)
    payload = catalogue.example(event, example)
    body = catalogue.body_bytes(payload)
    answer = post_signed(accessrc_url(receiver, event), payload)
    assert answer.status_code == 200, receiver.log()
    envelope = answer.json()
    assert envelope["status"] == "success" and envelope["message"] == "Callback successfully received"
    wanted = spec.reply_data(payload)
    if event == "PROGRAM_PULL_FORM":  # "the form JSON": its schema is not documented, only where it goes
        assert set(envelope["data"]) == {"response"} and isinstance(envelope["data"]["response"], dict)
    else:
        assert envelope["data"] == wanted
    again = post_signed(accessrc_url(receiver, event), payload)
    assert again.status_code == 200 and again.json() == envelope
    assert f"duplicate {body_key(body)} attempt=-" in receiver.lines()


# the top-level fields of each event's documented payload (the guide's receivers refuse a body without one)
ACCESSRC_REQUIRED = [(spec.name, name) for spec in catalogue.events("accessrc") for name in spec.schema["properties"]]


@pytest.mark.parametrize("event, field", ACCESSRC_REQUIRED, ids=[f"{e}-{f}" for e, f in ACCESSRC_REQUIRED])
def test_accessrc_refuses_a_body_without_a_required_field(receiver, event, field):
    payload = catalogue.generate(event, seed=11)
    del payload[field]
    answer = post_signed(accessrc_url(receiver, event), payload)
    assert answer.status_code == 400 and answer.json() == BAD_REQUEST
    assert f"rejected accessrc/{event}: missing {field}" in receiver.lines()


def test_accessrc_accepts_what_the_documents_do_not_rule_out(receiver):
    payload = catalogue.example("DELIVERY_CHANNEL_STATUS_UPDATED")
    for variant in (
        {**payload, "status": "Pending"},
        {**payload, "requestType": "Delivery Channel Delete"},
        {**payload, "comment": "an extra field"},
    ):
        answer = post_signed(accessrc_url(receiver, "DELIVERY_CHANNEL_STATUS_UPDATED"), variant)
        assert answer.status_code == 200, receiver.log()
        assert answer.json()["data"] == {"providerDeliveryChannelId": payload["providerDeliveryChannelId"]}


def test_accessrc_knows_the_event_from_the_url_alone(receiver):
    """One subscription per event type: the path names the event; a body of another event at that URL is
    incomplete for it, and a path that is no event type is not found."""
    refund = catalogue.example("DELIVERY_REFUND_REQUESTED")
    wrong_url = post_signed(accessrc_url(receiver, "DELIVERY_CHANNEL_STATUS_UPDATED"), refund)
    assert wrong_url.status_code == 400
    for path in ("/accessrc", "/accessrc/", "/accessrc/NULL", "/accessrc/BENEFICIARY_SYNC", "/hook"):
        assert post_signed(receiver.url + path, refund).status_code == 404


def test_accessrc_ignores_job_headers(receiver, store, keys):
    """AccessRC documents no X-JobId: a delivery under the simulator's accredit-like profile is keyed by its body,
    so the same body with another X-JobId is a duplicate and another body with the same X-JobId is not."""
    url = accessrc_url(receiver, "DELIVERY_REFUND_REQUESTED")
    plain, first = deliver(store, keys, "DELIVERY_REFUND_REQUESTED", url, ACCESSRC_AUTH["hmac"])
    assert "X-JobId" not in first.request_headers  # AccessRC's documented delivery: no job headers
    assert f"accepted {body_key(plain.body)} attempt=-" in receiver.lines()
    job, like = deliver(store, keys, "DELIVERY_REFUND_REQUESTED", url, ACCESSRC_AUTH["hmac"], profile="accredit-like")
    assert like.status == 200 and "X-JobId" in like.request_headers
    assert f"accepted {body_key(job.body)} attempt=-" in receiver.lines()
    assert not any(job.id in line for line in receiver.lines())
    assert resend(job, keys, 1, **{"X-JobId": str(uuid.uuid4())}).status_code == 200
    assert f"duplicate {body_key(job.body)} attempt=-" in receiver.lines()
    other = catalogue.body_bytes(catalogue.generate("DELIVERY_REFUND_REQUESTED", seed=5))
    assert resend(job, keys, 2, body=other, **{"x-signature": signing.hmac_signature(SECRET, other)}).status_code == 200
    assert f"accepted {body_key(other)} attempt=-" in receiver.lines()


@pytest.mark.parametrize("kind", ["header", "basic"])
@pytest.mark.parametrize("name", LANGUAGES)
def test_accessrc_api_key_and_basic(name, kind, tmp_path, store, keys):
    rx = GuideReceiver(name, tmp_path, ACCESSRC_ENV[kind])
    try:
        url = accessrc_url(rx, "DELIVERY_REFUND_REQUESTED")
        job, ok = deliver(store, keys, "DELIVERY_REFUND_REQUESTED", url, ACCESSRC_AUTH[kind])
        assert ok.status == 200, rx.log()
        assert f"accepted {body_key(job.body)} attempt=-" in rx.lines()
        _, wrong = deliver(store, keys, "DELIVERY_REFUND_REQUESTED", url, ACCESSRC_WRONG[kind])
        assert wrong.status == 401
        header = "X-API-Key" if kind == "header" else "Authorization"
        assert resend(job, keys, 1, drop=header).status_code == 401
        if kind == "basic":
            value = "Basic " + base64.b64encode(f"{BASIC[0]}:{BASIC[1]}".encode()).decode()
            assert delivery.request_headers(job, 0, keys)["Authorization"] == value
    finally:
        rx.stop()


# -- ReachFive --------------------------------------------------------------------------------------------
def test_reachfive_authorization_and_resend(receiver, store, keys):
    job, first = deliver(
        store, keys, "END_JOB_NOTIFICATION", receiver.url + "/reachfive", Auth("authorization", authorization=BEARER)
    )
    assert first.status == 200, receiver.log()
    assert "X-JobId" not in first.request_headers  # ReachFive sends no job headers
    key = body_key(job.body)
    assert f"accepted {key} attempt=-" in receiver.lines()
    assert resend(job, keys, 0).status_code == 200  # the exact same notification again
    assert f"duplicate {key} attempt=-" in receiver.lines()
    _, wrong = deliver(
        store,
        keys,
        "END_JOB_NOTIFICATION",
        receiver.url + "/reachfive",
        Auth("authorization", authorization="Bearer wrong"),
    )
    assert wrong.status == 401
    assert resend(job, keys, 0, drop="Authorization").status_code == 401


REACHFIVE_REQUIRED = list(catalogue.get_event("END_JOB_NOTIFICATION").schema["properties"])


@pytest.mark.parametrize("field", REACHFIVE_REQUIRED)
def test_reachfive_refuses_a_report_without_a_documented_field(receiver, field):
    payload = catalogue.example("END_JOB_NOTIFICATION")
    del payload[field]
    answer = post_signed(receiver.url + "/reachfive", payload)
    assert answer.status_code == 400
    assert f"rejected reachfive: missing {field}" in receiver.lines()


def test_reachfive_accepts_what_the_documents_do_not_rule_out(receiver):
    payload = catalogue.example("END_JOB_NOTIFICATION")
    for variant in (
        payload,
        {**payload, "status": "PARTIAL"},
        {**payload, "id": 4242},
        {**payload, "definition": {"id": payload["definition_id"]}},
    ):
        assert post_signed(receiver.url + "/reachfive", variant).status_code == 200, receiver.log()


# -- the verdict ------------------------------------------------------------------------------------------
CONFORMANCE = {
    "accredit": lambda base: ["--url", base + "/accredit"],
    "reachfive": lambda base: ["--url", base + "/reachfive", "--authorization", BEARER],
    "accessrc": lambda base: [
        "--hmac-secret",
        SECRET,
        "--url-for",
        f"DELIVERY_CHANNEL_STATUS_UPDATED={base}/accessrc/DELIVERY_CHANNEL_STATUS_UPDATED",
        "--url-for",
        f"DELIVERY_REFUND_REQUESTED={base}/accessrc/DELIVERY_REFUND_REQUESTED",
    ],
}


@pytest.mark.parametrize("platform", list(CONFORMANCE))
def test_conformance_judges_the_guide_receiver_ready(receiver, platform, keys_dir, tmp_path):
    """The guide's own code, judged by `accessrc-sim conformance` as a user would run it: READY for each platform."""
    report = tmp_path / "report.json"
    result = CliRunner().invoke(
        main,
        [
            "conformance",
            "--platform",
            platform,
            *CONFORMANCE[platform](receiver.url),
            "--db",
            str(tmp_path / "sim.db"),
            "--keys-dir",
            str(keys_dir),
            "--report",
            str(report),
        ],
    )
    assert result.exit_code == 0 and "Verdict: READY" in result.output, result.output + receiver.log()
    assert json.loads(report.read_text())["ready"] is True


def test_load_mode_against_a_guide_receiver(receiver, keys_dir):
    """Many fresh signed events at once: every one verified, none mistaken for a duplicate."""
    result = CliRunner().invoke(
        main,
        [
            "load",
            "BadgeExportZipFile.Created",
            "--url",
            receiver.url + "/accredit",
            "--rate",
            100,
            "--duration",
            1,
            "--keys-dir",
            str(keys_dir),
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output + receiver.log()
    summary = json.loads(result.output)
    assert summary["accepted"] == 100
    assert sum(line.startswith("accepted ") for line in receiver.lines()) >= 100
