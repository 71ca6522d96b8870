"""Configuration of the guest accounts module (``config:`` of its ``modules:`` entry).

Every key is checked by ``lgwan-chat check-config`` with the same rules.
"""

from __future__ import annotations

import attrs

from lgwan_chat.core.configcheck import typed
from lgwan_chat.core.configcheck.schema import USER_ID, string
from lgwan_chat.core.configcheck.typed import key


@attrs.frozen
class GuestsConfig:
    #: appended to every guest's display name; the guest cannot remove it
    display_suffix: str = key("（外部）", string(minLength=1, maxLength=32))
    #: the guest is told this many days before the account expires (0: not told)
    notify_days_before: int = key(3, {"type": "integer", "minimum": 0, "maximum": 60})
    #: the local account that sends that notice in a direct chat (null: no notice)
    notice_sender: str | None = key(None, {**USER_ID, "type": ["string", "null"]})
    #: how often the background process looks for guests to tell or to deactivate
    check_interval_seconds: int = key(300, {"type": "integer", "minimum": 10, "maximum": 86400})
    #: local accounts that may manage guests besides server admins (e.g. the sanitizer bot, whose
    #: ``guest_managers`` staff create guests from a direct chat)
    managers: frozenset[str] = key([], {"type": "array", "items": USER_ID, "uniqueItems": True}, convert=frozenset)


check, parse = typed.module_functions(GuestsConfig)
