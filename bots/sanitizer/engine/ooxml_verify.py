"""The check of a strip-active Office output, independent of :mod:`ooxml` (it shares no list and no
code with the stripper, so one mistake cannot hide in both). Fail-closed: whatever this module does
not recognise is a problem, and a package with any problem is not delivered.

It walks EVERY member of the zip whatever its name, and requires:

- one ``[Content_Types].xml`` naming a content type for every member, each from the list below, and
  no two members that OPC would take for the same part (case, percent-encoding);
- every relationship of a known type, to an existing member of an accepted content type, or an
  external hyperlink to ``http(s):``/``mailto:`` only; every member reached from the package root;
- in every XML member: no element that embeds, imports, links or runs (altChunk, OLE, ActiveX, mail
  merge, templates, macros), no attribute naming a local file, a UNC path or a program action, Word
  fields only from the list below, spreadsheet formulas only with the functions below and no DDE
  (``|``) or other-workbook reference, wherever a formula can be;
- pictures whose first bytes are the picture their content type says.
"""

from __future__ import annotations

import io
import posixpath
import urllib.parse
import xml.etree.ElementTree as ET
import zipfile
from collections.abc import Iterator

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException

OFFICE_DOC = "http://schemas.openxmlformats.org/officeDocument/2006/relationships/"
PACKAGE_REL = "http://schemas.openxmlformats.org/package/2006/relationships"
TYPES_NS = "{http://schemas.openxmlformats.org/package/2006/content-types}"
RELS_TYPE = "application/vnd.openxmlformats-package.relationships+xml"

#: the main parts accepted (plain documents only: no macro-enabled or template forms)
MAIN_PARTS = {
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation.main+xml",
}
_X = "application/vnd.openxmlformats-officedocument."
XML_TYPES = MAIN_PARTS | {_X + t + "+xml" for t in """
wordprocessingml.styles wordprocessingml.settings wordprocessingml.websettings wordprocessingml.fonttable
wordprocessingml.numbering wordprocessingml.footnotes wordprocessingml.endnotes wordprocessingml.comments
wordprocessingml.header wordprocessingml.footer wordprocessingml.document.glossary
wordprocessingml.commentsextended wordprocessingml.commentsids wordprocessingml.people
wordprocessingml.commentsextensible
spreadsheetml.worksheet spreadsheetml.chartsheet spreadsheetml.sharedstrings spreadsheetml.styles
spreadsheetml.calcchain spreadsheetml.table spreadsheetml.pivottable spreadsheetml.pivotcachedefinition
spreadsheetml.pivotcacherecords spreadsheetml.comments spreadsheetml.sheetmetadata
presentationml.slide presentationml.slidelayout presentationml.slidemaster presentationml.notesslide
presentationml.notesmaster presentationml.handoutmaster presentationml.presprops presentationml.viewprops
presentationml.tablestyles presentationml.commentauthors presentationml.comments presentationml.tags
theme drawing drawingml.chart drawingml.chartshapes drawingml.diagramdata drawingml.diagramlayout
drawingml.diagramstyle drawingml.diagramcolors extended-properties custom-properties
""".split()} | {
    _X + "vmldrawing", "application/vnd.ms-word.styleswitheffects+xml",
    "application/vnd.ms-excel.threadedcomments+xml", "application/vnd.ms-excel.person+xml",
    "application/vnd.ms-office.drawingml.diagramdrawing+xml", "application/vnd.ms-office.chartstyle+xml",
    "application/vnd.ms-office.chartcolorstyle+xml", "application/vnd.openxmlformats-package.core-properties+xml",
}
#: picture types accepted, and how each starts
PICTURES = {
    "image/png": lambda b: b[:8] == b"\x89PNG\r\n\x1a\n",
    "image/jpeg": lambda b: b[:3] == b"\xff\xd8\xff",
    "image/jpg": lambda b: b[:3] == b"\xff\xd8\xff",
    "image/gif": lambda b: b[:6] in (b"GIF87a", b"GIF89a"),
    "image/bmp": lambda b: b[:2] == b"BM",
    "image/tiff": lambda b: b[:4] in (b"II*\x00", b"MM\x00*"),
    "image/x-emf": lambda b: b[40:44] == b" EMF", "image/emf": lambda b: b[40:44] == b" EMF",
    "image/x-wmf": lambda b: b[:4] in (b"\xd7\xcd\xc6\x9a", b"\x01\x00\x09\x00", b"\x02\x00\x09\x00"),
    "image/wmf": lambda b: b[:4] in (b"\xd7\xcd\xc6\x9a", b"\x01\x00\x09\x00", b"\x02\x00\x09\x00"),
}
#: relationship types accepted
RELATIONSHIP_TYPES = {(OFFICE_DOC + t).lower() for t in """
officeDocument extended-properties custom-properties styles settings webSettings fontTable theme
numbering footnotes endnotes comments header footer image hyperlink glossaryDocument worksheet chartsheet
sharedStrings calcChain drawing chart chartUserShapes table pivotTable pivotCacheDefinition
pivotCacheRecords vmlDrawing sheetMetadata slide slideLayout slideMaster notesSlide notesMaster
handoutMaster presProps viewProps tableStyles commentAuthors tags diagramData diagramLayout
diagramQuickStyle diagramColors
""".split()} | {PACKAGE_REL + "/metadata/core-properties", PACKAGE_REL + "/metadata/thumbnail"} | {
    ("http://schemas.microsoft.com/office/" + t).lower() for t in """
2007/relationships/stylesWithEffects 2007/relationships/diagramDrawing 2011/relationships/chartStyle
2011/relationships/chartColorStyle 2011/relationships/commentsExtended 2016/09/relationships/commentsIds
2018/08/relationships/commentsExtensible 2011/relationships/people 2017/10/relationships/threadedComment
2017/10/relationships/person""".split()}
#: Word fields accepted
FIELDS = set("""
PAGE NUMPAGES SECTIONPAGES SECTION DATE TIME CREATEDATE SAVEDATE PRINTDATE EDITTIME TOC TOA TA TC XE
INDEX SEQ REF PAGEREF NOTEREF STYLEREF HYPERLINK AUTHOR TITLE SUBJECT KEYWORDS COMMENTS LASTSAVEDBY
NUMWORDS NUMCHARS FILESIZE FILENAME TEMPLATE DOCPROPERTY DOCVARIABLE USERNAME USERINITIALS FORMTEXT
FORMCHECKBOX FORMDROPDOWN EQ SYMBOL ADVANCE LISTNUM AUTONUM AUTONUMLGL AUTONUMOUT BIDIOUTLINE IF COMPARE
QUOTE SET BIBLIOGRAPHY CITATION
""".split())
#: spreadsheet functions accepted (calculations over the workbook's own cells)
FUNCTIONS = set("""
SUM SUMIF SUMIFS SUMPRODUCT AVERAGE AVERAGEA AVERAGEIF AVERAGEIFS COUNT COUNTA COUNTBLANK COUNTIF COUNTIFS
MIN MINA MINIFS MAX MAXA MAXIFS MEDIAN MODE LARGE SMALL RANK RANK.EQ RANK.AVG STDEV STDEV.S STDEV.P STDEVA
VAR VAR.S VAR.P SUBTOTAL ROUND ROUNDUP ROUNDDOWN MROUND INT TRUNC CEILING CEILING.MATH FLOOR FLOOR.MATH
ABS SIGN MOD QUOTIENT POWER SQRT EXP LN LOG LOG10 PI SIN COS TAN ASIN ACOS ATAN ATAN2 SINH COSH TANH
ASINH ACOSH ATANH DEGREES RADIANS FACT EVEN ODD PRODUCT IF IFS IFERROR IFNA AND OR NOT XOR TRUE FALSE
SWITCH CHOOSE ISBLANK ISERR ISERROR ISEVEN ISODD ISLOGICAL ISNA ISNONTEXT ISNUMBER ISTEXT N T VALUE
TEXT FIXED YEN DOLLAR LEFT LEFTB RIGHT RIGHTB MID MIDB LEN LENB FIND FINDB SEARCH SEARCHB REPLACE
REPLACEB SUBSTITUTE CONCAT CONCATENATE TEXTJOIN TRIM CLEAN UPPER LOWER PROPER REPT EXACT CHAR CODE ASC
JIS DBCS PHONETIC NUMBERSTRING DATESTRING DATE DATEVALUE DATEDIF DAY DAYS MONTH YEAR HOUR MINUTE SECOND
TIME TIMEVALUE NOW TODAY WEEKDAY WEEKNUM EDATE EOMONTH WORKDAY NETWORKDAYS VLOOKUP HLOOKUP XLOOKUP
LOOKUP INDEX MATCH XMATCH ROW ROWS COLUMN COLUMNS FILTER SORT SORTBY UNIQUE SEQUENCE OFFSET TRANSPOSE
SINGLE ANCHORARRAY RAND RANDBETWEEN NA ISREF ERROR.TYPE PMT PV FV NPV IRR RATE NPER
""".split())
#: elements that embed, import, link or run, in whatever namespace
FORBIDDEN_ELEMENTS = set("""
altChunk subDoc attachedTemplate mailMerge saveThroughXslt OLEObject oleObj oleObjects oleLink ddeLink
control controls entryMacro exitMacro fldData webPublishItems webPublishObjects externalReference
externalReferences externalBook
""".split())
#: attribute values that open a file, a share or a program
FORBIDDEN_VALUE_STARTS = ("file:", "\\\\", "//", "javascript:", "vbscript:", "ppaction://program",
                          "ppaction://macro", "ppaction://ole", "ppaction://hlinkfile", "ppaction://hlinkpres",
                          "ppaction://media")
BUILTIN_NAMES = {"_xlnm.print_area", "_xlnm.print_titles", "_xlnm._filterdatabase", "_xlnm.criteria",
                 "_xlnm.extract", "_xlnm.database", "_xlnm.consolidate_area", "_xlnm.sheet_title"}
#: nothing in this module applies a regular expression to the package (checked by the tests)
UNTRUSTED_PATTERNS: dict = {}


def verify_package(data: bytes) -> list[str]:
    """The problems of an OOXML output (empty: nothing active found, and everything recognised)."""
    try:
        z = zipfile.ZipFile(io.BytesIO(data))
    except Exception:  # BadZipFile, ValueError, EOFError...: zipfile raises more than it documents
        return ["not a zip"]
    problems: list[str] = []
    with z:
        members: dict[str, bytes] = {}
        keys: dict[str, str] = {}
        for info in z.infolist():
            if info.flag_bits & 1:
                problems.append(f"encrypted member: {info.filename}")
                continue
            if info.filename.endswith("/"):
                continue
            key = _opc_key(info.filename)
            if key is None or key in keys:
                problems.append(f"ambiguous member name: {info.filename}")
                continue
            keys[key] = info.filename
            try:
                members[info.filename] = z.read(info)
            except Exception:  # a bad CRC, a tampered deflate stream (zlib.error), a method zipfile lacks
                problems.append(f"unreadable member: {info.filename}")
    if problems:
        return problems
    if "[Content_Types].xml" not in members:
        return ["no [Content_Types].xml"]
    types = _xml(members["[Content_Types].xml"])
    if types is None or types.tag != f"{TYPES_NS}Types":
        return ["unreadable [Content_Types].xml"]
    by_part = {}
    by_extension = {}
    for el in types:
        if el.tag == f"{TYPES_NS}Override":
            by_part[_opc_key(el.get("PartName", "")) or "?"] = el.get("ContentType", "").lower()
        elif el.tag == f"{TYPES_NS}Default":
            by_extension[el.get("Extension", "").lower()] = el.get("ContentType", "").lower()
        else:
            problems.append(f"unknown content type entry: {el.tag}")

    def type_of(name: str) -> str:
        key = _opc_key(name) or ""
        base = key.rsplit("/", 1)[-1]
        return by_part.get(key) or by_extension.get(base.rsplit(".", 1)[-1] if "." in base else "", "")

    reached: set[str] = set()
    links: dict[str, set[str]] = {}  # member -> ids of its external web links
    main = ""
    for name, content in members.items():
        if name == "[Content_Types].xml" or type_of(name) != RELS_TYPE:
            continue
        source = _source_of(name)
        if source is None or (source and _opc_key(source) not in keys):
            problems.append(f"relationships of nothing: {name}")
            continue
        for problem, target, link in _relationships(name, content, source, keys, type_of):
            if problem:
                problems.append(problem)
            elif link:
                links.setdefault(keys[_opc_key(source) or ""], set()).add(link)
            else:
                reached.add(target)
                if not source and type_of(target) in MAIN_PARTS:
                    main = target
    for name, content in members.items():
        ctype = type_of(name)
        if name == "[Content_Types].xml" or ctype == RELS_TYPE:
            continue
        if ctype in XML_TYPES:
            problems += [f"{name}: {p}" for p in _xml_problems(content, links.get(name, set()))]
        elif ctype in PICTURES:
            if not PICTURES[ctype](content):
                problems.append(f"not a {ctype}: {name}")
        else:
            problems.append(f"content type not accepted: {name} ({ctype or 'none'})")
    if not main:
        problems.append("no document main part")
    for name in members:
        if name != "[Content_Types].xml" and type_of(name) != RELS_TYPE and name not in reached:
            problems.append(f"part no relationship reaches: {name}")
    return problems


def _opc_key(name: str) -> str | None:
    try:
        key = urllib.parse.unquote(name.lstrip("/"), errors="strict")
    except UnicodeDecodeError:
        return None
    return key.lower()


def _source_of(rels_name: str) -> str | None:
    folder, base = posixpath.split(rels_name)
    if not base.lower().endswith(".rels") or posixpath.basename(folder).lower() != "_rels":
        return None
    source_base = base[:-5]
    parent = posixpath.dirname(folder)
    if not source_base:
        return "" if not parent else None
    return posixpath.join(parent, source_base)


def _relationships(name: str, content: bytes, source: str, keys: dict[str, str],
                   type_of) -> Iterator[tuple[str, str, str]]:
    """(problem, "", "") or ("", target member, "") or ("", "", id of an external web link)."""
    root = _xml(content)
    if root is None or root.tag != f"{{{PACKAGE_REL}}}Relationships":
        yield f"unreadable relationships: {name}", "", ""
        return
    ids: set[str] = set()
    for rel in root:
        kind = rel.get("Type", "").strip().lower()
        target = rel.get("Target", "")
        rid = rel.get("Id", "")
        if rel.tag != f"{{{PACKAGE_REL}}}Relationship" or kind not in RELATIONSHIP_TYPES:
            yield f"relationship not accepted: {name}: {kind or rel.tag}", "", ""
            continue
        if not rid or rid in ids:  # which of two a reader takes is not for the verifier to guess
            yield f"relationship id missing or repeated: {name}: {rid}", "", ""
            continue
        ids.add(rid)
        mode = rel.get("TargetMode", "Internal")
        if mode not in ("Internal", "External"):
            yield f"target mode not accepted: {name}: {mode[:40]}", "", ""
            continue
        try:
            scheme = urllib.parse.urlsplit(target.strip()).scheme.lower()
        except ValueError:  # e.g. an unbalanced "[" taken for an IPv6 host
            yield f"unreadable target: {name}: {target[:80]}", "", ""
            continue
        if mode == "External" or scheme or target.startswith(("\\", "//")):
            web = scheme in ("http", "https", "mailto") and not any(c.isspace() or c == "\\" for c in target)
            if not (kind == (OFFICE_DOC + "hyperlink").lower() and web and source):
                yield f"external target: {name}: {target}", "", ""
            else:
                yield "", "", rid
            continue
        path = target.split("#")[0]
        resolved = posixpath.normpath(path.lstrip("/") if path.startswith("/")
                                      else posixpath.join(posixpath.dirname(source), path))
        member = keys.get(_opc_key(resolved) or "")
        if member is None:
            yield f"target missing: {name}: {target}", "", ""
        elif type_of(member) == RELS_TYPE:
            yield f"target is relationships: {name}: {target}", "", ""
        else:
            yield "", member, ""


def _xml(content: bytes) -> ET.Element | None:
    try:
        return SafeET.fromstring(content)
    except (ET.ParseError, DefusedXmlException, ValueError):
        return None


def _xml_problems(content: bytes, links: set[str]) -> list[str]:
    root = _xml(content)
    if root is None:
        return ["unreadable XML"]
    problems: list[str] = []
    # instruction pieces of each field not yet at its separator (None: past it, in the result)
    open_fields: list[list[str] | None] = []
    split: dict[str, tuple[str, str]] = {}  # name -> (namespace, local name), once per name

    def names(tag: str) -> tuple[str, str]:
        if tag not in split:
            namespace, _, local = tag[1:].partition("}") if tag[:1] == "{" else ("", "", tag)
            split[tag] = (namespace, local)
        return split[tag]

    for el in root.iter():
        namespace, local = names(el.tag)
        if local in FORBIDDEN_ELEMENTS:
            problems.append(f"element {local}")
        for attribute, value in el.attrib.items():
            attribute_local = names(attribute)[1]
            if value.strip().lower().startswith(FORBIDDEN_VALUE_STARTS):
                problems.append(f"attribute {attribute_local}={value[:80]}")
            if namespace == "urn:schemas-microsoft-com:vml" and attribute_local in ("src", "href"):
                problems.append(f"VML {attribute_local}={value[:80]}")
            if attribute_local == "href" and namespace == "urn:schemas-microsoft-com:office:office":
                problems.append(f"VML href={value[:80]}")
            if attribute_local in ("action",) and value and not value.lower().startswith(
                    ("ppaction://hlinksldjump", "ppaction://hlinkshowjump", "ppaction://noaction",
                     "ppaction://customshow")):
                problems.append(f"action {value[:80]}")
            if attribute_local == "formula" and "spreadsheetml" in namespace + el.tag:
                problems += _formula_problems(value)
            if value in links and "relationships" in attribute and local not in (
                    "hyperlink", "hlinkClick", "hlinkHover", "hlinkMouseOver"):
                problems.append(f"web link used by {local}")
            if attribute_local == "instr" and local == "fldSimple":
                problems += _field_problems(value)
        if "wordprocessingml" in namespace:
            if local == "fldChar":
                kind = next((v for k, v in el.attrib.items() if k.endswith("fldCharType")), "")
                if kind == "begin":
                    open_fields.append([])
                elif kind in ("separate", "end") and open_fields:
                    pieces = open_fields.pop()
                    if pieces is not None:
                        problems += _field_problems("".join(pieces))
                        if kind == "separate":
                            open_fields.append(None)  # the result: no more instruction for this field
                    elif kind == "separate":
                        problems.append("field with two separators")
                elif kind == "end" and not open_fields:
                    problems.append("field end without begin")
            elif local in ("instrText", "delInstrText"):
                if not open_fields or open_fields[-1] is None:
                    problems.append(f"field code outside a field: {(el.text or '')[:80]}")
                else:
                    open_fields[-1].append(el.text or "")
        if ("spreadsheetml" in namespace or namespace.endswith("/excel/2006/main") or
                "drawingml/2006/chart" in namespace or "drawingml/chart" in namespace) and \
                local in ("f", "formula", "formula1", "formula2", "definedName"):
            problems += _formula_problems(el.text or "")
            if local == "definedName":
                name = el.get("name", "").lower()
                bare = name[6:] if name.startswith("_xlnm.") else name
                if (name.startswith("_xlnm.") and name not in BUILTIN_NAMES) or bare.startswith("auto_") \
                        or any(el.get(a, "0").lower() in ("1", "true") for a in ("xlm", "function", "vbProcedure")):
                    problems.append(f"macro name {el.get('name')}")
    # a field left open, apart from the ones already at their results
    problems += [f"field without end: {''.join(f)[:80]}" for f in open_fields if f is not None]
    return problems


def _field_problems(instruction: str) -> list[str]:
    words = instruction.split()
    if not words:
        return []
    name = words[0].upper()
    if name.startswith("="):
        return []
    if "\\" in name:
        name = name[:name.index("\\")]
    if name not in FIELDS:
        return [f"field {instruction.strip()[:80]}"]
    if name == "HYPERLINK":
        arguments = _field_arguments(instruction)[1:]
        while arguments:
            word, quoted = arguments.pop(0)
            if not quoted and word.upper() in ("\\L", "\\O", "\\T"):
                if arguments:
                    arguments.pop(0)
            elif quoted or not word.startswith("\\"):
                try:
                    scheme = urllib.parse.urlsplit(word.strip()).scheme.lower()
                except ValueError:  # not a URL at all
                    return [f"field {instruction.strip()[:80]}"]
                if scheme not in ("http", "https", "mailto") or "\\" in word:
                    return [f"field {instruction.strip()[:80]}"]
                break
    return []


def _field_arguments(instruction: str) -> list[tuple[str, bool]]:
    """Words of a field code, each with whether it was quoted (a plain scan, no pattern)."""
    words: list[tuple[str, bool]] = []
    current: list[str] = []
    quoted = False
    for c in instruction:
        if c == '"':
            if quoted or current:
                words.append(("".join(current), quoted))
                current = []
            quoted = not quoted
        elif c.isspace() and not quoted:
            if current:
                words.append(("".join(current), False))
                current = []
        else:
            current.append(c)
    if current or quoted:
        words.append(("".join(current), quoted))
    return words


def _formula_problems(formula: str) -> list[str]:
    """A state machine over the formula's characters: strings, sheet names, brackets and names."""
    if len(formula) > 8192:
        return ["formula too long"]
    problems: list[str] = []
    state, pending = "code", ""
    name: list[str] = []
    bracket: list[str] = []
    for c in formula + " ":
        if state == "string":
            state = "string_end" if c == '"' else "string"
            continue
        if state == "string_end":
            if c == '"':
                state = "string"
                continue
            state = "code"
        if state == "sheet":
            if c == "'":
                state = "sheet_end"
            elif c in "[]\\/:|":
                problems.append(f"other workbook: {formula[:80]}")
            continue
        if state == "sheet_end":
            if c == "'":
                state = "sheet"
                continue
            state = "code"
        if state == "bracket":
            if c == "]":
                inner = "".join(bracket).lstrip("[")
                if inner.isdigit() or any(ch in inner for ch in "\\/:.|"):
                    problems.append(f"other workbook: {formula[:80]}")
                state, bracket = "code", []
            else:
                bracket.append(c)
            continue
        # code
        if c.isalnum() or c in "_." or (name and c.isdigit()):
            name.append(c)
            continue
        if name:
            pending, name = "".join(name).upper(), []
        if pending and c.isspace():
            continue  # a name, spaces, then "(" is still a call
        if pending and c == "(" and not pending[0].isdigit():
            for prefix in ("_XLFN._XLWS.", "_XLFN.", "_XLWS."):
                if pending.startswith(prefix):
                    pending = pending[len(prefix):]
            if pending not in FUNCTIONS:
                problems.append(f"function {pending}")
        pending = ""
        if c == '"':
            state = "string"
        elif c == "'":
            state = "sheet"
        elif c == "[":
            state = "bracket"
        elif c == "|":
            problems.append(f"DDE: {formula[:80]}")
    if state in ("string", "sheet", "bracket"):
        problems.append(f"unclosed: {formula[:80]}")
    return problems
