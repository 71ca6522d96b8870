"""Read a PDF inside the sandbox (pikepdf, no rendering) and say, as JSON on stdout, what the host
needs before rendering it: does it need a password, how many pages, the largest page, which active
parts it carries (reported to the person as removed; the rasterized copy has none of them)."""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import protocol  # noqa: E402

protocol.add_site()

import pikepdf  # noqa: E402

#: what makes a PDF act, by the name of what it is shown to a person as
ACTIVE = {"/JavaScript": "javascript", "/JS": "javascript", "/OpenAction": "actions", "/AA": "actions",
          "/Launch": "actions", "/SubmitForm": "actions", "/ImportData": "actions", "/GoToR": "actions",
          "/EmbeddedFile": "attachments", "/EmbeddedFiles": "attachments", "/FileAttachment": "attachments",
          "/RichMedia": "multimedia", "/XFA": "forms", "/AcroForm": "forms"}


def _destination(obj, key):
    """An /OpenAction that only says which page to show first (LibreOffice writes one) does nothing."""
    return key == "/OpenAction" and isinstance(obj.get(key), pikepdf.Array)


def _scan(obj, found):
    """One object and what it holds directly (indirect objects are scanned on their own)."""
    if isinstance(obj, (pikepdf.Dictionary, pikepdf.Stream)):
        for key in obj.keys():
            if key in ACTIVE and not _destination(obj, key):
                found.add(ACTIVE[key])
            value = obj.get(key)
            if isinstance(value, (pikepdf.Dictionary, pikepdf.Array)) and not value.is_indirect:
                _scan(value, found)
        for key in ("/S", "/Subtype"):
            value = obj.get(key)
            if isinstance(value, pikepdf.Name) and str(value) in ACTIVE:
                found.add(ACTIVE[str(value)])
    elif isinstance(obj, pikepdf.Array):
        for item in obj:
            if isinstance(item, (pikepdf.Dictionary, pikepdf.Array)) and not item.is_indirect:
                _scan(item, found)


def probe(path):
    try:
        pdf = pikepdf.open(path)
    except pikepdf.PasswordError:
        return {"password": True}
    found = set()
    with pdf:
        for obj in [*pdf.objects, pdf.trailer]:
            _scan(obj, found)
        widest = tallest = 0.0
        for page in pdf.pages:
            box = [float(v) for v in page.cropbox]
            unit = float(page.obj.get("/UserUnit", 1))
            width, height = abs(box[2] - box[0]) * unit, abs(box[3] - box[1]) * unit
            if int(page.obj.get("/Rotate", 0)) % 180:
                width, height = height, width
            widest, tallest = max(widest, width), max(tallest, height)
        return {"password": False, "pages": len(pdf.pages), "width_pt": widest, "height_pt": tallest,
                "active": sorted(found)}


if __name__ == "__main__":
    json.dump(probe(sys.argv[1]), sys.stdout)
