"""`accessrc-sim verify`: does this signature verify over these body bytes, and if not, what was signed?

Verification goes through the platform's own auth kind (simulator.auth, simulator.signing): nothing is re-signed
here. The diagnosis tries the usual mistakes (a re-serialised JSON body, a trailing newline, the other RSA padding,
base64 instead of hex, a missing `sha256=` prefix) and says which one, if any, makes it verify.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path

import click

from .. import limits, platforms, rules, signing
from ..auth import KINDS, Auth
from ..signing import VerificationError
from .errors import EXIT_FAILED, EXIT_OK, UsageProblem
from .files import open_keys
from .options import keys_option

# The rules a kind of signature rests on (each printed with its source: documented or inferred).
RULES = {
    "hmac": (
        "accessrc.auth.hmac",
        "accessrc.auth.hmac-raw-body",
        "accessrc.auth.hmac-hex",
        "accessrc.auth.hmac-key-utf8",
    ),
    "rsa": (
        "accredit.auth.rsa-signature",
        "accredit.auth.base64",
        "accredit.auth.base64-alphabet",
        "accredit.auth.pkcs1v15",
        "accredit.auth.signed-bytes",
        "accredit.auth.public-key-pem",
    ),
}
MAX_BODY = 16 * 1024 * 1024


def signature_kind(platform: str) -> str | None:
    """The platform's auth kind that signs the body (None: it signs nothing)."""
    return next((k for k in platforms.get(platform).auth_kinds if KINDS[k].covers_body), None)


@click.command("verify")
@click.option("--platform", type=click.Choice(platforms.NAMES), required=True, help="Who signed the request.")
@click.option(
    "--body",
    "body_file",
    type=click.File("rb"),
    required=True,
    help="The request body exactly as received (a file, or - for standard input).",
)
@click.option(
    "--signature",
    required=True,
    metavar="VALUE",
    help="The signature header's value (AccessRC x-signature, Accredit X-Signature).",
)
@click.option("--secret", help="AccessRC: the subscription's hmac secret.")
@click.option(
    "--public-key",
    "public_key_path",
    type=click.Path(dir_okay=False),
    help="Accredit: the public key PEM to verify with [default: the simulator's own, from --keys-dir].",
)
@keys_option(help="Accredit: folder of the simulator's key pair, used when --public-key is not given.")
def verify_cmd(platform, body_file, signature, secret, public_key_path, keys_dir) -> None:
    """Check a webhook signature against the body you received, and say why it fails when it does.

    Prints the body's length and SHA-256, then VERIFIES or DOES NOT VERIFY; when it does not, tries the usual
    mistakes (re-serialised JSON, a trailing newline, PKCS#1 v1.5 vs PSS, base64 vs hex, the `sha256=`
    prefix) and says which one matches. Lines marked [documented] quote the platform; [inferred] and the
    diagnosis are the simulator's. ReachFive signs nothing (exit 2). Exit 0 when it verifies, 1 when it does
    not, 2 on bad usage.

    \b
    Example: accessrc-sim verify --platform accessrc --body body.json --secret abcd1234 \\
      --signature sha256=3bdc5b07d7ef9b61...
    Example: accessrc-sim verify --platform accredit --body body.json --signature "$SIG"
    """
    kind = signature_kind(platform)
    if kind is None:
        kinds = ", ".join(k for k in platforms.get(platform).auth_kinds if k != "none")
        raise UsageProblem(
            f"--platform {platform}: {platform} signs no body, so there is no signature to verify (its only "
            f"credential is a static {kinds} header, compared as it is)"
        )
    body = body_file.read(MAX_BODY + 1)
    name = getattr(body_file, "name", "<stdin>")
    name = "standard input" if name == "<stdin>" else name
    if len(body) > MAX_BODY:
        raise UsageProblem(f"--body {name}: more than {MAX_BODY // (1024 * 1024)} MB; is this the request body?")
    header = KINDS[kind].header
    signature = _strip_header_name(signature.strip(), header)
    if not signature:
        raise UsageProblem("--signature is empty")
    checker = _Checker(kind, secret, _public_key(kind, platform, secret, public_key_path, keys_dir))

    click.echo(f"platform: {platform} ({header}, {kind} signature)")
    click.echo(f"body:     {name}, {_describe(body)}")
    click.echo(f"signature: {signature[:96]}{'…' if len(signature) > 96 else ''}  ({checker.shape(signature)})")
    if checker.verifies(body, signature):
        click.echo(_mark("VERIFIES", "green") + f": the {header} matches these body bytes")
        _facts(kind)
        sys.exit(EXIT_OK)
    click.echo(_mark("DOES NOT VERIFY", "red") + f": the {header} does not match these body bytes")
    if kind == "hmac":
        click.echo(f"  expected for these bytes and this secret: {signing.hmac_signature(checker.secret, body)}")
    click.echo("diagnosis (the simulator's, not the platform's):")
    found = checker.diagnose(body, signature)
    for line in found:
        click.echo(f"  - {line}")
    if not any(line.startswith("MATCH") for line in found):
        click.echo(f"  - no common mistake explains it: {checker.wrong_credential_hint()}")
    _facts(kind)
    sys.exit(EXIT_FAILED)


def _mark(text: str, colour: str) -> str:
    return click.style(text, fg=colour, bold=True) if sys.stdout.isatty() else text


def _strip_header_name(value: str, header: str) -> str:
    """A pasted `X-Signature: …` line is taken as its value."""
    name, sep, rest = value.partition(":")
    return rest.strip() if sep and name.strip().lower() == header.lower() else value


def _describe(body: bytes) -> str:
    parts = [f"{len(body)} bytes", f"sha256 {hashlib.sha256(body).hexdigest()}"]
    if body.startswith(b"\xef\xbb\xbf"):
        parts.append("starts with a UTF-8 BOM")
    if body.endswith(b"\r\n"):
        parts.append("ends with CRLF")
    elif body.endswith(b"\n"):
        parts.append("ends with a newline")
    try:
        limits.loads(body)
        parts.append("valid JSON")
    except limits.TooDeep:  # json.loads would recurse once per level: not parsed, the bytes are checked as they are
        parts.append(
            f"lists and mappings nested deeper than {limits.MAX_DEPTH} levels: not parsed as JSON (the signature "
            "is checked on the bytes; no re-serialised form of it is tried)"
        )
    except ValueError:
        parts.append("not valid JSON")
    return ", ".join(parts)


def _public_key(kind, platform, secret, public_key_path, keys_dir):
    if kind == "hmac":
        if public_key_path:
            raise UsageProblem(f"--public-key does not apply to {platform} (an HMAC signature); give --secret")
        if not secret:
            raise UsageProblem(f"{platform} signs with HMAC: give --secret, the subscription's secret")
        return None
    if secret:
        raise UsageProblem(f"--secret does not apply to {platform} (an RSA signature); give --public-key PEM")
    if not public_key_path:
        return open_keys(keys_dir).public_key
    try:
        return signing.load_public_key(Path(public_key_path).read_bytes())
    except OSError as exc:
        raise UsageProblem(f"--public-key {public_key_path}: cannot read it: {exc.strerror or exc}") from exc
    except (ValueError, TypeError) as exc:
        raise UsageProblem(
            f"--public-key {public_key_path}: not an RSA public key in PEM (-----BEGIN PUBLIC KEY-----): "
            f"{str(exc).split('.')[0]}"
        ) from exc


def _facts(kind: str) -> None:
    click.echo("what it rests on:")
    for rule_id in RULES[kind]:
        rule = rules.get(rule_id)
        click.echo(f"  [{rule.source}] {rule.text}")


def _body_variants(body: bytes) -> Iterator[tuple[str, bytes]]:
    """Other bytes the sender may have signed, each with what the difference means."""
    seen = {body}

    def fresh(label: str, data: bytes) -> Iterator[tuple[str, bytes]]:
        if data not in seen:
            seen.add(data)
            yield label, data

    yield from fresh("the body without its trailing newline", body.rstrip(b"\r\n"))
    yield from fresh("the body with a trailing newline added", body + b"\n")
    yield from fresh("the body with CRLF turned into LF", body.replace(b"\r\n", b"\n"))
    yield from fresh("the body without its UTF-8 BOM", body.removeprefix(b"\xef\xbb\xbf"))
    try:
        data = limits.loads(body.removeprefix(b"\xef\xbb\xbf"))
    except ValueError:  # not JSON, or nested too deep to parse (TooDeep): no re-serialised forms
        return
    forms = {
        "compact, json.dumps(separators=(',', ':'))": {"separators": (",", ":")},
        "json.dumps() defaults (', ' and ': ')": {},
        "indented by 2": {"indent": 2},
        "indented by 4": {"indent": 4},
        "keys sorted, compact": {"sort_keys": True, "separators": (",", ":")},
        "compact, non-ASCII kept (ensure_ascii=False)": {"separators": (",", ":"), "ensure_ascii": False},
        "non-ASCII kept (ensure_ascii=False)": {"ensure_ascii": False},
    }
    for label, kwargs in forms.items():
        text = json.dumps(data, **kwargs).encode("utf-8")
        yield from fresh(f"the JSON re-serialised ({label})", text)
        yield from fresh(f"the JSON re-serialised ({label}) plus a newline", text + b"\n")


class _Checker:
    """Verifies through the platform's auth kind; `diagnose` tries one mistake at a time, then two."""

    def __init__(self, kind: str, secret: str | None, public_key):
        self.kind, self.secret, self.public_key = kind, secret or "", public_key
        self.header = KINDS[kind].header

    def verifies(self, body: bytes, signature: str, padding: str = "pkcs1v15", secret: str | None = None) -> bool:
        auth = Auth(self.kind, secret=self.secret if secret is None else secret, rsa_padding=padding)
        try:
            auth.verify({self.header: signature}, body, self.public_key)
        except VerificationError:
            return False
        return True

    def shape(self, signature: str) -> str:
        if self.kind == "hmac":
            prefix, _, digest = signature.partition("=")
            if prefix == "sha256" and len(digest) == 64 and all(c in "0123456789abcdef" for c in digest):
                return "form ok: sha256= and 64 lower-case hex digits"
            return "not of the form sha256=<64 lower-case hex digits>"
        raw = _b64(signature)
        if raw is None:
            return "not valid standard base64"
        size = self.public_key.key_size // 8
        return f"base64 of {len(raw)} bytes" + (
            "" if len(raw) == size else f"; an RSA-{self.public_key.key_size} signature is {size} bytes"
        )

    # -- the signature as the receiver should read it ----------------------------------------------------------
    def _signature_forms(self, signature: str) -> Iterator[tuple[str, str]]:
        """The given value re-encoded as the documented form, with what was different about it."""
        if self.kind == "hmac":
            digest = signature.removeprefix("sha256=")
            if digest != signature:
                if digest != digest.lower():
                    yield "the hex is upper-case (the documents' sample is lower-case)", "sha256=" + digest.lower()
            else:
                upper = ", and its hex is upper-case" if digest != digest.lower() else ""
                yield f"the value has no `sha256=` prefix{upper}", "sha256=" + digest.lower()
            raw = _b64(digest) or _b64(digest, urlsafe=True)
            if raw is not None and len(raw) == 32:
                yield "the digest is base64, not hex", "sha256=" + raw.hex()
            return
        for prefix in ("sha256=", "Bearer ", "base64:"):
            if signature.startswith(prefix):
                yield (
                    f"the value starts with {prefix.strip()!r} (X-Signature is the base64 alone)",
                    signature[len(prefix) :],
                )
        if _b64(signature) is None:
            raw = _b64(signature, urlsafe=True)
            if raw is not None:
                yield "the base64 is URL-safe (- and _), not the standard alphabet", _enc(raw)
            try:
                yield "the signature is hex, not base64", _enc(bytes.fromhex(signature))
            except ValueError:
                pass

    def diagnose(self, body: bytes, signature: str) -> list[str]:
        found = []
        paddings = signing.PADDINGS if self.kind == "rsa" else ("pkcs1v15",)
        other_padding = [p for p in paddings if p != "pkcs1v15"]
        forms = [("", signature), *self._signature_forms(signature)]
        bodies = [("", body), *_body_variants(body)]
        for form_note, value in forms:
            for body_note, data in bodies:
                for pad in paddings:
                    if (form_note, body_note, pad) == ("", "", "pkcs1v15") or not self.verifies(data, value, pad):
                        continue
                    notes = [n for n in (form_note, _body_note(body_note), _pad_note(pad)) if n]
                    found.append("MATCH: " + "; ".join(notes))
        if self.kind == "hmac":
            for label, other in (
                ("the secret without surrounding whitespace", self.secret.strip()),
                ("the secret with a trailing newline", self.secret + "\n"),
            ):
                if other != self.secret and any(self.verifies(body, v, secret=other) for _, v in forms):
                    found.append(
                        f"MATCH with {label}: the secret you gave is not the one the sender used "
                        "(a newline read from a file or an environment variable?)"
                    )
        if not found:
            bad_form = [note for note, _ in forms[1:]]
            found += [f"{note} (but re-encoding it does not make it verify)" for note in bad_form]
            if other_padding:
                found.append("it does not verify with PSS padding either")
            found.append("none of the re-serialised JSON forms, newline or BOM changes of the body verify")
        return found

    def wrong_credential_hint(self) -> str:
        if self.kind == "hmac":
            return "the secret is probably not the subscription's (check its auth.secret)"
        return (
            "it was probably signed with another key: verify with the public key the sender hands out "
            "(the simulator's: `accessrc-sim keys show`)"
        )


def _body_note(note: str) -> str:
    return (
        f"it verifies over {note} form of the bytes given, so the bytes given are not the ones that were signed "
        "(re-formatted or edited after they were received?): give --body the raw bytes as received "
        "(never re-serialise or edit them before verifying)"
        if note
        else ""
    )


def _pad_note(pad: str) -> str:
    return "" if pad == "pkcs1v15" else f"it verifies with {pad.upper()} padding, not PKCS#1 v1.5"


def _b64(text: str, urlsafe: bool = False) -> bytes | None:
    try:
        if urlsafe:
            return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None


def _enc(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")
