"""Configuration of the bookmarks module (``config:`` of its ``modules:`` entry).

Every key is documented in ``config/modules.yaml`` and the admin guide.
"""

from __future__ import annotations

from typing import Any

import attrs

from lgwan_chat.core.configcheck.issues import ConfigIssue, raise_config_error
from lgwan_chat.core.configcheck.schema import USER_ID, mapping, string, validate

#: Emoji presentation selector: clients send 🔖 with or without it, both mean the same reaction.
VARIATION_SELECTOR = "\ufe0f"

SCHEMA = mapping({
    # reaction keys that bookmark a message
    "reaction_keys": {"type": "array", "items": string(maxLength=32), "minItems": 1, "maxItems": 20,
                      "uniqueItems": True},
    # accounts that may read anyone's bookmarks (the memo bot)
    "readers": {"type": "array", "items": USER_ID, "uniqueItems": True},
    # start of each bookmark's link; room id and event id follow, URL-encoded
    "permalink_base": string(pattern=r"^https?://[^\s]+$", **{"x-hint": "hint.url"}),
})

DEFAULTS: dict[str, Any] = {
    "reaction_keys": ["🔖"],
    "readers": [],
    "permalink_base": "https://matrix.to/#/",
}


def normalize_key(key: str) -> str:
    return key.replace(VARIATION_SELECTOR, "")


@attrs.frozen
class BookmarksConfig:
    #: normalized (no variation selector)
    reaction_keys: frozenset[str]
    readers: frozenset[str]
    permalink_base: str


def check(raw: Any) -> list[ConfigIssue]:
    return validate(raw, SCHEMA)


def parse(raw: Any) -> BookmarksConfig:
    raw = raw or {}
    raise_config_error(check(raw))
    merged = {**DEFAULTS, **raw}
    return BookmarksConfig(reaction_keys=frozenset(normalize_key(k) for k in merged["reaction_keys"]),
                           readers=frozenset(merged["readers"]), permalink_base=merged["permalink_base"])
