"""The CSV files the bots export, as Excel reads them (bots/runtime/excel.py): pure logic."""

from __future__ import annotations

import csv
import io

import pytest

from bots.runtime.excel import excel_csv, text_cell


@pytest.mark.parametrize("typed", ["=HYPERLINK(\"http://evil\")", "+1", "-2+3", "@SUM(A1)", "\tx", "\rx"])
def test_text_that_would_start_a_formula_stays_text(typed):
    data = excel_csv([["内容"], [text_cell(typed)]])
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))
    assert rows[1] == ["'" + typed]  # Excel shows the apostrophe-prefixed cell as text


def test_japanese_opens_in_excel_and_ordinary_text_is_untouched():
    data = excel_csv([["名前", "ユーザーID"], [text_cell("山田 太郎"), "@yamada:city.example.lg.jp"]])
    assert data.startswith("\ufeff".encode())  # without the BOM Excel reads Shift_JIS
    assert data.decode("utf-8-sig") == "名前,ユーザーID\r\n山田 太郎,@yamada:city.example.lg.jp\r\n"
