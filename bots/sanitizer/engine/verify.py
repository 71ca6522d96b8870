"""Checks on every output before it is delivered: the engine's last word, whatever the handler did."""

from __future__ import annotations

import io

import pikepdf

from . import ooxml, ooxml_verify, textlayer
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


def problem(data: bytes, mimetype: str) -> str | None:
    """What is wrong with an output claimed to be ``mimetype`` (None: nothing); raises a Refusal when
    it cannot be checked at all. Runs in the sandbox (workers/parse_worker.py): an output is made from
    untrusted bytes, and so is parsed like them."""
    detected = detect(data)
    text_like = detected.mime in ("text/plain", "text/csv") and mimetype.startswith("text/")
    if detected.mime not in DELIVERABLE or (detected.mime != mimetype and not text_like):
        return detected.mime
    if detected.mime == "application/pdf":
        try:
            # every PDF the engine delivers is a rasterized one: page images and the invisible text layer,
            # nothing else (allow-list, textlayer.shape_problems); the names that act are looked for too
            left = pdf_active_content(data) + textlayer.shape_problems(data)
        except (pikepdf.PdfError, ValueError, TypeError, AttributeError, KeyError):
            return "PDF"
        if left:
            return " ".join(left)
    if detected.mime in {mime for _, mime in ooxml.PACKAGE.values()}:  # strip-active Office output
        try:
            left = ooxml_verify.verify_package(data)
        except Exception:
            # the verifier could not read it through (it reports what it finds, so this is a package it
            # did not foresee): not delivered, and the person hears why as for any unreadable file
            raise Refusal("sanitizer.refused.broken", "sanitizer.instead.pdf") from None
        if left:
            return " ".join(left)[:200]
    return None


def answer(data: bytes, mimetype: str) -> dict:
    """The check's answer as the jailed worker sends it: the detected type and the problem found."""
    return {"mime": detect(data).mime, "problem": problem(data, mimetype)}


async def verify(engine, output: Output, timeout: float, checked: dict | None = None) -> None:
    """The check of :func:`problem`, asked of a jailed worker (or ``checked``: its answer given with the
    output by the worker that made it); the answer is checked here once more."""
    from . import jail
    if checked is None:
        checked, _ = await jail.call(engine, "verify", output.data, timeout, mimetype=output.mimetype)
    found, mime = checked.get("problem"), checked.get("mime")
    if found is not None:
        raise Refusal("sanitizer.refused.verify_failed", what=str(found)[:200])
    text_like = mime in ("text/plain", "text/csv") and output.mimetype.startswith("text/")
    if mime not in DELIVERABLE or (mime != output.mimetype and not text_like):
        raise Refusal("sanitizer.refused.verify_failed", what=str(mime)[:200])
