"""Configuration of the bookmarks module (``config:`` of its ``modules:`` entry).

Every key is documented in ``config/modules.yaml`` and the admin guide.
"""

from __future__ import annotations

import attrs

from lgwan_chat.core.configcheck import typed
from lgwan_chat.core.configcheck.schema import USER_ID, string
from lgwan_chat.core.configcheck.typed import key

#: Emoji presentation selector: clients send 🔖 with or without it, both mean the same reaction.
VARIATION_SELECTOR = "\ufe0f"


def normalize_key(key: str) -> str:
    return key.replace(VARIATION_SELECTOR, "")


@attrs.frozen
class BookmarksConfig:
    #: reaction keys that bookmark a message; normalized (no variation selector)
    reaction_keys: frozenset[str] = key(
        ["🔖"], {"type": "array", "items": string(maxLength=32), "minItems": 1, "maxItems": 20, "uniqueItems": True},
        convert=lambda keys: frozenset(normalize_key(k) for k in keys))
    #: accounts that may read anyone's bookmarks (the memo bot)
    readers: frozenset[str] = key([], {"type": "array", "items": USER_ID, "uniqueItems": True}, convert=frozenset)
    #: start of each bookmark's link; room id and event id follow, URL-encoded
    permalink_base: str = key("https://matrix.to/#/", string(pattern=r"^https?://[^\s]+$", **{"x-hint": "hint.url"}))


check, parse = typed.module_functions(BookmarksConfig)
