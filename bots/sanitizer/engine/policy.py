"""Sanitization policies per type and the limits around them, from YAML (``bots: sanitizer: engine:``
or a file given to the CLI), validated with the suite's schema rules. Defaults are the safe ones.
"""

from __future__ import annotations

from typing import Any

import attrs

from lgwan_chat.core.configcheck import typed
from lgwan_chat.core.configcheck.schema import mapping
from lgwan_chat.core.configcheck.typed import key, section

#: what each kind may be set to; the first is the default
CHOICES: dict[str, tuple[str, ...]] = {
    "image": ("reencode", "refuse"),
    "pdf": ("rasterize", "refuse"),
    "office": ("rasterize", "strip-active", "both", "refuse"),
    "text": ("text-only", "refuse"),
    "csv": ("text-only", "refuse"),
    "archive": ("repack", "refuse"),
}

def _int(default: int, minimum: int, maximum: int) -> Any:
    return key(default, {"type": "integer", "minimum": minimum, "maximum": maximum})


def _with_defaults(policies: dict[str, str]) -> dict[str, str]:
    """Kinds left out keep their default (the first choice)."""
    return {**{k: v[0] for k, v in CHOICES.items()}, **policies}


@attrs.frozen
class ArchiveLimits:
    max_entries: int = _int(200, 1, 100000)
    max_total_mb: int = _int(200, 1, 10240)
    max_ratio: int = _int(100, 1, 10000)
    max_depth: int = _int(2, 0, 5)


@attrs.frozen
class Policies:
    #: policy per kind of file / 種類ごとの処理
    policies: dict[str, str] = key({k: v[0] for k, v in CHOICES.items()},
                                   mapping({kind: {"enum": list(choices)} for kind, choices in CHOICES.items()}),
                                   convert=_with_defaults)
    #: resolution PDF and Office pages are rendered at / 画像化の解像度
    dpi: int = _int(150, 50, 300)
    #: also deliver the text of a PDF/Office file as a .txt next to the image PDF / テキスト版も渡す
    text_companion: bool = key(False, {"type": "boolean"})
    #: invisible text over each page image of a rasterized PDF (search, copy) / 画像化した PDF に透明テキストを重ねる
    text_layer: bool = key(True, {"type": "boolean"})
    #: read pages without text (scans) with OCR (Tesseract) for the text layer / 文字のないページを OCR で読む
    ocr: bool = key(True, {"type": "boolean"})
    #: Tesseract languages, "+"-joined / OCR の言語（+ で連結）
    ocr_languages: str = key("jpn+eng", {"type": "string", "pattern": r"^[a-z_]{3,16}(\+[a-z_]{3,16}){0,4}$",
                                            "x-hint": "hint.ocr_languages"})
    #: pages of one file read by OCR at most / 1ファイルで OCR するページ数の上限
    ocr_max_pages: int = _int(20, 0, 10000)
    max_file_mb: int = _int(50, 1, 2048)
    max_pages: int = _int(300, 1, 10000)
    #: largest image (pixels) decoded, per image or rendered page / 画像1枚の最大画素数
    max_megapixels: int = _int(50, 1, 500)
    #: seconds one file may take before it is refused / 1ファイルの制限時間（秒）
    timeout_s: int = _int(180, 5, 3600)
    #: files sanitized at once / 同時に処理するファイル数
    concurrency: int = _int(2, 1, 32)
    #: a document of this many pages or more gives way to shorter files (low CPU priority, its slot to the
    #: next file) / このページ数以上の文書は、短いファイルを先に処理（優先度を下げる）
    background_pages: int = _int(30, 1, 100000)
    #: memory limit of each renderer process / 変換プロセスのメモリ上限
    renderer_memory_mb: int = _int(3072, 256, 65536)
    #: LibreOffice conversions before its process is replaced by a fresh one / 再起動までの変換数
    office_jobs_per_process: int = _int(50, 1, 10000)
    archive: ArchiveLimits = section(ArchiveLimits)
    #: JSON lines audit log, one record per file / 監査ログ（JSON Lines）
    audit_log: str | None = key(None, {"type": "string", "minLength": 1})

    def policy(self, kind: str) -> str:
        return self.policies.get(kind, "refuse")

    @classmethod
    def from_options(cls, raw: dict[str, Any] | None) -> Policies:
        """Typed policies from a mapping (missing keys take the defaults); ``ConfigInvalid`` if it is bad."""
        return typed.build(cls, raw)


SCHEMA: dict[str, Any] = typed.schema_of(Policies)
