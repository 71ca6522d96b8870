"""Text and CSV: decoded (UTF-8, UTF-16 with BOM, EUC-JP, CP932), stripped of control characters and
written back as UTF-8.

A CSV is parsed and written again, every cell that a spreadsheet would run as a formula (``=``, ``+``,
``-``, ``@``, tab, CR first: ``=cmd|'/C calc'!A0``) prefixed with ``'``. It is written in UTF-8 WITH a
BOM and CRLF, which Excel needs to open Japanese CSV correctly. Plain numbers such as ``-5`` or
``+1.5e3`` are no formulas and stay as they are.

Only the standard library's codecs and csv module read the bytes: no native parser, so no sandbox.
"""

from __future__ import annotations

import asyncio
import codecs
import csv
import io
import re
from pathlib import Path
from typing import TYPE_CHECKING

from .filenames import clean, output_name
from .result import Note, Output, Product, Refusal

if TYPE_CHECKING:
    from .engine import Job

#: strict decodes in this order: BOMs first; then UTF-8 (ASCII is UTF-8); then EUC-JP before CP932,
#: because EUC-JP bytes are nearly always valid CP932 too (read as half-width katakana) while CP932
#: bytes (leads 0x81-0x9F, trails below 0xA1) are rarely valid EUC-JP
BOMS = ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))
CANDIDATES = ("utf-8", "euc_jp", "cp932")
#: names shown in the report
ENCODING_NAMES = {"utf-8": "UTF-8", "utf-8-sig": "UTF-8", "utf-16": "UTF-16", "euc_jp": "EUC-JP",
                  "cp932": "Shift_JIS (CP932)"}
#: C0 and C1 controls and DEL, but tab and newline (CR is folded into newlines before)
CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")
HALF_WIDTH_KATAKANA = re.compile("[\uff61-\uff9f]")
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
NUMBER = re.compile(r"[+-]?(\d[\d,]*)?\.?\d+([eE][+-]?\d+)?")

csv.field_size_limit(256 * 1024 * 1024)  # a cell may be as large as the file; the file size is capped


def decode(data: bytes) -> tuple[str, str]:
    """(text, codec) or Refusal for bytes that are no text in a known encoding."""
    for bom, codec in BOMS:
        if data.startswith(bom):
            try:
                return data.decode(codec), codec
            except UnicodeDecodeError:
                break
    else:
        decoded = []
        for codec in CANDIDATES:
            try:
                decoded.append((data.decode(codec), codec))
            except UnicodeDecodeError:
                continue
            if codec == "utf-8":
                return decoded[0]
        if decoded:
            # both Japanese codecs read it: EUC-JP unless that reading is full of half-width katakana
            return min(decoded, key=lambda d: len(HALF_WIDTH_KATAKANA.findall(d[0])))
    raise Refusal("sanitizer.refused.undecodable", "sanitizer.instead.utf8")


def clean_text(text: str) -> tuple[str, int]:
    """Newlines as ``\\n``, control characters removed; and how many were removed."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").lstrip("\ufeff")
    cleaned, removed = CONTROLS.subn("", text)
    return cleaned, removed


def neutralise(cell: str) -> tuple[str, bool]:
    if cell.startswith(FORMULA_START) and not NUMBER.fullmatch(cell):
        return "'" + cell, True
    return cell, False


def _sanitize(data: bytes, filename: str, is_csv: bool) -> Product:
    text, codec = decode(data)
    text, controls = clean_text(text)
    if not text.strip():
        raise Refusal("sanitizer.refused.empty")
    removed: list[Note] = []
    limitations: list[Note] = []
    if controls:
        removed.append(Note("sanitizer.removed.control_chars", {"count": controls}))
    if codec not in ("utf-8", "utf-8-sig"):
        limitations.append(Note("sanitizer.limit.encoding_converted", {"encoding": ENCODING_NAMES[codec]}))
    if not is_csv:
        output = Output(text.replace("\n", "\r\n").encode("utf-8"), output_name(filename, ".txt"), "text/plain")
        return Product(outputs=(output,), removed=tuple(removed), limitations=tuple(limitations))
    tsv = Path(clean(filename)).suffix.lower() == ".tsv"
    delimiter = "\t" if tsv else ","
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter, lineterminator="\r\n")
    formulas = 0
    try:
        for row in csv.reader(io.StringIO(text, newline=""), delimiter=delimiter):
            cells = [neutralise(cell) for cell in row]
            formulas += sum(changed for _, changed in cells)
            writer.writerow([cell for cell, _ in cells])
    except csv.Error:
        raise Refusal("sanitizer.refused.csv_broken", "sanitizer.instead.utf8") from None
    if formulas:
        removed.append(Note("sanitizer.removed.formulas", {"count": formulas}))
    output = Output(out.getvalue().encode("utf-8-sig"), output_name(filename, ".tsv" if tsv else ".csv"),
                    "text/tab-separated-values" if tsv else "text/csv")
    return Product(outputs=(output,), removed=tuple(removed), limitations=tuple(limitations))


async def sanitize(job: Job) -> Product:
    # a large CSV takes seconds of pure Python: off the event loop
    return await asyncio.to_thread(_sanitize, job.data, job.filename, job.detected.kind == "csv")
