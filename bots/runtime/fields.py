"""Reading a field of an event's JSON (sent by any client, so of any type) as the type the bot needs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

T = TypeVar("T")
D = TypeVar("D")


def typed_get(mapping: Mapping[Any, Any], key: Any, kind: type[T], default: D) -> T | D:
    """``mapping[key]`` when it is a ``kind``, else ``default`` (missing, null, or another type)."""
    value = mapping.get(key)
    return value if isinstance(value, kind) else default
