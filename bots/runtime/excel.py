"""CSV files for Excel, the one spreadsheet every municipal office has: UTF-8 with a BOM (without
it Excel reads Japanese as Shift_JIS and garbles it), CRLF line ends, and cells of user text that
Excel does not run as formulas (CSV injection: ``=HYPERLINK(...)``, ``@SUM(...)``)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence

#: what makes Excel read a cell as a formula (OWASP "CSV injection"); tab and CR start DDE payloads
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def text_cell(value: str) -> str:
    """User text as a cell Excel shows as text: a leading ``'`` when it would start a formula."""
    return "'" + value if value[:1] in FORMULA_STARTS else value


def excel_csv(rows: Iterable[Sequence[object]]) -> bytes:
    """The file's bytes. Cells are written as given: wrap user text in :func:`text_cell` (not
    Matrix IDs, which start with ``@`` and are not text a person wrote)."""
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows(rows)
    return ("\ufeff" + out.getvalue()).encode("utf-8")
