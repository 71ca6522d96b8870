"""The invisible text layer of a rasterized PDF: plain strings and boxes, drawn by our code, in our font.

The words and their boxes come from the jail (workers/pdf_words.py: pdftotext on the rendering, or
Tesseract on the page image for scanned pages) as untrusted JSON: :func:`runs` keeps only numbers in
range and printable text, within caps. :func:`content` writes each run in text render mode 3
(invisible) over the page image, and :func:`font` adds one font, the same in every file: a Type0 font
with Identity-H whose only program is :data:`GLYPHLESS_TTF` (built here, glyphs without outlines,
as Tesseract's "GlyphLessFont"); the characters are recovered through a ToUnicode map written from
the strings. Vertical runs (Japanese tategaki) are written with the text direction turned downward,
so a reader of the PDF (pdftotext, search, a screen reader) reads each column top to bottom, columns
right to left. Nothing of the original's fonts, links, annotations or actions can ride along: there
is nothing in the layer but these operators, strings and this font, and :func:`shape_problems` (the
output check, in the jail) refuses any PDF that has anything else.
"""

from __future__ import annotations

import hashlib
import io
import math
import re
import struct
from collections.abc import Iterable
from typing import Any

import attrs
import pikepdf

FONT_NAME = "GlyphLessFont"
#: the font's metrics (per 1000 units of the font size): the box of a run is [baseline - 120, baseline + 880]
ASCENT, DESCENT = 880, -120
#: caps on what the jail may send (untrusted): runs per page, characters per run, characters per file
MAX_RUNS_PER_PAGE = 20_000
MAX_RUN_CHARS = 2_000
MAX_CHARS = 4_000_000
#: different characters a file may use (two-byte CIDs, 0 unused)
MAX_DISTINCT = 65_534


def _table_checksum(data: bytes) -> int:
    padded = data + b"\0" * (-len(data) % 4)
    return sum(struct.unpack(f">{len(padded) // 4}I", padded)) & 0xFFFFFFFF


def _glyphless_ttf() -> bytes:
    """A TrueType font with two glyphs and no outlines (the PDF gives every width; nothing is drawn)."""
    units = 1000
    glyf = struct.pack(">hhhhhH", 0, 0, 0, 0, 0, 0)  # glyph 1: no contours, no instructions
    tables = {
        b"head": struct.pack(">IIIIHHqqhhhhHHhhh", 0x00010000, 0x00010000, 0, 0x5F0F3CF5, 0x000B, units,
                             0, 0, 0, DESCENT, units, ASCENT, 0, 8, 2, 0, 0),
        b"hhea": struct.pack(">IhhhHhhhhhhhhhhhH", 0x00010000, ASCENT, DESCENT, 0, units, 0, 0, units, 1, 0, 0,
                             0, 0, 0, 0, 0, 2),
        b"maxp": struct.pack(">IHHHHHHHHHHHHHH", 0x00010000, 2, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0),
        b"hmtx": struct.pack(">HhHh", units, 0, units, 0),
        b"loca": struct.pack(">HHH", 0, 0, len(glyf) // 2),
        b"glyf": glyf,
    }
    tags = sorted(tables)
    offset = 12 + 16 * len(tags)
    directory, body = b"", b""
    for tag in tags:
        data = tables[tag]
        directory += struct.pack(">4sIII", tag, _table_checksum(data), offset + len(body), len(data))
        body += data + b"\0" * (-len(data) % 4)
    search = 2 ** int(math.log2(len(tags)))
    font = struct.pack(">IHHHH", 0x00010000, len(tags), search * 16, int(math.log2(search)),
                       len(tags) * 16 - search * 16) + directory + body
    adjustment = (0xB1B0AFBA - _table_checksum(font)) & 0xFFFFFFFF
    head_at = 12 + 16 * len(tags) + sum(len(tables[t]) + (-len(tables[t]) % 4) for t in tags[:tags.index(b"head")])
    return font[:head_at + 8] + struct.pack(">I", adjustment) + font[head_at + 12:]


GLYPHLESS_TTF = _glyphless_ttf()
GLYPHLESS_SHA256 = hashlib.sha256(GLYPHLESS_TTF).hexdigest()


@attrs.frozen
class Run:
    """A string and its box, as fractions of the page (0..1, origin top left); ``vertical``: top to bottom."""

    x0: float
    y0: float
    x1: float
    y1: float
    text: str
    vertical: bool = False


def _printable(text: str) -> str:
    """Only printable characters (no controls, no bidi or other format characters, no surrogates)."""
    return "".join(c if c.isprintable() and not 0xD800 <= ord(c) <= 0xDFFF else " " for c in text).strip()


def runs(raw: Any) -> list[Run]:
    """The runs of one page as the jail sent them (``[[x0, y0, x1, y1, vertical, text], ...]``), checked:
    anything not shaped so is dropped, never trusted."""
    found: list[Run] = []
    if not isinstance(raw, list):
        return found
    for item in raw[:MAX_RUNS_PER_PAGE]:
        if not (isinstance(item, list) and len(item) == 6 and isinstance(item[5], str)):
            continue
        try:
            x0, y0, x1, y1 = (float(v) for v in item[:4])
        except (TypeError, ValueError):
            continue
        if not all(math.isfinite(v) and -0.01 <= v <= 1.01 for v in (x0, y0, x1, y1)) or x1 <= x0 or y1 <= y0:
            continue
        text = _printable(item[5][:MAX_RUN_CHARS])
        if text:
            x0, y0, x1, y1 = (min(max(v, 0.0), 1.0) for v in (x0, y0, x1, y1))
            found.append(Run(x0, y0, x1, y1, text, vertical=item[4] is True))
    return found


class Layer:
    """The text of one file: one CID per different character, the same font object on every page."""

    def __init__(self) -> None:
        self.cids: dict[str, int] = {}
        self.chars = 0

    def _encode(self, text: str) -> str | None:
        codes = []
        for c in text:
            cid = self.cids.get(c)
            if cid is None:
                if len(self.cids) >= MAX_DISTINCT:
                    return None
                cid = self.cids[c] = len(self.cids) + 1
            codes.append(f"{cid:04X}")
        return "".join(codes)

    def content(self, page_runs: Iterable[Run], width: float, height: float) -> bytes:
        """Content-stream operators writing ``page_runs`` invisibly on a page of ``width`` x ``height`` points."""
        ops = []
        for run in page_runs:
            if self.chars + len(run.text) > MAX_CHARS:
                break
            encoded = self._encode(run.text)
            if encoded is None:
                break
            self.chars += len(run.text)
            left, right = run.x0 * width, run.x1 * width
            top, bottom = height - run.y0 * height, height - run.y1 * height
            n = len(run.text)
            matrix: tuple[float, ...]
            if run.vertical:
                # text direction downward (rot 90°): each character advances (top-bottom)/n; "up" is to the right
                size, advance = right - left, (top - bottom) / n
                matrix = (0, -advance, size, 0, left - DESCENT / 1000 * size, top)
            else:
                size, advance = top - bottom, (right - left) / n
                matrix = (advance, 0, 0, size, left, bottom - DESCENT / 1000 * size)
            ops.append(" ".join(f"{v:.3f}" for v in matrix) + f" Tm <{encoded}> Tj")
        if not ops:
            return b""
        return ("\nBT 3 Tr /F0 1 Tf\n" + "\n".join(ops) + "\nET").encode()

    def to_unicode(self) -> bytes:
        lines = ["/CIDInit /ProcSet findresource begin", "12 dict begin", "begincmap",
                 "/CIDSystemInfo << /Registry (Adobe) /Ordering (UCS) /Supplement 0 >> def",
                 "/CMapName /Adobe-Identity-UCS def", "/CMapType 2 def",
                 "1 begincodespacerange", "<0000> <FFFF>", "endcodespacerange"]
        items = sorted(self.cids.items(), key=lambda item: item[1])
        for start in range(0, len(items), 100):
            chunk = items[start:start + 100]
            lines.append(f"{len(chunk)} beginbfchar")
            lines += [f"<{cid:04X}> <{c.encode('utf-16-be').hex().upper()}>" for c, cid in chunk]
            lines.append("endbfchar")
        lines += ["endcmap", "CMapName currentdict /CMap defineresource pop", "end", "end"]
        return "\n".join(lines).encode()

    def font(self, pdf: pikepdf.Pdf) -> pikepdf.Object:
        """The one font of the text layer (call after every page's :meth:`content`)."""
        program = pdf.make_stream(GLYPHLESS_TTF, Length1=len(GLYPHLESS_TTF))
        descriptor = pdf.make_indirect(pikepdf.Dictionary(
            Type=pikepdf.Name.FontDescriptor, FontName=pikepdf.Name("/" + FONT_NAME), Flags=5,
            FontBBox=[0, DESCENT, 1000, ASCENT], ItalicAngle=0, Ascent=ASCENT, Descent=DESCENT, CapHeight=ASCENT,
            StemV=80, FontFile2=program))
        cid_font = pdf.make_indirect(pikepdf.Dictionary(
            Type=pikepdf.Name.Font, Subtype=pikepdf.Name.CIDFontType2, BaseFont=pikepdf.Name("/" + FONT_NAME),
            CIDSystemInfo=pikepdf.Dictionary(Registry=pikepdf.String("Adobe"), Ordering=pikepdf.String("Identity"),
                                             Supplement=0),
            FontDescriptor=descriptor, DW=1000, CIDToGIDMap=pikepdf.Name.Identity))
        return pdf.make_indirect(pikepdf.Dictionary(
            Type=pikepdf.Name.Font, Subtype=pikepdf.Name.Type0, BaseFont=pikepdf.Name("/" + FONT_NAME),
            Encoding=pikepdf.Name("/Identity-H"), DescendantFonts=[cid_font],
            ToUnicode=pdf.make_stream(self.to_unicode())))


# ---- the output check (runs in the jail, verify.py): a rasterized PDF is exactly this shape -------------

_TO_UNICODE = re.compile(
    rb"/CIDInit /ProcSet findresource begin\n12 dict begin\nbegincmap\n"
    rb"/CIDSystemInfo << /Registry \(Adobe\) /Ordering \(UCS\) /Supplement 0 >> def\n"
    rb"/CMapName /Adobe-Identity-UCS def\n/CMapType 2 def\n1 begincodespacerange\n<0000> <FFFF>\nendcodespacerange\n"
    rb"(?:[0-9]{1,3} beginbfchar\n(?:<[0-9A-F]{4}> <[0-9A-F]{4,8}>\n){1,100}endbfchar\n)*"
    rb"endcmap\nCMapName currentdict /CMap defineresource pop\nend\nend")
#: content-stream operators a page may use, and how many operands each takes
_OPERATORS = {"q": 0, "Q": 0, "cm": 6, "Do": 1, "BT": 0, "ET": 0, "Tr": 1, "Tf": 2, "Tm": 6, "Tj": 1}
_STREAM_KEYS = {"/Length", "/Filter", "/DecodeParms"}


def _keys(obj: pikepdf.Object, allowed: set[str], what: str, problems: list[str]) -> None:
    extra = set(obj.keys()) - allowed
    if extra:
        problems.append(f"{what}:{'/'.join(sorted(k.lstrip('/') for k in extra))}")


def _name(obj: Any, expected: str) -> bool:
    return isinstance(obj, pikepdf.Name) and str(obj) == expected


def _font_problems(font: pikepdf.Object, problems: list[str], seen: set) -> None:
    seen.add(font.objgen)
    _keys(font, {"/Type", "/Subtype", "/BaseFont", "/Encoding", "/DescendantFonts", "/ToUnicode"}, "font", problems)
    if not (_name(font.get("/Subtype"), "/Type0") and _name(font.get("/Encoding"), "/Identity-H")
            and _name(font.get("/BaseFont"), "/" + FONT_NAME)):
        problems.append("font:type")
        return
    unicode = font.get("/ToUnicode")
    seen.add(unicode.objgen if unicode is not None else None)
    if not isinstance(unicode, pikepdf.Stream) or not _TO_UNICODE.fullmatch(unicode.read_bytes()):
        problems.append("font:ToUnicode")
    descendants = font.get("/DescendantFonts")
    if not isinstance(descendants, pikepdf.Array) or len(descendants) != 1:
        problems.append("font:descendants")
        return
    cid = descendants[0]
    seen.update((descendants.objgen, cid.objgen))
    _keys(cid, {"/Type", "/Subtype", "/BaseFont", "/CIDSystemInfo", "/FontDescriptor", "/DW", "/CIDToGIDMap"},
          "cidfont", problems)
    if not (_name(cid.get("/Subtype"), "/CIDFontType2") and _name(cid.get("/CIDToGIDMap"), "/Identity")):
        problems.append("cidfont:type")
    descriptor = cid.get("/FontDescriptor")
    if not isinstance(descriptor, pikepdf.Dictionary):
        problems.append("cidfont:descriptor")
        return
    _keys(descriptor, {"/Type", "/FontName", "/Flags", "/FontBBox", "/ItalicAngle", "/Ascent", "/Descent",
                       "/CapHeight", "/StemV", "/FontFile2"}, "fontdescriptor", problems)
    program = descriptor.get("/FontFile2")
    seen.update((descriptor.objgen, program.objgen if program is not None else None))
    if not isinstance(program, pikepdf.Stream) or hashlib.sha256(program.read_bytes()).hexdigest() != GLYPHLESS_SHA256:
        problems.append("font:program")


def _content_problems(stream: pikepdf.Stream, problems: list[str]) -> None:
    """Only the image drawn and invisible text in our font; any other operator, operand or render mode is refused."""
    render_mode, saved = 0, []
    try:
        instructions = pikepdf.parse_content_stream(stream)
    except pikepdf.PdfError:
        problems.append("content:syntax")
        return
    for instruction in instructions:
        if not isinstance(instruction, pikepdf.ContentStreamInstruction):  # an inline image
            problems.append("content:inline_image")
            return
        operands, op = instruction.operands, str(instruction.operator)
        if op not in _OPERATORS or len(operands) != _OPERATORS[op]:
            problems.append(f"content:{op[:10]}")
            return
        if op == "q":
            saved.append(render_mode)
        elif op == "Q":
            render_mode = saved.pop() if saved else 0
        elif op == "Do" and not _name(operands[0], "/Im0"):
            problems.append("content:Do")
        elif op == "Tf" and not _name(operands[0], "/F0"):
            problems.append("content:Tf")
        elif op == "Tr":
            render_mode = int(operands[0]) if isinstance(operands[0], int) else -1
        elif op == "Tj":
            if render_mode != 3:
                problems.append("content:visible_text")
            if not isinstance(operands[0], pikepdf.String):
                problems.append("content:Tj")


def shape_problems(data: bytes) -> list[str]:
    """What a rasterized output has beyond one image per page and the invisible text layer (allow-list)."""
    problems: list[str] = []
    with pikepdf.open(io.BytesIO(data)) as pdf:
        _keys(pdf.trailer, {"/Root", "/Size", "/ID", "/Info"}, "trailer", problems)
        info = pdf.trailer.get("/Info")
        if info is not None:
            _keys(info, set(), "info", problems)
        root = pdf.Root
        seen = {root.objgen, root.Pages.objgen}
        _keys(root, {"/Type", "/Pages"}, "catalog", problems)
        _keys(root.Pages, {"/Type", "/Kids", "/Count"}, "pages", problems)
        for page in pdf.pages:
            obj = page.obj
            seen.add(obj.objgen)
            _keys(obj, {"/Type", "/Parent", "/MediaBox", "/Resources", "/Contents"}, "page", problems)
            resources = obj.get("/Resources")
            seen.add(resources.objgen if resources is not None else None)
            if not isinstance(resources, pikepdf.Dictionary):
                problems.append("page:resources")
                continue
            _keys(resources, {"/XObject", "/Font"}, "resources", problems)
            xobjects = resources.get("/XObject")
            if not isinstance(xobjects, pikepdf.Dictionary) or set(xobjects.keys()) != {"/Im0"}:
                problems.append("resources:XObject")
            else:
                image = xobjects.Im0
                seen.update((xobjects.objgen, image.objgen))
                if not isinstance(image, pikepdf.Stream) or not _name(image.get("/Subtype"), "/Image"):
                    problems.append("image:type")
                else:
                    _keys(image, {"/Type", "/Subtype", "/Width", "/Height", "/BitsPerComponent", "/ColorSpace",
                                  *_STREAM_KEYS}, "image", problems)
            fonts = resources.get("/Font")
            seen.add(fonts.objgen if fonts is not None else None)
            if fonts is not None:
                if not isinstance(fonts, pikepdf.Dictionary) or set(fonts.keys()) != {"/F0"}:
                    problems.append("resources:Font")
                else:
                    _font_problems(fonts.F0, problems, seen)
            contents = obj.get("/Contents")
            seen.add(contents.objgen if contents is not None else None)
            if not isinstance(contents, pikepdf.Stream):
                problems.append("page:contents")
                continue
            _keys(contents, _STREAM_KEYS, "contents", problems)
            _content_problems(contents, problems)
        if info is not None:
            seen.add(info.objgen)
        # every object of the file is one of those above (an object nothing refers to is still in the file)
        if any(obj.objgen not in seen for obj in pdf.objects if obj.objgen != (0, 0)):
            problems.append("object:unexpected")
    return sorted(set(problems))

