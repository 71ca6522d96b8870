"""Budgets checked before the work: cheap reads that bound what a file can make the engine do, so that a
bomb is refused in a fraction of a second instead of at the timeout. They run inside the sandbox
(their callers do: office.prepare, archive.unpack, workers/image_worker.py, workers/pdf_probe.py).

What each bounds (the same figures are in the admin guide, §4.7):
  - an Office/ODF package: each member inflated with its real bytes counted (headers lie), at most
    ``MAX_XML_PART_MB`` for an XML part (a 220 KB docx inflating to 150 MB of XML is refused after
    reading 64 MB, before any XML parser sees it), all together at most the archive budget, and each
    at most ``PACKAGE_RATIO`` times its compressed size above ``RATIO_FLOOR`` (real documents inflate
    5-30 times, one page repeated 300 times about 110 times);
  - spreadsheet formulas (cells, defined names, conditional formats, data validation, charts): at
    most Excel's own 8,192 characters each, found by a linear scan of the XML bytes before parsing;
  - ZIP members: the same ratio, the archive budget (archive.py);
  - JPEG: the number of scans of a progressive JPEG (``workers/image_worker.py``: each scan is one
    more pass over every pixel; 30,000 scans of 7000x7000 take minutes);
  - PDF: every stream's inflated size before rendering (``workers/pdf_probe.py``: a 14 KB PDF may
    hold a doubly compressed 8 GiB content stream).
"""

from __future__ import annotations

import html
import io
import re
import zipfile

from .result import Refusal

#: below this a member may expand any number of times (a page of spaces compresses 1000x)
RATIO_FLOOR = 1024 * 1024
#: an XML part of an Office/ODF package larger than this is refused unparsed (Excel's largest sheets
#: of a million rows are larger, but cannot be rendered within any page limit either)
MAX_XML_PART_MB = 64
CHUNK = 1024 * 1024
PACKAGE_RATIO = 1000
#: Excel's longest formula, in characters
MAX_FORMULA_CHARS = 8192
#: the start tag of an element holding a formula, any prefix: <f>, <x:f t="shared">, <formula1>,
#: <definedName name="..">. ``[^<>]*`` stops at the next tag: every byte is looked at a bounded number of times
FORMULA_TAG = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?(?:f|formula|formula1|formula2|definedName)(?:\s[^<>]*)?>")
UNTRUSTED_PATTERNS = (FORMULA_TAG,)


def longest_formula(xml: bytes) -> int:
    """Characters of the longest formula in an XML part (entities count as one), without parsing it."""
    longest = 0
    for tag in FORMULA_TAG.finditer(xml):
        end = xml.find(b"<", tag.end())
        raw = xml[tag.end():end if end >= 0 else len(xml)]
        if len(raw) > 10 * MAX_FORMULA_CHARS:  # longer than any escaping of a legal formula
            return len(raw)
        if len(raw) > MAX_FORMULA_CHARS:
            longest = max(longest, len(html.unescape(raw.decode("utf-8", "replace"))))
        else:
            longest = max(longest, len(raw))
    return longest


def inflated_size(archive: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int, ratio: int,
                  archive_size: int, keep: list[bytes] | None = None) -> int:
    """The member's real size, read and counted (never taken from its header; its chunks appended to
    ``keep`` when given); raises ``OverflowError`` ("ratio" or "size") as soon as it goes over
    ``limit`` or ``ratio`` times its compressed size."""
    compressed = max(1, min(info.compress_size, archive_size))  # a header may claim more than there is
    size = 0
    with archive.open(info) as member:
        while chunk := member.read(CHUNK):
            size += len(chunk)
            if size > limit:
                raise OverflowError("size")
            if size > RATIO_FLOOR and size > ratio * compressed:
                raise OverflowError("ratio")
            if keep is not None:
                keep.append(chunk)
    return size


def check_package(data: bytes, max_total_bytes: int, max_part_bytes: int = MAX_XML_PART_MB * 1024 * 1024) -> None:
    """An Office/ODF package's members within the budgets, or a Refusal saying which was exceeded."""
    total = 0
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            for info in archive.infolist():
                if info.flag_bits & 0x1 or info.is_dir():
                    continue  # encryption is refused by the stripper with its own reason
                try:
                    total += inflated_size(archive, info, min(max_part_bytes, max_total_bytes - total),
                                           PACKAGE_RATIO, len(data))
                except OverflowError as e:
                    if str(e) == "ratio":
                        raise Refusal("sanitizer.refused.zip_ratio", "sanitizer.instead.smaller",
                                      limit=PACKAGE_RATIO) from None
                    if max_total_bytes - total < max_part_bytes:
                        raise Refusal("sanitizer.refused.too_large", "sanitizer.instead.smaller",
                                      limit_mb=max_total_bytes // (1024 * 1024)) from None
                    raise Refusal("sanitizer.refused.part_too_large", "sanitizer.instead.smaller",
                                  limit_mb=max_part_bytes // (1024 * 1024)) from None
                # every member, whatever its name (OPC names any part anything: ``sheet1.XML``, ``x.bin``)
                if longest_formula(archive.read(info)) > MAX_FORMULA_CHARS:
                    raise Refusal("sanitizer.refused.formula_too_long", "sanitizer.instead.pdf",
                                  limit=MAX_FORMULA_CHARS)
    except Refusal:
        raise
    except Exception:  # BadZipFile, zlib.error, EOFError...: zipfile raises more than it documents
        raise Refusal("sanitizer.refused.broken", "sanitizer.instead.pdf") from None
