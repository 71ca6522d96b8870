"""What a file is, by its bytes only (libmagic): never by its name or the mimetype a client claimed.

``kind`` routes the file to a policy. Kinds that are never delivered (executables, scripts, HTML,
shortcuts, disk images, unknown) are routed to a refusal with a reason and what to send instead.
"""

from __future__ import annotations

import contextlib
import io
import zipfile

import attrs
import magic

# libmagic MIME type -> kind. Anything not listed is "unknown" (refused).
IMAGE = {"image/jpeg", "image/png", "image/gif", "image/webp", "image/bmp", "image/x-ms-bmp", "image/tiff"}
PDF = {"application/pdf"}
OFFICE = {
    # OOXML
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    "application/vnd.ms-word.document.macroenabled.12",
    "application/vnd.ms-excel.sheet.macroenabled.12",
    "application/vnd.ms-powerpoint.presentation.macroenabled.12",
    # ODF
    "application/vnd.oasis.opendocument.text",
    "application/vnd.oasis.opendocument.spreadsheet",
    "application/vnd.oasis.opendocument.presentation",
    # legacy binary Office (OLE2 compound files) and RTF
    "application/msword", "application/vnd.ms-excel", "application/vnd.ms-powerpoint",
    "application/x-ole-storage", "application/CDFV2", "text/rtf", "application/rtf",
}
TEXT = {"text/plain"}
CSV = {"text/csv"}
ARCHIVE = {"application/zip"}
EXECUTABLE = {"application/x-dosexec", "application/x-executable", "application/x-sharedlib",
              "application/x-pie-executable", "application/x-mach-binary", "application/x-msi",
              "application/vnd.microsoft.portable-executable", "application/x-ms-shortcut",
              "application/x-iso9660-image", "application/java-archive", "application/x-msdownload"}
SCRIPT = {"text/x-shellscript", "text/x-python", "text/x-perl", "text/x-php", "text/x-ruby",
          "text/x-msdos-batch", "application/javascript", "text/javascript", "text/x-vbscript",
          "application/x-powershell", "text/x-tcl", "text/x-lua", "text/x-awk"}
HTML = {"text/html", "application/xhtml+xml", "image/svg+xml", "text/xml", "application/xml"}
ENCRYPTED = {"application/encrypted", "application/pgp-encrypted", "application/x-7z-compressed",
             "application/vnd.rar", "application/x-rar"}

#: Names people write for files that are scripts whatever libmagic says (it calls most of them text).
SCRIPT_EXTENSIONS = {".bat", ".cmd", ".ps1", ".psm1", ".vbs", ".vbe", ".js", ".jse", ".wsf", ".wsh", ".hta",
                     ".sh", ".py", ".pl", ".rb", ".php", ".scr", ".lnk", ".url", ".reg", ".inf", ".scf"}


@attrs.frozen
class Detected:
    mime: str
    kind: str


def kind_of(mime: str) -> str:
    for kind, types in (("image", IMAGE), ("pdf", PDF), ("office", OFFICE), ("text", TEXT), ("csv", CSV),
                        ("archive", ARCHIVE), ("executable", EXECUTABLE), ("script", SCRIPT),
                        ("html", HTML), ("encrypted", ENCRYPTED)):
        if mime in types:
            return kind
    if mime.startswith(("video/", "audio/")):
        return "media"  # recognised, but there is no sanitizer for it: refused with its own reason
    return "unknown"


#: OOXML main folder -> MIME type, and the ODF types, for packages libmagic calls plain zip
OOXML_FOLDERS = {"word/": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
                 "xl/": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                 "ppt/": "application/vnd.openxmlformats-officedocument.presentationml.presentation"}


#: members looked at to recognise a package (a ZIP may list a million names)
MAX_NAMES = 10_000


def _office_package(data: bytes) -> str | None:
    """libmagic knows OOXML only when [Content_Types].xml or _rels/.rels come first in the zip (as
    Office writes them); other writers order members freely. The members' names decide here."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            names = z.namelist()[:MAX_NAMES]
            if "[Content_Types].xml" in names:
                return next((mime for folder, mime in OOXML_FOLDERS.items()
                             if any(n.startswith(folder) for n in names)), None)
            if "mimetype" in names:
                mime = z.open("mimetype").read(100).decode("ascii", "replace").strip()
                return mime if mime in OFFICE else None
    except (zipfile.BadZipFile, OSError, ValueError):
        return None
    return None


def detect(data: bytes) -> Detected:
    """Never raises: libmagic has internal limits (a JPEG with 60 comment segments exceeds its "name use
    count" while it DESCRIBES the file) and any failure means "unknown", which is refused. Only the MIME
    type is asked for: the description is where those limits are hit, and nothing routes by it.
    Runs inside the sandbox (workers/parse_worker.py), never on the host."""
    try:
        mime = magic.from_buffer(data, mime=True) or "application/octet-stream"
    except Exception:
        mime = "application/octet-stream"
    if mime in ("application/zip", "application/octet-stream") and data[:4] == b"PK\x03\x04":
        with contextlib.suppress(Exception):  # zipfile raises more than it documents on doctored archives
            mime = _office_package(data) or mime
    return Detected(mime=mime, kind=kind_of(mime))
