"""Legal holds and retention periods that only the records flow changes (issue #18).

``lgwan-chat records`` keeps a legal hold in the room state ``jp.lgwan.records.hold`` and a room's
retention in ``m.room.retention`` (a held room: a thousand years). Power levels cannot protect
them: from room version 12 a room's creators (a DM's both members) outrank every power level, and
a member at 100 is common. So the server refuses them (default-deny) unless the records flow sends
them, at each way in (``event_rules.py``): ``/send`` and ``/state``, ``createRoom``'s
``initial_state``, redactions of them (a redacted ``m.room.retention`` loses ``max_lifetime``:
Synapse's default policy would purge the room), upgrades of a room that has them (Synapse copies
neither into the new room) and events from other servers.

The records flow is told apart by the token that authenticated the client request: a server
admin's, used directly (``records`` in a room the admin is in, ``records apply`` from provisioning)
or through the admin API's "login as user" for a local member (a puppet token: rooms the admin is
not in, ``Rooms._put_as_member``), where Synapse records the admin as the request's authenticated
entity. Synapse puts that in the request's logging context on whichever process handles the request
and creates the event (main or an event-creating worker), and nothing a client sends changes it:
no state shared between processes, no endpoint of our own to route. A server admin can change
anything (the database included), so trusting server admins' tokens widens nothing.

Events from other servers can only be soft-failed here; when state resolution brings one in anyway,
``state_keeper.py`` puts the records flow's last value back.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from synapse.module_api import ModuleApi

from lgwan_chat.core.records_state import HOLD_EVENT, RECORDS_STATE, RETENTION_EVENT
from synapse_modules._synapse_internals import current_request_origin, event_type_txn

from .policy import Refusal
from .state_keeper import StateKeeper

STATE_REFUSAL = Refusal("records_state_protected", "zones.records_state_protected")
REDACTION_REFUSAL = Refusal("records_state_redaction", "zones.records_state_redaction")
UPGRADE_REFUSAL = Refusal("records_room_upgrade", "zones.records_room_upgrade")


class RecordsGuard:
    def __init__(self, api: ModuleApi, keeper: StateKeeper):
        self._api = api
        self._keeper = keeper

    async def by_records_flow(self, user_id: str) -> bool:
        """Is the client request being handled made as ``user_id`` with a server admin's token (the
        admin's own, or the admin's "login as user" token for ``user_id``)? False for background work
        and for events from other servers (no client request of theirs)."""
        origin = current_request_origin()
        if origin is None or origin.requester != user_id or not origin.authenticated_entity:
            return False
        if not self._api.is_mine(user_id) or not self._api.is_mine(origin.authenticated_entity):
            return False
        return await self._api.is_user_admin(origin.authenticated_entity)

    async def event_refusal(self, event: Any) -> Refusal | None:
        """An event of the records' types (state or not, any state key) sent by anyone else."""
        if self._keeper.is_putting_back(event):
            return None  # the keeper sending the records flow's value again
        return None if await self.by_records_flow(event.sender) else STATE_REFUSAL

    async def redaction_refusal(self, room_id: str, target: Any) -> Refusal | None:
        """Redacting a hold or a retention event (current or past): nobody, the records flow never does."""
        if not isinstance(target, str):
            return None
        event_type = await self._api.run_db_interaction("records_guard_event_type", event_type_txn, room_id, target)
        return REDACTION_REFUSAL if event_type in RECORDS_STATE else None

    async def creation_refusal(self, user_id: str, items: Iterable[Mapping[str, Any]],
                               predecessor: str | None) -> Refusal | None:
        """``createRoom``'s ``initial_state`` and what a room upgrade copies; an upgrade of a room whose
        retention or hold the records flow set (the new room would have neither)."""
        if any(item.get("type") in RECORDS_STATE for item in items) and not await self.by_records_flow(user_id):
            return STATE_REFUSAL
        if predecessor is not None and await self._has_records_state(predecessor) \
                and not await self.by_records_flow(user_id):
            return UPGRADE_REFUSAL
        return None

    async def _has_records_state(self, room_id: str) -> bool:
        state = await self._api.get_room_state(room_id, [(RETENTION_EVENT, ""), (HOLD_EVENT, "")])
        retention = state.get((RETENTION_EVENT, ""))
        hold = state.get((HOLD_EVENT, ""))
        return bool(retention is not None and retention.content) or bool(hold is not None and hold.content.get("held"))
