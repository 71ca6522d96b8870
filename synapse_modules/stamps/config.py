"""Configuration of the stamps module (``config:`` of its ``modules:`` entry).

So far the module serves acknowledgement stamps (who reacted with what, next to
the read status); the organisation's stamp pack comes with its own keys.
"""

from __future__ import annotations

from typing import Any

import attrs

from lgwan_chat.configcheck.issues import ConfigIssue, raise_config_error
from lgwan_chat.configcheck.schema import mapping, string, validate

SCHEMA = mapping({
    # Reaction keys shown first, in this order, even when nobody has used them yet.
    "acknowledgements": {"type": "array", "items": string(maxLength=32), "maxItems": 20, "uniqueItems": True},
})

DEFAULTS: dict[str, Any] = {"acknowledgements": ["了解", "確認しました", "👍"]}


@attrs.frozen
class StampsConfig:
    acknowledgements: tuple[str, ...]


def check(raw: Any) -> list[ConfigIssue]:
    return validate(raw, SCHEMA)


def parse(raw: Any) -> StampsConfig:
    raw = raw or {}
    raise_config_error(check(raw))
    merged = {**DEFAULTS, **raw}
    return StampsConfig(acknowledgements=tuple(merged["acknowledgements"]))
