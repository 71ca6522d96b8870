"""Threat corpus for the PDF and Office handlers, generated here (no downloads): minimal OOXML packages
written by hand (each threat exactly where Office puts it) and PDFs written with pikepdf.

Used by tests/test_sanitizer_documents.py and bench/sanitize.py.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Mapping
from xml.sax.saxutils import escape

import pikepdf

R = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
MSR = "http://schemas.microsoft.com/office/2006/relationships"
W_NS = ('xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main" '
        f'xmlns:r="{R}" xmlns:o="urn:schemas-microsoft-com:office:office" xmlns:v="urn:schemas-microsoft-com:vml" '
        'xmlns:a="http://schemas.openxmlformats.org/drawingml/2006/main" '
        'xmlns:pic="http://schemas.openxmlformats.org/drawingml/2006/picture" '
        'xmlns:wp="http://schemas.openxmlformats.org/drawingml/2006/wordprocessingDrawing" '
        'xmlns:w14="http://schemas.microsoft.com/office/word/2010/wordml" '
        'xmlns:mc="http://schemas.openxmlformats.org/markup-compatibility/2006" mc:Ignorable="w14"')
DOCX_MAIN = "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"
DOCM_MAIN = "application/vnd.ms-word.document.macroEnabled.main+xml"
XLSX_MAIN = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"
XLSM_MAIN = "application/vnd.ms-excel.sheet.macroEnabled.main+xml"
#: what an OLE2 compound file starts with (vbaProject.bin, oleObject.bin are such files)
OLE_MAGIC = bytes.fromhex("d0cf11e0a1b11ae1")
JAPANESE = ("住民票の写しの交付申請について、窓口での受付時間は平日の午前八時三十分から午後五時十五分までです。"
            "申請には本人確認書類が必要です。代理人による申請の場合は委任状をご提出ください。")


def _rels(*rels: tuple[str, str, str] | tuple[str, str, str, str]) -> str:
    items = "".join(f'<Relationship Id="{r[0]}" Type="{r[1]}" Target="{escape(r[2])}"'
                    + (' TargetMode="External"' if len(r) > 3 else "") + "/>" for r in rels)
    return ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
            f'<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">{items}</Relationships>')


def _types(main_part: str, main_type: str, overrides: dict[str, str], defaults: dict[str, str]) -> str:
    items = "".join(f'<Default Extension="{e}" ContentType="{t}"/>' for e, t in
                    {"rels": "application/vnd.openxmlformats-package.relationships+xml", "xml": "application/xml",
                     "png": "image/png", **defaults}.items())
    items += f'<Override PartName="/{main_part}" ContentType="{main_type}"/>'
    items += "".join(f'<Override PartName="/{p}" ContentType="{t}"/>' for p, t in overrides.items())
    return ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
            f'<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">{items}</Types>')


def _package(types: str, parts: Mapping[str, str | bytes]) -> bytes:
    """A zip in the order Office writes it (libmagic recognises OOXML by its first entries)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", types)
        for name, data in parts.items():
            z.writestr(name, data)
    return buffer.getvalue()


def paragraph(text: str, *, japanese_font: bool = True) -> str:
    fonts = '<w:rPr><w:rFonts w:ascii="Century" w:eastAsia="ＭＳ 明朝"/><w:sz w:val="22"/></w:rPr>' \
        if japanese_font else ""
    return f"<w:p><w:r>{fonts}<w:t xml:space=\"preserve\">{escape(text)}</w:t></w:r></w:p>"


def docx(body: str = "", *, main_type: str = DOCX_MAIN, document_rels: tuple = (), settings: str = "",
         settings_rels: tuple = (), parts: dict[str, str | bytes] | None = None,
         overrides: dict[str, str] | None = None, defaults: dict[str, str] | None = None) -> bytes:
    """A Word package; each threat adds its parts, relationships and XML."""
    document = f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?><w:document {W_NS}><w:body>' \
               f'{body or paragraph("本文")}<w:sectPr><w:pgSz w:w="11906" w:h="16838"/>' \
               '<w:pgMar w:top="1134" w:right="1134" w:bottom="1134" w:left="1134"/></w:sectPr></w:body></w:document>'
    files: dict[str, str | bytes] = {
        "_rels/.rels": _rels(("rId1", f"{R}/officeDocument", "word/document.xml")),
        "word/document.xml": document,
        "word/_rels/document.xml.rels": _rels(("rIdS", f"{R}/settings", "settings.xml"), *document_rels),
        "word/settings.xml": f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?><w:settings {W_NS}>'
                             f'{settings}</w:settings>',
    }
    if settings_rels:
        files["word/_rels/settings.xml.rels"] = _rels(*settings_rels)
    files.update(parts or {})
    types = _types("word/document.xml", main_type,
                   {"word/settings.xml": "application/vnd.openxmlformats-officedocument.wordprocessingml.settings+xml",
                    **(overrides or {})}, defaults or {})
    return _package(types, files)


def japanese_docx(pages: int = 1) -> bytes:
    """Japanese text in a Japanese font Office names (ＭＳ 明朝): rendered with Noto CJK as fallback."""
    per_page = 15  # paragraphs of ~2.5 lines at 11 pt: 20 pages of A4 for pages=20 (LibreOffice 7.4, Noto CJK)
    body = "".join(paragraph(f"第{i + 1}項　{JAPANESE}") for i in range(pages * per_page))
    return docx(body)


def docm_with_vba() -> bytes:
    vba = (OLE_MAGIC + b"\x00" * 504
           + b"Attribute VB_Name = \"ThisDocument\"\r\nSub AutoOpen()\r\nShell \"calc\"\r\nEnd Sub")
    return docx(paragraph("マクロ付き文書"), main_type=DOCM_MAIN,
                document_rels=(("rIdV", f"{MSR}/vbaProject", "vbaProject.bin"),),
                parts={"word/vbaProject.bin": vba, "word/_rels/vbaProject.bin.rels":
                       _rels(("rId1", f"{MSR}/wordVbaData", "vbaData.xml")),
                       "word/vbaData.xml": '<?xml version="1.0"?><wne:vbaSuppData '
                                           'xmlns:wne="http://schemas.microsoft.com/office/word/2006/wordml"/>'},
                overrides={"word/vbaData.xml": "application/vnd.ms-word.vbaData+xml"},
                defaults={"bin": "application/vnd.ms-office.vbaProject"})


def docx_remote_template(url: str) -> bytes:
    """Template injection: Word fetches the .dotm named in settings.xml when the file opens."""
    return docx(paragraph("テンプレート参照付き文書"), settings='<w:attachedTemplate r:id="rIdT"/>',
                settings_rels=(("rIdT", f"{R}/attachedTemplate", url, "External"),))


def docx_linked_image(target: str) -> bytes:
    """An image that is only linked (``r:link``), so the renderer would read ``target`` itself."""
    drawing = (
        '<w:p><w:r><w:drawing><wp:inline><wp:extent cx="2000000" cy="1000000"/><wp:docPr id="1" name="linked"/>'
        '<a:graphic><a:graphicData uri="http://schemas.openxmlformats.org/drawingml/2006/picture">'
        '<pic:pic><pic:nvPicPr><pic:cNvPr id="1" name="linked"/><pic:cNvPicPr/></pic:nvPicPr>'
        '<pic:blipFill><a:blip r:link="rIdL"/><a:stretch><a:fillRect/></a:stretch></pic:blipFill>'
        '<pic:spPr><a:xfrm><a:off x="0" y="0"/><a:ext cx="2000000" cy="1000000"/></a:xfrm>'
        '<a:prstGeom prst="rect"/></pic:spPr></pic:pic></a:graphicData></a:graphic></wp:inline></w:drawing>'
        '</w:r></w:p>')
    return docx(paragraph("リンク画像付き文書") + drawing,
                document_rels=(("rIdL", f"{R}/image", target, "External"),))


def docx_include_text(path: str) -> bytes:
    """An INCLUDETEXT field: Word (and LibreOffice, on update) insert the text of a local file."""
    field = ('<w:p><w:r><w:fldChar w:fldCharType="begin"/></w:r>'
             f'<w:r><w:instrText xml:space="preserve"> INCLUDETEXT "{escape(path)}" </w:instrText></w:r>'
             '<w:r><w:fldChar w:fldCharType="separate"/></w:r><w:r><w:t>cached-result</w:t></w:r>'
             '<w:r><w:fldChar w:fldCharType="end"/></w:r></w:p>')
    return docx(paragraph("外部テキスト取り込み付き文書") + field)


def docx_dde() -> bytes:
    """DDEAUTO split over runs (as attackers do to dodge naive scans), and a simple DDE field."""
    field = ('<w:p><w:r><w:fldChar w:fldCharType="begin"/></w:r>'
             '<w:r><w:instrText xml:space="preserve"> DDE</w:instrText></w:r>'
             '<w:r><w:instrText xml:space="preserve">AUTO c:\\\\windows\\\\system32\\\\cmd.exe "/k calc.exe" '
             '</w:instrText></w:r>'
             '<w:r><w:fldChar w:fldCharType="separate"/></w:r><w:r><w:t>dde-result</w:t></w:r>'
             '<w:r><w:fldChar w:fldCharType="end"/></w:r></w:p>'
             '<w:p><w:fldSimple w:instr=\'DDE "cmd" "/c notepad"\'><w:r><w:t>simple</w:t></w:r></w:fldSimple></w:p>')
    return docx(paragraph("DDE 付き文書") + field)


def docx_ole_activex() -> bytes:
    body = (paragraph("OLE と ActiveX 付き文書")
            + '<w:p><w:r><w:object><v:shape id="s1" style="width:100pt;height:50pt"/>'
              '<o:OLEObject Type="Embed" ProgID="Package" ShapeID="s1" r:id="rIdO"/></w:object></w:r></w:p>'
            + '<w:p><w:r><w:object><w:control r:id="rIdX" w:name="CheckBox1"/></w:object></w:r></w:p>')
    ole = OLE_MAGIC + b"\x00" * 504 + b"MZ\x90\x00 payload.exe"
    activex = ('<?xml version="1.0"?><ax:ocx xmlns:ax="http://schemas.microsoft.com/office/2006/activeX" '
               f'xmlns:r="{R}" ax:classid="{{8BD21D40-EC42-11CE-9E0D-00AA006002F3}}" '
               'ax:persistence="persistStreamInit" '
               'r:id="rId1"/>')
    return docx(body, document_rels=(("rIdO", f"{R}/oleObject", "embeddings/oleObject1.bin"),
                                     ("rIdX", f"{R}/control", "activeX/activeX1.xml")),
                parts={"word/embeddings/oleObject1.bin": ole, "word/activeX/activeX1.xml": activex,
                       "word/activeX/_rels/activeX1.xml.rels": _rels(("rId1", f"{MSR}/activeXControlBinary",
                                                                      "activeX1.bin")),
                       "word/activeX/activeX1.bin": OLE_MAGIC + b"\x00" * 100},
                overrides={"word/embeddings/oleObject1.bin": "application/vnd.openxmlformats-officedocument.oleObject",
                           "word/activeX/activeX1.xml": "application/vnd.ms-office.activeX+xml",
                           "word/activeX/activeX1.bin": "application/vnd.ms-office.activeX"})


def _cell(ref: str, value: object, formula: str | None = None) -> str:
    f = f"<f>{escape(formula)}</f>" if formula else ""
    if isinstance(value, (int, float)):
        return f'<c r="{ref}">{f}<v>{value}</v></c>'
    return f'<c r="{ref}" t="inlineStr">{f}<is><t>{escape(str(value))}</t></is></c>'


def xlsx(rows: list[list[object]], *, main_type: str = XLSX_MAIN, macro_sheet: bool = False,
         formulas: dict[str, str] | None = None) -> bytes:
    """A workbook; ``macro_sheet`` adds an Excel 4 macro sheet that runs on open (Auto_Open)."""
    formulas = formulas or {}
    cols = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    sheet_rows = "".join(
        f'<row r="{i + 1}">' + "".join(_cell(f"{cols[j]}{i + 1}", v, formulas.get(f"{cols[j]}{i + 1}"))
                                       for j, v in enumerate(row)) + "</row>" for i, row in enumerate(rows))
    ns = f'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="{R}"'
    sheets = '<sheet name="Sheet1" sheetId="1" r:id="rId1"/>'
    names = ""
    rels = [("rId1", f"{R}/worksheet", "worksheets/sheet1.xml")]
    parts: dict[str, str | bytes] = {
        "xl/worksheets/sheet1.xml": f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?><worksheet {ns}>'
                                    f'<sheetData>{sheet_rows}</sheetData></worksheet>'}
    overrides = {"xl/worksheets/sheet1.xml":
                 "application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"}
    if macro_sheet:
        sheets += '<sheet name="Macro1" sheetId="2" r:id="rId2"/>'
        names = '<definedNames><definedName name="_xlnm.Auto_Open">Macro1!$A$1</definedName></definedNames>'
        rels.append(("rId2", f"{MSR}/xlMacrosheet", "macrosheets/sheet1.xml"))
        parts["xl/macrosheets/sheet1.xml"] = (
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
            f'<xm:macrosheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="{R}" '
            'xmlns:xm="http://schemas.microsoft.com/office/excel/2006/main"><sheetData>'
            '<row r="1"><c r="A1"><f>EXEC("calc.exe")</f></c></row><row r="2"><c r="A2"><f>HALT()</f></c></row>'
            '</sheetData></xm:macrosheet>')
        overrides["xl/macrosheets/sheet1.xml"] = "application/vnd.ms-excel.macrosheet+xml"
    parts = {"_rels/.rels": _rels(("rId1", f"{R}/officeDocument", "xl/workbook.xml")),
             "xl/workbook.xml": f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?><workbook {ns}>'
                                f'<sheets>{sheets}</sheets>{names}</workbook>',
             "xl/_rels/workbook.xml.rels": _rels(*rels), **parts}
    return _package(_types("xl/workbook.xml", main_type, overrides, {}), parts)


def xlsm_macrosheet() -> bytes:
    """Excel 4 macros on open, and a DDE formula in a cell."""
    return xlsx([["請求書", 100], ["合計", 0]], main_type=XLSM_MAIN, macro_sheet=True,
                formulas={"B2": "cmd|' /C calc'!A0"})


def ledger_xlsx(rows: int) -> bytes:
    """A ledger of ``rows`` rows (the bench's spreadsheet)."""
    data: list[list[object]] = [["番号", "日付", "件名", "金額"]]
    data += [[i, f"2026-04-{i % 28 + 1:02d}", f"消耗品購入 {i}", (i * 137) % 10000] for i in range(1, rows + 1)]
    return xlsx(data)


def _text_pdf(pages: int, lines: int = 45, marker: str = "VISIBLE") -> pikepdf.Pdf:
    pdf = pikepdf.new()
    font = pdf.make_indirect(pikepdf.Dictionary(Type=pikepdf.Name.Font, Subtype=pikepdf.Name.Type1,
                                                BaseFont=pikepdf.Name.Helvetica))
    for number in range(1, pages + 1):
        text = " ".join(f"BT /F1 11 Tf 56 {780 - 16 * j} Td ({marker} page {number} line {j + 1}: "
                        f"the quick brown fox jumps over the lazy dog) Tj ET" for j in range(lines))
        pdf.pages.append(pikepdf.Page(pikepdf.Dictionary(
            Type=pikepdf.Name.Page, MediaBox=[0, 0, 595, 842],
            Resources=pikepdf.Dictionary(Font=pikepdf.Dictionary(F1=font)), Contents=pdf.make_stream(text.encode()))))
    return pdf


def _save(pdf: pikepdf.Pdf, **options) -> bytes:
    buffer = io.BytesIO()
    pdf.save(buffer, **options)
    return buffer.getvalue()


def text_pdf(pages: int) -> bytes:
    return _save(_text_pdf(pages))


def active_pdf() -> bytes:
    """JavaScript on open, an additional action on a page, a Launch action and an attached file."""
    pdf = _text_pdf(2, lines=3)
    js = pdf.make_indirect(pikepdf.Dictionary(S=pikepdf.Name.JavaScript, JS=pikepdf.String("app.alert('x')")))
    pdf.Root.OpenAction = js
    pdf.Root.Names = pikepdf.Dictionary(
        JavaScript=pikepdf.Dictionary(Names=[pikepdf.String("a"), js]),
        EmbeddedFiles=pikepdf.Dictionary(Names=[pikepdf.String("payload.exe"), pdf.make_indirect(pikepdf.Dictionary(
            Type=pikepdf.Name.Filespec, F=pikepdf.String("payload.exe"),
            EF=pikepdf.Dictionary(F=pdf.make_stream(b"MZ\x90\x00payload", Type=pikepdf.Name.EmbeddedFile))))]))
    launch = pikepdf.Dictionary(S=pikepdf.Name.Launch, F=pikepdf.String("cmd.exe"))
    pdf.pages[0].obj.AA = pikepdf.Dictionary(O=launch)
    return _save(pdf)


def encrypted_pdf() -> bytes:
    return _save(_text_pdf(1), encryption=pikepdf.Encryption(user="secret", owner="secret"))


def encrypted_docx() -> bytes:
    import msoffcrypto.format.ooxml

    plain = io.BytesIO(docx(paragraph("機密文書")))
    out = io.BytesIO()
    msoffcrypto.format.ooxml.OOXMLFile(plain).encrypt("secret", out)
    return out.getvalue()


ODF_TEXT = "application/vnd.oasis.opendocument.text"


def odt(text: str = "ODF本文", *, macros: bool = False, encrypted: bool = False) -> bytes:
    """An OpenDocument text; ``macros`` adds a Basic library run on open, ``encrypted`` marks content.xml
    as encrypted the way LibreOffice's manifest does."""
    content = ('<?xml version="1.0" encoding="UTF-8"?><office:document-content '
               'xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
               'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" office:version="1.2">'
               f'<office:body><office:text><text:p>{escape(text)}</text:p></office:text></office:body>'
               '</office:document-content>')
    m = "urn:oasis:names:tc:opendocument:xmlns:manifest:1.0"
    entries = [f'<manifest:file-entry manifest:full-path="/" manifest:media-type="{ODF_TEXT}"/>',
               '<manifest:file-entry manifest:full-path="content.xml" manifest:media-type="text/xml">'
               + ('<manifest:encryption-data manifest:checksum-type="SHA1/1K" manifest:checksum="AAAA">'
                  '<manifest:algorithm manifest:algorithm-name="Blowfish CFB" manifest:initialisation-vector="AAAA"/>'
                  '</manifest:encryption-data>' if encrypted else "") + '</manifest:file-entry>']
    parts = {"content.xml": content}
    if macros:
        parts["Basic/script-lc.xml"] = ('<?xml version="1.0" encoding="UTF-8"?><library:libraries '
                                        'xmlns:library="http://openoffice.org/2000/library"/>')
        parts["Basic/Standard/Module1.xml"] = ('<?xml version="1.0" encoding="UTF-8"?><script:module '
                                               'xmlns:script="http://openoffice.org/2000/script" script:name="Module1" '
                                               'script:language="StarBasic">Sub Main\nShell("calc")\nEnd Sub'
                                               '</script:module>')
        entries += [f'<manifest:file-entry manifest:full-path="{p}" manifest:media-type="text/xml"/>'
                    for p in ("Basic/script-lc.xml", "Basic/Standard/Module1.xml")]
    parts["META-INF/manifest.xml"] = (f'<?xml version="1.0" encoding="UTF-8"?><manifest:manifest xmlns:manifest="{m}" '
                                      f'manifest:version="1.2">{"".join(entries)}</manifest:manifest>')
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("mimetype", ODF_TEXT, compress_type=zipfile.ZIP_STORED)
        for name, data in parts.items():
            z.writestr(name, data)
    return buffer.getvalue()


def rtf(text: str = "RTF-VISIBLE") -> bytes:
    return ("{\\rtf1\\ansi\\deff0{\\fonttbl{\\f0 Times New Roman;}}\\f0\\fs24 " + text + "\\par}").encode()


def docx_disguised_vba() -> bytes:
    """VBA under an image's name and type: Word finds it by the relationship's type alone."""
    vba = OLE_MAGIC + b"\x00" * 504 + b"Attribute VB_Name = \"ThisDocument\""
    return docx(paragraph("偽装マクロ"), main_type=DOCM_MAIN,
                document_rels=(("rIdV", f"{MSR}/vbaProject", "media/image9.png"),),
                parts={"word/media/image9.png": vba})


def docx_links(image_url: str) -> bytes:
    """A web link (kept), a link that runs a local program (removed), and a hyperlink relationship used as
    an image's ``r:link`` (the renderer would fetch it)."""
    body = (paragraph("リンク集")
            + '<w:p><w:hyperlink r:id="rIdWeb"><w:r><w:t>WEB-LINK</w:t></w:r></w:hyperlink></w:p>'
            + '<w:p><w:hyperlink r:id="rIdRun"><w:r><w:t>RUN-LINK</w:t></w:r></w:hyperlink></w:p>'
            + '<w:p><w:r><w:drawing><wp:inline><wp:extent cx="100000" cy="100000"/><wp:docPr id="2" name="p"/>'
              '<a:graphic><a:graphicData uri="http://schemas.openxmlformats.org/drawingml/2006/picture"><pic:pic>'
              '<pic:nvPicPr><pic:cNvPr id="2" name="p"/><pic:cNvPicPr/></pic:nvPicPr>'
              '<pic:blipFill><a:blip r:link="rIdTrick"/></pic:blipFill><pic:spPr/></pic:pic></a:graphicData>'
              '</a:graphic></wp:inline></w:drawing></w:r></w:p>')
    return docx(body, document_rels=(("rIdWeb", f"{R}/hyperlink", "https://www.city.example.lg.jp/", "External"),
                                     ("rIdRun", f"{R}/hyperlink", "file:///C:/Windows/System32/calc.exe", "External"),
                                     ("rIdTrick", f"{R}/hyperlink", image_url, "External")))


def strict_docx(text: str = "STRICT-VISIBLE") -> bytes:
    """ISO 29500 Strict: the same package with the purl.oclc.org namespaces Word writes for it."""
    members = {}
    with zipfile.ZipFile(io.BytesIO(docx(paragraph(text)))) as z:
        for name in z.namelist():
            members[name] = z.read(name).replace(b"http://schemas.openxmlformats.org/wordprocessingml/2006/main",
                                                 b"http://purl.oclc.org/ooxml/wordprocessingml/main")
    types = members.pop("[Content_Types].xml")
    return _package(types.decode(), members)


# ---- documents for the text layer (issue #20): Japanese horizontal and vertical, text and scans ----------

VERTICAL_LINES = ("縦書きの文書です。令和６年度の予算案について、ＡＢＣ１２３は全角です。",
                  "二行目の段落：住民課の窓口")
SCAN_FONT = "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"


def japanese_docx_vertical() -> bytes:
    """A Word document written vertically (縦書き, ``w:textDirection tbRl``), full-width letters and digits."""
    return _vertical(docx("".join(paragraph(line) for line in VERTICAL_LINES)))


def _vertical(package: bytes) -> bytes:
    source, out = zipfile.ZipFile(io.BytesIO(package)), io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for name in source.namelist():
            data = source.read(name)
            if name == "word/document.xml":
                data = data.replace(b"</w:sectPr>", b'<w:textDirection w:val="tbRl"/></w:sectPr>')
            z.writestr(name, data)
    return out.getvalue()


def scanned_pdf(pages: list[tuple[list[str], list[str]]], dpi: int = 200) -> bytes:
    """A scan: each page one gray JPEG of rendered Japanese text (Noto Sans CJK, 14 pt), horizontal lines
    from the top left and vertical columns (縦書き) from the right; no text in the PDF."""
    from PIL import Image, ImageDraw, ImageFont
    pdf = pikepdf.new()
    width, height = int(8.27 * dpi), int(11.69 * dpi)
    font = ImageFont.truetype(SCAN_FONT, int(dpi * 14 / 72))
    pitch = int(dpi * 14 / 72 * 1.8)
    for lines, columns in pages:
        image = Image.new("L", (width, height), 255)
        draw = ImageDraw.Draw(image)
        for n, line in enumerate(lines):
            draw.text((dpi, dpi + n * pitch), line, font=font, fill=0)
        for n, column in enumerate(columns):
            draw.text((width - dpi - n * pitch, dpi + len(lines) * pitch), column, font=font, fill=0,
                      direction="ttb")
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=90)
        scan = pdf.make_stream(buffer.getvalue(), Type=pikepdf.Name.XObject, Subtype=pikepdf.Name.Image, Width=width,
                               Height=height, ColorSpace=pikepdf.Name.DeviceGray, BitsPerComponent=8,
                               Filter=pikepdf.Name.DCTDecode)
        pdf.pages.append(pikepdf.Page(pikepdf.Dictionary(
            Type=pikepdf.Name.Page, MediaBox=[0, 0, 595, 842], Resources=pikepdf.Dictionary(
                XObject=pikepdf.Dictionary(Scan=scan)), Contents=pdf.make_stream(b"q 595 0 0 842 0 0 cm /Scan Do Q"))))
    return _save(pdf)


def linked_pdf() -> bytes:
    """A text PDF with a link annotation to a web address and a URI action (none of it may survive)."""
    pdf = _text_pdf(1, lines=2, marker="LINKED")
    pdf.pages[0].obj.Annots = pikepdf.Array([pdf.make_indirect(pikepdf.Dictionary(
        Type=pikepdf.Name.Annot, Subtype=pikepdf.Name.Link, Rect=[56, 760, 400, 790],
        A=pikepdf.Dictionary(S=pikepdf.Name.URI, URI=pikepdf.String("https://evil.example/"))))])
    return _save(pdf)
