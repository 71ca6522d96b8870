"""The memo pad bot's own keys under ``bots: memo:`` (the shared keys are in bots/runtime/config.py)."""

from __future__ import annotations

from typing import Any

import attrs

from bots.runtime import config as runtime
from lgwan_chat.core.configcheck import typed
from lgwan_chat.core.configcheck.issues import ConfigIssue
from lgwan_chat.core.configcheck.typed import key


@attrs.frozen
class MemoOptions:
    #: memos per page of !一覧 / !list
    page_size: int = key(10, {"type": "integer", "minimum": 1, "maximum": 50})
    #: largest export the bot builds (attachments included), in megabytes
    export_max_mb: int = key(100, {"type": "integer", "minimum": 1, "maximum": 1024})
    #: pin each room note in the room (needs the power to change pinned messages)
    pin_notes: bool = key(True, {"type": "boolean"})


def check(raw: Any) -> list[ConfigIssue]:
    """What ``lgwan-chat check-config`` runs for ``bots: memo:``."""
    return runtime.check(raw, MemoOptions)


def options(raw: dict[str, Any]) -> MemoOptions:
    """The typed options from the bot's own keys (already checked when the bot loaded its config)."""
    return typed.build(MemoOptions, raw)
