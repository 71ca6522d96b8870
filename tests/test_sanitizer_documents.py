"""PDF and Office sanitization against the threat corpus, with the real sandbox and a real LibreOffice.

One engine per module (LibreOffice starts once): ``engine`` rasterizes Office files and writes a text
companion; ``stripping`` delivers stripped OOXML (strip-active) and never starts LibreOffice. The
renderer of ``engine`` may read one host folder (``visible``), so that a linked file would be
rendered if the stripping failed: the sandbox alone must not be what passes these tests.
"""

from __future__ import annotations

import asyncio
import io
import os
import re
import signal
import socket
import subprocess
import tempfile
import zipfile
from pathlib import Path

import corpus_documents as corpus
import pytest
import pytest_asyncio
from PIL import Image

from bots.sanitizer.engine import Policies, Sanitizer, office, ooxml_verify
from bots.sanitizer.engine.detect import detect
from bots.sanitizer.engine.sandbox import Sandbox
from bots.sanitizer.engine.verify import pdf_active_content

pytestmark = pytest.mark.asyncio(loop_scope="module")

STRIP = {**Policies().policies, "office": "strip-active"}


@pytest.fixture(scope="module")
def visible(tmp_path_factory) -> Path:
    """A host folder the renderer is allowed to read in these tests (see the module's docstring)."""
    folder = tmp_path_factory.mktemp("visible")
    Image.new("RGB", (200, 100), (255, 0, 0)).save(folder / "red.png")
    return folder


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def engine(tmp_path_factory, visible):
    runtime = tmp_path_factory.mktemp("sanitizer")
    sanitizer = Sanitizer(Policies(text_companion=True, concurrency=1), runtime_dir=runtime)
    sanitizer.sandbox = Sandbox(runtime / "sandbox", extra_ro=(str(visible),))
    await sanitizer.warm()
    yield sanitizer
    await sanitizer.close()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def stripping(tmp_path_factory):
    sanitizer = Sanitizer(Policies(policies=STRIP), runtime_dir=tmp_path_factory.mktemp("stripping"))
    yield sanitizer
    await sanitizer.close()


def removed(result) -> set[str]:
    return {n.key.rsplit(".", 1)[-1] for n in result.removed}


def package(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        return {name: z.read(name) for name in z.namelist()}


def poppler(tool: str, data: bytes) -> str:
    """What a poppler tool (pdftotext, pdfinfo, pdffonts) says about a PDF."""
    with tempfile.NamedTemporaryFile(suffix=".pdf") as f:
        f.write(data)
        f.flush()
        args = [tool, f.name, "-"] if tool == "pdftotext" else [tool, f.name]
        return subprocess.run(args, capture_output=True, check=True).stdout.decode()


def pages(data: bytes, dpi: int = 50) -> list[Image.Image]:
    with tempfile.TemporaryDirectory() as folder:
        subprocess.run(["pdftoppm", "-r", str(dpi), "-png", "-", f"{folder}/p"], input=data, check=True)
        return [Image.open(path).convert("RGB") for path in sorted(Path(folder).iterdir())]


def ink(image: Image.Image) -> float:
    """Share of pixels that are not white."""
    gray = image.convert("L")
    return sum(gray.histogram()[:200]) / (gray.width * gray.height)


def red(image: Image.Image) -> int:
    """Pixels of the linked image's red."""
    raw = image.tobytes()
    return sum(1 for i in range(0, len(raw), 3) if raw[i] > 200 and raw[i + 1] < 80 and raw[i + 2] < 80)


async def rasterized(engine, data: bytes, name: str):
    result = await engine.sanitize(data, name)
    assert result.ok, result.report("en")
    assert result.outputs[0].mimetype == "application/pdf"
    assert pdf_active_content(result.outputs[0].data) == []
    return result


async def stripped(stripping, data: bytes, name: str):
    result = await stripping.sanitize(data, name)
    assert result.ok, result.report("en")
    assert ooxml_verify.verify_package(result.outputs[0].data) == []
    return result, package(result.outputs[0].data)


# --- OOXML threats ---

async def test_vba_project_is_removed_and_docm_becomes_docx(engine, stripping):
    docm = corpus.docm_with_vba()
    assert any("vbaproject" in p for p in ooxml_verify.verify_package(docm))

    result = await rasterized(engine, docm, "請求書.docm")
    assert "macros" in removed(result)
    assert "マクロ" in result.report("ja")

    result, parts = await stripped(stripping, docm, "請求書.docm")
    assert result.outputs[0].filename == "請求書.docx"
    assert result.outputs[0].mimetype == detect(result.outputs[0].data).mime == \
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
    assert not [n for n in parts if "vba" in n.lower()]
    assert b"macroEnabled" not in parts["[Content_Types].xml"]
    assert b"vbaProject" not in parts["word/_rels/document.xml.rels"]
    # what was stripped is still a document LibreOffice reads, with its text
    again = await rasterized(engine, result.outputs[0].data, "請求書.docx")
    assert "マクロ付き文書" in again.outputs[1].data.decode()


async def test_remote_template_is_removed_and_never_fetched(engine, stripping):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    listener.setblocking(False)
    docx = corpus.docx_remote_template(f"http://127.0.0.1:{listener.getsockname()[1]}/evil.dotm")
    try:
        result = await rasterized(engine, docx, "案内.docx")
        _, parts = await stripped(stripping, docx, "案内.docx")
        await asyncio.sleep(0.2)
        with pytest.raises(BlockingIOError):
            listener.accept()
    finally:
        listener.close()
    assert "external_template" in removed(result)
    assert b"attachedTemplate" not in parts["word/settings.xml"]
    assert b"127.0.0.1" not in b"".join(parts.values())


async def test_linked_local_file_is_not_rendered(engine, stripping, visible):
    docx = corpus.docx_linked_image(f"file://{visible}/red.png")
    # Control: left in, the link is followed by this very renderer (it may read ``visible``).
    async with office._pool(engine).worker() as worker:
        _, unstripped = await worker.call({"ext": "docx"}, docx, 60)
    assert max(red(p) for p in pages(unstripped)) > 500

    result = await rasterized(engine, docx, "リンク.docx")
    assert "external_links" in removed(result)
    assert max(red(p) for p in pages(result.outputs[0].data)) == 0
    _, parts = await stripped(stripping, docx, "リンク.docx")
    assert b"red.png" not in b"".join(parts.values())
    assert b"r:link" not in parts["word/document.xml"]


async def test_dde_fields_lose_their_command_and_keep_their_text(engine, stripping):
    docx = corpus.docx_dde()
    result = await rasterized(engine, docx, "dde.docx")
    assert "dde" in removed(result)
    assert "dde-result" in result.outputs[1].data.decode()

    _, parts = await stripped(stripping, docx, "dde.docx")
    document = parts["word/document.xml"].decode()
    assert not re.search(r"cmd\.exe|calc|notepad", document, re.I)
    assert not re.search(r"<w:instrText[^>]*>[^<]|w:instr=\"[^\"]", document)  # no field instruction left
    assert "dde-result" in document and "simple" in document


async def test_ole_objects_and_activex_are_removed(engine, stripping):
    docx = corpus.docx_ole_activex()
    result = await rasterized(engine, docx, "ole.docx")
    assert {"ole_objects", "activex"} <= removed(result)

    _, parts = await stripped(stripping, docx, "ole.docx")
    assert not [n for n in parts if "embeddings/" in n or "activeX" in n]
    document = parts["word/document.xml"].decode()
    assert "OLEObject" not in document and "w:control" not in document
    assert all(b"oleObject" not in v and b"activeX" not in v for k, v in parts.items() if k.endswith(".rels"))


async def test_excel4_macro_sheet_and_dde_formula_are_removed(engine, stripping):
    xlsm = corpus.xlsm_macrosheet()
    result = await rasterized(engine, xlsm, "集計.xlsm")
    assert {"excel4_macros", "dde"} <= removed(result)
    assert "請求書" in result.outputs[1].data.decode()

    result, parts = await stripped(stripping, xlsm, "集計.xlsm")
    assert result.outputs[0].filename == "集計.xlsx"
    assert not [n for n in parts if "macrosheets" in n]
    workbook = parts["xl/workbook.xml"].decode()
    assert "Macro1" not in workbook and "Auto_Open" not in workbook
    sheet = parts["xl/worksheets/sheet1.xml"].decode()
    assert "cmd" not in sheet and "<f>" not in sheet and "<v>0</v>" in sheet  # cached value kept


async def test_vba_found_by_its_relationship_whatever_its_name(stripping):
    result, parts = await stripped(stripping, corpus.docx_disguised_vba(), "偽装.docm")
    assert "macros" in removed(result)
    assert "word/media/image9.png" not in parts
    assert b"vbaProject" not in parts["word/_rels/document.xml.rels"]


async def test_web_links_kept_program_links_and_link_tricks_removed(stripping):
    result, parts = await stripped(stripping, corpus.docx_links("http://127.0.0.1:9/track.png"), "リンク集.docx")
    rels, document = parts["word/_rels/document.xml.rels"].decode(), parts["word/document.xml"].decode()
    assert "https://www.city.example.lg.jp/" in rels and 'r:id="rIdWeb"' in document  # a web link still works
    assert "calc.exe" not in rels and "RUN-LINK" in document  # the text stays, the link goes
    assert "r:link" not in document  # a hyperlink's URL used as an image: not fetched
    assert "external_links" in removed(result)


async def test_stripping_keeps_namespace_declarations_office_needs(stripping):
    _, parts = await stripped(stripping, corpus.docx_remote_template("http://127.0.0.1:9/t.dotm"), "a.docx")
    settings = parts["word/settings.xml"].decode()
    # mc:Ignorable names w14: Word refuses the file if w14 is not declared, even when unused
    assert 'mc:Ignorable="w14"' in settings and "xmlns:w14=" in settings
    types = parts["[Content_Types].xml"].decode()
    assert types.count("<Types xmlns=") == 1  # the default namespace kept, not renamed ns0


async def test_ooxml_is_recognised_whatever_the_order_of_its_members(engine):
    members = package(corpus.docx())
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        for name in sorted(members, reverse=True):  # [Content_Types].xml last
            z.writestr(name, members[name])
    assert detect(buffer.getvalue()).kind == "office"


async def test_odf_macro_library_is_removed_and_encrypted_odf_refused(engine):
    result = await rasterized(engine, corpus.odt("ODF-VISIBLE", macros=True), "議事録.odt")
    assert "macros" in removed(result)
    assert "ODF-VISIBLE" in result.outputs[1].data.decode()

    result = await engine.sanitize(corpus.odt(encrypted=True), "秘密.odt")
    assert result.reason.key == "sanitizer.refused.encrypted" and not result.outputs


async def test_rtf_and_legacy_word_are_rasterized_also_under_strip_active(engine, stripping, tmp_path):
    # a .doc as LibreOffice writes one (no Word here to write one with macros)
    (tmp_path / "legacy.docx").write_bytes(corpus.docx(corpus.paragraph("LEGACY-VISIBLE")))
    subprocess.run(["soffice", f"-env:UserInstallation=file://{tmp_path}/profile", "--headless", "--convert-to", "doc",
                    "--outdir", str(tmp_path), str(tmp_path / "legacy.docx")], check=True, capture_output=True,
                   timeout=120)
    doc = (tmp_path / "legacy.doc").read_bytes()
    assert detect(doc).mime == "application/msword"
    for data, name, text in ((doc, "古い.doc", "LEGACY-VISIBLE"), (corpus.rtf(), "文書.rtf", "RTF-VISIBLE")):
        result = await rasterized(engine, data, name)
        assert text in result.outputs[1].data.decode()
        # strip-active cannot rewrite these formats: they are rasterized, and the person is told
        result = await stripping.sanitize(data, name)
        assert result.ok and result.outputs[0].mimetype == "application/pdf", result.report("en")
        assert "sanitizer.limit.rasterized_instead" in {n.key for n in result.limitations}


async def test_strict_ooxml_is_rasterized_under_strip_active(stripping):
    # Strict's namespaces are not the ones the field and formula checks read: never delivered as it is
    result = await stripping.sanitize(corpus.strict_docx(), "strict.docx")
    assert result.ok and result.outputs[0].mimetype == "application/pdf", result.report("en")
    assert "sanitizer.limit.rasterized_instead" in {n.key for n in result.limitations}


# --- PDF threats ---

async def test_pdf_scripts_actions_and_attachments_are_gone_but_the_text_is_visible(engine):
    original = corpus.active_pdf()
    assert {"/JavaScript", "/OpenAction", "/AA", "/Launch", "/EmbeddedFiles"} <= set(pdf_active_content(original))

    result = await rasterized(engine, original, "通知.pdf")
    assert {"javascript", "actions", "attachments"} <= removed(result)
    image_pdf = result.outputs[0].data
    # pixels and the invisible text layer (issue #20) only: the text is searchable, in our font alone
    assert "VISIBLE page 2 line 3" in poppler("pdftotext", image_pdf)
    assert [line.split()[0] for line in poppler("pdffonts", image_pdf).splitlines()[2:]] == ["GlyphLessFont"]
    assert all(ink(p) > 0.005 for p in pages(image_pdf))  # ... showing the text
    assert "VISIBLE page 2 line 3" in result.outputs[1].data.decode()
    assert result.pages == 2


async def test_page_size_is_kept(engine):
    result = await rasterized(engine, corpus.text_pdf(1), "a4.pdf")
    out = poppler("pdfinfo", result.outputs[0].data)
    size = re.search(r"Page size:\s+([\d.]+) x ([\d.]+)", out)
    assert size, out
    width, height = map(float, size.groups())
    assert abs(width - 595) < 1 and abs(height - 842) < 1


@pytest.mark.parametrize("make, name", [(corpus.encrypted_pdf, "秘密.pdf"), (corpus.encrypted_docx, "秘密.docx")])
async def test_encrypted_files_are_refused_with_the_reason(engine, make, name):
    result = await engine.sanitize(make(), name)
    assert not result.ok and not result.outputs
    assert result.reason.key == "sanitizer.refused.encrypted"
    assert "パスワード" in result.report("ja")


# --- Japanese ---

async def test_japanese_docx_renders_japanese_glyphs(engine):
    docx = corpus.japanese_docx()
    async with office._pool(engine).worker() as worker:
        _, converted = await worker.call({"ext": "docx"}, docx, 60)
    fonts = poppler("pdffonts", converted)
    assert re.search(r"CJK", fonts), fonts  # a CJK font was found for ＭＳ 明朝, not boxes

    result = await rasterized(engine, docx, "申請.docx")
    page = pages(result.outputs[0].data)[0]
    assert ink(page) > 0.02
    assert "住民票の写し" in result.outputs[1].data.decode()


# --- limits ---

async def test_page_cap_and_timeout_refuse(tmp_path):
    async with Sanitizer(Policies(max_pages=3), runtime_dir=tmp_path / "cap") as capped:
        result = await capped.sanitize(corpus.text_pdf(5), "長い.pdf")
    assert result.reason is not None and result.reason.key == "sanitizer.refused.too_many_pages" and not result.outputs
    assert "5ページ" in result.report("ja")

    async with Sanitizer(Policies(timeout_s=1), runtime_dir=tmp_path / "slow") as hurried:
        result = await hurried.sanitize(corpus.text_pdf(200), "大量.pdf")
    assert result.reason is not None and result.reason.key == "sanitizer.refused.timeout" and not result.outputs


async def test_office_timeout_refuses_and_replaces_libreoffice(tmp_path):
    async with Sanitizer(Policies(timeout_s=1, concurrency=1), runtime_dir=tmp_path) as hurried:
        await hurried.warm()
        result = await hurried.sanitize(corpus.japanese_docx(pages=300), "長文.docx")  # ~2 s in LibreOffice alone
        assert result.reason is not None and result.reason.key == "sanitizer.refused.timeout" and not result.outputs
        hurried.policies = Policies(concurrency=1)
        result = await hurried.sanitize(corpus.docx(), "next.docx")
        assert result.ok, result.report("en")
        assert office._pool(hurried).started == 2  # the one that timed out was not reused


async def test_office_page_cap_refuses(tmp_path):
    async with Sanitizer(Policies(max_pages=2, concurrency=1), runtime_dir=tmp_path) as capped:
        result = await capped.sanitize(corpus.japanese_docx(pages=4), "長い.docx")
    assert result.reason is not None and result.reason.key == "sanitizer.refused.over_page_limit" and not result.outputs
    assert "上限（2ページ）" in result.report("ja")


# --- LibreOffice's life ---

def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                parent = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError):
                continue
            children.setdefault(parent, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


async def test_libreoffice_stays_warm_and_is_replaced_after_a_crash(engine):
    pool = office._pool(engine)
    started = pool.started
    for _ in range(2):
        await rasterized(engine, corpus.docx(), "a.docx")
    assert pool.started == started  # no new LibreOffice for later files

    async with pool.worker() as worker:
        assert worker._process is not None
        sandbox_pid = worker._process.pid
    renderers = [p for p in _descendants(sandbox_pid) if Path(f"/proc/{p}/comm").read_text().strip() == "soffice.bin"]
    assert renderers
    for pid in renderers:
        os.kill(pid, signal.SIGKILL)

    result = await rasterized(engine, corpus.docx(), "after-crash.docx")
    assert result.ok
    assert pool.started == started + 1
