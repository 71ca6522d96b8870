"""Checks on every output before it is delivered: the engine's last word, whatever the handler did."""

from __future__ import annotations

import io

import pikepdf

from . import ooxml, ooxml_verify
from .detect import detect
from .result import Output, Refusal

#: what may be delivered, by libmagic type of the output bytes
DELIVERABLE = {"image/png", "image/jpeg", "application/pdf", "text/plain", "text/csv", "application/zip",
               *(mime for _, mime in ooxml.PACKAGE.values())}
#: PDF names that make a document act (run script, open something, carry files)
FORBIDDEN_PDF_NAMES = ("/JavaScript", "/JS", "/OpenAction", "/AA", "/Launch", "/EmbeddedFile",
                       "/EmbeddedFiles", "/RichMedia", "/XFA", "/GoToR", "/SubmitForm", "/ImportData")


def pdf_active_content(data: bytes) -> list[str]:
    """Forbidden names found anywhere in the PDF (every object, every dictionary key, nested ones too)."""
    found: set[str] = set()
    with pikepdf.open(io.BytesIO(data)) as pdf:
        for obj in [*pdf.objects, pdf.trailer]:
            _scan(obj, found)
    return sorted(found)


def _scan(obj: pikepdf.Object, found: set[str]) -> None:
    """One object and what it holds directly (indirect ones are scanned on their own)."""
    if isinstance(obj, (pikepdf.Dictionary, pikepdf.Stream)):
        for key in obj.keys():
            if key in FORBIDDEN_PDF_NAMES:
                found.add(key)
            value = obj.get(key)
            if isinstance(value, (pikepdf.Dictionary, pikepdf.Array)) and not value.is_indirect:
                _scan(value, found)
        action = obj.get("/S")
        if isinstance(action, pikepdf.Name) and str(action) in FORBIDDEN_PDF_NAMES:
            found.add(str(action))
    elif isinstance(obj, pikepdf.Array):
        for item in obj:
            if isinstance(item, (pikepdf.Dictionary, pikepdf.Array)) and not item.is_indirect:
                _scan(item, found)


def verify(output: Output) -> None:
    detected = detect(output.data)
    text_like = detected.mime in ("text/plain", "text/csv") and output.mimetype.startswith("text/")
    if detected.mime not in DELIVERABLE or (detected.mime != output.mimetype and not text_like):
        raise Refusal("sanitizer.refused.verify_failed", what=detected.mime)
    if detected.mime == "application/pdf":
        try:
            left = pdf_active_content(output.data)
        except pikepdf.PdfError:
            raise Refusal("sanitizer.refused.verify_failed", what="PDF") from None
        if left:
            raise Refusal("sanitizer.refused.verify_failed", what=" ".join(left))
    if detected.mime in {mime for _, mime in ooxml.PACKAGE.values()}:  # strip-active Office output
        try:
            left = ooxml_verify.verify_package(output.data)
        except Exception:
            raise Refusal("sanitizer.refused.verify_failed", what="OOXML") from None
        if left:
            raise Refusal("sanitizer.refused.verify_failed", what=" ".join(left)[:200])
