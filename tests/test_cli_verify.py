"""`accessrc-sim verify`: one genuinely signed body, then exactly one thing broken per test."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from simulator import signing
from simulator.cli import main

BODY = json.dumps({"status": "Approved", "message": "é"}, indent=2).encode("utf-8")  # not the compact form
SECRET = "abcd1234"


@pytest.fixture
def body_file(tmp_path):
    def write(data: bytes = BODY):
        path = tmp_path / "body.json"
        path.write_bytes(data)
        return str(path)

    return write


def verify(*args, stdin=None):
    return CliRunner().invoke(main, ["verify", *args], input=stdin, catch_exceptions=False)


def test_a_genuine_hmac_signature_verifies_and_says_what_is_documented(body_file):
    out = verify(
        "--platform",
        "accessrc",
        "--body",
        body_file(),
        "--secret",
        SECRET,
        "--signature",
        signing.hmac_signature(SECRET, BODY),
    )
    assert out.exit_code == 0, out.output
    assert "VERIFIES" in out.output and f"{len(BODY)} bytes" in out.output
    assert "[documented]" in out.output and "[inferred]" in out.output


def test_a_body_saved_with_a_trailing_newline_is_diagnosed(body_file):
    out = verify(
        "--platform",
        "accessrc",
        "--body",
        body_file(BODY + b"\n"),
        "--secret",
        SECRET,
        "--signature",
        signing.hmac_signature(SECRET, BODY),
    )
    assert out.exit_code == 1
    assert "DOES NOT VERIFY" in out.output and "ends with a newline" in out.output
    assert "MATCH" in out.output and "without its trailing newline" in out.output


def test_re_serialised_json_is_named(body_file):
    compact = json.dumps(json.loads(BODY), separators=(",", ":")).encode()
    out = verify(
        "--platform",
        "accessrc",
        "--body",
        "-",
        "--secret",
        SECRET,
        "--signature",
        signing.hmac_signature(SECRET, compact),
        stdin=BODY,
    )
    assert out.exit_code == 1
    assert "MATCH" in out.output and "JSON re-serialised (compact" in out.output


def test_hmac_without_prefix_or_as_base64_is_named(body_file):
    digest = signing.hmac_signature(SECRET, BODY).removeprefix("sha256=")
    out = verify("--platform", "accessrc", "--body", body_file(), "--secret", SECRET, "--signature", digest)
    assert out.exit_code == 1 and "MATCH: the value has no `sha256=` prefix" in out.output
    import base64

    b64 = base64.b64encode(bytes.fromhex(digest)).decode()
    out = verify("--platform", "accessrc", "--body", body_file(), "--secret", SECRET, "--signature", "sha256=" + b64)
    assert out.exit_code == 1 and "MATCH: the digest is base64, not hex" in out.output


def test_a_wrong_secret_says_no_common_mistake_explains_it(body_file):
    out = verify(
        "--platform",
        "accessrc",
        "--body",
        body_file(),
        "--secret",
        "other",
        "--signature",
        signing.hmac_signature(SECRET, BODY),
    )
    assert out.exit_code == 1 and "MATCH" not in out.output
    assert "the secret is probably not the subscription's" in out.output
    assert f"expected for these bytes and this secret: {signing.hmac_signature('other', BODY)}" in out.output


def test_accredit_verifies_with_the_simulators_key_and_names_pss(body_file, keys, keys_dir, tmp_path):
    pkcs = signing.rsa_sign(keys.private_key, BODY)
    out = verify("--platform", "accredit", "--body", body_file(), "--keys-dir", str(keys_dir), "--signature", pkcs)
    assert out.exit_code == 0, out.output
    pss = signing.rsa_sign(keys.private_key, BODY, "pss")
    pem = tmp_path / "public.pem"
    pem.write_text(keys.public_pem)
    out = verify("--platform", "accredit", "--body", body_file(), "--public-key", str(pem), "--signature", pss)
    assert out.exit_code == 1 and "MATCH: it verifies with PSS padding, not PKCS#1 v1.5" in out.output
    assert "[inferred] The RSA padding is PKCS#1 v1.5" in out.output


def test_accredit_signed_by_another_key_points_at_keys_show(body_file, keys_dir):
    other = signing.generate_keys(keys_dir.parent / "other-keys")
    out = verify(
        "--platform",
        "accredit",
        "--body",
        body_file(),
        "--keys-dir",
        str(keys_dir),
        "--signature",
        signing.rsa_sign(other.private_key, BODY),
    )
    assert out.exit_code == 1 and "accessrc-sim keys show" in out.output


@pytest.mark.parametrize(
    "args, message",
    [
        (["--platform", "reachfive", "--signature", "x"], "reachfive signs no body"),
        (["--platform", "accessrc", "--signature", "x"], "give --secret"),
        (["--platform", "accredit", "--signature", "x", "--secret", "s"], "--secret does not apply to accredit"),
        (["--platform", "accredit", "--signature", "x", "--public-key", "nope.pem"], "--public-key nope.pem"),
    ],
)
def test_usage_errors_exit_2_with_a_message(body_file, args, message):
    out = verify("--body", body_file(), *args)
    assert out.exit_code == 2 and message in out.output and "Traceback" not in out.output
