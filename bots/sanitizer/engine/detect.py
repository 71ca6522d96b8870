"""What a file is, by its bytes only (libmagic): never by its name or the mimetype a client claimed.

``kind`` routes the file to a policy. Kinds that are never delivered (executables, scripts, HTML,
shortcuts, disk images, unknown) are routed to a refusal with a reason and what to send instead.
"""

from __future__ import annotations

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
    description: str
    kind: str


def _kind(mime: str) -> str:
    for kind, types in (("image", IMAGE), ("pdf", PDF), ("office", OFFICE), ("text", TEXT), ("csv", CSV),
                        ("archive", ARCHIVE), ("executable", EXECUTABLE), ("script", SCRIPT),
                        ("html", HTML), ("encrypted", ENCRYPTED)):
        if mime in types:
            return kind
    return "unknown"


def detect(data: bytes) -> Detected:
    mime = magic.from_buffer(data, mime=True) or "application/octet-stream"
    description = magic.from_buffer(data) or ""
    return Detected(mime=mime, description=description, kind=_kind(mime))
