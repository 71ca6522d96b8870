"""The sanitizer bot's own keys under ``bots: sanitizer:`` (shared keys: bots/runtime/config.py)."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import attrs

from bots.runtime import config as runtime
from lgwan_chat.core.configcheck import typed
from lgwan_chat.core.configcheck.issues import ConfigIssue
from lgwan_chat.core.configcheck.schema import USER_ID, string
from lgwan_chat.core.configcheck.typed import key, section

from .engine import policy


@attrs.frozen
class UploadOptions:
    """The contractor upload page."""

    enabled: bool = key(True, {"type": "boolean"})
    #: address the page's HTTP server listens on (behind the internet-side reverse proxy)
    listen: str = key("127.0.0.1:8030", string(pattern=r"^[^\s:]+:[0-9]{1,5}$"))
    #: the URL the contractor opens, up to the token: https://chat.example.lg.jp/upload/
    public_url: str = key("http://127.0.0.1:8008/upload/",
                          string(pattern=r"^https?://[^\s]+/$", **{"x-hint": "hint.url"}))
    default_hours: int = key(72, {"type": "integer", "minimum": 1, "maximum": 24 * 90})
    max_hours: int = key(24 * 14, {"type": "integer", "minimum": 1, "maximum": 24 * 90})
    #: per submission (all its files together), in MB
    default_max_mb: int = key(100, {"type": "integer", "minimum": 1, "maximum": 2048})
    max_mb: int = key(500, {"type": "integer", "minimum": 1, "maximum": 2048})
    max_files: int = key(20, {"type": "integer", "minimum": 1, "maximum": 100})
    #: lowest power level in the room that may make a link (0: every member)
    min_power_level: int = key(0, {"type": "integer", "minimum": 0, "maximum": 100})

    def config_issues(self, written: Collection[str]) -> list[ConfigIssue]:
        # On the merged value: `max_mb: 50` alone must not leave the default of 100 MB above it.
        issues = []
        for low, high in (("default_hours", "max_hours"), ("default_max_mb", "max_mb")):
            if getattr(self, low) > getattr(self, high):
                issues.append(ConfigIssue((low if low in written else high,), "config.sanitizer_default_above_max",
                                          {"key": low, "max_key": high, "value": getattr(self, low),
                                           "max": getattr(self, high)}))
        return issues


@attrs.frozen
class ProgressOptions:
    """The progress message of a long file in a room ("無害化しています… 40/300 ページ")."""

    #: a file still running after this many seconds gets one / この秒数を過ぎたら経過を表示
    after_s: int = key(5, {"type": "integer", "minimum": 0, "maximum": 3600})
    #: a file with this many pages or more gets one at once / このページ数以上ならすぐ表示
    pages: int = key(50, {"type": "integer", "minimum": 1, "maximum": 100000})
    #: edited at most this often (seconds) / 更新の最短間隔（秒）
    every_s: int = key(3, {"type": "integer", "minimum": 0, "maximum": 600})


#: what staff get for an Office document of one kind / Office 文書の種類ごとの渡し方
OFFICE_CHOICES = ("rasterize", "strip-active", "both")
OFFICE_KINDS = ("word", "excel", "powerpoint")


def _office_policy() -> Any:
    return key(None, {"enum": list(OFFICE_CHOICES)})


@attrs.frozen
class OfficeOptions:
    """Per kind of Office document: ``rasterize`` (an image PDF), ``strip-active`` (the document
    itself with its active content removed by allow-list and checked by the independent verifier: it
    stays editable), ``both`` (the PDF and the editable copy). Not set: the engine's ``policies: office:``.
    A member may ask for the editable copy in a DM (!編集用) when the kind's policy is not ``rasterize``."""

    word: str | None = _office_policy()
    excel: str | None = _office_policy()
    powerpoint: str | None = _office_policy()

    def policies(self) -> dict[str, str]:
        """The kinds set, for the engine (``Sanitizer.sanitize(office_policy=...)``)."""
        return {kind: getattr(self, kind) for kind in OFFICE_KINDS if getattr(self, kind)}

    def editable(self, kind: str, engine_policy: str) -> bool:
        """May a member ask for the editable copy of an Office document of ``kind``?"""
        if engine_policy == "refuse":
            return False
        return (getattr(self, kind, None) or engine_policy) in ("strip-active", "both")


@attrs.frozen
class SanitizerOptions:
    #: where the engine keeps its sandbox files and each file's temporary folder
    work_dir: str | None = key(None, string())
    #: sanitize files posted from internet-zone devices in every room the bot is in
    sanitize_rooms: bool = key(True, {"type": "boolean"})
    #: files up to this size (KB) may take the last free worker even while their room already has a
    #: file running: one room's large batch never holds up another room's photo
    small_file_kb: int = key(4096, {"type": "integer", "minimum": 0, "maximum": 2 * 1024 * 1024})
    #: the engine: policies per type and limits (bots/sanitizer/engine/policy.py)
    engine: policy.Policies = section(policy.Policies)
    upload: UploadOptions = section(UploadOptions)
    progress: ProgressOptions = section(ProgressOptions)
    #: Office documents per kind: rasterize | strip-active | both / Office 文書の渡し方（種類ごと）
    office: OfficeOptions = section(OfficeOptions)
    #: staff who may create, list, extend and revoke guest accounts with !ゲスト作成 etc. in a DM
    #: (the bot's own account must be in the guests module's managers)
    guest_managers: frozenset[str] = key([], {"type": "array", "items": USER_ID, "uniqueItems": True},
                                         convert=frozenset)

    def config_issues(self, written: Collection[str]) -> list[ConfigIssue]:
        if self.engine.policy("office") != "refuse":
            return []
        return [ConfigIssue(("office", kind), "config.sanitizer_office_refused", {"kind": kind})
                for kind in OFFICE_KINDS if getattr(self.office, kind)]


def check(raw: Any) -> list[ConfigIssue]:
    """What ``lgwan-chat check-config`` runs for ``bots: sanitizer:``."""
    return runtime.check(raw, SanitizerOptions)


def options(raw: dict[str, Any]) -> SanitizerOptions:
    """The typed options from the bot's own keys (already checked when the bot loaded its config)."""
    return typed.build(SanitizerOptions, raw)
