"""Searchable, copyable text in rasterized PDFs (issue #20), through the real engine: the jail, a warm
LibreOffice, pdftotext and Tesseract. What a member checks: the sanitized PDF's text found by search
(pdftotext on the output), in the original order, Japanese (horizontal, vertical, full-width) included;
what an administrator checks: nothing of the original's fonts, links or actions rides along, and the
output check refuses a PDF that carries more than the page images and the invisible text.
"""

from __future__ import annotations

import io
import re
import subprocess
import tempfile
from pathlib import Path

import attrs
import corpus_documents as corpus
import pikepdf
import pytest
import pytest_asyncio

from bots.sanitizer.engine import Policies, Sanitizer, textlayer
from bots.sanitizer.engine.verify import problem
from lgwan_chat.core.configcheck.typed import ConfigInvalid

ASYNC = pytest.mark.asyncio(loop_scope="module")

HORIZONTAL = ["住民票の写しの交付申請について", "窓口の受付時間は平日の午前八時三十分から"]
VERTICAL = ["縦書きの案内文です。住民票の写しの交付申請について", "令和六年度の予算案について説明します"]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def engine(tmp_path_factory):
    sanitizer = Sanitizer(Policies(concurrency=1), runtime_dir=tmp_path_factory.mktemp("textlayer"))
    await sanitizer.warm()
    yield sanitizer
    await sanitizer.close()


def poppler(tool: str, data: bytes, *args: str) -> str:
    with tempfile.NamedTemporaryFile(suffix=".pdf") as f:
        f.write(data)
        f.flush()
        argv = [tool, *args, f.name, "-"] if tool == "pdftotext" else [tool, *args, f.name]
        return subprocess.run(argv, capture_output=True, check=True).stdout.decode()


def in_order(text: str, wanted: list[str]) -> bool:
    """Each of ``wanted`` found in ``text`` (spaces and line breaks ignored), one after the other."""
    flat, at = re.sub(r"\s+", "", text), 0
    for item in wanted:
        item = re.sub(r"\s+", "", item)
        found = flat.find(item, at)
        if found < 0:
            return False
        at = found + len(item)
    return True


def keys(result) -> set[str]:
    return {note.key for note in result.limitations}


def office_pdf(docx: bytes, tmp_path) -> bytes:
    """A text PDF made by LibreOffice from ``docx`` (the kind of PDF a municipality receives)."""
    source = tmp_path / "source.docx"
    source.write_bytes(docx)
    subprocess.run(["soffice", f"-env:UserInstallation=file://{tmp_path}/profile", "--headless", "--convert-to",
                    "pdf", "--outdir", str(tmp_path), str(source)], check=True, capture_output=True, timeout=180)
    return (tmp_path / "source.pdf").read_bytes()


@ASYNC
async def test_text_pdf_searchable_in_order(engine):
    result = await engine.sanitize(corpus.text_pdf(3), "資料.pdf")
    assert result.verdict == "sanitized"
    text = poppler("pdftotext", result.outputs[0].data)
    lines = [f"VISIBLE page {p} line {n}: the quick brown fox jumps over the lazy dog"
             for p in (1, 2, 3) for n in range(1, 46)]
    assert in_order(text, lines)
    assert "sanitizer.limit.text_layer" in keys(result)
    assert "sanitizer.limit.text_not_selectable" not in keys(result)
    # words keep their spaces: "the quick brown fox" is searchable as a phrase
    assert "the quick brown fox jumps over the lazy dog" in text


@ASYNC
async def test_japanese_docx_horizontal_and_vertical(engine):
    horizontal = await engine.sanitize(corpus.docx("".join(corpus.paragraph(line) for line in corpus.VERTICAL_LINES)),
                                       "案内.docx")
    vertical = await engine.sanitize(corpus.japanese_docx_vertical(), "縦書き.docx")
    for result in (horizontal, vertical):
        assert result.verdict == "sanitized"
        text = poppler("pdftotext", result.outputs[0].data)
        # full-width letters and digits come back as they were (ＡＢＣ１２３, not ABC123)
        assert in_order(text, list(corpus.VERTICAL_LINES)), text
    # vertical columns are read top to bottom, right column first, each as one line
    lines = [line for line in poppler("pdftotext", vertical.outputs[0].data).splitlines() if line.strip()]
    assert lines[:2] == list(corpus.VERTICAL_LINES)


@ASYNC
async def test_japanese_text_pdf(engine, tmp_path):
    original = office_pdf(corpus.japanese_docx(2), tmp_path)
    result = await engine.sanitize(original, "申請案内.pdf")
    text = poppler("pdftotext", result.outputs[0].data)
    first = [f"第{i}項" for i in range(1, 31)]
    assert in_order(text, first)
    assert corpus.JAPANESE.rstrip("。")[:40] in re.sub(r"\s+", "", text)


@ASYNC
async def test_scanned_pages_read_by_ocr(engine):
    scan = corpus.scanned_pdf([(HORIZONTAL, []), ([], VERTICAL)])
    result = await engine.sanitize(scan, "スキャン.pdf")
    assert result.verdict == "sanitized"
    text = poppler("pdftotext", result.outputs[0].data)
    # OCR may misread a character; the words a member searches for are found, in order, both writings
    assert in_order(text, ["交付申請", "受付時間", "平日", "案内文", "予算案"]), text
    assert {"sanitizer.limit.text_layer", "sanitizer.limit.text_ocr"} <= keys(result)


@ASYNC
async def test_ocr_page_limit_and_off(engine):
    scan = corpus.scanned_pdf([(HORIZONTAL, []), (HORIZONTAL, [])])
    engine.policies = attrs.evolve(engine.policies, ocr_max_pages=1)
    try:
        limited = await engine.sanitize(scan, "スキャン.pdf")
        engine.policies = attrs.evolve(engine.policies, ocr=False)
        off = await engine.sanitize(scan, "スキャン.pdf")
    finally:
        engine.policies = Policies(concurrency=1)
    pages = poppler("pdftotext", limited.outputs[0].data).split("\f")
    assert "交付申請" in pages[0] and not pages[1].strip()
    assert "sanitizer.limit.ocr_skipped" in keys(limited)
    assert [n.params for n in limited.limitations if n.key == "sanitizer.limit.ocr_skipped"] == [{"pages": 1}]
    assert not poppler("pdftotext", off.outputs[0].data).strip()
    assert "sanitizer.limit.text_not_selectable" in keys(off)


@ASYNC
async def test_text_layer_off(engine):
    engine.policies = attrs.evolve(engine.policies, text_layer=False)
    try:
        result = await engine.sanitize(corpus.text_pdf(1), "資料.pdf")
    finally:
        engine.policies = Policies(concurrency=1)
    assert not poppler("pdftotext", result.outputs[0].data).strip()
    assert "sanitizer.limit.text_not_selectable" in keys(result)
    assert "Font" not in poppler("pdffonts", result.outputs[0].data).split("---\n", 1)[-1]


@ASYNC
async def test_nothing_of_the_original_rides_along(engine):
    """Links, actions, attachments and fonts of the original are gone; the text stays searchable."""
    for data in (corpus.linked_pdf(), corpus.active_pdf()):
        result = await engine.sanitize(data, "リンク.pdf")
        out = result.outputs[0].data
        assert "LINKED" in poppler("pdftotext", out) or "VISIBLE" in poppler("pdftotext", out)
        fonts = poppler("pdffonts", out).splitlines()[2:]
        assert [line.split()[0] for line in fonts] == [textlayer.FONT_NAME]  # not Helvetica, only ours
        with pikepdf.open(io.BytesIO(out)) as pdf:
            assert all("/Annots" not in page.obj and "/AA" not in page.obj for page in pdf.pages)
            assert set(pdf.Root.keys()) == {"/Type", "/Pages"}
            program = pdf.pages[0].Resources.Font.F0.DescendantFonts[0].FontDescriptor.FontFile2.read_bytes()
            assert program == textlayer.GLYPHLESS_TTF
        assert b"evil.example" not in out and b"app.alert" not in out


# ---- the output check: exactly the page images and the invisible text layer -------------------------------

@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def sample(engine) -> bytes:
    result = await engine.sanitize(corpus.text_pdf(2), "資料.pdf")
    return result.outputs[0].data


def _changed(data: bytes, change) -> bytes:
    with pikepdf.open(io.BytesIO(data)) as pdf:
        change(pdf)
        buffer = io.BytesIO()
        pdf.save(buffer)
        return buffer.getvalue()


def _content(pdf: pikepdf.Pdf, old: bytes, new: bytes) -> None:
    page = pdf.pages[0].obj
    page.Contents = pdf.make_stream(page.Contents.read_bytes().replace(old, new, 1))


def _helvetica(pdf: pikepdf.Pdf) -> None:
    pdf.pages[0].Resources.Font.F1 = pikepdf.Dictionary(Type=pikepdf.Name.Font, Subtype=pikepdf.Name.Type1,
                                                         BaseFont=pikepdf.Name.Helvetica)


def _foreign_program(pdf: pikepdf.Pdf) -> None:
    descriptor = pdf.pages[0].Resources.Font.F0.DescendantFonts[0].FontDescriptor
    descriptor.FontFile2 = pdf.make_stream(textlayer.GLYPHLESS_TTF + b"\0\0\0\0")


def _link(pdf: pikepdf.Pdf) -> None:
    pdf.pages[0].obj.Annots = [pikepdf.Dictionary(Type=pikepdf.Name.Annot, Subtype=pikepdf.Name.Link,
                                                  Rect=[0, 0, 10, 10], A=pikepdf.Dictionary(
                                                      S=pikepdf.Name.URI, URI=pikepdf.String("https://x.example/")))]


def _unicode_map(pdf: pikepdf.Pdf) -> None:
    font = pdf.pages[0].Resources.Font.F0
    font.ToUnicode = pdf.make_stream(font.ToUnicode.read_bytes().replace(b"endcmap", b"(x) show\nendcmap"))


MUTATIONS = {
    "visible text (render mode 0)": lambda pdf: _content(pdf, b"3 Tr", b"0 Tr"),
    "text drawn as a path": lambda pdf: _content(pdf, b"BT", b"0 0 m 9 9 l S\nBT"),
    "a second image": lambda pdf: _content(pdf, b"Q", b"Q q /Im1 Do Q"),
    "a font of the original": _helvetica,
    "another font program": _foreign_program,
    "a link annotation": _link,
    "an action on the page": lambda pdf: setattr(pdf.pages[0].obj, "AA", pikepdf.Dictionary(
        O=pikepdf.Dictionary(S=pikepdf.Name.URI, URI=pikepdf.String("https://x.example/")))),
    "a document-level key (outline)": lambda pdf: setattr(pdf.Root, "Outlines", pikepdf.Dictionary()),
    "PostScript in the ToUnicode map": _unicode_map,
}


def _with_object(data: bytes, body: bytes) -> bytes:
    """``data`` with one more object nothing refers to (pikepdf would drop it on saving): appended as an
    update, then rewritten by qpdf into one plain file (no /Prev, which the check refuses on its own)."""
    with pikepdf.open(io.BytesIO(data)) as pdf:
        size, root = int(pdf.trailer.Size), pdf.Root.objgen[0]
    previous = int(re.findall(rb"startxref\s+(\d+)", data)[-1])
    obj = b"\n%d 0 obj\n%s\nendobj\n" % (size, body)
    updated = data + obj + (b"xref\n%d 1\n%010d 00000 n \ntrailer\n<< /Size %d /Root %d 0 R /Prev %d >>\n"
                            b"startxref\n%d\n%%%%EOF\n" % (size, len(data) + 1, size + 1, root, previous,
                                                           len(data) + len(obj)))
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "in.pdf").write_bytes(updated)
        subprocess.run(["qpdf", "--preserve-unreferenced", f"{folder}/in.pdf", f"{folder}/out.pdf"], check=True)
        return (Path(folder) / "out.pdf").read_bytes()


@pytest.mark.parametrize("body", [b"<< /S /JavaScript /JS (app.alert(1)) >>", b"<< /Foo 1 >>"])
def test_output_check_refuses_objects_nothing_refers_to(sample, body):
    changed = _with_object(sample, body)
    with pikepdf.open(io.BytesIO(changed)) as pdf:
        assert len(pdf.objects) > len(pikepdf.open(io.BytesIO(sample)).objects)
    assert b"/Prev" not in changed
    assert problem(changed, "application/pdf") is not None


def test_output_check_accepts_the_text_layer(sample):
    assert problem(sample, "application/pdf") is None
    assert textlayer.shape_problems(sample) == []


@pytest.mark.parametrize("what", sorted(MUTATIONS))
def test_output_check_refuses_anything_else(sample, what):
    changed = _changed(sample, MUTATIONS[what])
    assert problem(changed, "application/pdf") is not None, what


def test_jail_answer_is_checked():
    """Words from the jail are data: boxes out of the page, non-numbers and control characters are dropped."""
    raw = [[0.1, 0.1, 0.2, 0.2, False, "ok"], [0.1, 0.1, 5, 0.2, False, "outside"], ["a", 0, 1, 1, False, "nan"],
           [0.1, 0.1, 0.2, 0.2, True, "右\u202eから\x00"], [0.2, 0.2, 0.1, 0.3, False, "inverted"], "junk",
           [0.1, 0.1, 0.2, 0.2, False, {"not": "text"}], [float("nan"), 0, 1, 1, False, "nan"]]
    runs = textlayer.runs(raw)
    assert [(r.text, r.vertical) for r in runs] == [("ok", False), ("右 から", True)]


def test_policy_keys():
    policies = Policies.from_options({"text_layer": False, "ocr": False, "ocr_languages": "jpn+jpn_vert+eng",
                                      "ocr_max_pages": 5})
    assert (policies.text_layer, policies.ocr, policies.ocr_languages, policies.ocr_max_pages) == \
        (False, False, "jpn+jpn_vert+eng", 5)
    defaults = Policies()
    assert (defaults.text_layer, defaults.ocr, defaults.ocr_languages) == (True, True, "jpn+eng")
    with pytest.raises(ConfigInvalid) as e:
        Policies.from_options({"ocr_languages": "jpn; rm -rf /"})
    issue = e.value.issues[0]
    assert issue.path == ("ocr_languages",)
    assert "jpn+eng" in issue.message("ja") and "jpn+eng" in issue.message("en")




@pytest.mark.parametrize("guide", ["docs/admin-guide.ja.md", "docs/admin-guide.en.md"])
def test_admin_guide_lists_the_keys_with_their_defaults(guide):
    text = (Path(__file__).resolve().parent.parent / guide).read_text(encoding="utf-8")
    defaults = Policies()
    for name in ("text_layer", "ocr", "ocr_languages", "ocr_max_pages"):
        value = getattr(defaults, name)
        shown = str(value).lower() if isinstance(value, bool) else str(value)
        assert re.search(rf"^\| `engine\.{name}` \|[^|]*\| `{re.escape(shown)}` \|", text, re.M), name


def test_vertical_writing_is_told_from_horizontal_text_on_a_grid():
    """The jailed worker's regrouping (pure logic, also run through LibreOffice above): single CJK glyphs
    stacked in tight columns are columns read right to left; the same glyphs side by side on a grid with
    tight leading stay horizontal (left in the order pdftotext gives)."""
    import importlib
    import sys
    workers = str(Path(__file__).resolve().parent.parent / "bots" / "sanitizer" / "engine" / "workers")
    sys.path.insert(0, workers)
    try:
        words = importlib.import_module("pdf_words")
    finally:
        sys.path.remove(workers)
    size = 10.0

    def grid(columns: list[str], x_pitch: float, y_pitch: float) -> list:
        return [([500 - c * x_pitch, 50 + r * y_pitch, 500 - c * x_pitch + size, 50 + r * y_pitch + size], ch)
                for c, column in enumerate(columns) for r, ch in enumerate(column)]

    vertical = words._vertical_columns(grid(["縦書きです", "二列目"], x_pitch=16, y_pitch=10))
    assert [(run[4], run[5]) for run in vertical] == [(True, "縦書きです"), (True, "二列目")]
    # horizontal text set on a grid, characters side by side (pitch 10) and lines 10.5 apart
    assert words._vertical_columns(grid(["横一", "書行"], x_pitch=10, y_pitch=10.5)) is None
    # ordinary leading between horizontal lines
    assert words._vertical_columns(grid(["横一", "書行"], x_pitch=12, y_pitch=16)) is None


def test_photos_are_not_sent_to_ocr(tmp_path):
    """OCR is asked only for pages that look like text (a scan): a photo page (mostly mid-tones) is not,
    or every page of a photo PDF would cost seconds of Tesseract for nothing."""
    from PIL import Image, ImageDraw

    from bots.sanitizer.engine import pdf
    photo = Image.merge("RGB", [Image.effect_noise((600, 400), 60)] * 3)
    scan = Image.new("RGB", (600, 400), (255, 255, 255))
    ImageDraw.Draw(scan).text((20, 20), "住民票の写し\n" * 10, fill=(0, 0, 0))
    files = []
    for name, image in (("photo", photo), ("scan", scan)):
        path = tmp_path / f"{name}.ppm"
        image.save(path)
        files.append(path)
    assert [page.text_like for page in pdf._compress(files, 50)] == [False, True]
