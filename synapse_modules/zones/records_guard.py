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

Events from other servers can only be soft-failed by a module (``check_event_for_spam``): kept out of
the room's state when they arrive, but a later event of that server that builds on them brings them
in through state resolution (the Matrix protocol gives no server a veto over an event its room's power
levels allow). So the process running background tasks watches the current state of both types
(Synapse's ``current_state_delta_stream``, every ``WATCH_SECONDS``, and all rooms every
``SWEEP_SECONDS``) and, when another server's event has become the hold or the retention, sends the
records flow's last value again, as the local member who sent it, and counts and logs it.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable, Mapping
from typing import Any

from synapse.module_api import ModuleApi

from lgwan_chat.core.records_state import HOLD_EVENT, RECORDS_STATE, RETENTION_EVENT
from synapse_modules._metrics import RECORDS_STATE_RESTORED
from synapse_modules._streams import Watermark
from synapse_modules._synapse_internals import (
    current_request_origin,
    current_state_senders_txn,
    event_type_txn,
    state_changes_since_txn,
    state_history_txn,
    state_stream_position_txn,
)

from .policy import Refusal

STATE_REFUSAL = Refusal("records_state_protected", "zones.records_state_protected")
REDACTION_REFUSAL = Refusal("records_state_redaction", "zones.records_state_redaction")
UPGRADE_REFUSAL = Refusal("records_room_upgrade", "zones.records_room_upgrade")

#: How often the background-tasks process reads changes of the records' state, and reads all of it.
WATCH_SECONDS = 2.0
SWEEP_SECONDS = 600.0
RECORDS_TYPES = tuple(sorted(RECORDS_STATE))

logger = logging.getLogger(__name__)


def _plain(value: Any) -> Any:
    """An event's (frozen) content as plain JSON values, to compare it with what was sent."""
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


class RecordsGuard:
    def __init__(self, api: ModuleApi):
        self._api = api
        #: (room, type, sender, content) the keeper is sending again right now (this process only)
        self._restoring: set[tuple[str, str, str, str]] = set()
        self._mark: Watermark | None = None
        self._busy: set[str] = set()

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
        if self._restoring and _ticket(event.room_id, event.type, event.sender, _plain(event.content)) \
                in self._restoring and event.get_state_key() == "":
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

    # --- keeping the records' state when another server changes it ---------------------------

    def keep(self) -> None:
        """Watch and restore (called on the process running background tasks only)."""
        self._api.looping_background_call(self._watch, WATCH_SECONDS * 1000, desc="lgwan_records_watch")
        self._api.looping_background_call(self.sweep, SWEEP_SECONDS * 1000, desc="lgwan_records_sweep")

    async def sweep(self) -> None:
        """Every room whose hold or retention is now another server's event."""
        found = await self._api.run_db_interaction("records_guard_sweep", current_state_senders_txn, RECORDS_TYPES)
        await self._restore_rooms(found)

    async def _watch(self) -> None:
        now = time.monotonic()
        if self._mark is None:  # the first time: from here on, and a sweep for what came before
            highest = await self._api.run_db_interaction("records_guard_watch", state_stream_position_txn)
            self._mark = Watermark(highest, now, safe=highest)
            await self.sweep()
            return
        read_from = self._mark.read_from(now)
        changes, highest = await self._api.run_db_interaction("records_guard_watch", state_changes_since_txn,
                                                              read_from if read_from is not None else -(2 ** 62),
                                                              RECORDS_TYPES)
        self._mark.after_read(now, read_from, highest)
        await self._restore_rooms(changes)

    async def _restore_rooms(self, found: Iterable[tuple[str, str]]) -> None:
        for room_id in sorted({room for room, sender in found if not self._api.is_mine(sender)}):
            if room_id not in self._busy:
                self._busy.add(room_id)
                try:
                    await self.restore(room_id)
                finally:
                    self._busy.discard(room_id)

    async def restore(self, room_id: str) -> None:
        """Send again, as its local sender, the last hold or retention of ours that another server's
        event has replaced in the room's current state."""
        state = await self._api.get_room_state(room_id, [(t, "") for t in RECORDS_TYPES])
        for (event_type, _), current in sorted(state.items()):
            if self._api.is_mine(current.sender):
                continue
            history = await self._api.run_db_interaction("records_guard_history", state_history_txn,
                                                         room_id, event_type)
            ours = next(((sender, content) for sender, content in history if self._api.is_mine(sender)), None)
            if ours is None:  # e.g. a room another server made, with its own retention: nothing of ours
                continue
            sender, content = ours
            if not weakens(event_type, content, _plain(current.content)):
                continue  # e.g. the other server's own records flow holding the same shared room
            ticket = _ticket(room_id, event_type, sender, content)
            self._restoring.add(ticket)
            try:
                sent = await self._api.create_and_send_event_into_room(
                    {"type": event_type, "room_id": room_id, "sender": sender, "state_key": "", "content": content})
            except Exception:
                RECORDS_STATE_RESTORED.labels(outcome="failed").inc()
                logger.exception("records: %s of room %s was replaced by %s's event %s; sending ours again as %s"
                                 " failed: set it again with lgwan-chat records", event_type, room_id,
                                 current.sender, current.event_id, sender)
                continue
            finally:
                self._restoring.discard(ticket)
            RECORDS_STATE_RESTORED.labels(outcome="restored").inc()
            logger.warning("records: %s of room %s was replaced by %s's event %s (another server); ours sent"
                           " again as %s: %s", event_type, room_id, current.sender, current.event_id, sender,
                           sent.event_id)


def weakens(event_type: str, ours: Mapping[str, Any], theirs: Mapping[str, Any]) -> bool:
    """Would the other server's value keep less than ours: a hold lifted (or blanked), a retention
    period shorter or gone (a room without one falls to the server's default policy)? Putting back
    only those keeps two servers that both hold a shared room from sending theirs again in turn."""
    if event_type == HOLD_EVENT:
        return bool(ours.get("held")) and not theirs.get("held")
    kept, their_kept = ours.get("max_lifetime"), theirs.get("max_lifetime")
    if not isinstance(their_kept, int) or isinstance(their_kept, bool):
        return True
    return isinstance(kept, int) and their_kept < kept


def _ticket(room_id: str, event_type: str, sender: str, content: Any) -> tuple[str, str, str, str]:
    return room_id, event_type, sender, json.dumps(content, sort_keys=True, ensure_ascii=False)
