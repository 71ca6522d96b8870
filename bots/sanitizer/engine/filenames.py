"""Names of delivered files: never trusted as given.

NFKC, no control or bidi characters (U+202E makes ``txt.exe`` read as ``exe.txt``), no path parts, no
Windows reserved names or trailing dots, bounded length, and always the extension of what is
actually delivered (a PDF is ``.pdf`` whatever it was called).
"""

from __future__ import annotations

import re
import unicodedata

RESERVED = {"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(10)), *(f"LPT{i}" for i in range(10))}
_UNSAFE = re.compile(r'[\\/:*?"<>|]')
MAX_STEM = 100
#: Linux allows 255 bytes a name: a stem of 100 CJK characters is 300 bytes in UTF-8
MAX_STEM_BYTES = 200


def clean(name: str) -> str:
    """A name safe to show and to save on Windows: no controls, bidi marks, path parts."""
    name = unicodedata.normalize("NFKC", name or "")
    # Cc controls, Cf format characters (bidi overrides, zero-width), Co/Cs/Cn: never in a name
    name = "".join(c for c in name if unicodedata.category(c)[0] != "C")
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = _UNSAFE.sub("_", name).strip().strip(".").strip()
    return name


def stem(name: str) -> str:
    cleaned = clean(name)
    base = cleaned.rsplit(".", 1)[0] if "." in cleaned.lstrip(".") else cleaned
    # "report.pdf.exe" -> "report_pdf": a leftover inner extension must not look like the real one
    base = base.replace(".", "_").strip(" _") or "file"
    if base.split("_")[0].upper() in RESERVED or base.upper() in RESERVED:
        base = "_" + base
    return base[:MAX_STEM].encode("utf-8")[:MAX_STEM_BYTES].decode("utf-8", "ignore")


def output_name(original: str, extension: str, suffix: str = "") -> str:
    """``original`` cleaned, with ``suffix`` and the delivered type's ``extension`` (".pdf")."""
    return f"{stem(original)}{suffix}{extension}"
