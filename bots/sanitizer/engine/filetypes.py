"""What a person calls a file type: words, never a MIME type.

The engine keeps libmagic's MIME type for the audit log; every report a person reads (the bot's
replies, the upload page, ``lgwan-chat sanitize``) says it in words.
"""

from __future__ import annotations

from lgwan_chat.core.i18n import t

#: MIME types (as libmagic names them) -> the words for them (``sanitizer.filetype.*``). A person
#: reads "プログラム（実行ファイル）", never ``application/vnd.microsoft.portable-executable``; a type
#: not listed is said by its family (below), and failing that as "this kind of file".
_FILETYPES = {
    **dict.fromkeys(("application/x-dosexec", "application/vnd.microsoft.portable-executable",
                     "application/x-msdownload", "application/x-executable", "application/x-sharedlib",
                     "application/x-pie-executable", "application/x-mach-binary"), "program"),
    "application/x-msi": "installer",
    "application/x-ms-shortcut": "shortcut",
    "application/x-iso9660-image": "disc_image",
    "application/java-archive": "java",
    "application/octet-stream": "binary",
    "inode/x-empty": "empty",
    "application/x-empty": "empty",
}
_FAMILIES = {"video/": "video", "audio/": "audio", "image/": "image", "font/": "font", "text/": "text",
             "model/": "model"}


def file_type_words(mime: str, lang: str) -> str:
    """What a person calls a file of this MIME type, in ``lang``."""
    mime = (mime or "").split(";", 1)[0].strip().lower()
    word = _FILETYPES.get(mime) or next((w for p, w in _FAMILIES.items() if mime.startswith(p)), "other")
    return t(f"sanitizer.filetype.{word}", lang)
