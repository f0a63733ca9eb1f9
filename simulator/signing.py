"""Key material and the signature schemes the platforms document. Pure: bytes in, header values out.

Accredit: X-Signature = base64(RSA-SHA256 signature over the raw body), PKCS#1 v1.5 by default (what
"SHA-256 with RSA" means in .NET and Java), PSS as a setting. AccessRC: x-signature = "sha256=" + hex HMAC-SHA256.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

PRIVATE_FILE = "accredit_private.pem"
PUBLIC_FILE = "accredit_public.pem"
PADDINGS = ("pkcs1v15", "pss")


class VerificationError(Exception):
    """A signature or credential that does not match what was sent."""


@dataclass(frozen=True)
class KeyPair:
    private_key: rsa.RSAPrivateKey
    public_pem: str

    @property
    def public_key(self) -> rsa.RSAPublicKey:
        return self.private_key.public_key()

    def __repr__(self) -> str:  # never show the private key
        return "KeyPair(private_key=<hidden>, public_pem=...)"


def _public_pem(private_key: rsa.RSAPrivateKey) -> str:
    return (
        private_key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode("ascii")
    )


class KeyFileError(ValueError):
    """The key pair cannot be read or written (garbage, a folder, a dangling link, no permission): the message
    names the file and what is wrong with it."""


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc)


def generate_keys(keys_dir: str | Path, force: bool = False) -> KeyPair:
    """Create an RSA-2048 pair in `keys_dir` (private key mode 0600). Refuses to overwrite unless `force`
    (FileExistsError); a folder or file that cannot be written is a KeyFileError."""
    keys_dir = Path(keys_dir)
    private_path = keys_dir / PRIVATE_FILE
    if (private_path.exists() or private_path.is_symlink()) and not force:
        raise FileExistsError(f"{private_path} exists; use --force to replace it")
    try:
        keys_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as exc:
        raise KeyFileError(f"cannot create the keys folder {keys_dir}: {_reason(exc)}") from exc
    private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    tmp = keys_dir / f".{PRIVATE_FILE}.{os.getpid()}.{os.urandom(4).hex()}.tmp"  # one per writer
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(pem)
            os.chmod(tmp, 0o600)
            if force:
                os.replace(tmp, private_path)
            else:
                try:  # link fails if another process got there first: two processes never hold different keys
                    os.link(tmp, private_path)
                except FileExistsError:
                    raise FileExistsError(f"{private_path} exists; use --force to replace it") from None
        finally:
            if tmp.exists():
                os.unlink(tmp)
        public_pem = _public_pem(private_key)
        _write_public(Path(keys_dir) / PUBLIC_FILE, public_pem)
    except FileExistsError:
        raise
    except OSError as exc:
        raise KeyFileError(f"cannot write the key pair in {keys_dir}: {_reason(exc)}") from exc
    return KeyPair(private_key, public_pem)


def _write_public(path: Path, public_pem: str) -> None:
    """The public key written to a new file, then renamed over `path`: a link at `path` (even a dangling one) is
    replaced, never followed, so the file a link points to is never overwritten or created."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
        with os.fdopen(fd, "w", encoding="ascii") as fh:
            fh.write(public_pem)
        os.replace(tmp, path)
    finally:
        if os.path.lexists(tmp):
            os.unlink(tmp)


def load_keys(keys_dir: str | Path, create: bool = True, on_generated: Callable[[Path], None] | None = None) -> KeyPair:
    """Load the pair from `keys_dir`, generating it on first use when `create`; `on_generated(keys_dir)` is then
    called, so the caller can tell its user (a new pair means receivers holding the old public key answer 401).
    A private key file that is not one (garbage, a folder, a dangling link, unreadable) is a KeyFileError naming
    it, never a traceback."""
    private_path = Path(keys_dir) / PRIVATE_FILE
    if private_path.is_symlink() and not private_path.exists():
        raise KeyFileError(
            f"{private_path} is a symbolic link to {os.readlink(private_path)}, which does not "
            "exist; remove the link, or point it at the private key"
        )
    if not private_path.exists():
        if not create:
            raise FileNotFoundError(f"no private key at {private_path}; run `accessrc-sim keys generate`")
        try:
            pair = generate_keys(keys_dir)
        except FileExistsError:  # another process generated it first
            pass
        else:
            if on_generated is not None:
                on_generated(Path(keys_dir))
            return pair
    if private_path.is_dir():
        raise KeyFileError(f"{private_path} is a folder, not a private key file")
    if not private_path.is_file():
        raise KeyFileError(f"{private_path} is not a regular file (a device, FIFO or socket), not a private key")
    try:
        data = private_path.read_bytes()
    except OSError as exc:
        raise KeyFileError(f"cannot read {private_path}: {_reason(exc)}") from exc
    try:
        private_key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:  # TypeError: the key is encrypted
        raise KeyFileError(
            f"{private_path} is not an unencrypted PEM private key ({str(exc).split('.')[0]}); "
            "replace it with `accessrc-sim keys generate --force`"
        ) from exc
    if not isinstance(private_key, rsa.RSAPrivateKey):
        raise KeyFileError(f"{private_path} is not an RSA private key")
    public_pem = _public_pem(private_key)
    public_path = Path(keys_dir) / PUBLIC_FILE
    try:
        if public_path.is_symlink() or not public_path.exists() or public_path.read_bytes() != public_pem.encode():
            _write_public(public_path, public_pem)
    except OSError as exc:
        raise KeyFileError(f"cannot write the public key {public_path}: {_reason(exc)}") from exc
    return KeyPair(private_key, public_pem)


def generated_message(keys_dir: str | Path) -> str:
    """The one line a command prints when it has just generated a key pair: where, and how to see its public key."""
    folder = Path(keys_dir).absolute()
    return (
        f"accessrc-sim: generated a new RSA key pair in {folder}; "
        f"its public key: accessrc-sim keys show --keys-dir {shlex.quote(str(folder))}"
    )


def _padding(name: str):
    if name == "pkcs1v15":
        return padding.PKCS1v15()
    if name == "pss":
        return padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.DIGEST_LENGTH)
    raise ValueError(f"unknown RSA padding {name!r}; choose one of {', '.join(PADDINGS)}")


def rsa_sign(private_key: rsa.RSAPrivateKey, body: bytes, pad: str = "pkcs1v15") -> str:
    """The Accredit `X-Signature` value for these exact body bytes."""
    return base64.b64encode(private_key.sign(body, _padding(pad), hashes.SHA256())).decode("ascii")


def load_public_key(public: str | bytes | rsa.RSAPublicKey) -> rsa.RSAPublicKey:
    if isinstance(public, rsa.RSAPublicKey):
        return public
    key = serialization.load_pem_public_key(public.encode("ascii") if isinstance(public, str) else public)
    if not isinstance(key, rsa.RSAPublicKey):
        raise ValueError("not an RSA public key")
    return key


def rsa_verify(
    public: str | bytes | rsa.RSAPublicKey, body: bytes, signature: str | None, pad: str = "pkcs1v15"
) -> None:
    if not signature:
        raise VerificationError("missing X-Signature")
    try:
        raw = base64.b64decode(signature, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise VerificationError("X-Signature is not valid base64") from exc
    try:
        load_public_key(public).verify(raw, body, _padding(pad), hashes.SHA256())
    except InvalidSignature as exc:
        raise VerificationError("X-Signature does not match the body") from exc


def hmac_signature(secret: str, body: bytes) -> str:
    """The AccessRC `x-signature` value: `sha256=` + lower-case hex HMAC-SHA256 of the raw body."""
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def hmac_verify(secret: str, body: bytes, header_value: str | None) -> None:
    if not header_value:
        raise VerificationError("missing x-signature")
    if not hmac.compare_digest(hmac_signature(secret, body).encode(), header_value.strip().encode()):
        raise VerificationError("x-signature does not match the body")


def basic_value(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode("ascii")


def constant_equal(expected: str, given: str | None, what: str) -> None:
    if given is None:
        raise VerificationError(f"missing {what}")
    if not hmac.compare_digest(expected.encode("utf-8"), given.encode("utf-8")):
        raise VerificationError(f"{what} does not match")
