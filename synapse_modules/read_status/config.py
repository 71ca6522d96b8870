"""Configuration of the read status module (``config:`` of its ``modules:`` entry)."""

from __future__ import annotations

from typing import Any

import attrs

from lgwan_chat.core.configcheck.issues import ConfigIssue, raise_config_error
from lgwan_chat.core.configcheck.schema import mapping, validate

SCHEMA = mapping({
    # most events one batch request may ask about
    "max_batch": {"type": "integer", "minimum": 1, "maximum": 500},
    # events counted by GET .../read_status without an explicit list
    "default_recent": {"type": "integer", "minimum": 1, "maximum": 500},
    # rooms whose read positions each Synapse process keeps in memory (0 = read every time)
    "cache_rooms": {"type": "integer", "minimum": 0, "maximum": 100000},
})

DEFAULTS = {"max_batch": 100, "default_recent": 50, "cache_rooms": 200}


@attrs.frozen
class ReadStatusConfig:
    max_batch: int
    default_recent: int
    cache_rooms: int


def check(raw: Any) -> list[ConfigIssue]:
    return validate(raw, SCHEMA)


def parse(raw: Any) -> ReadStatusConfig:
    raw = raw or {}
    raise_config_error(check(raw))
    merged = {**DEFAULTS, **raw}
    return ReadStatusConfig(max_batch=merged["max_batch"],
                            default_recent=min(merged["default_recent"], merged["max_batch"]),
                            cache_rooms=merged["cache_rooms"])
