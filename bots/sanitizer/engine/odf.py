"""Active content out of ODF (odt/ods/odp/odg) by allow-list, before LibreOffice renders it (ODF is
never delivered as it is: it is always rasterized).

Kept members: ``mimetype``, ``content.xml``, ``styles.xml``, ``meta.xml``, ``settings.xml``, pictures
under ``Pictures/`` whose first bytes are a known picture, the thumbnail, and embedded charts and
formulas (``Object N/`` of those types, their XML only); the manifest is rewritten to list only
them. Everything else goes: Basic and script libraries, dialogs, OLE and other embedded objects,
configuration (toolbars can bind macros), anything unknown. In the XML: event listeners and scripts,
applets, plugins, frames, linked sections and tables, DDE, database fields and macro fields go (fields
keep their shown text); links outside the document go, but web and mail links; formulas keep only
functions that calculate from the document (``ooxml.formula_is_inert``'s list) and no reference to
another file. Pure: bytes in, bytes out, bounded by :class:`ooxml.Limits`.
"""

from __future__ import annotations

import io
import posixpath
import re
import xml.etree.ElementTree as ET
import zipfile

from . import ooxml
from .result import Refusal

MANIFEST = "urn:oasis:names:tc:opendocument:xmlns:manifest:1.0"
OFFICE = "urn:oasis:names:tc:opendocument:xmlns:office:1.0"
TEXT = "urn:oasis:names:tc:opendocument:xmlns:text:1.0"
TABLE = "urn:oasis:names:tc:opendocument:xmlns:table:1.0"
DRAW = "urn:oasis:names:tc:opendocument:xmlns:drawing:1.0"
STYLE = "urn:oasis:names:tc:opendocument:xmlns:style:1.0"
XLINK = "http://www.w3.org/1999/xlink"
ODF_TYPES = {"application/vnd.oasis.opendocument." + t: ext for t, ext in (
    ("text", "odt"), ("text-template", "odt"), ("spreadsheet", "ods"), ("spreadsheet-template", "ods"),
    ("presentation", "odp"), ("presentation-template", "odp"), ("graphics", "odg"), ("graphics-template", "odg"))}
#: the document's own XML members
XML_MEMBERS = ("content.xml", "styles.xml", "meta.xml", "settings.xml")
#: embedded objects kept (their XML members only)
KEPT_OBJECTS = {"application/vnd.oasis.opendocument.chart", "application/vnd.oasis.opendocument.formula"}
PICTURES = ((b"\x89PNG\r\n\x1a\n", 0), (b"\xff\xd8\xff", 0), (b"GIF8", 0), (b"BM", 0), (b"II*\x00", 0),
            (b"MM\x00*", 0), (b" EMF", 40), (b"\xd7\xcd\xc6\x9a", 0))
#: elements removed with what they hold, by namespace and name -> what the person is told
REMOVED_ELEMENTS = {
    (OFFICE, "scripts"): "macros", (OFFICE, "event-listeners"): "macros",
    ("urn:oasis:names:tc:opendocument:xmlns:script:1.0", "event-listener"): "macros",
    ("urn:oasis:names:tc:opendocument:xmlns:presentation:1.0", "event-listener"): "macros",
    (TEXT, "script"): "macros", (DRAW, "applet"): "activex", (DRAW, "plugin"): "activex",
    (DRAW, "floating-frame"): "external_links", (TEXT, "section-source"): "external_links",
    (TABLE, "table-source"): "external_links", (TABLE, "cell-range-source"): "external_links",
    (TABLE, "dde-links"): "dde", (OFFICE, "dde-source"): "dde", (TEXT, "dde-connection-decls"): "dde",
    (TABLE, "database-source-sql"): "external_links", (TABLE, "database-source-table"): "external_links",
    (TABLE, "database-source-query"): "external_links",
}
_EMPTY_IS_NOTHING = {(OFFICE, "scripts"), (OFFICE, "event-listeners")}
#: fields replaced by the text they show
UNWRAPPED_FIELDS = {(TEXT, n): "dde" if n == "dde-connection" else "fields" for n in (
    "dde-connection", "database-display", "database-next", "database-row-select", "database-row-number",
    "database-name", "execute-macro")}
#: attributes holding a formula or a condition
FORMULA_ATTRIBUTES = {f"{{{TABLE}}}formula", f"{{{TABLE}}}condition", f"{{{TABLE}}}expression",
                      f"{{{STYLE}}}condition"}
_WEB = re.compile(r"\A(?:https?|mailto):[^\s\\]*\Z", re.I)
#: a formula's namespace prefix ("of:=", "oooc:=")
_PREFIX = re.compile(r"\A[a-z]{1,10}:")
UNTRUSTED_PATTERNS: dict[str, re.Pattern] = {"web": _WEB, "prefix": _PREFIX}


def strip(data: bytes, limits: ooxml.Limits) -> tuple[bytes, str, set[str]]:
    """ODF with only what is known inert, its extension (for LibreOffice) and what was removed."""
    parts = ooxml.read_zip(data, limits)
    extension = ODF_TYPES.get(parts.get("mimetype", b"").decode("ascii", "replace").strip())
    if extension is None:
        raise Refusal("sanitizer.refused.broken", "sanitizer.instead.pdf")
    manifest = ooxml.parse(parts, "META-INF/manifest.xml")
    entries = {e.get(f"{{{MANIFEST}}}full-path", ""): e for e in manifest.iter(f"{{{MANIFEST}}}file-entry")}
    if any(el.tag == f"{{{MANIFEST}}}encryption-data" for el in manifest.iter()):
        raise Refusal("sanitizer.refused.encrypted", "sanitizer.instead.unencrypted")
    objects = {path.rstrip("/") + "/" for path, e in entries.items()
               if e.get(f"{{{MANIFEST}}}media-type", "") in KEPT_OBJECTS and path not in ("/", "")}
    removed: set[str] = set()
    kept: dict[str, bytes] = {}
    for name, content in parts.items():
        folder, base = posixpath.split(name)
        if name == "mimetype" or name == "META-INF/manifest.xml":
            continue
        xml_member = name in XML_MEMBERS or (folder + "/" in objects and base in XML_MEMBERS)
        picture = (folder == "Pictures" or name == "Thumbnails/thumbnail.png") and \
            any(content[at:at + len(magic)] == magic for magic, at in PICTURES)
        if xml_member or picture:
            kept[name] = content
        else:
            removed.add("macros" if name.startswith(("Basic/", "Scripts/", "Dialogs/")) else
                        "ole_objects" if name.startswith("Object") else "other_parts")
    for name in [n for n in kept if n.endswith(".xml")]:
        tree = ooxml.parse(kept, name)
        if _neutralize(tree, set(kept), objects, removed):
            kept[name] = ooxml.serialize(tree, kept[name])
    for entry in list(manifest):
        path = entry.get(f"{{{MANIFEST}}}full-path", "")
        if path not in kept and path != "/" and path.rstrip("/") + "/" not in objects:
            manifest.remove(entry)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
        # ODF wants "mimetype" first and stored, so that the type can be read at a fixed offset
        z.writestr("mimetype", parts["mimetype"], compress_type=zipfile.ZIP_STORED)
        z.writestr("META-INF/manifest.xml", ooxml.serialize(manifest, parts["META-INF/manifest.xml"]))
        for name, content in kept.items():
            z.writestr(name, content)
    return buffer.getvalue(), extension, removed


def _neutralize(root: ET.Element, members: set[str], objects: set[str], removed: set[str]) -> bool:
    changed = False
    for parent in list(root.iter()):
        children: list[ET.Element] = []
        touched = False
        for child in parent:
            key = tuple(child.tag[1:].split("}", 1)) if child.tag.startswith("{") else ("", child.tag)
            href = child.get(f"{{{XLINK}}}href")
            if key in REMOVED_ELEMENTS:
                if len(child) or (child.text and child.text.strip()) or key not in _EMPTY_IS_NOTHING:
                    removed.add(REMOVED_ELEMENTS[key])  # LibreOffice writes an empty office:scripts always
                touched = True
                continue
            if key in UNWRAPPED_FIELDS:
                removed.add(UNWRAPPED_FIELDS[key])
                span = ET.Element(f"{{{TEXT}}}span")
                span.text = "".join(child.itertext())
                children.append(span)
                touched = True
                continue
            if href is not None and not _internal(href, members, objects):
                if key == (TEXT, "a") and _WEB.match(href.strip()):
                    children.append(child)  # a web or mail link: opened only when clicked
                    continue
                removed.add("ole_objects" if key[1].startswith("object") else "external_links")
                touched = True
                if key == (TEXT, "a"):  # the link goes, its text stays
                    span = ET.Element(f"{{{TEXT}}}span")
                    span.text = "".join(child.itertext())
                    children.append(span)
                continue
            for attribute, formula in [(a, v) for a, v in child.attrib.items() if a in FORMULA_ATTRIBUTES]:
                if not _formula_is_inert(formula):
                    removed.add("dde" if "DDE" in formula.upper() else "formulas_active")
                    del child.attrib[attribute]  # a cell keeps the value it showed (office:value)
                    touched = True
            children.append(child)
        if touched:
            parent[:] = children
            changed = True
    return changed


def _internal(href: str, members: set[str], objects: set[str]) -> bool:
    """A reference to a kept member or object of this package (``Pictures/x.png``, ``./Object 1``)."""
    path = href.strip()
    if path.startswith("#"):
        return True  # a place in this document
    path = posixpath.normpath(path[2:] if path.startswith("./") else path)
    return path in members or path + "/" in objects


def _formula_is_inert(formula: str) -> bool:
    """An ODF formula (``of:=SUM([.A1:.B2])``): its functions from the list of calculating ones, no
    reference to another file (``['file:///x.ods'#$Sheet1.A1]``), no DDE."""
    body = formula.strip()
    prefix = _PREFIX.match(body)
    body = body[prefix.end():] if prefix else body
    body = body.lstrip("=")
    # references sit in brackets: another file's carry a '#' or a URL; the rest are this document's
    start = body.find("[")
    plain: list[str] = []
    done = 0
    while start >= 0:
        end = body.find("]", start)
        if end < 0:
            return False
        inner = body[start + 1:end]
        if "#" in inner or "//" in inner or "\\" in inner:
            return False
        plain.append(body[done:start])
        plain.append("R")
        done = end + 1
        start = body.find("[", done)
    plain.append(body[done:])
    return ooxml.formula_is_inert("".join(plain).replace(";", ","))
