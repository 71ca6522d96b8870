"""Sanitization policies per type and the limits around them, from YAML (``bots: sanitizer: engine:``
or a file given to the CLI), validated with the suite's schema rules. Defaults are the safe ones.
"""

from __future__ import annotations

from typing import Any

import attrs

from lgwan_chat.core.configcheck.schema import mapping

#: what each kind may be set to; the first is the default
CHOICES: dict[str, tuple[str, ...]] = {
    "image": ("reencode", "refuse"),
    "pdf": ("rasterize", "refuse"),
    "office": ("rasterize", "strip-active", "refuse"),
    "text": ("text-only", "refuse"),
    "csv": ("text-only", "refuse"),
    "archive": ("repack", "refuse"),
}

SCHEMA: dict[str, Any] = mapping({
    # policy per kind of file / 種類ごとの処理
    "policies": mapping({kind: {"enum": list(choices)} for kind, choices in CHOICES.items()}),
    # resolution PDF and Office pages are rendered at / 画像化の解像度
    "dpi": {"type": "integer", "minimum": 50, "maximum": 300},
    # also deliver the text of a PDF/Office file as a .txt next to the image PDF / テキスト版も渡す
    "text_companion": {"type": "boolean"},
    "max_file_mb": {"type": "integer", "minimum": 1, "maximum": 2048},
    "max_pages": {"type": "integer", "minimum": 1, "maximum": 10000},
    # largest image (pixels) decoded, per image or rendered page / 画像1枚の最大画素数
    "max_megapixels": {"type": "integer", "minimum": 1, "maximum": 500},
    # seconds one file may take before it is refused / 1ファイルの制限時間（秒）
    "timeout_s": {"type": "integer", "minimum": 5, "maximum": 3600},
    # files sanitized at once / 同時に処理するファイル数
    "concurrency": {"type": "integer", "minimum": 1, "maximum": 32},
    # memory limit of each renderer process / 変換プロセスのメモリ上限
    "renderer_memory_mb": {"type": "integer", "minimum": 256, "maximum": 65536},
    # LibreOffice conversions before its process is replaced by a fresh one / 再起動までの変換数
    "office_jobs_per_process": {"type": "integer", "minimum": 1, "maximum": 10000},
    "archive": mapping({
        "max_entries": {"type": "integer", "minimum": 1, "maximum": 100000},
        "max_total_mb": {"type": "integer", "minimum": 1, "maximum": 10240},
        "max_ratio": {"type": "integer", "minimum": 1, "maximum": 10000},
        "max_depth": {"type": "integer", "minimum": 0, "maximum": 5},
    }),
    # JSON lines audit log, one record per file / 監査ログ（JSON Lines）
    "audit_log": {"type": "string", "minLength": 1},
})


@attrs.frozen
class ArchiveLimits:
    max_entries: int = 200
    max_total_mb: int = 200
    max_ratio: int = 100
    max_depth: int = 2


@attrs.frozen
class Policies:
    policies: dict[str, str] = attrs.field(factory=lambda: {k: v[0] for k, v in CHOICES.items()})
    dpi: int = 150
    text_companion: bool = False
    max_file_mb: int = 50
    max_pages: int = 300
    max_megapixels: int = 50
    timeout_s: int = 180
    concurrency: int = 2
    renderer_memory_mb: int = 3072
    office_jobs_per_process: int = 50
    archive: ArchiveLimits = ArchiveLimits()
    audit_log: str | None = None

    def policy(self, kind: str) -> str:
        return self.policies.get(kind, "refuse")

    @classmethod
    def from_options(cls, raw: dict[str, Any] | None) -> "Policies":
        """Typed policies from an already validated mapping (missing keys take the defaults)."""
        raw = dict(raw or {})
        policies = {k: v[0] for k, v in CHOICES.items()}
        policies.update(raw.pop("policies", None) or {})
        archive = ArchiveLimits(**(raw.pop("archive", None) or {}))
        return cls(policies=policies, archive=archive, **raw)
