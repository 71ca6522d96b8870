"""The memo pad bot's own keys under ``bots: memo:`` (the shared keys are in bots/runtime/config.py)."""

from __future__ import annotations

from typing import Any

from lgwan_chat.core.configcheck.issues import ConfigIssue
from bots.runtime import config as runtime

SCHEMA: dict[str, dict] = {
    # memos per page of !一覧 / !list
    "page_size": {"type": "integer", "minimum": 1, "maximum": 50},
    # largest export the bot builds (attachments included), in megabytes
    "export_max_mb": {"type": "integer", "minimum": 1, "maximum": 1024},
    # pin each room note in the room (needs the power to change pinned messages)
    "pin_notes": {"type": "boolean"},
}

DEFAULTS: dict[str, Any] = {"page_size": 10, "export_max_mb": 100,
                            "pin_notes": True}


def check(raw: Any) -> list[ConfigIssue]:
    """What ``lgwan-chat check-config`` runs for ``bots: memo:``."""
    return runtime.check(raw, SCHEMA)


def options(raw: dict[str, Any]) -> dict[str, Any]:
    return {**DEFAULTS, **raw}
