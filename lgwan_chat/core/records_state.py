"""The room state of chat records: written only by ``lgwan-chat records`` (``lgwan_chat/records``),
guarded by the zone module (``synapse_modules/zones/records_guard.py``)."""

from __future__ import annotations

#: a room's retention policy (Synapse, MSC1763): Synapse purges history older than its ``max_lifetime``
RETENTION_EVENT = "m.room.retention"
#: a legal hold: reason, by whom, since when, and the retention policy the room had
HOLD_EVENT = "jp.lgwan.records.hold"
#: what only the records flow may send
RECORDS_STATE = frozenset({RETENTION_EVENT, HOLD_EVENT})
