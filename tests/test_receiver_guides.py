"""docs/receivers.md cannot drift: its Python, Node.js and Java receivers are cut out of the markdown, run as real
processes on 127.0.0.1, and sent real deliveries by the simulator (valid, tampered, re-serialised, replayed)."""
from __future__ import annotations

import base64
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
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
        "receiver.py": "python", "receiver.js": "javascript", "Receiver.java": "java", "Program.cs": "csharp"}
    text = GUIDE.read_text("utf-8")
    for must in ("keys show", "PKCS#1 v1.5", "sha256=", "X-JobId", "constant time", "re-serialised"):
        assert must in text


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
            self.proc = subprocess.Popen(command(name, path), cwd=workdir, stdout=log, stderr=subprocess.STDOUT,
                                         env={**os.environ, **env, "PORT": str(self.port)})
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
    path.write_text(result.output)
    return path


@pytest.fixture(scope="module", params=LANGUAGES)
def receiver(request, tmp_path_factory, public_key_file):
    """One guide receiver per language: Accredit key, AccessRC hmac, ReachFive bearer."""
    rx = GuideReceiver(request.param, tmp_path_factory.mktemp(request.param.replace(".", "_")),
                       {"ACCREDIT_PUBLIC_KEY_FILE": str(public_key_file), **ACCESSRC_ENV["hmac"],
                        "REACHFIVE_AUTHORIZATION": BEARER})
    yield rx
    rx.stop()


def deliver(store, keys, event, url, auth, **gen) -> tuple:
    """A real delivery by the simulator's sender: the job and its (only) attempt."""
    body = catalogue.body_bytes(catalogue.generate(event, **gen))
    spec = catalogue.get_event(event)
    job = delivery.new_job(spec.name, spec.platform, url, body, auth, delays=(), timeout=5)
    Deliverer(store, keys).submit(job)
    return job, store.attempts(job.id)[-1]


def resend(job, keys, number: int, body: bytes | None = None, drop: str | None = None, **extra) -> requests.Response:
    """Send `job` again as attempt `number`, optionally with another body or without a header."""
    headers = delivery.request_headers(job, number, keys)
    if drop:
        headers = {k: v for k, v in headers.items() if k.lower() != drop.lower()}
    headers.update(extra)
    return requests.post(job.url, data=job.body if body is None else body, headers=headers, timeout=5)


def reserialised(body: bytes) -> bytes:
    """What a framework's parse-then-dump gives back: same data, different bytes."""
    return json.dumps(json.loads(body), indent=2, ensure_ascii=True).encode()


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
    job = delivery.new_job("BadgeExportZipFile.Created", "accredit", receiver.url + "/accredit", body, Auth("rsa"),
                           delays=())
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


# -- AccessRC ---------------------------------------------------------------------------------------------
def test_accessrc_hmac_delivery_and_a_wrong_secret(receiver, store, keys):
    job, first = deliver(store, keys, "DELIVERY_CHANNEL_STATUS_UPDATED", receiver.url + "/accessrc",
                         ACCESSRC_AUTH["hmac"], overrides={"message": "Café — naïve ✓"}, force=True)
    assert b"\\u" not in job.body and "Café".encode() in job.body  # raw UTF-8 on the wire
    assert first.status == 200, receiver.log()
    assert f"accepted {job.id} attempt=0" in receiver.lines()
    wrong_job, wrong = deliver(store, keys, "DELIVERY_REFUND_REQUESTED", receiver.url + "/accessrc",
                               ACCESSRC_WRONG["hmac"])
    assert wrong.status == 401
    assert resend(job, keys, 1, body=reserialised(job.body)).status_code == 401  # é became \u00e9


def test_accessrc_hmac_matches_the_fact_sheet_vector(receiver):
    body = b'{"deliveryId":"3f2b8c1e-7a41-4d2e-9c55-0b6e1d7a9f10"}'
    signature = "sha256=e08c47f29a5b3f990629281b650e6f0d88de97c5a63006f5f6504451ee0b43bf"
    assert signing.hmac_signature(SECRET, body) == signature
    answer = requests.post(receiver.url + "/accessrc", data=body, timeout=5,
                           headers={"Content-Type": "application/json", "x-signature": signature})
    assert answer.status_code == 200
    upper = requests.post(receiver.url + "/accessrc", data=body, timeout=5,
                          headers={"Content-Type": "application/json", "x-signature": signature.upper()})
    assert upper.status_code == 401


@pytest.mark.parametrize("name", [n for n in LANGUAGES if n != "Receiver.java"])
def test_a_verified_body_that_is_not_json_is_a_400(name, tmp_path):
    rx = GuideReceiver(name, tmp_path, {**ACCESSRC_ENV["hmac"]})
    try:
        body = b'{"deliveryId": '
        answer = requests.post(rx.url + "/accessrc", data=body, timeout=5,
                               headers={"x-signature": signing.hmac_signature(SECRET, body)})
        assert answer.status_code == 400 and answer.json()["error"]["type"] == "BadRequest"
    finally:
        rx.stop()


@pytest.mark.parametrize("kind", ["header", "basic"])
@pytest.mark.parametrize("name", LANGUAGES)
def test_accessrc_api_key_and_basic(name, kind, tmp_path, store, keys):
    rx = GuideReceiver(name, tmp_path, ACCESSRC_ENV[kind])
    try:
        job, ok = deliver(store, keys, "DELIVERY_REFUND_REQUESTED", rx.url + "/accessrc", ACCESSRC_AUTH[kind])
        assert ok.status == 200, rx.log()
        assert f"accepted {job.id} attempt=0" in rx.lines()
        _, wrong = deliver(store, keys, "DELIVERY_REFUND_REQUESTED", rx.url + "/accessrc", ACCESSRC_WRONG[kind])
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
    job, first = deliver(store, keys, "END_JOB_NOTIFICATION", receiver.url + "/reachfive",
                         Auth("authorization", authorization=BEARER))
    assert first.status == 200, receiver.log()
    assert "X-JobId" not in first.request_headers  # ReachFive sends no job headers
    accepted = [line for line in receiver.lines() if line.startswith("accepted sha256:")]
    assert accepted
    key = accepted[-1].split()[1]
    assert resend(job, keys, 0).status_code == 200  # the exact same notification again
    assert f"duplicate {key} attempt=-" in receiver.lines()
    _, wrong = deliver(store, keys, "END_JOB_NOTIFICATION", receiver.url + "/reachfive",
                       Auth("authorization", authorization="Bearer wrong"))
    assert wrong.status == 401
    assert resend(job, keys, 0, drop="Authorization").status_code == 401


def test_load_mode_against_a_guide_receiver(receiver, keys_dir):
    """Many fresh signed events at once: every one verified, none mistaken for a duplicate."""
    result = CliRunner().invoke(main, ["load", "BadgeExportZipFile.Created", "--url", receiver.url + "/accredit",
                                       "--rate", 100, "--duration", 1, "--keys-dir", str(keys_dir), "--json"])
    assert result.exit_code == 0, result.output + receiver.log()
    summary = json.loads(result.output)
    assert summary["accepted"] == 100
    assert sum(line.startswith("accepted ") for line in receiver.lines()) >= 100
