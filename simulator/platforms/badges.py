"""Accredit's Print Queue content: the ZIP of badge PDFs a BadgeExportZipFileId downloads, built in memory, and the
print statuses (rules accredit.api.print-queue.zip and .statuses, both inferred)."""

from __future__ import annotations

import io
import re
import zipfile
from typing import Any

PRINT_STATUSES = ("Pending", "Printing", "Printed", "Failed")
NEW_STATUS = "Pending"
DEFAULT_BADGES = 3
MAX_BADGES = 500  # "1…500+ pages" per export: a cap on what one download builds


def badge_names(payload: Any) -> list[str]:
    """The badges of a BadgeExportZipFile.Created body: its `Badges` list (strings, or objects with Name or
    FullName) when it has one, else DEFAULT_BADGES numbered badges."""
    listed = payload.get("Badges") if isinstance(payload, dict) else None
    names = []
    if isinstance(listed, list):
        for item in listed[:MAX_BADGES]:
            if isinstance(item, dict):
                item = item.get("Name") or item.get("FullName") or item.get("name")
            if isinstance(item, str) and item.strip():
                names.append(item.strip())
    return names or [f"Badge {i}" for i in range(1, DEFAULT_BADGES + 1)]


def file_name(name: str, number: int) -> str:
    """A safe PDF name inside the ZIP, unique by its number: `<number>-<name>.pdf` (letters, digits, - and _)."""
    stem = re.sub(r"[^A-Za-z0-9_-]+", "-", name).strip("-")[:60] or "badge"
    return f"{number:03d}-{stem}.pdf"


def _pdf_text(text: str) -> str:
    """Text for a PDF string literal: ASCII (others become ?), with (, ) and \\ escaped."""
    ascii_text = text.encode("ascii", "replace").decode("ascii")
    return ascii_text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def badge_pdf(title: str, subtitle: str = "") -> bytes:
    """A one-page PDF 1.4 (A6, Helvetica) with a cross-reference table whose offsets are right: it opens."""
    lines = [f"BT /F1 18 Tf 20 250 Td ({_pdf_text(title)}) Tj ET"]
    if subtitle:
        lines.append(f"BT /F1 8 Tf 20 230 Td ({_pdf_text(subtitle)}) Tj ET")
    stream = "\n".join(lines).encode("ascii")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 298 420] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length " + str(len(stream)).encode() + b" >>\nstream\n" + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, obj in enumerate(objects, 1):
        offsets.append(out.tell())
        out.write(f"{number} 0 obj\n".encode() + obj + b"\nendobj\n")
    xref = out.tell()
    out.write(f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode())
    for offset in offsets:
        out.write(f"{offset:010d} 00000 n \n".encode())
    out.write(f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode())
    return out.getvalue()


def badge_zip(zip_id: str, payload: Any) -> tuple[bytes, list[str]]:
    """(the ZIP's bytes, the names of its PDFs): one PDF per badge of `payload`, deflated."""
    out = io.BytesIO()
    names = []
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for number, badge in enumerate(badge_names(payload), 1):
            name = file_name(badge, number)
            names.append(name)
            info = zipfile.ZipInfo(name, date_time=(2025, 1, 1, 0, 0, 0))  # fixed: the same id, the same bytes
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, badge_pdf(badge, f"BadgeExportZipFile {zip_id}"))
    return out.getvalue(), names
