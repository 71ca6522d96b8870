"""Active content out of OOXML (docx/xlsx/pptx and their macro-enabled and template forms) by
allow-list, BEFORE any renderer opens the file and before strip-active delivers it.

What stays is what is known to be inert; everything else goes:

- parts: only those reached from the package's root through a KEPT relationship type and whose content
  type (from ``[Content_Types].xml``) is a KEPT content type. VBA, Excel 4 macro sheets, OLE, ActiveX,
  ``altChunk`` documents, custom XML, fonts, media, printer settings, external links, connections and
  any part nobody points at are dropped, whatever they are called;
- relationships: of a kept type to a kept part, or a hyperlink to ``http(s):``/``mailto:`` (clicked by
  the reader, never fetched when opening); every other external target goes (templates, ``r:link``
  images, UNC and ``file:`` paths); elements that referred to a dropped relationship go with it;
- Word fields: only inert ones (page numbers, dates, TOC, cross references, web hyperlinks...); any
  other field (DDE, DDEAUTO, DATABASE, INCLUDETEXT, INCLUDEPICTURE, LINK, IMPORT, HYPERLINK to a file...)
  becomes the text it last displayed;
- spreadsheet formulas, wherever they are (cells incl. shared and array formulas, defined names,
  conditional formats, data validation incl. their x14 forms, charts, pivot caches): kept only if every
  function is in a list of calculating functions and nothing reads another workbook or program (DDE
  ``app|topic!item``, ``[1]Sheet!A1``, paths); else the cell keeps its cached value only.

Part names are compared as OPC says (case-insensitive, percent-decoded): ``.RELS``, ``.XML`` and
``[content_types].XML`` are what they claim. The output is a new package: canonical
``[Content_Types].xml`` and ``_rels/*.rels`` written from what was kept. Pure: bytes in, bytes out,
memory bounded by :class:`Limits`. XML is parsed with defusedxml (no entities); a kept part that
cannot be parsed refuses the file. :mod:`ooxml_verify` checks the output independently.

Every pattern here runs on untrusted text, so each is linear (see ``UNTRUSTED_PATTERNS``).
"""

from __future__ import annotations

import collections
import io
import posixpath
import re
import threading
import urllib.parse
import xml.etree.ElementTree as ET
import zipfile
import zlib
from xml.sax.saxutils import escape

import attrs
import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException

from .result import Refusal

R = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
STRICT_R = "http://purl.oclc.org/ooxml/officeDocument/relationships"
MSR = "http://schemas.microsoft.com/office"
PKG_REL = "http://schemas.openxmlformats.org/package/2006/relationships"
CT = "http://schemas.openxmlformats.org/package/2006/content-types"
W = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
S = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
MC = "http://schemas.openxmlformats.org/markup-compatibility/2006"
#: where the namespaces of ISO 29500 Strict documents start
STRICT = "http://purl.oclc.org/ooxml/"
VML = "urn:schemas-microsoft-com:vml"
VML_OFFICE = "urn:schemas-microsoft-com:office:office"  # prefix o:, VML's companion
HYPERLINK = f"{R}/hyperlink"
RELATIONSHIPS_TYPE = "application/vnd.openxmlformats-package.relationships+xml"

# Namespaces by what they are (Transitional and Strict), to read elements by (namespace, local name)
WORD = {W, "http://purl.oclc.org/ooxml/wordprocessingml/main"}
SHEET = {S, "http://purl.oclc.org/ooxml/spreadsheetml/main", "http://schemas.microsoft.com/office/excel/2006/main"}
CHART = {"http://schemas.openxmlformats.org/drawingml/2006/chart", "http://purl.oclc.org/ooxml/drawingml/chart"}
RELATIONSHIP_ATTRIBUTES = {R, STRICT_R}
PRESENTATION = {"http://schemas.openxmlformats.org/presentationml/2006/main",
                "http://purl.oclc.org/ooxml/presentationml/main"}

#: main part content type -> what it is (the macro-enabled and template forms are relabelled)
_DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"
_XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"
_PPTX = "application/vnd.openxmlformats-officedocument.presentationml.presentation.main+xml"
MAIN_TYPES = {
    _DOCX: "docx", "application/vnd.ms-word.document.macroEnabled.main+xml": "docx",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.template.main+xml": "docx",
    "application/vnd.ms-word.template.macroEnabledTemplate.main+xml": "docx",
    _XLSX: "xlsx", "application/vnd.ms-excel.sheet.macroEnabled.main+xml": "xlsx",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.template.main+xml": "xlsx",
    "application/vnd.ms-excel.template.macroEnabled.main+xml": "xlsx",
    "application/vnd.ms-excel.addin.macroEnabled.main+xml": "xlsx",
    _PPTX: "pptx", "application/vnd.ms-powerpoint.presentation.macroEnabled.main+xml": "pptx",
    "application/vnd.openxmlformats-officedocument.presentationml.slideshow.main+xml": "pptx",
    "application/vnd.ms-powerpoint.slideshow.macroEnabled.main+xml": "pptx",
    "application/vnd.openxmlformats-officedocument.presentationml.template.main+xml": "pptx",
    "application/vnd.ms-powerpoint.template.macroEnabled.main+xml": "pptx",
    "application/vnd.ms-powerpoint.addin.macroEnabled.main+xml": "pptx",
    # binary workbook: cells cannot be read here (rasterized only, never delivered)
    "application/vnd.ms-excel.sheet.binary.macroEnabled.main": "xlsb",
}
MAIN_TYPES_LOWER = {k.lower(): v for k, v in MAIN_TYPES.items()}
PLAIN_MAIN = {"docx": _DOCX, "xlsx": _XLSX, "pptx": _PPTX}
#: what the delivered file is: extension and MIME type (as libmagic names it)
PACKAGE = {
    "docx": (".docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
    "xlsx": (".xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
    "pptx": (".pptx", "application/vnd.openxmlformats-officedocument.presentationml.presentation"),
}

_OD = "application/vnd.openxmlformats-officedocument."
#: content types of the parts kept (compared lower-cased); the value says whether the part is XML
_KEPT_CONTENT_TYPES: dict[str, bool] = {
    **{t: True for t in MAIN_TYPES if t.endswith("+xml")},
    **{f"{_OD}wordprocessingml.{p}+xml": True for p in (
        "styles", "settings", "webSettings", "fontTable", "numbering", "footnotes", "endnotes", "comments",
        "header", "footer", "document.glossary", "commentsExtended", "commentsIds", "people")},
    "application/vnd.ms-word.stylesWithEffects+xml": True,
    "application/vnd.openxmlformats-officedocument.wordprocessingml.commentsExtensible+xml": True,
    **{f"{_OD}spreadsheetml.{p}+xml": True for p in (
        "worksheet", "chartsheet", "sharedStrings", "styles", "calcChain", "table", "pivotTable",
        "pivotCacheDefinition", "pivotCacheRecords", "comments", "sheetMetadata")},
    "application/vnd.ms-excel.threadedcomments+xml": True, "application/vnd.ms-excel.person+xml": True,
    **{f"{_OD}presentationml.{p}+xml": True for p in (
        "slide", "slideLayout", "slideMaster", "notesSlide", "notesMaster", "handoutMaster", "presProps",
        "viewProps", "tableStyles", "commentAuthors", "comments", "tags")},
    **{f"{_OD}{p}+xml": True for p in (
        "theme", "drawing", "drawingml.chart", "drawingml.chartshapes", "drawingml.diagramData",
        "drawingml.diagramLayout", "drawingml.diagramStyle", "drawingml.diagramColors",
        "extended-properties", "custom-properties")},
    f"{_OD}vmlDrawing": True,
    "application/vnd.ms-office.drawingml.diagramDrawing+xml": True,
    "application/vnd.ms-office.chartstyle+xml": True, "application/vnd.ms-office.chartcolorstyle+xml": True,
    "application/vnd.openxmlformats-package.core-properties+xml": True,
    # pictures: kept as they are, once their first bytes say they are that picture
    "image/png": False, "image/jpeg": False, "image/jpg": False, "image/gif": False, "image/bmp": False,
    "image/tiff": False,
    "image/x-emf": False, "image/x-wmf": False, "image/emf": False, "image/wmf": False,
}
KEPT_CONTENT_TYPES = {t.lower(): xml for t, xml in _KEPT_CONTENT_TYPES.items()}
#: lower-cased -> as the standard spells it (written so in the output, for readers that compare exactly)
SPELLING = {t.lower(): t for t in _KEPT_CONTENT_TYPES}
#: a binary workbook's own parts (xlsb is only ever rasterized in the sandbox, never delivered)
XLSB_CONTENT_TYPES = {t.lower() for t in (
    "application/vnd.ms-excel.worksheet", "application/vnd.ms-excel.sharedStrings",
    "application/vnd.ms-excel.styles", "application/vnd.ms-excel.calcChain", "application/vnd.ms-excel.table",
    "application/vnd.ms-excel.sheet.binary.macroEnabled.main")}
#: first bytes of the pictures kept
PICTURE_MAGIC = {
    "image/png": (b"\x89PNG\r\n\x1a\n",), "image/jpeg": (b"\xff\xd8\xff",), "image/gif": (b"GIF87a", b"GIF89a"),
    "image/bmp": (b"BM",), "image/tiff": (b"II*\x00", b"MM\x00*"),
    "image/x-wmf": (b"\xd7\xcd\xc6\x9a", b"\x01\x00\x09\x00", b"\x02\x00\x09\x00"),
}
PICTURE_MAGIC["image/wmf"] = PICTURE_MAGIC["image/x-wmf"]
PICTURE_MAGIC["image/jpg"] = PICTURE_MAGIC["image/jpeg"]  # not registered, but written by some tools

#: relationship types kept (Strict's are read as their Transitional twins; compared lower-cased)
KEPT_RELATIONSHIPS = {t.lower() for t in (
    *(f"{R}/{p}" for p in (
        "officeDocument", "extended-properties", "custom-properties", "styles", "settings", "webSettings",
        "fontTable", "theme", "numbering", "footnotes", "endnotes", "comments", "header", "footer", "image",
        "hyperlink", "glossaryDocument", "worksheet", "chartsheet", "sharedStrings", "calcChain", "drawing",
        "chart", "chartUserShapes", "table", "pivotTable", "pivotCacheDefinition", "pivotCacheRecords",
        "vmlDrawing", "sheetMetadata", "slide", "slideLayout", "slideMaster", "notesSlide", "notesMaster",
        "handoutMaster", "presProps", "viewProps", "tableStyles", "commentAuthors", "tags", "diagramData",
        "diagramLayout", "diagramQuickStyle", "diagramColors")),
    f"{PKG_REL}/metadata/core-properties", f"{PKG_REL}/metadata/thumbnail",
    f"{MSR}/2007/relationships/stylesWithEffects", f"{MSR}/2007/relationships/diagramDrawing",
    f"{MSR}/2011/relationships/chartStyle", f"{MSR}/2011/relationships/chartColorStyle",
    f"{MSR}/2011/relationships/commentsExtended", f"{MSR}/2016/09/relationships/commentsIds",
    f"{MSR}/2018/08/relationships/commentsExtensible", f"{MSR}/2011/relationships/people",
    f"{MSR}/2017/10/relationships/threadedComment", f"{MSR}/2017/10/relationships/person",
)}

#: what a dropped relationship or part is shown to the person as (sanitizer.removed.<what>); naming
#: only: whatever is not kept goes, named or not
REMOVED_NAMES = (
    ("macros", ("vbaproject", "vbadata", "keymapcustomizations", "attachedtoolbars", "extensibility",
                "customui", "vba")),
    ("excel4_macros", ("macrosheet", "dialogsheet")),
    ("external_template", ("attachedtemplate",)),
    ("embedded_documents", ("afchunk", "subdocument")),
    ("ole_objects", ("oleobject", "embeddings", "/package ")),
    ("activex", ("control", "activex")),
    ("external_links", ("externallink", "connections", "querytable", "/frame ", "datasource", "recipientdata",
                        "mailmergesource")),
    ("multimedia", ("video", "audio")),
)

#: Word fields kept: they only number, date, cross-reference or show document properties
KEPT_FIELDS = frozenset({
    "PAGE", "NUMPAGES", "SECTIONPAGES", "SECTION", "DATE", "TIME", "CREATEDATE", "SAVEDATE", "PRINTDATE",
    "EDITTIME", "TOC", "TOA", "TA", "TC", "XE", "INDEX", "SEQ", "REF", "PAGEREF", "NOTEREF", "STYLEREF",
    "HYPERLINK", "AUTHOR", "TITLE", "SUBJECT", "KEYWORDS", "COMMENTS", "LASTSAVEDBY", "NUMWORDS", "NUMCHARS",
    "FILESIZE", "FILENAME", "TEMPLATE", "DOCPROPERTY", "DOCVARIABLE", "USERNAME", "USERINITIALS",
    "FORMTEXT", "FORMCHECKBOX", "FORMDROPDOWN", "EQ", "SYMBOL", "ADVANCE", "LISTNUM", "AUTONUM", "AUTONUMLGL",
    "AUTONUMOUT", "BIDIOUTLINE", "IF", "COMPARE", "QUOTE", "SET", "BIBLIOGRAPHY", "CITATION", "=",
})
#: HYPERLINK switches that take an argument (the target is the first argument of no switch)
_HYPERLINK_SWITCHES_WITH_ARGUMENT = {"\\L", "\\O", "\\T"}

#: spreadsheet functions kept: they calculate from the workbook's own cells, nothing else
KEPT_FUNCTIONS = frozenset("""
ABS ACOS ACOSH AND ASIN ASINH ATAN ATAN2 ATANH AVERAGE AVERAGEA AVERAGEIF AVERAGEIFS CEILING CEILING.MATH
CHAR CHOOSE CLEAN CODE COLUMN COLUMNS CONCAT CONCATENATE COS COSH COUNT COUNTA COUNTBLANK COUNTIF COUNTIFS
DATE DATEDIF DATEVALUE DAY DAYS DEGREES EDATE EOMONTH EVEN EXACT EXP FACT FALSE FILTER FIND FINDB FIXED
FLOOR FLOOR.MATH HLOOKUP HOUR IF IFERROR IFNA IFS INDEX INT ISBLANK ISERR ISERROR ISEVEN ISLOGICAL ISNA
ISNONTEXT ISNUMBER ISODD ISTEXT LARGE LEFT LEFTB LEN LENB LN LOG LOG10 LOOKUP LOWER MATCH MAX MAXA MAXIFS
MEDIAN MID MIDB MIN MINA MINIFS MINUTE MOD MODE MONTH MROUND N NETWORKDAYS NOT NOW ODD OR PI POWER PRODUCT
PROPER QUOTIENT RADIANS RANK RANK.EQ RANK.AVG REPLACE REPLACEB REPT RIGHT RIGHTB ROUND ROUNDDOWN ROUNDUP ROW
ROWS SEARCH SEARCHB SECOND SIGN SIN SINH SMALL SORT SORTBY SQRT STDEV STDEV.S STDEV.P STDEVA SUBSTITUTE
SUBTOTAL SUM SUMIF SUMIFS SUMPRODUCT SWITCH T TAN TANH TEXT TEXTJOIN TIME TIMEVALUE TODAY TRIM TRUE TRUNC
UNIQUE UPPER VALUE VAR VAR.S VAR.P VLOOKUP WEEKDAY WEEKNUM WORKDAY XLOOKUP XOR YEAR YEN ASC JIS DBCS
PHONETIC NUMBERSTRING DATESTRING XMATCH SEQUENCE SINGLE ANCHORARRAY OFFSET RAND RANDBETWEEN NA ISREF ERROR.TYPE
TRANSPOSE PMT PV FV NPV IRR RATE NPER
""".split())
#: longest formula read (Excel's own limit is 8,192 characters): longer ones keep their cached value
MAX_FORMULA_CHARS = 8192
#: built-in defined names kept (other ``_xlnm.`` names, e.g. Auto_Open, run macros)
KEPT_BUILTIN_NAMES = {n.lower() for n in (
    "_xlnm.Print_Area", "_xlnm.Print_Titles", "_xlnm._FilterDatabase", "_xlnm.Criteria", "_xlnm.Extract",
    "_xlnm.Database", "_xlnm.Consolidate_Area", "_xlnm.Sheet_Title")}
#: PowerPoint click/hover actions kept: moving between slides of this presentation
KEPT_ACTIONS = ("ppaction://hlinksldjump", "ppaction://hlinkshowjump", "ppaction://noaction",
                "ppaction://customshow")
#: elements that act or import whatever their relationship says (removed wherever they are)
ACTIVE_ELEMENTS = {
    "altChunk": "embedded_documents", "subDoc": "embedded_documents", "attachedTemplate": "external_template",
    "mailMerge": "external_links", "saveThroughXslt": "external_links", "OLEObject": "ole_objects",
    "oleObj": "ole_objects", "control": "activex", "fldData": "fields", "entryMacro": "macros",
    "exitMacro": "macros", "webPublishItems": "external_links", "webPublishObjects": "external_links",
    "oleObjects": "ole_objects", "controls": "activex", "externalReferences": "external_links",
    "oleLink": "ole_objects", "ddeLink": "dde",
}
#: VML attributes that name a file or URL to load
VML_LINK_ATTRIBUTES = {"src", "href", f"{{{VML_OFFICE}}}href", f"{{{VML_OFFICE}}}althref"}
_FIELD_TAGS = {f"{{{ns}}}{local}" for ns in WORD for local in ("fldChar", "instrText", "delInstrText", "fldSimple")}
_HYPERLINK_ELEMENTS = {"hyperlink", "hlinkClick", "hlinkHover", "hlinkMouseOver"}
_EMPTY_WHEN_BARE = {f"{{{W}}}object", f"{{{MC}}}AlternateContent", f"{{{MC}}}Choice", f"{{{MC}}}Fallback"}

#: a relationship target that is not a part of the package, whatever TargetMode says
_OUTSIDE = re.compile(r"\A(?:[a-z][a-z0-9+.-]*:|\\\\|//)", re.I)
#: the external links kept: web and mail, one token, no spaces or backslashes
_WEB_LINK = re.compile(r"\A(?:https?|mailto):[^\s\\]*\Z", re.I)
#: names in a formula (a function when "(" follows): one class then one greedy run, found by finditer
_NAME = re.compile(r"[^\W\d][\w.]*")
#: a field instruction's words: a quoted argument or a run of other characters
_FIELD_WORD = re.compile(r'"[^"]*"|[^\s"]+')
_XML_PREFIX = re.compile(r"ns\d+")
#: a run of formula text with no quote
_UNQUOTED = re.compile(r"[^\"']*")
_XML_HEAD = re.compile(r"<[^\s>/]+")
_XML_DECLARED = re.compile(r'xmlns(?::([\w.-]+))?="')
#: every pattern applied to untrusted text (tests/ feed each adversarial inputs)
UNTRUSTED_PATTERNS: dict[str, re.Pattern] = {
    "outside": _OUTSIDE, "web_link": _WEB_LINK, "name": _NAME, "field_word": _FIELD_WORD,
    "xml_prefix": _XML_PREFIX, "unquoted": _UNQUOTED, "xml_head": _XML_HEAD, "xml_declared": _XML_DECLARED,
}

QUOTE = {'"': "&quot;"}
_XML_DECLARATION = b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\r\n'
# ElementTree names namespace prefixes from a process-wide table: set it and serialize under one lock.
_SERIALIZE = threading.Lock()
_DEFAULT = "lgwandefaultns"


@attrs.frozen
class Stripped:
    data: bytes
    kind: str  # docx | xlsx | pptx | xlsb
    removed: tuple[str, ...]  # sanitizer.removed.<what>, in a stable order
    #: ISO 29500 Strict: its own namespaces; stripped the same way but only ever rasterized
    strict: bool = False
    #: what went, for the audit: (what, the part, target, field or formula), sorted, 20 of each at most
    details: tuple[tuple[str, str], ...] = ()

    @property
    def deliverable(self) -> bool:
        return self.kind in PACKAGE and not self.strict


@attrs.frozen
class Limits:
    max_entries: int = 10_000
    max_total_bytes: int = 512 * 1024 * 1024
    #: one part, inflated (XML is parsed whole: this bounds the parser's memory)
    max_part_bytes: int = 64 * 1024 * 1024
    #: Word fields nested in one another
    max_field_depth: int = 64


class _Removed:
    """What went, by what it is shown as, with one example each for the audit."""

    def __init__(self) -> None:
        self.found: dict[str, set[str]] = {}

    def add(self, what: str, detail: str = "") -> None:
        self.found.setdefault(what, set()).add(detail[:120])

    def details(self) -> tuple[tuple[str, str], ...]:
        return tuple(sorted((what, d) for what, ds in self.found.items() for d in list(sorted(ds))[:20]))


def strip(data: bytes, limits: Limits = Limits()) -> Stripped:
    """``data`` with only what is known inert (refuses what is not a sound OOXML package)."""
    parts = read_zip(data, limits)
    names = _part_names(parts)
    types = parse(parts, names.get("[content_types].xml", "[Content_Types].xml"))
    overrides = {_key(el.get("PartName", "").lstrip("/")): el.get("ContentType", "").strip().lower()
                 for el in types.iter(f"{{{CT}}}Override")}
    defaults = {el.get("Extension", "").lower(): el.get("ContentType", "").strip().lower()
                for el in types.iter(f"{{{CT}}}Default")}

    def content_type(key: str) -> str:
        return overrides.get(key) or defaults.get(key.rsplit("/", 1)[-1].rsplit(".", 1)[-1], "")

    removed = _Removed()
    graph = _walk(parts, names, content_type, removed)
    kind = MAIN_TYPES_LOWER[content_type(_key(graph.main))]
    strict = False
    for name in [n for n in graph.kept if content_type(_key(n)) == f"{_OD}vmlDrawing".lower()]:
        try:  # legacy drawings (comment boxes) are not always well-formed: such a one goes, not the file
            SafeET.fromstring(parts[name])
        except (ET.ParseError, DefusedXmlException, ValueError):
            removed.add("other_parts", name)
            graph.drop_target(name)
    out: dict[str, bytes] = {}
    formulas_removed = False
    for name in list(graph.kept):
        if not KEPT_CONTENT_TYPES.get(content_type(_key(name))):
            out[name] = parts[name]  # a picture (checked by its first bytes) or an xlsb part
            continue
        tree = parse(parts, name)
        if name == graph.main:
            strict = tree.tag.startswith(f"{{{STRICT}")
        kept_ids = {rel[0] for rel in graph.rels.get(name, ())}
        changed = _drop_references(tree, kept_ids, graph.links.get(name, set()), removed)
        found = _neutralize(tree, removed, limits)
        formulas_removed |= "formulas" in found
        out[name] = serialize(tree, parts[name]) if changed or found else parts[name]
    if formulas_removed:  # a calculation chain naming cells that have no formula any more: Excel repairs
        for name in [n for n in out if content_type(_key(n)).endswith("spreadsheetml.calcchain+xml")]:
            del out[name]
            graph.drop_target(name)
    return Stripped(_write(out, graph, content_type, kind), kind, tuple(sorted(removed.found)), strict,
                    removed.details())


def read_zip(data: bytes, limits: Limits) -> dict[str, bytes]:
    """Every member, the real bytes counted (a zip's stated sizes may lie)."""
    try:
        z = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, ValueError):
        raise Refusal("sanitizer.refused.broken", "sanitizer.instead.pdf") from None
    with z:
        infos = z.infolist()
        if len(infos) > limits.max_entries:
            raise Refusal("sanitizer.refused.broken", "sanitizer.instead.pdf")
        if any(info.flag_bits & 0x1 for info in infos):
            raise Refusal("sanitizer.refused.encrypted", "sanitizer.instead.unencrypted")
        parts: dict[str, bytes] = {}
        total = 0
        for info in infos:
            name = info.filename
            if name.endswith("/"):
                continue
            if name in parts or name.startswith("/") or "\\" in name or ".." in name.split("/"):
                raise Refusal("sanitizer.refused.broken", "sanitizer.instead.pdf")
            chunks, size = [], 0
            try:
                with z.open(info) as member:
                    while chunk := member.read(1024 * 1024):
                        total += len(chunk)
                        size += len(chunk)
                        if total > limits.max_total_bytes or size > limits.max_part_bytes:
                            limit = min(limits.max_total_bytes, limits.max_part_bytes)
                            raise Refusal("sanitizer.refused.too_large", "sanitizer.instead.smaller",
                                          limit_mb=limit // (1024 * 1024))
                        chunks.append(chunk)
            except (zipfile.BadZipFile, NotImplementedError, EOFError, OSError, ValueError, zlib.error):
                # zlib.error: a member whose deflate stream was tampered with (zipfile does not wrap it)
                raise Refusal("sanitizer.refused.broken", "sanitizer.instead.pdf") from None
            parts[name] = b"".join(chunks)
    return parts


def parse(parts: dict[str, bytes], name: str) -> ET.Element:
    try:
        return SafeET.fromstring(parts[name])
    except (ET.ParseError, DefusedXmlException, KeyError, ValueError):
        raise Refusal("sanitizer.refused.broken", "sanitizer.instead.pdf") from None


def _key(name: str) -> str:
    """The name OPC compares: percent-decoded, case-folded, no leading slash."""
    try:
        return urllib.parse.unquote(name.lstrip("/"), errors="strict").lower()
    except UnicodeDecodeError:
        raise Refusal("sanitizer.refused.broken", "sanitizer.instead.pdf") from None


def _part_names(parts: dict[str, bytes]) -> dict[str, str]:
    """key -> member name; two members that are the same part refuse the file."""
    names: dict[str, str] = {}
    for name in parts:
        key = _key(name)
        if key in names or "%2f" in name.lower() or "%5c" in name.lower() or "\x00" in key:
            raise Refusal("sanitizer.refused.broken", "sanitizer.instead.pdf")
        names[key] = name
    return names


def _relationship_type(value: str) -> str:
    value = value.strip()
    if value.startswith(STRICT_R + "/"):
        value = R + value[len(STRICT_R):]
    return value.lower()


def _removed_as(*texts: str) -> str:
    joined = " ".join(texts).lower() + " "
    return next((what for what, words in REMOVED_NAMES if any(w in joined for w in words)), "other_parts")


def _rels_name(source: str) -> str:
    folder, base = posixpath.split(source)
    return posixpath.join(folder, "_rels", f"{base}.rels")


def _resolve(source: str, target: str) -> str:
    target = target.split("#", 1)[0]
    if target.startswith("/"):
        return posixpath.normpath(target.lstrip("/"))
    return posixpath.normpath(posixpath.join(posixpath.dirname(source), target))


@attrs.define
class _Graph:
    """The parts reached from the root through kept relationships, and the relationships kept."""

    main: str = ""
    kept: list[str] = attrs.Factory(list)
    #: source part ("" for the package) -> kept relationships (id, type, target, external)
    rels: dict[str, list[tuple[str, str, str, bool]]] = attrs.Factory(dict)
    #: source part -> ids of relationships it may no longer use
    gone: dict[str, set[str]] = attrs.Factory(dict)
    #: source part -> ids of kept external hyperlinks (usable only by hyperlink elements)
    links: dict[str, set[str]] = attrs.Factory(dict)
    #: (source, relationship id) -> the member its target is, for the relationships kept
    targets: dict[tuple[str, str], str] = attrs.Factory(dict)

    def drop_target(self, name: str) -> None:
        for source, rels in self.rels.items():
            for rel in [r for r in rels if self.targets.get((source, r[0])) == name]:
                rels.remove(rel)
                self.gone.setdefault(source, set()).add(rel[0])
        self.kept.remove(name)


def _walk(parts: dict[str, bytes], names: dict[str, str], content_type, removed: _Removed) -> _Graph:
    graph = _Graph()
    todo, seen, reported = collections.deque([""]), {""}, set()
    while todo:
        source = todo.popleft()
        # pictures have no relationships of their own, whatever a member says
        xml = not source or KEPT_CONTENT_TYPES.get(content_type(_key(source)), False)
        rels_name = names.get(_key(_rels_name(source)) if source else "_rels/.rels") if xml else None
        kept, gone, links, ids = [], set(), set(), set()
        for rel in (parse(parts, rels_name) if rels_name else []):
            rid, target = rel.get("Id", ""), rel.get("Target", "")
            kind = _relationship_type(rel.get("Type", ""))
            if rel.tag != f"{{{PKG_REL}}}Relationship" or not rid:
                removed.add("other_parts", kind)
                continue
            if rid in ids:  # two relationships of one id: which one Office takes is not ours to guess
                raise Refusal("sanitizer.refused.broken", "sanitizer.instead.pdf")
            ids.add(rid)
            external = rel.get("TargetMode", "").strip().lower() == "external" or bool(_OUTSIDE.match(target))
            if external:
                if kind == HYPERLINK.lower() and source and is_web_link(target):
                    kept.append((rid, rel.get("Type", ""), target, True))
                    links.add(rid)
                else:
                    removed.add("external_template" if kind.endswith("/attachedtemplate") else "external_links", target)
                    gone.add(rid)
                continue
            key = _key(_resolve(source, target))
            name = names.get(key)
            ctype = content_type(key) if name else ""
            if kind not in KEPT_RELATIONSHIPS or not name or not _kept_part(ctype, parts[name]):
                removed.add(_removed_as(kind, key, ctype), name or target)
                reported.add(name)
                gone.add(rid)
                continue
            if kind == f"{R}/officedocument".lower():
                if source or graph.main or ctype not in MAIN_TYPES_LOWER:
                    gone.add(rid)
                    continue
                graph.main = name
            elif ctype in MAIN_TYPES_LOWER:  # a second main part, or one reached some other way
                gone.add(rid)
                continue
            kept.append((rid, rel.get("Type", ""), target, False))
            graph.targets[(source, rid)] = name
            if name not in seen:
                seen.add(name)
                graph.kept.append(name)
                todo.append(name)
        graph.rels[source] = kept
        if gone:
            graph.gone[source] = gone
        if links:
            graph.links[source] = links
    if not graph.main:
        raise Refusal("sanitizer.refused.broken", "sanitizer.instead.pdf")
    xlsb = MAIN_TYPES_LOWER[content_type(_key(graph.main))] == "xlsb"
    for name in list(graph.kept):
        if content_type(_key(name)) in XLSB_CONTENT_TYPES and not xlsb:
            graph.drop_target(name)
    for key, name in names.items():
        if name not in seen | reported and key != "[content_types].xml" and not key.endswith(".rels"):
            removed.add(_removed_as(key, content_type(key)), name)
    return graph


def _kept_part(ctype: str, data: bytes) -> bool:
    if ctype in XLSB_CONTENT_TYPES:
        return True  # only for an xlsb (checked once the main part is known)
    if ctype not in KEPT_CONTENT_TYPES:
        return False
    if ctype in ("image/x-emf", "image/emf"):
        return data[40:44] == b" EMF"
    return KEPT_CONTENT_TYPES[ctype] or data.startswith(PICTURE_MAGIC[ctype])


def _local(tag: str) -> tuple[str, str]:
    namespace, _, local = tag[1:].partition("}") if tag.startswith("{") else ("", "", tag)
    return namespace, local


class _Edits:
    """Removals and replacements of elements, applied in one pass (element lists are not searched once
    per removal: a part with many removals stays linear)."""

    def __init__(self, root: ET.Element):
        self.root = root
        self._parents: dict[ET.Element, ET.Element] | None = None
        self.doomed: set[ET.Element] = set()
        self.replaced: dict[ET.Element, list[ET.Element]] = {}

    @property
    def parents(self) -> dict[ET.Element, ET.Element]:
        if self._parents is None:  # made only for the parts that need it
            self._parents = {child: parent for parent in self.root.iter() for child in parent}
        return self._parents

    def drop(self, el: ET.Element) -> None:
        if el is not self.root:
            self.doomed.add(el)

    def replace(self, el: ET.Element, by: list[ET.Element]) -> None:
        if el is not self.root:
            self.replaced[el] = by

    def apply(self) -> bool:
        if not self.doomed and not self.replaced:
            return False
        for parent in list(self.root.iter()):
            if any(c in self.doomed or c in self.replaced for c in parent):
                children: list[ET.Element] = []
                for child in parent:
                    if child in self.doomed:
                        continue
                    children.extend(self.replaced.get(child, (child,)))
                parent[:] = children
        # containers left empty by what was removed from them (in reverse document order: children first)
        for parent in reversed(list(self.root.iter())):
            if any(c.tag in _EMPTY_WHEN_BARE and len(c) == 0 for c in parent):
                parent[:] = [c for c in parent if not (c.tag in _EMPTY_WHEN_BARE and len(c) == 0)]
        return True


def _drop_references(root: ET.Element, kept: set[str], links: set[str], removed: _Removed) -> bool:
    """Remove what refers to a relationship not kept (or to a web link, but as a link): the element,
    only an ``r:link``, or a Word hyperlink around its text. True if anything was removed."""
    edits = _Edits(root)
    for child in root.iter():
        if not child.attrib:
            continue
        refs = {k for k, v in child.attrib.items()
                if (_local(k)[0] in RELATIONSHIP_ATTRIBUTES or k == f"{{{VML_OFFICE}}}relid")
                and v and (v not in kept or (v in links and _local(child.tag)[1] not in _HYPERLINK_ELEMENTS))}
        if not refs:
            continue
        if any(child.attrib[k] in links for k in refs):
            removed.add("external_links", "a web link used as " + _local(child.tag)[1])
        if all(_local(k)[1] == "link" for k in refs):
            for k in refs:
                del child.attrib[k]
            edits.replace(child, [child])  # counts as a change
        elif _local(child.tag)[1] == "hyperlink" and _local(child.tag)[0] in WORD:
            edits.replace(child, list(child))  # the link goes, its text stays
        else:
            edits.drop(child)
    return edits.apply()


def _neutralize(root: ET.Element, removed: _Removed, limits: Limits) -> set[str]:
    """Fields, formulas, actions and links that act, in any XML part: made inert. Returns what was
    found (as shown to the person, plus "formulas" when a formula was taken off a cell)."""
    found: set[str] = set()
    edits = _Edits(root)

    def note(what: str, detail: str) -> None:
        found.add(what)
        removed.add(what, detail)

    _neutralize_fields(root, edits, note, limits)
    unsafe_shared: set[str] = set()
    names: dict[str, tuple[str, str]] = {}  # tag -> (namespace, local name), split once per tag
    for el in root.iter():
        namespace, local = names.get(el.tag) or names.setdefault(el.tag, _local(el.tag))
        if local in ACTIVE_ELEMENTS and namespace in WORD | SHEET | PRESENTATION | {VML_OFFICE}:
            note(ACTIVE_ELEMENTS[local], local)
            edits.drop(el)
        elif namespace in (VML, VML_OFFICE):
            for attribute in [a for a in el.attrib if a in VML_LINK_ATTRIBUTES]:
                note("external_links", el.get(attribute, ""))
                del el.attrib[attribute]
                edits.replace(el, [el])
        elif local in _HYPERLINK_ELEMENTS and el.get("action") and \
                not el.get("action", "").strip().lower().startswith(KEPT_ACTIONS):
            note("macros" if "macro" in el.get("action", "").lower() else "actions", el.get("action", ""))
            edits.drop(el)
        elif namespace in SHEET and local == "definedName":
            if not _kept_name(el):
                bare = el.get("name", "").strip().lower().removeprefix("_xlnm.")
                macro = bare.startswith("auto_") or any(el.get(a) for a in ("xlm", "function", "vbProcedure"))
                note("excel4_macros" if macro else _formula_removed_as(el.text or ""), el.get("name", ""))
                edits.drop(el)
        elif namespace in SHEET and local in ("f", "formula", "formula1", "formula2") and \
                not formula_is_inert(el.text or ""):
            note(_formula_removed_as(el.text or ""), el.text or "")
            found.add("formulas")
            if local == "f" and el.get("t") == "shared" and (shared_index := el.get("si")) is not None:
                unsafe_shared.add(shared_index)
            edits.drop(_formula_holder(el, edits.parents))
        elif namespace in CHART and local == "f" and not formula_is_inert(el.text or ""):
            note(_formula_removed_as(el.text or ""), el.text or "")
            _chart_reference_to_literal(el, edits)
        elif namespace in SHEET and (formula := el.get("formula")) is not None and not formula_is_inert(formula):
            note(_formula_removed_as(formula), formula)
            found.add("formulas")
            if local in ("calculatedItem", "calculatedMember"):
                edits.drop(el)
            else:
                del el.attrib["formula"]
                edits.replace(el, [el])
    if unsafe_shared:  # the cells sharing a removed formula lose it too (their cached values stay)
        for el in root.iter():
            if _local(el.tag) == (S, "f") and el.get("t") == "shared" and el.get("si") in unsafe_shared:
                edits.drop(el)
    if edits.apply():
        found.add("changed")
    return found


def _kept_name(el: ET.Element) -> bool:
    name = el.get("name", "").strip().lower()
    if any(el.get(a, "0").strip().lower() in ("1", "true") for a in ("function", "vbProcedure", "xlm")):
        return False
    if name.startswith("_xlnm.") and name not in KEPT_BUILTIN_NAMES:
        return False
    if name.removeprefix("_xlnm.").startswith(("auto_open", "auto_close", "auto_activate", "auto_deactivate")):
        return False
    return formula_is_inert(el.text or "")


def _formula_holder(el: ET.Element, parents: dict) -> ET.Element:
    """What goes with a formula that is not kept: a cell's formula alone (its cached value stays), the
    whole rule of a conditional format or a data validation."""
    if _local(el.tag)[1] == "f" and _local(el.tag)[0] != "http://schemas.microsoft.com/office/excel/2006/main":
        return el
    node = el
    while node in parents:
        node = parents[node]
        if _local(node.tag)[1] in ("cfRule", "dataValidation", "sparklineGroup"):
            return node
    return el


def _chart_reference_to_literal(f: ET.Element, edits: _Edits) -> None:
    """A chart series that read cells elsewhere keeps the values it last showed (numRef -> numLit)."""
    ref = edits.parents.get(f)
    if ref is None:
        return
    namespace, local = _local(ref.tag)
    cache = next((c for c in ref if _local(c.tag)[1] in ("numCache", "strCache")), None)
    if local in ("numRef", "strRef") and cache is not None:
        literal = ET.Element(f"{{{namespace}}}{'numLit' if local == 'numRef' else 'strLit'}")
        literal.extend(list(cache))
        edits.replace(ref, [literal])
    else:
        edits.drop(edits.parents.get(ref, ref))


def formula_is_inert(formula: str) -> bool:
    """True when ``formula`` only calculates from this workbook: every function kept, no DDE (``|``),
    no other workbook (``[1]``, a path in a sheet name). Linear: one pass over the text."""
    if len(formula) > MAX_FORMULA_CHARS:
        return False
    outside = _outside_quotes(formula)
    if outside is None or "|" in outside:
        return False
    for match in _NAME.finditer(outside):
        end = match.end()
        while end < len(outside) and outside[end].isspace():
            end += 1
        if end < len(outside) and outside[end] == "(":
            name = match.group().upper()
            for prefix in ("_XLFN._XLWS.", "_XLFN.", "_XLWS."):
                name = name.removeprefix(prefix)
            if name not in KEPT_FUNCTIONS:
                return False
    return True


def _outside_quotes(formula: str) -> str | None:
    """The formula without its string literals ("..."); sheet names ('...') stay but must not name a
    file. None when a quote is not closed or a bracket or sheet name names another workbook."""
    kept: list[str] = []
    i, n = 0, len(formula)
    while i < n:
        quote = formula[i]
        if quote not in "\"'":
            unquoted = _UNQUOTED.match(formula, i)
            assert unquoted is not None  # [^"']* matches anywhere, if only the empty string
            j = unquoted.end()
            kept.append(formula[i:j])
            i = j
            continue
        j = i + 1
        while True:
            j = formula.find(quote, j)
            if j < 0:
                return None
            if j + 1 < n and formula[j + 1] == quote:
                j += 2
                continue
            break
        if quote == "'":
            if any(c in formula[i + 1:j] for c in "[]\\/:|"):
                return None
            kept.append("S")  # a sheet name is a reference, never a function
        else:
            kept.append('""')
        i = j + 1
    text = "".join(kept)
    # brackets: structured table references ([Column], [@Column], [#Headers]) only, never a workbook
    start = text.find("[")
    while start >= 0:
        end = text.find("]", start)
        inner = text[start + 1:end if end >= 0 else len(text)].lstrip("[")
        if end < 0 or inner.isdigit() or any(c in inner for c in "\\/:.|"):
            return None
        start = text.find("[", end)
    return text


def _formula_removed_as(formula: str) -> str:
    outside = _outside_quotes(formula)
    if (outside is not None and "|" in outside) or (outside is None and "|" in formula):
        return "dde"
    return "external_links" if outside is None else "formulas_active"


def _neutralize_fields(root: ET.Element, edits: _Edits, note, limits: Limits) -> None:
    """Word fields not kept become the text they last showed: their codes (and any field nested in
    the codes) go, their result stays. Complex fields (fldChar begin/instrText/separate/end, maybe over
    several runs and paragraphs) and simple ones (fldSimple)."""
    order = list(root.iter())
    cut = [0] * (len(order) + 1)  # +1/-1 marks: run content between them goes
    stack: list[dict] = []

    def judge(instruction: str) -> bool:
        if field_is_inert(instruction):
            return True
        note("dde" if _field_name(instruction).startswith("DDE") else "fields", instruction.strip())
        return False

    def close(frame: dict, end: int) -> None:
        if judge("".join(frame["instruction"])):
            return
        last = frame["separate"] if frame["separate"] is not None else end
        cut[frame["begin"]] += 1
        cut[last + 1] -= 1
        cut[end] += 1
        cut[end + 1] -= 1

    for i, el in enumerate(order):
        if el.tag not in _FIELD_TAGS:
            continue
        local = _local(el.tag)[1]
        if local == "fldChar":
            kind = next((v for k, v in el.attrib.items() if _local(k)[1] == "fldCharType"), "")
            if kind == "begin":
                if len(stack) >= limits.max_field_depth:
                    raise Refusal("sanitizer.refused.broken", "sanitizer.instead.pdf")
                stack.append({"begin": i, "separate": None, "instruction": []})
            elif kind == "separate" and stack and stack[-1]["separate"] is None:
                stack[-1]["separate"] = i
            elif kind == "end" and stack:
                close(stack.pop(), i)
            else:  # a mark of no field: meaningless, removed
                cut[i] += 1
                cut[i + 1] -= 1
        elif local in ("instrText", "delInstrText") and stack and stack[-1]["separate"] is None:
            stack[-1]["instruction"].append(el.text or "")
        elif local == "fldSimple":
            instruction = next((v for k, v in el.attrib.items() if _local(k)[1] == "instr"), "")
            if not judge(instruction):
                edits.replace(el, [c for c in el if _local(c.tag)[1] != "fldData"])
    while stack:  # never ended: judged up to the end of the part
        close(stack.pop(), len(order) - 1)
    if not any(cut):
        return
    depth = 0
    for i, el in enumerate(order):
        depth += cut[i]
        parent = edits.parents.get(el)
        if depth > 0 and parent is not None and _local(parent.tag)[1] == "r" and _local(parent.tag)[0] in WORD \
                and _local(el.tag)[1] != "rPr":
            edits.drop(el)


def _field_name(instruction: str) -> str:
    words = instruction.split(None, 1)
    if not words:
        return ""
    word = words[0].upper()
    return "=" if word.startswith("=") else word.split("\\", 1)[0]


def field_is_inert(instruction: str) -> bool:
    """A field kept: its name in :data:`KEPT_FIELDS`, a HYPERLINK only to the web, mail or a bookmark."""
    name = _field_name(instruction)
    if not name:
        return True  # no instruction: nothing to run
    if name not in KEPT_FIELDS:
        return False
    if name != "HYPERLINK":
        return True
    words = [w.group() for w in _FIELD_WORD.finditer(instruction)][1:]
    skip = False
    for word in words:
        if skip:
            skip = False
        elif word.startswith("\\"):
            skip = word.upper() in _HYPERLINK_SWITCHES_WITH_ARGUMENT
        else:
            return is_web_link(word.strip('"').strip())
    return True


def is_web_link(target: str) -> bool:
    """A link kept: web or mail, one token, and a URL that parses (``http://[x`` does not: no reader
    could follow it, and the verifier refuses what it cannot read)."""
    if not _WEB_LINK.match(target):
        return False
    try:
        urllib.parse.urlsplit(target)
    except ValueError:
        return False
    return True


def _namespaces(data: bytes) -> dict[str, str]:
    """prefix -> URI of every namespace the part declares (first declaration wins)."""
    found: dict[str, str] = {}
    for _, (prefix, uri) in SafeET.iterparse(io.BytesIO(data), events=("start-ns",)):
        found.setdefault(prefix, uri)
    return found


def serialize(root: ET.Element, original: bytes) -> bytes:
    try:
        return _serialize(root, original)
    except (RecursionError, ValueError, ET.ParseError):  # nested too deep to write, or a bad prefix
        raise Refusal("sanitizer.refused.broken", "sanitizer.instead.pdf") from None


def _serialize(root: ET.Element, original: bytes) -> bytes:
    namespaces = _namespaces(original)
    default = namespaces.get("")
    with _SERIALIZE:
        for prefix, uri in namespaces.items():
            if prefix and not _XML_PREFIX.fullmatch(prefix):
                ET.register_namespace(prefix, uri)
        if default:
            ET.register_namespace(_DEFAULT, default)
        body = ET.tostring(root, encoding="unicode")
    # ElementTree cannot write a default namespace when attributes have none (they never do here): it is
    # written under a made-up prefix, taken off again unless something would change meaning
    if default and all(el.tag.startswith("{") for el in root.iter()) and \
            not any(k.startswith(f"{{{default}}}") for el in root.iter() for k in el.keys()):
        body = body.replace(f"<{_DEFAULT}:", "<").replace(f"</{_DEFAULT}:", "</") \
            .replace(f"xmlns:{_DEFAULT}=", "xmlns=")
    # declarations ElementTree drops as unused may still be named by mc:Ignorable: put them back
    head = _XML_HEAD.match(body)
    assert head is not None  # ElementTree's serialization starts with the root's tag
    declared = set(_XML_DECLARED.findall(body[:body.index(">")]))
    missing = "".join(f' xmlns:{p}="{escape(u, QUOTE)}"' for p, u in namespaces.items() if p and p not in declared)
    body = body[:head.end()] + missing + body[head.end():]
    return _XML_DECLARATION + body.encode()


def _write(parts: dict[str, bytes], graph: _Graph, content_type, kind: str) -> bytes:
    """A new package: content types and relationships written from what was kept, every internal
    target by the exact name of its member (readers that compare names case-sensitively find it)."""
    members: dict[str, bytes] = {}
    overrides = []
    for name in graph.kept:
        ctype = content_type(_key(name))
        ctype = PLAIN_MAIN[kind] if ctype in MAIN_TYPES_LOWER and kind in PLAIN_MAIN else SPELLING.get(ctype, ctype)
        overrides.append(f'<Override PartName="{escape("/" + name, QUOTE)}" ContentType="{escape(ctype, QUOTE)}"/>')
    members["[Content_Types].xml"] = _XML_DECLARATION + (
        f'<Types xmlns="{CT}"><Default Extension="rels" ContentType="{RELATIONSHIPS_TYPE}"/>'
        + "".join(overrides) + "</Types>").encode()
    for source, rels in graph.rels.items():
        if not rels or (source and source not in parts):
            continue
        items = []
        for rid, kind_of, target, external in rels:
            if external:
                items.append(f'<Relationship Id="{escape(rid, QUOTE)}" Type="{escape(kind_of, QUOTE)}" '
                             f'Target="{escape(target, QUOTE)}" TargetMode="External"/>')
            else:
                items.append(f'<Relationship Id="{escape(rid, QUOTE)}" Type="{escape(kind_of, QUOTE)}" '
                             f'Target="{escape("/" + graph.targets[(source, rid)], QUOTE)}"/>')
        members[_rels_name(source) if source else "_rels/.rels"] = _XML_DECLARATION + (
            f'<Relationships xmlns="{PKG_REL}">' + "".join(items) + "</Relationships>").encode()
    for name in graph.kept:
        members[name] = parts[name]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=6) as z:
        for name, data in members.items():
            z.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), data,
                       compress_type=zipfile.ZIP_DEFLATED)
    return buffer.getvalue()
