"""Putting back the room state this server's rules rely on when another server's event replaced it.

Events from other servers can only be soft-failed by a module (``check_event_for_spam``): kept out of
the room's state when they arrive, but a later event of that server that builds on them brings them
in through state resolution (the Matrix protocol gives no server a veto over an event its room's
power levels allow). Three state events matter here: a legal hold (``jp.lgwan.records.hold``), a
room's retention (``m.room.retention``; both ``records_guard.py``) and the zone marker that makes a
room LGWAN-only (``jp.lgwan.room.zone``; ``room_zone.py``).

So the process running background tasks watches the current state of these types (Synapse's
``current_state_delta_stream``, every ``WATCH_SECONDS``, and all rooms every ``SWEEP_SECONDS``) and,
when another server's event has become one of them and keeps less than this server's last value
(:func:`weakens`), sends that value again as the local member who sent it, and counts and logs it.

A room where nothing of ours was ever set (another server's room with its own retention) is left
alone, and so is a value that keeps as much as ours (two servers holding the same room would
otherwise send theirs again in turn).

Another server's redaction of our event is soft-failed the same way, yet Synapse applies it when it
reads the event (a redacted marker still counts as LGWAN-only; a redacted retention still holds in
``room_retention``), and blanks the stored copy after ``redaction_retention_period`` (7 days by default).
So the keeper watches redactions too (the events stream) and sends a redacted value of ours again while
its content is still stored: what is kept never depends on a copy that is about to be blanked.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable, Mapping
from typing import Any

from synapse.module_api import ModuleApi

from lgwan_chat.core.records_state import HOLD_EVENT, RETENTION_EVENT
from synapse_modules._metrics import PROTECTED_STATE_RESTORED
from synapse_modules._streams import Watermark
from synapse_modules._synapse_internals import (
    current_state_senders_txn,
    events_stream_position_txn,
    redacted_by,
    redacted_current_state_txn,
    state_changes_since_txn,
    state_history_txn,
    state_redactions_since_txn,
    state_stream_position_txn,
)

from .policy import ROOM_ZONE_STATE
from .room_zone import marks_lgwan_only

#: How often the background-tasks process reads changes of the kept state, and reads all of it.
WATCH_SECONDS = 2.0
SWEEP_SECONDS = 600.0
#: The kept state types and their ``state`` label on the metric.
KEPT_STATE = {HOLD_EVENT: "legal_hold", RETENTION_EVENT: "retention", ROOM_ZONE_STATE: "zone_marker"}
KEPT_TYPES = tuple(sorted(KEPT_STATE))

logger = logging.getLogger(__name__)


def weakens(event_type: str, ours: Mapping[str, Any], theirs: Mapping[str, Any]) -> bool:
    """Would the other server's value keep less than ours: a hold lifted (or blanked), a retention
    period shorter or gone (a room without one falls to the server's default policy), an LGWAN-only
    marker lifted (or blanked)?"""
    if event_type == HOLD_EVENT:
        return bool(ours.get("held")) and not theirs.get("held")
    if event_type == ROOM_ZONE_STATE:
        return marks_lgwan_only(ours) and not marks_lgwan_only(theirs)
    kept, their_kept = ours.get("max_lifetime"), theirs.get("max_lifetime")
    if not isinstance(their_kept, int) or isinstance(their_kept, bool):
        return True
    return isinstance(kept, int) and their_kept < kept


def plain(value: Any) -> Any:
    """An event's (frozen) content as plain JSON values, to compare it with what was sent."""
    if isinstance(value, Mapping):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


def _ticket(room_id: str, event_type: str, sender: str, content: Any) -> tuple[str, str, str, str]:
    return room_id, event_type, sender, json.dumps(content, sort_keys=True, ensure_ascii=False)


class StateKeeper:
    def __init__(self, api: ModuleApi):
        self._api = api
        #: (room, type, sender, content) being sent again right now (this process only)
        self._restoring: set[tuple[str, str, str, str]] = set()
        #: where the state changes and the redactions were read up to
        self._marks: dict[str, Watermark] = {}
        self._busy: set[str] = set()

    def is_putting_back(self, event: Any) -> bool:
        """Is this event the keeper's own re-send (which the records guard lets through)?"""
        return bool(self._restoring) and event.get_state_key() == "" and \
            _ticket(event.room_id, event.type, event.sender, plain(event.content)) in self._restoring

    def keep(self) -> None:
        """Watch and restore (called on the process running background tasks only)."""
        self._api.looping_background_call(self._watch, WATCH_SECONDS * 1000, desc="lgwan_state_keeper_watch")
        self._api.looping_background_call(self.sweep, SWEEP_SECONDS * 1000, desc="lgwan_state_keeper_sweep")

    async def sweep(self) -> None:
        """Every room whose kept state is now another server's event, or redacted."""
        found = await self._api.run_db_interaction("state_keeper_sweep", current_state_senders_txn, KEPT_TYPES)
        redacted = await self._api.run_db_interaction("state_keeper_sweep", redacted_current_state_txn, KEPT_TYPES)
        await self._restore_rooms([*found, *redacted])

    async def _watch(self) -> None:
        if not self._marks:  # the first time: from here on, and a sweep for what came before
            for stream, position_txn in (("state", state_stream_position_txn), ("events", events_stream_position_txn)):
                highest = await self._api.run_db_interaction("state_keeper_watch", position_txn)
                self._marks[stream] = Watermark(highest, time.monotonic(), safe=highest)
            await self.sweep()
            return
        changes = await self._read_since("state", state_changes_since_txn)
        redactions = await self._read_since("events", state_redactions_since_txn)
        await self._restore_rooms([*changes, *redactions])

    async def _read_since(self, stream: str, since_txn: Any) -> list[tuple[str, str]]:
        mark, now = self._marks[stream], time.monotonic()
        read_from = mark.read_from(now)
        found, highest = await self._api.run_db_interaction("state_keeper_watch", since_txn,
                                                            read_from if read_from is not None else -(2 ** 62),
                                                            KEPT_TYPES)
        mark.after_read(now, read_from, highest)
        return found

    async def _restore_rooms(self, found: Iterable[tuple[str, str]]) -> None:
        """``found``: (room, sender of the event that changed or redacted its kept state)."""
        for room_id in sorted({room for room, sender in found if not self._api.is_mine(sender)}):
            if room_id not in self._busy:
                self._busy.add(room_id)
                try:
                    await self.restore(room_id)
                finally:
                    self._busy.discard(room_id)

    async def restore(self, room_id: str) -> None:
        """Send again, as its local sender, the last value of ours of each kept type that another
        server's event has replaced in the room's current state with one keeping less, or redacted."""
        state = await self._api.get_room_state(room_id, [(t, "") for t in KEPT_TYPES])
        for (event_type, _), current in sorted(state.items()):
            redacted_ours = self._api.is_mine(current.sender) and redacted_by(current) is not None
            if self._api.is_mine(current.sender) and not redacted_ours:
                continue
            history = await self._api.run_db_interaction("state_keeper_history", state_history_txn,
                                                         room_id, event_type)
            # (the stored copy, before any redaction: a redacted current event of ours is the first)
            ours = next(((sender, content) for sender, content in history if self._api.is_mine(sender)), None)
            if ours is None:  # e.g. a room another server made, with its own retention: nothing of ours
                continue
            sender, content = ours
            if redacted_ours:
                # Whatever it said (a lifted hold too): redacting these is refused here, so it was
                # another server. Unless Synapse has blanked the stored copy by now: a blank would
                # keep less than the redacted event, which counts as held and as LGWAN-only.
                if not content:
                    continue
            elif not weakens(event_type, content, plain(current.content)):
                continue  # e.g. the other server's own records flow holding the same shared room
            await self._send_again(room_id, event_type, sender, content, current)

    async def _send_again(self, room_id: str, event_type: str, sender: str, content: dict, current: Any) -> None:
        ticket = _ticket(room_id, event_type, sender, content)
        label = KEPT_STATE[event_type]
        who_sets_it = "a room admin of ours" if event_type == ROOM_ZONE_STATE else "lgwan-chat records"
        redaction = redacted_by(current)
        what = (f"was redacted by event {redaction} (another server)" if redaction is not None
                else f"was replaced by {current.sender}'s event {current.event_id} (another server)")
        self._restoring.add(ticket)
        try:
            sent = await self._api.create_and_send_event_into_room(
                {"type": event_type, "room_id": room_id, "sender": sender, "state_key": "", "content": content})
        except Exception:
            PROTECTED_STATE_RESTORED.labels(state=label, outcome="failed").inc()
            logger.exception("state keeper: %s of room %s %s; sending ours again as %s failed: set it again (%s)",
                             event_type, room_id, what, sender, who_sets_it)
            return
        finally:
            self._restoring.discard(ticket)
        PROTECTED_STATE_RESTORED.labels(state=label, outcome="restored").inc()
        logger.warning("state keeper: %s of room %s %s; ours sent again as %s: %s", event_type, room_id, what,
                       sender, sent.event_id)
