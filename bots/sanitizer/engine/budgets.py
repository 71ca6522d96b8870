"""Budgets checked before the work: cheap reads that bound what a file can make the engine do, so that a
bomb is refused in a fraction of a second instead of at the timeout. They run inside the sandbox
(their callers do: office.prepare, archive.unpack, workers/image_worker.py, workers/pdf_probe.py).

What each bounds (the same figures are in the admin guide, §4.7):
  - an Office/ODF package: each member inflated with its real bytes counted (headers lie), at most
    ``MAX_XML_PART_MB`` for an XML part (a 220 KB docx inflating to 150 MB of XML is refused after
    reading 64 MB, before any XML parser sees it) and at most ``ratio`` times its compressed size
    above ``RATIO_FLOOR``;
  - ZIP members: the same ratio, the archive budget (archive.py);
  - JPEG: the number of scans of a progressive JPEG (``workers/image_worker.py``: each scan is one
    more pass over every pixel; 30,000 scans of 7000x7000 take minutes);
  - PDF: every stream's inflated size before rendering (``workers/pdf_probe.py``: a 14 KB PDF may
    hold a doubly compressed 8 GiB content stream).
"""

from __future__ import annotations

import io
import zipfile

from .result import Refusal

#: below this a member may expand any number of times (a page of spaces compresses 1000x)
RATIO_FLOOR = 1024 * 1024
#: an XML part of an Office/ODF package larger than this is refused unparsed (Excel's largest sheets
#: of a million rows are larger, but cannot be rendered within any page limit either)
MAX_XML_PART_MB = 64
CHUNK = 1024 * 1024


def inflated_size(archive: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int, ratio: int,
                  archive_size: int) -> int:
    """The member's real size, read and counted (never taken from its header); raises ``OverflowError``
    ("ratio" or "size") as soon as it goes over ``limit`` or ``ratio`` times its compressed size."""
    compressed = max(1, min(info.compress_size, archive_size))
    size = 0
    with archive.open(info) as member:
        while chunk := member.read(CHUNK):
            size += len(chunk)
            if size > limit:
                raise OverflowError("size")
            if size > RATIO_FLOOR and size > ratio * compressed:
                raise OverflowError("ratio")
    return size


def check_package(data: bytes, max_ratio: int, max_part_bytes: int = MAX_XML_PART_MB * 1024 * 1024) -> None:
    """An Office/ODF package's members within the budgets, or a Refusal saying which was exceeded."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            for info in archive.infolist():
                if info.flag_bits & 0x1 or info.is_dir():
                    continue  # encryption is refused by the stripper with its own reason
                try:
                    inflated_size(archive, info, max_part_bytes, max_ratio, len(data))
                except OverflowError as e:
                    if str(e) == "ratio":
                        raise Refusal("sanitizer.refused.zip_ratio", "sanitizer.instead.smaller",
                                      limit=max_ratio) from None
                    raise Refusal("sanitizer.refused.part_too_large", "sanitizer.instead.smaller",
                                  limit_mb=max_part_bytes // (1024 * 1024)) from None
    except Refusal:
        raise
    except Exception:  # BadZipFile, zlib.error, EOFError...: zipfile raises more than it documents
        raise Refusal("sanitizer.refused.broken", "sanitizer.instead.pdf") from None
