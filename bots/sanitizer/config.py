"""The sanitizer bot's own keys under ``bots: sanitizer:`` (shared keys: bots/runtime/config.py)."""

from __future__ import annotations

from typing import Any

import attrs

from bots.runtime import config as runtime
from lgwan_chat.core.configcheck.issues import ConfigIssue
from lgwan_chat.core.configcheck.schema import USER_ID, mapping, string

from .engine import policy

SCHEMA: dict[str, dict] = {
    # where the engine keeps its sandbox files and each file's temporary folder
    "work_dir": string(),
    # sanitize files posted from internet-zone devices in every room the bot is in
    "sanitize_rooms": {"type": "boolean"},
    # the engine: policies per type and limits (bots/sanitizer/engine/policy.py)
    "engine": policy.SCHEMA,
    # the contractor upload page
    "upload": mapping({
        "enabled": {"type": "boolean"},
        # address the page's HTTP server listens on (behind the internet-side reverse proxy)
        "listen": string(pattern=r"^[^\s:]+:[0-9]{1,5}$"),
        # the URL the contractor opens, up to the token: https://chat.example.lg.jp/upload/
        "public_url": string(pattern=r"^https?://[^\s]+/$", **{"x-hint": "hint.url"}),
        "default_hours": {"type": "integer", "minimum": 1, "maximum": 24 * 90},
        "max_hours": {"type": "integer", "minimum": 1, "maximum": 24 * 90},
        # per submission (all its files together), in MB
        "default_max_mb": {"type": "integer", "minimum": 1, "maximum": 2048},
        "max_mb": {"type": "integer", "minimum": 1, "maximum": 2048},
        "max_files": {"type": "integer", "minimum": 1, "maximum": 100},
        # lowest power level in the room that may make a link (0: every member)
        "min_power_level": {"type": "integer", "minimum": 0, "maximum": 100},
    }),
    # staff who may create, list, extend and revoke guest accounts with !ゲスト作成 etc. in a DM
    # (the bot's own account must be in the guests module's managers)
    "guest_managers": {"type": "array", "items": USER_ID, "uniqueItems": True},
}


@attrs.frozen
class UploadOptions:
    enabled: bool = True
    listen: str = "127.0.0.1:8030"
    public_url: str = "http://127.0.0.1:8008/upload/"
    default_hours: int = 72
    max_hours: int = 24 * 14
    default_max_mb: int = 100
    max_mb: int = 500
    max_files: int = 20
    min_power_level: int = 0


@attrs.frozen
class SanitizerOptions:
    work_dir: str | None = None
    sanitize_rooms: bool = True
    engine: policy.Policies = policy.Policies()
    upload: UploadOptions = UploadOptions()
    guest_managers: frozenset[str] = frozenset()


def check(raw: Any) -> list[ConfigIssue]:
    """What ``lgwan-chat check-config`` runs for ``bots: sanitizer:``."""
    issues = runtime.check(raw, SCHEMA)
    upload = raw.get("upload") if isinstance(raw, dict) else None
    if isinstance(upload, dict) and not issues:
        # on the merged value: `max_mb: 50` alone must not leave the default of 100 MB above it
        merged = {**attrs.asdict(UploadOptions()), **upload}
        for low, high in (("default_hours", "max_hours"), ("default_max_mb", "max_mb")):
            if merged[low] > merged[high]:
                issues.append(ConfigIssue(("upload", low if low in upload else high), "config.sanitizer_default_above_max",
                                          {"key": low, "max_key": high, "value": merged[low], "max": merged[high]}))
    return issues


def options(raw: dict[str, Any]) -> SanitizerOptions:
    upload = UploadOptions(**(raw.get("upload") or {}))
    return SanitizerOptions(work_dir=raw.get("work_dir"), sanitize_rooms=raw.get("sanitize_rooms", True),
                            engine=policy.Policies.from_options(raw.get("engine")), upload=upload,
                            guest_managers=frozenset(raw.get("guest_managers") or ()))
