"""Is a room LGWAN-only? Its own ``jp.lgwan.room.zone`` marker, or any predecessor's.

Synapse copies a fixed list of state types when a room is upgraded, so the
new room has no marker of its own. Instead of copying it (a second writer, and
a window before the copy), the zone is inherited: a room is LGWAN-only while
its marker says so OR the room it replaces (``m.room.create`` ->
``predecessor``) is LGWAN-only. The new room's own marker cannot lift it: that
takes lifting it in the old room too, under the old room's power levels.
Read from the room state on every process, so it is worker-safe. A chain of
predecessors longer than ``MAX_PREDECESSORS`` (or a loop) counts as
LGWAN-only; a predecessor this server does not have adds nothing.

A redacted marker counts as LGWAN-only: this server refuses redacting it, but Synapse applies
another server's redaction when it reads the event even if the module refused (soft-failed) it,
and a redacted marker has no content. Lifting it takes a new marker from a room admin of ours.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from synapse.module_api import ModuleApi

from synapse_modules._synapse_internals import is_redacted

from .policy import CREATE, ROOM_ZONE_STATE

MAX_PREDECESSORS = 16


def marks_lgwan_only(content: Mapping[str, Any] | None) -> bool:
    return isinstance(content, Mapping) and content.get("lgwan_only") is True


def predecessor_of(create_content: Mapping[str, Any] | None) -> str | None:
    predecessor = (create_content or {}).get("predecessor")
    room_id = predecessor.get("room_id") if isinstance(predecessor, Mapping) else None
    return room_id if isinstance(room_id, str) else None


async def is_lgwan_only(api: ModuleApi, room_id: str | None) -> bool:
    seen: set[str] = set()
    while room_id is not None:
        if room_id in seen or len(seen) >= MAX_PREDECESSORS:
            return True
        seen.add(room_id)
        state = await api.get_room_state(room_id, [(ROOM_ZONE_STATE, ""), (CREATE, "")])
        marker = state.get((ROOM_ZONE_STATE, ""))
        if marker is not None and (marks_lgwan_only(marker.content) or is_redacted(marker)):
            return True
        create = state.get((CREATE, ""))
        room_id = predecessor_of(create.content) if create is not None else None
    return False
