"""Active content out of OOXML (docx/xlsx/pptx and their macro-enabled and template forms), the
DocBleach way, BEFORE any renderer opens the file.

Dropped parts: VBA (vbaProject.bin, vbaData, toolbars, key maps, ribbon callbacks), Excel 4 macro and
dialog sheets, OLE objects and embedded packages, ActiveX, external workbook links. Dropped
relationships: every external one except plain hyperlinks (remote templates, ``r:link`` images, linked
OLE, master documents, frames, mail merge sources) and every one pointing at a dropped part; the
elements referring to them go too (``r:link`` alone is removed from an image that is also embedded).
Fields that run or fetch (DDE, DDEAUTO, INCLUDETEXT, INCLUDEPICTURE, LINK, IMPORT) lose their
instruction and keep their last shown result; worksheet formulas calling DDE (``cmd|'/c calc'!A0``) or
other workbooks keep their cached value only. Macro-enabled content types are relabelled (docm →
docx). XML is parsed with defusedxml (no DTD, no entities); a part that cannot be parsed refuses the
file. Only changed parts are rewritten, with their namespace prefixes and declarations kept (Word
refuses a file whose ``mc:Ignorable`` names an undeclared prefix).
"""

from __future__ import annotations

import io
import posixpath
import re
import threading
import xml.etree.ElementTree as ET
import zipfile
from typing import Iterable

import attrs
import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException

from .result import Refusal

R = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
PKG_REL = "http://schemas.openxmlformats.org/package/2006/relationships"
CT = "http://schemas.openxmlformats.org/package/2006/content-types"
W = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
S = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
MC = "http://schemas.openxmlformats.org/markup-compatibility/2006"
#: where the namespaces of ISO 29500 Strict documents start
STRICT = "http://purl.oclc.org/ooxml/"
HYPERLINK = f"{R}/hyperlink"
TEMPLATE = f"{R}/attachedTemplate"

#: main part content type -> (what it is, the plain content type it is relabelled to)
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
    # binary workbook: parts can be dropped, cells cannot be read (rasterized only)
    "application/vnd.ms-excel.sheet.binary.macroEnabled.main": "xlsb",
}
PLAIN_MAIN = {"docx": _DOCX, "xlsx": _XLSX, "pptx": _PPTX}
#: what the delivered file is: extension and MIME type (as libmagic names it)
PACKAGE = {
    "docx": (".docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
    "xlsx": (".xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
    "pptx": (".pptx", "application/vnd.openxmlformats-officedocument.presentationml.presentation"),
}

#: dropped parts, by what they are shown to the person as: patterns of the part's name, of its content
#: type, and of the type of a relationship pointing at it (Office finds VBA by that relationship,
#: whatever the part is called and whatever content type it claims)
DROPPED_PARTS = (
    ("macros", re.compile(r"(^|/)(vbaproject[^/]*\.bin|vbadata\.xml|attachedtoolbars\.bin|keymapcustomizations\.xml)$"
                          r"|(^|/)customui/", re.I),
     re.compile(r"vbaproject|vbadata|vbaprojectsignature|keymapcustomizations|attachedtoolbars|ui\.extensibility",
                re.I),
     re.compile(r"/(vbaProject|vbaProjectSignature|wordVbaData|attachedToolbars|keyMapCustomizations|"
                r"ui/extensibility)$", re.I)),
    ("excel4_macros", re.compile(r"^xl/(macrosheets|dialogsheets)/", re.I), re.compile(r"macrosheet|dialogsheet", re.I),
     re.compile(r"/(xlMacrosheet|xlIntlMacrosheet|dialogsheet)$", re.I)),
    ("ole_objects", re.compile(r"(^|/)embeddings/", re.I), re.compile(r"oleobject", re.I),
     re.compile(r"/(oleObject|package)$", re.I)),
    ("activex", re.compile(r"(^|/)activex/", re.I), re.compile(r"activex", re.I),
     re.compile(r"/(control|activeXControlBinary)$", re.I)),
    # other workbooks, database and web queries
    ("external_links", re.compile(r"^xl/(externallinks/|connections\.xml$|querytables/)", re.I),
     re.compile(r"externallink|spreadsheetml\.(connections|querytable)", re.I),
     re.compile(r"/(externalLink|externalLinkPath|connections|queryTable)$", re.I)),
)
#: a relationship target that is not a part of the package, whatever TargetMode says
_OUTSIDE = re.compile(r"^([a-z][a-z0-9+.-]*:|\\\\|//)", re.I)
#: the hyperlinks kept (file:, UNC and other schemes open programs or leak credentials when clicked)
_SAFE_LINK = re.compile(r"^\s*(https?|mailto):", re.I)
#: elements that may use a hyperlink relationship (any other use of one is a trick)
_HYPERLINK_ELEMENTS = {"hyperlink", "hlinkClick", "hlinkHover", "hlinkMouseOver"}
#: field instructions that run something or fetch something (anywhere: fields nest)
_FIELD = re.compile(r"\b(DDEAUTO|DDE|INCLUDETEXT|INCLUDEPICTURE|LINK|IMPORT)\b", re.I)
#: PowerPoint click and hover actions that start a program or a macro
_PPACTION = re.compile(r"^\s*ppaction://(program|macro)", re.I)
VML = "urn:schemas-microsoft-com:vml"
O = "urn:schemas-microsoft-com:office:office"
#: a worksheet formula calling DDE (app|'topic'!item), or reading another workbook ([1]Sheet!A1)
_DDE_FORMULA = re.compile(r"[\w.]+\|'?[^'!\"]*'?!")
_EXTERNAL_FORMULA = re.compile(r"\[\d+\]")
_AUTO_NAMES = re.compile(r"^(_xlnm\.)?auto_(open|close|activate|deactivate)", re.I)
_EMPTY_WHEN_BARE = {f"{{{W}}}object", f"{{{S}}}oleObjects", f"{{{S}}}controls", f"{{{S}}}externalReferences",
                    f"{{{MC}}}AlternateContent", f"{{{MC}}}Choice", f"{{{MC}}}Fallback"}

# ElementTree names namespace prefixes from a process-wide table: set it and serialize under one lock.
_SERIALIZE = threading.Lock()
_DEFAULT = "lgwandefaultns"


@attrs.frozen
class Stripped:
    data: bytes
    kind: str  # docx | xlsx | pptx | xlsb
    removed: tuple[str, ...]  # sanitizer.removed.<what>, in a stable order
    #: ISO 29500 Strict: its own namespaces, which the field and formula checks here do not read, so
    #: only its parts and relationships were stripped: to be rasterized, never delivered as it is
    strict: bool = False

    @property
    def deliverable(self) -> bool:
        return self.kind in PACKAGE and not self.strict


@attrs.frozen
class Limits:
    max_entries: int = 10_000
    max_total_bytes: int = 512 * 1024 * 1024


def strip(data: bytes, limits: Limits = Limits()) -> Stripped:
    """``data`` without active parts (refuses what is not a sound OOXML package)."""
    parts = read_zip(data, limits)
    types = parse(parts, "[Content_Types].xml")  # refuses when missing
    overrides = {el.get("PartName", "").lstrip("/"): el for el in types.iter(f"{{{CT}}}Override")}
    defaults = {el.get("Extension", "").lower(): el for el in types.iter(f"{{{CT}}}Default")}
    main = next((name for name, el in overrides.items() if el.get("ContentType") in MAIN_TYPES), None)
    if main is None:
        raise Refusal("sanitizer.refused.broken", "sanitizer.instead.pdf")
    kind = MAIN_TYPES[overrides[main].get("ContentType")]
    strict = main.endswith(".xml") and parse(parts, main).tag.startswith(f"{{{STRICT}")

    def content_type(name: str) -> str:
        el = overrides.get(name) or defaults.get(name.rsplit(".", 1)[-1].lower())
        return el.get("ContentType", "") if el is not None else ""

    removed: set[str] = set()
    changed: dict[str, ET.Element] = {}
    relationships = {name: parse(parts, name) for name in parts if name.endswith(".rels")}
    targeted = {_resolve(_rels_source(name), rel.get("Target", "")): what
                for name, rels in relationships.items() for rel in rels
                if not _external(rel) and (what := _dropped("", "", rel.get("Type", "")))}
    dropped: set[str] = set()
    for name in list(parts):
        what = targeted.get(name) or _dropped(name, content_type(name))
        if what:
            removed.add(what)
            dropped.add(name)
            del parts[name]
    for name, rels in relationships.items():
        source = _rels_source(name)
        if name not in parts or (source and source not in parts):
            parts.pop(name, None)  # the relationships of a dropped part
            continue
        gone, hyperlinks = set(), set()
        for rel in list(rels):
            kind_of, target = rel.get("Type", ""), rel.get("Target", "")
            if _external(rel):
                if kind_of == HYPERLINK and _SAFE_LINK.match(target):
                    hyperlinks.add(rel.get("Id"))
                    continue
                removed.add("external_template" if kind_of == TEMPLATE else "external_links")
            elif _resolve(source, target) not in dropped and not _dropped("", "", kind_of):
                continue
            rels.remove(rel)
            gone.add(rel.get("Id"))
        if gone:
            changed[name] = rels
        if (gone or hyperlinks) and source.endswith(".xml"):
            tree = changed[source] if source in changed else parse(parts, source)
            _drop_references(tree, gone)
            if _drop_references(tree, hyperlinks, keep=_HYPERLINK_ELEMENTS):
                removed.add("external_links")  # a hyperlink's URL used as an image's or a template's
            changed[source] = tree
    for name in [n for n in parts if n.endswith(".xml") and not n.startswith("[")]:
        tree = changed[name] if name in changed else parse(parts, name)
        found = _neutralize(tree)
        if found:
            removed.update(found)
            changed[name] = tree
    for name, el in overrides.items():
        if name not in parts:
            types.remove(el)
        elif el.get("ContentType") in MAIN_TYPES and kind in PLAIN_MAIN:
            el.set("ContentType", PLAIN_MAIN[kind])
    for el in defaults.values():
        if _dropped("", el.get("ContentType", "")):
            types.remove(el)
    changed["[Content_Types].xml"] = types
    for name, tree in changed.items():
        parts[name] = serialize(tree, parts[name])
    order = [n for n in ("[Content_Types].xml", "_rels/.rels") if n in parts]
    return Stripped(_write(parts, order + [n for n in parts if n not in order]), kind,
                    tuple(sorted(removed)), strict)


def active_parts(data: bytes) -> list[str]:
    """What of the above is still in ``data`` (the output check, independent of :func:`strip`)."""
    found = []
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        names = z.namelist()
        types = SafeET.fromstring(z.read("[Content_Types].xml"))
        for el in types:
            what = _dropped(el.get("PartName", "").lstrip("/"), el.get("ContentType", ""))
            if what or "macroenabled" in el.get("ContentType", "").lower():
                found.append(f"{what or 'macro-enabled'}: {el.get('PartName') or el.get('Extension')}")
        found += [f"part: {n}" for n in names if _dropped(n, "")]
        for name in (n for n in names if n.endswith(".rels")):
            for rel in SafeET.fromstring(z.read(name)):
                target = rel.get("Target", "")
                if _external(rel) and not (rel.get("Type") == HYPERLINK and _SAFE_LINK.match(target)):
                    found.append(f"external: {target}")
                elif _dropped("", "", rel.get("Type", "")):
                    found.append(f"relationship: {rel.get('Type')}")
    return found


def read_zip(data: bytes, limits: Limits) -> dict[str, bytes]:
    """Every member, the real bytes counted (a zip's stated sizes may lie)."""
    try:
        z = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
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
            chunks = []
            with z.open(info) as member:
                while chunk := member.read(1024 * 1024):
                    total += len(chunk)
                    if total > limits.max_total_bytes:
                        raise Refusal("sanitizer.refused.too_large", "sanitizer.instead.smaller",
                                      limit_mb=limits.max_total_bytes // (1024 * 1024))
                    chunks.append(chunk)
            parts[name] = b"".join(chunks)
    return parts


def parse(parts: dict[str, bytes], name: str) -> ET.Element:
    try:
        return SafeET.fromstring(parts[name])
    except (ET.ParseError, DefusedXmlException, KeyError):
        raise Refusal("sanitizer.refused.broken", "sanitizer.instead.pdf") from None


def _dropped(name: str, content_type: str, relationship: str = "") -> str | None:
    for what, name_pattern, type_pattern, relationship_pattern in DROPPED_PARTS:
        if (name and name_pattern.search(name)) or (content_type and type_pattern.search(content_type)) \
                or (relationship and relationship_pattern.search(relationship)):
            return what
    return None


def _external(rel: ET.Element) -> bool:
    return rel.get("TargetMode", "").lower() == "external" or bool(_OUTSIDE.match(rel.get("Target", "")))


def _rels_source(rels_name: str) -> str:
    """``word/_rels/document.xml.rels`` -> ``word/document.xml`` (``""`` for the package's own)."""
    folder, base = posixpath.split(rels_name)
    return posixpath.join(posixpath.dirname(folder), base[:-len(".rels")]) if base != ".rels" else ""


def _resolve(source: str, target: str) -> str:
    if target.startswith("/"):
        return posixpath.normpath(target.lstrip("/"))
    return posixpath.normpath(posixpath.join(posixpath.dirname(source), target))


def _drop_references(root: ET.Element, ids: set[str], keep: set[str] = frozenset()) -> bool:
    """Remove what refers to relationships ``ids`` (but elements named in ``keep``): the element, only an
    ``r:link``, or a Word hyperlink around its text. True if anything was removed."""
    found = False
    for parent in list(root.iter()):
        for child in list(parent):
            refs = {k: v for k, v in child.attrib.items() if k.startswith(f"{{{R}}}") and v in ids}
            if not refs or child.tag.rsplit("}", 1)[-1] in keep:
                continue
            found = True
            if set(refs) == {f"{{{R}}}link"}:
                del child.attrib[f"{{{R}}}link"]
                continue
            at = list(parent).index(child)
            parent.remove(child)
            if child.tag == f"{{{W}}}hyperlink":  # the link goes, its text stays
                parent[at:at] = list(child)
    _drop_bare_containers(root)
    return found


def _drop_bare_containers(root: ET.Element) -> None:
    again = True
    while again:
        again = False
        for parent in list(root.iter()):
            for child in list(parent):
                if child.tag in _EMPTY_WHEN_BARE and len(child) == 0:
                    parent.remove(child)
                    again = True


def _neutralize(root: ET.Element) -> set[str]:
    """Fields, formulas and names that act, in any XML part: made inert, named for the report."""
    found: set[str] = set()
    # Word complex fields: instruction text between a "begin" and "separate"/"end" mark, maybe in pieces
    # (nested fields included: the outermost field's instruction is judged whole)
    instruction: list[ET.Element] = []
    depth, collecting = 0, False
    for el in root.iter():
        if el.tag == f"{{{W}}}fldChar":
            kind = el.get(f"{{{W}}}fldCharType")
            if kind == "begin":
                depth += 1
                if depth == 1:
                    instruction, collecting = [], True
            elif kind in ("separate", "end"):
                if depth == 1 and collecting:
                    found |= _clear_field(instruction)
                    collecting = False
                if kind == "end":
                    depth = max(0, depth - 1)
        elif el.tag == f"{{{W}}}instrText" and collecting:
            instruction.append(el)
        elif el.tag == f"{{{W}}}fldSimple" and _FIELD.search(el.get(f"{{{W}}}instr", "")):
            found.add(_field_kind(el.get(f"{{{W}}}instr", "")))
            el.set(f"{{{W}}}instr", "")
        elif el.tag.startswith(f"{{{VML}}}"):
            # VML shapes may name an image by path or URL: src="file://...", o:href="\\\\host\\share"
            for attribute in ("src", f"{{{O}}}href"):
                if el.get(attribute):
                    del el.attrib[attribute]
                    found.add("external_links")
    for parent in list(root.iter()):
        for child in list(parent):
            if child.tag == f"{{{W}}}mailMerge":
                parent.remove(child)
                found.add("external_links")
            elif child.tag.rsplit("}", 1)[-1] in _HYPERLINK_ELEMENTS and _PPACTION.match(child.get("action", "")):
                parent.remove(child)
                found.add("macros" if "macro" in child.get("action", "").lower() else "actions")
            elif child.tag == f"{{{S}}}f" and child.text:
                if _DDE_FORMULA.search(child.text) or _EXTERNAL_FORMULA.search(child.text):
                    found.add("dde" if _DDE_FORMULA.search(child.text) else "external_links")
                    parent.remove(child)
            elif child.tag == f"{{{S}}}definedName" and (_AUTO_NAMES.match(child.get("name", ""))
                                                        or _EXTERNAL_FORMULA.search(child.text or "")):
                parent.remove(child)
                found.add("excel4_macros" if _AUTO_NAMES.match(child.get("name", "")) else "external_links")
    return found


def _clear_field(pieces: Iterable[ET.Element]) -> set[str]:
    pieces = list(pieces)
    text = "".join(p.text or "" for p in pieces)
    if not _FIELD.search(text):
        return set()
    for piece in pieces:
        piece.text = ""
    return {_field_kind(text)}


def _field_kind(instruction: str) -> str:
    return "dde" if re.search(r"\bDDE", instruction, re.I) else "external_links"


def _namespaces(data: bytes) -> dict[str, str]:
    """prefix -> URI of every namespace the part declares (first declaration wins)."""
    found: dict[str, str] = {}
    for _, (prefix, uri) in SafeET.iterparse(io.BytesIO(data), events=("start-ns",)):
        found.setdefault(prefix, uri)
    return found


def serialize(root: ET.Element, original: bytes) -> bytes:
    namespaces = _namespaces(original)
    default = namespaces.get("")
    with _SERIALIZE:
        for prefix, uri in namespaces.items():
            if prefix and not re.match(r"ns\d+$", prefix):
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
    head = re.match(r"<[^\s>/]+", body)
    declared = set(re.findall(r'xmlns(?::([\w.-]+))?="', body[:body.index(">")]))
    missing = "".join(f' xmlns:{p}="{u}"' for p, u in namespaces.items() if p and p not in declared)
    body = body[:head.end()] + missing + body[head.end():]
    return b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\r\n' + body.encode()


def _write(parts: dict[str, bytes], order: list[str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=6) as z:
        for name in order:
            z.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), parts[name],
                       compress_type=zipfile.ZIP_DEFLATED)
    return buffer.getvalue()
