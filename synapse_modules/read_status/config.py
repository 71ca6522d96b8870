"""Configuration of the read status module (``config:`` of its ``modules:`` entry)."""

from __future__ import annotations

import attrs

from lgwan_chat.core.configcheck import typed
from lgwan_chat.core.configcheck.typed import derived, key


@attrs.frozen
class ReadStatusConfig:
    #: most events one batch request may ask about
    max_batch: int = key(100, {"type": "integer", "minimum": 1, "maximum": 500})
    #: events counted by GET .../read_status without an explicit list (as written)
    requested_recent: int = key(50, {"type": "integer", "minimum": 1, "maximum": 500}, name="default_recent")
    #: rooms whose read positions each Synapse process keeps in memory (0 = read every time)
    cache_rooms: int = key(200, {"type": "integer", "minimum": 0, "maximum": 100000})
    #: what is used: never more than one batch may ask about
    default_recent: int = derived(lambda c: min(c.requested_recent, c.max_batch))


check, parse = typed.module_functions(ReadStatusConfig)
