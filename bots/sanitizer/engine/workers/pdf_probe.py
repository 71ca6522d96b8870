"""Read a PDF inside the sandbox (pikepdf, no rendering) and say, as JSON on stdout, what the host
needs before rendering it: does it need a password, how many pages, the largest page, which active
parts it carries (reported to the person as removed; the rasterized copy has none of them).

And the budget before rendering: every stream that is no image is inflated here with its output
counted (a 14 KB PDF may hold a doubly compressed 8 GiB content stream, which pdftoppm would inflate
for minutes): refused as soon as one stream inflates more than ``STREAM_RATIO`` times its stored size
(above ``STREAM_FLOOR``) or all of them more than ``TOTAL_INFLATED``. Images are bounded by their
declared size instead (the renderer reads no more of them than Width x Height). Usage:
``pdf_probe.py FILE [MAX_IMAGE_PIXELS]``."""

import base64
import binascii
import json
import os
import sys
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import protocol

protocol.add_site()

import pikepdf  # noqa: E402

#: what makes a PDF act, by the name of what it is shown to a person as
ACTIVE = {"/JavaScript": "javascript", "/JS": "javascript", "/OpenAction": "actions", "/AA": "actions",
          "/Launch": "actions", "/SubmitForm": "actions", "/ImportData": "actions", "/GoToR": "actions",
          "/EmbeddedFile": "attachments", "/EmbeddedFiles": "attachments", "/FileAttachment": "attachments",
          "/RichMedia": "multimedia", "/XFA": "forms", "/AcroForm": "forms"}


STREAM_FLOOR = 8 * 1024 * 1024
STREAM_RATIO = 1000
TOTAL_INFLATED = 256 * 1024 * 1024
CHUNK = 64 * 1024


class OverBudget(Exception):
    pass


def _inflate(data, limit):
    """zlib inflate that stops past ``limit`` bytes of output (a truncated stream gives what it has)."""
    inflater, out, size = zlib.decompressobj(), [], 0
    pending = data
    while pending:
        piece = inflater.decompress(pending, CHUNK)
        size += len(piece)
        if size > limit:
            raise OverBudget()
        out.append(piece)
        pending = inflater.unconsumed_tail
        if inflater.eof or (not piece and not pending):
            break
    return b"".join(out)


def _run_length(data, limit):
    out, pos = bytearray(), 0
    while pos < len(data) and data[pos] != 128:
        n = data[pos]
        if n < 128:
            out += data[pos + 1:pos + 2 + n]
            pos += 2 + n
        else:
            out += data[pos + 1:pos + 2] * (257 - n)
            pos += 2
        if len(out) > limit:
            raise OverBudget()
    return bytes(out)


def _decoded_size(stream, data, limit):
    """The stream's size after its filters, each step bounded by ``limit``; None when a filter cannot be
    undone here (LZW, image codecs): such streams are left to the renderer's own limits."""
    filters = stream.get("/Filter")
    names = [filters] if isinstance(filters, pikepdf.Name) else list(filters or [])
    for name in (str(n) for n in names):
        try:
            if name in ("/FlateDecode", "/Fl"):
                data = _inflate(data, limit)
            elif name in ("/ASCIIHexDecode", "/AHx"):
                hexdigits = bytes(c for c in data.split(b">", 1)[0] if chr(c) in "0123456789abcdefABCDEF")
                data = binascii.unhexlify(hexdigits + b"0" * (len(hexdigits) % 2))
            elif name in ("/ASCII85Decode", "/A85"):
                data = base64.a85decode(data.split(b"~>", 1)[0].replace(b"<~", b""), ignorechars=b" \t\r\n\f\0")
                if len(data) > limit:
                    raise OverBudget()
            elif name in ("/RunLengthDecode", "/RL"):
                data = _run_length(data, limit)
            else:
                return None
        except (zlib.error, binascii.Error, ValueError):
            return None  # broken: the renderer will say so, within its limits
    return len(data)


def check_budget(pdf, max_image_pixels):
    """'stream_ratio', 'inflated_total' or 'image_pixels' when over a budget, else None."""
    total = 0
    for obj in pdf.objects:
        if not isinstance(obj, pikepdf.Stream):
            continue
        if obj.get("/Subtype") == pikepdf.Name.Image:
            try:
                if int(obj.get("/Width", 0)) * int(obj.get("/Height", 0)) > max_image_pixels:
                    return "image_pixels"
            except (TypeError, ValueError):
                return "image_pixels"
            continue
        raw = obj.read_raw_bytes()
        limit = min(max(STREAM_FLOOR, STREAM_RATIO * max(len(raw), 1)), TOTAL_INFLATED - total)
        try:
            size = _decoded_size(obj, raw, limit)
        except OverBudget:
            return "stream_ratio" if limit < TOTAL_INFLATED - total else "inflated_total"
        total += size or 0
    return None


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


def probe(path, max_image_pixels):
    try:
        pdf = pikepdf.open(path)
    except pikepdf.PasswordError:
        return {"password": True}
    found: set[str] = set()
    with pdf:
        over = check_budget(pdf, max_image_pixels)
        if over:
            return {"password": False, "over_budget": over}
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
    json.dump(probe(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 200_000_000), sys.stdout)
