"""Configuration of the guest accounts module (``config:`` of its ``modules:`` entry).

Every key is checked by ``lgwan-chat check-config`` with the same rules.
"""

from __future__ import annotations

from typing import Any

import attrs

from lgwan_chat.core.configcheck.issues import ConfigIssue, raise_config_error
from lgwan_chat.core.configcheck.schema import USER_ID, mapping, string, validate

SCHEMA = mapping({
    # appended to every guest's display name; the guest cannot remove it
    "display_suffix": string(minLength=1, maxLength=32),
    # the guest is told this many days before the account expires (0: not told)
    "notify_days_before": {"type": "integer", "minimum": 0, "maximum": 60},
    # the local account that sends that notice in a direct chat (null: no notice)
    "notice_sender": {**USER_ID, "type": ["string", "null"]},
    # how often the background process looks for guests to tell or to deactivate
    "check_interval_seconds": {"type": "integer", "minimum": 10, "maximum": 86400},
    # local accounts that may manage guests besides server admins (e.g. the sanitizer bot, whose
    # ``guest_managers`` staff create guests from a direct chat)
    "managers": {"type": "array", "items": USER_ID, "uniqueItems": True},
})

DEFAULTS: dict[str, Any] = {
    "display_suffix": "（外部）",
    "notify_days_before": 3,
    "notice_sender": None,
    "check_interval_seconds": 300,
    "managers": [],
}


@attrs.frozen
class GuestsConfig:
    display_suffix: str
    notify_days_before: int
    notice_sender: str | None
    check_interval_seconds: int
    managers: frozenset[str] = frozenset()


def check(raw: Any) -> list[ConfigIssue]:
    return validate(raw, SCHEMA)


def parse(raw: Any) -> GuestsConfig:
    raw = raw or {}
    raise_config_error(check(raw))
    merged = {**DEFAULTS, **raw}
    return GuestsConfig(display_suffix=merged["display_suffix"], notify_days_before=merged["notify_days_before"],
                        notice_sender=merged["notice_sender"],
                        check_interval_seconds=merged["check_interval_seconds"],
                        managers=frozenset(merged["managers"]))
