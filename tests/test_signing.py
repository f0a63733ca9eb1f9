"""One valid signed message per scheme, then break exactly one thing per test."""

import base64
import os
import stat

import pytest

from simulator import platforms, signing
from simulator.auth import Auth, AuthError, mask_headers
from simulator.signing import VerificationError

BODY = b'{"deliveryId":"3f2b8c1e-7a41-4d2e-9c55-0b6e1d7a9f10"}'


def test_hmac_matches_the_fact_sheet_vector():
    assert (
        signing.hmac_signature("abcd1234", BODY)
        == "sha256=e08c47f29a5b3f990629281b650e6f0d88de97c5a63006f5f6504451ee0b43bf"
    )


def test_basic_matches_the_documented_encodings():
    assert signing.basic_value("myuser", "mypassword") == "Basic bXl1c2VyOm15cGFzc3dvcmQ="
    assert signing.basic_value("webhook-user", "s3cr3t") == "Basic d2ViaG9vay11c2VyOnMzY3IzdA=="


def test_rsa_signature_verifies_with_the_public_pem(keys):
    sig = signing.rsa_sign(keys.private_key, BODY)
    assert len(base64.b64decode(sig)) == 256  # RSA-2048
    signing.rsa_verify(keys.public_pem, BODY, sig)


def test_rsa_pkcs1v15_is_deterministic_and_pss_is_not(keys):
    assert signing.rsa_sign(keys.private_key, BODY) == signing.rsa_sign(keys.private_key, BODY)
    a, b = (signing.rsa_sign(keys.private_key, BODY, "pss") for _ in range(2))
    assert a != b
    signing.rsa_verify(keys.public_pem, BODY, a, "pss")
    with pytest.raises(VerificationError):
        signing.rsa_verify(keys.public_pem, BODY, a, "pkcs1v15")


def test_rsa_tampered_body_raises(keys):
    sig = signing.rsa_sign(keys.private_key, BODY)
    with pytest.raises(VerificationError, match="does not match"):
        signing.rsa_verify(keys.public_pem, BODY.replace(b"3f", b"4f"), sig)


def test_rsa_reserialised_json_does_not_verify(keys):
    sig = signing.rsa_sign(keys.private_key, BODY)
    with pytest.raises(VerificationError):
        signing.rsa_verify(keys.public_pem, b'{"deliveryId": "3f2b8c1e-7a41-4d2e-9c55-0b6e1d7a9f10"}', sig)


def test_rsa_missing_signature_raises(keys):
    with pytest.raises(VerificationError, match="missing"):
        signing.rsa_verify(keys.public_pem, BODY, None)


def test_rsa_garbage_signature_raises(keys):
    with pytest.raises(VerificationError, match="base64"):
        signing.rsa_verify(keys.public_pem, BODY, "not base64!!")


def test_rsa_wrong_key_raises(keys, tmp_path):
    other = signing.generate_keys(tmp_path / "other")
    sig = signing.rsa_sign(other.private_key, BODY)
    with pytest.raises(VerificationError):
        signing.rsa_verify(keys.public_pem, BODY, sig)


def test_hmac_wrong_secret_and_missing_header_raise():
    good = signing.hmac_signature("abcd1234", BODY)
    signing.hmac_verify("abcd1234", BODY, good)
    with pytest.raises(VerificationError):
        signing.hmac_verify("other", BODY, good)
    with pytest.raises(VerificationError, match="missing"):
        signing.hmac_verify("abcd1234", BODY, None)


def test_private_key_file_is_0600_and_generated_once(tmp_path):
    pair = signing.load_keys(tmp_path / "k")
    private = tmp_path / "k" / signing.PRIVATE_FILE
    assert stat.S_IMODE(os.stat(private).st_mode) == 0o600
    again = signing.load_keys(tmp_path / "k")
    assert again.public_pem == pair.public_pem
    assert (tmp_path / "k" / signing.PUBLIC_FILE).read_text() == pair.public_pem
    assert "PRIVATE" not in repr(pair)


def test_generate_refuses_to_overwrite_without_force(tmp_path):
    first = signing.generate_keys(tmp_path)
    with pytest.raises(FileExistsError):
        signing.generate_keys(tmp_path)
    assert signing.generate_keys(tmp_path, force=True).public_pem != first.public_pem


def test_load_without_create_names_the_command(tmp_path):
    with pytest.raises(FileNotFoundError, match="keys generate"):
        signing.load_keys(tmp_path, create=False)


@pytest.mark.parametrize(
    "auth",
    [
        Auth("hmac", secret="abcd1234"),
        Auth("basic", username="webhook-user", password="s3cr3t"),
        Auth("header", header_name="X-API-Key", header_value="k-123"),
        Auth("authorization", authorization="Bearer mF_9.B5f-4.1JqM"),
        Auth("none"),
    ],
    ids=lambda a: a.kind,
)
def test_each_auth_kind_verifies_its_own_headers_and_refuses_none(auth):
    auth.verify(auth.headers(BODY), BODY)
    if auth.kind != "none":
        with pytest.raises(VerificationError):
            auth.verify({}, BODY)


def test_rsa_auth_headers_verify(keys):
    auth = Auth("rsa")
    headers = auth.headers(BODY, keys)
    assert set(headers) == {"X-Signature"}
    auth.verify({"x-signature": headers["X-Signature"]}, BODY, keys.public_pem)  # header names are case-insensitive


def test_from_accessrc_subscribe_auth_objects():
    parse = platforms.get("accessrc").auth_from_json
    assert parse(None).kind == "none"
    assert parse({"type": "hmac", "secret": "abcd1234"}).secret == "abcd1234"
    header = parse({"type": "header", "headerName": "X-API-Key", "headerValue": "k-123"})
    assert header.headers(BODY) == {"X-API-Key": "k-123"}
    with pytest.raises(AuthError, match="auth.type"):
        parse({"type": "oauth"})
    with pytest.raises(AuthError, match="auth.password") as raised:
        parse({"type": "basic", "username": "u"})
    assert raised.value.field == "auth.password"


def test_auth_kind_must_fit_the_platform():
    with pytest.raises(AuthError, match="accredit does not use 'hmac'"):
        platforms.get("accredit").check_auth(Auth("hmac", secret="x"))


def test_each_auth_kind_builds_and_verifies_its_own_header(keys):
    """Every kind is one small object: the header it sends is the one it verifies, and a forged one fails."""
    cases = [
        Auth("rsa"),
        Auth("rsa", rsa_padding="pss"),
        Auth("hmac", secret="s3cret"),
        Auth("basic", username="u", password="p:w"),
        Auth("header", header_name="X-Key", header_value="k1"),
        Auth("authorization", authorization="Bearer t0k"),
    ]
    for auth in cases:
        headers = auth.headers(BODY, keys)
        assert list(headers) == [auth.credential_header]
        auth.verify(headers, BODY, keys.public_pem)
        value = headers[auth.credential_header]
        for forged in (auth.how.bad(auth, value), auth.how.foreign(auth, BODY, "other-token")[0]):
            assert forged != value
            with pytest.raises(signing.VerificationError):
                auth.verify({auth.credential_header: forged}, BODY, keys.public_pem)
    assert Auth("none").headers(BODY) == {} and Auth("none").credential_header is None


def test_masking_hides_credentials_but_not_signatures():
    auth = Auth("basic", username="u", password="secret-pass")
    assert auth.masked()["password"] == "***"
    shown = mask_headers(
        {"Authorization": "Basic abc", "X-API-Key": "k", "X-Signature": "sig", "X-Custom": "k-9"}, secrets=["k-9"]
    )
    assert shown == {"Authorization": "***", "X-API-Key": "***", "X-Signature": "sig", "X-Custom": "***"}


def test_the_public_key_is_never_written_through_a_link(tmp_path):
    """A link where the public key goes (to another file, or dangling) is replaced, never followed: the file it points
    to is neither overwritten nor created (it was, by write_text, on every start)."""
    from simulator import signing

    victim = tmp_path / "victim.txt"
    victim.write_text("someone else's file\n")
    keys = tmp_path / "keys"
    keys.mkdir()
    (keys / signing.PUBLIC_FILE).symlink_to(victim)
    made = signing.generate_keys(keys)
    assert victim.read_text() == "someone else's file\n"
    public = keys / signing.PUBLIC_FILE
    assert not public.is_symlink() and public.read_text() == made.public_pem
    public.unlink()
    public.symlink_to(tmp_path / "nowhere.pem")  # dangling
    loaded = signing.load_keys(keys)
    assert not (tmp_path / "nowhere.pem").exists()
    assert not public.is_symlink() and public.read_text() == loaded.public_pem
    assert sorted(p.name for p in keys.iterdir()) == sorted([signing.PRIVATE_FILE, signing.PUBLIC_FILE])
