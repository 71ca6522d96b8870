"""Text and CSV: decoded (UTF-8, UTF-16 with BOM, EUC-JP, CP932), stripped of control characters and
written back as UTF-8.

A CSV is parsed and written again, every cell that a spreadsheet would run as a formula (``=``, ``+``,
``-``, ``@``, tab, CR first: ``=cmd|'/C calc'!A0``) prefixed with ``'``. It is written in UTF-8 WITH a
BOM and CRLF, which Excel needs to open Japanese CSV correctly. Plain numbers such as ``-5`` or
``+1.5e3`` are no formulas and stay as they are.

Excel reads a first line ``sep=;`` as "the cells are separated by ;" (and does not show it): such a line
is taken off and the file is read with that separator, so that the cells checked here are the cells
Excel would show; the output is written with commas and no directive (a first cell that reads like one
is quoted). A cell longer than Excel's own limit (32,767 characters) refuses the file.

Runs inside the sandbox (workers/parse_worker.py calls :func:`run`); the host only sends the bytes.
Every pattern here is applied to untrusted text: written without nested or overlapping quantifiers
(linear time), listed in ``UNTRUSTED_PATTERNS`` and checked by tests/test_sanitizer_patterns.py.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from pathlib import Path
from typing import TYPE_CHECKING

from .filenames import clean, output_name
from .result import Note, Output, Product, Refusal
from .sandbox import SandboxError

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
#: a number, not a formula: ``-5``, ``+1,000``, ``-.5``, ``1.5e3``. The digits before the point and the
#: digits after it are separate runs, so no run of digits can be split two ways (linear, no backtracking)
NUMBER = re.compile(r"[+-]?(?:\d(?:[\d,]*\d)?(?:\.\d+)?|\.\d+)(?:[eE][+-]?\d+)?")
#: Excel's separator directive, a first line of its own: ``sep=;``
SEPARATOR_LINE = re.compile(r"sep=(.)\n?", re.I)
#: the longest cell Excel holds (its specification's limit): longer ones are no spreadsheet
MAX_CELL_CHARS = 32_767
UNTRUSTED_PATTERNS = (CONTROLS, HALF_WIDTH_KATAKANA, NUMBER, SEPARATOR_LINE)

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


def separator(text: str, default: str) -> tuple[str, str, bool]:
    """(text without a ``sep=`` first line, the separator to read with, whether there was one)."""
    first = text.split("\n", 1)[0]
    found = SEPARATOR_LINE.fullmatch(first)
    if found is None:
        return text, default, False
    sep = found[1]
    if sep in ('"', "\r") or sep.isalnum():
        raise Refusal("sanitizer.refused.csv_separator", "sanitizer.instead.utf8", separator=repr(sep))
    return text[len(first) + 1:], sep, True


def run(data: bytes, filename: str, is_csv: bool) -> Product:
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
    text, reading, directive = separator(text, delimiter)
    if directive:
        removed.append(Note("sanitizer.removed.csv_separator", {"separator": reading}))
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter, lineterminator="\r\n")
    formulas = 0
    try:
        for number, row in enumerate(csv.reader(io.StringIO(text, newline=""), delimiter=reading)):
            if any(len(cell) > MAX_CELL_CHARS for cell in row):
                raise Refusal("sanitizer.refused.csv_cell_too_long", "sanitizer.instead.utf8", limit=MAX_CELL_CHARS)
            cells = [neutralise(cell) for cell in row]
            formulas += sum(changed for _, changed in cells)
            row = [cell for cell, _ in cells]
            if number == 0 and row and row[0][:4].lower() == "sep=":
                # a first cell reading "sep=x" would become Excel's directive: quoted, it is a cell
                csv.writer(out, delimiter=delimiter, lineterminator="\r\n", quoting=csv.QUOTE_ALL).writerow(row)
            else:
                writer.writerow(row)
    except csv.Error:
        raise Refusal("sanitizer.refused.csv_broken", "sanitizer.instead.utf8") from None
    if formulas:
        removed.append(Note("sanitizer.removed.formulas", {"count": formulas}))
    output = Output(out.getvalue().encode("utf-8-sig"), output_name(filename, ".tsv" if tsv else ".csv"),
                    "text/tab-separated-values" if tsv else "text/csv")
    return Product(outputs=(output,), removed=tuple(removed), limitations=tuple(limitations))


async def sanitize(job: Job) -> Product:
    from . import jail
    answer, data = await jail.call(job.engine, "text", job.data, job.remaining(), filename=job.filename,
                                   csv=job.detected.kind == "csv")
    mimetype = answer.get("mimetype")
    if mimetype not in ("text/plain", "text/csv", "text/tab-separated-values") or not data:
        raise SandboxError(f"text worker answered {answer!r}"[:300])
    # the name is made here again: the worker's answer is untrusted
    extension = {"text/plain": ".txt", "text/csv": ".csv", "text/tab-separated-values": ".tsv"}[mimetype]
    check = answer.get("check")
    return Product(outputs=(Output(data, output_name(job.filename, extension), mimetype),),
                   removed=jail.notes(answer.get("removed")), limitations=jail.notes(answer.get("limitations")),
                   checks=(check if isinstance(check, dict) else None,))
