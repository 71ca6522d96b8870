"""Each room's read positions kept in memory, brought up to date by small reads of what changed.

Reading a 5,000-member room from scratch (members, receipts, who sent what) costs tens of
milliseconds; what changed since the last question is usually nothing or a few rows, found
through Synapse's ``(room_id, stream_id)`` and ``(room_id, stream_ordering)`` indexes. So every
question still reads the database, in its own transaction, and the answer is as current as the
database; only the unchanged part comes from memory.

Rows committed out of order: two receipts written at once may commit in the opposite order of
their stream positions, so "everything after the highest position I saw" can skip one. Each
stream therefore keeps a :class:`Watermark`: it reads again from a position that was seen at least
``SETTLE_SECONDS`` earlier (every write that had a position by then has committed since), so such
a row shows up at most ``SETTLE_SECONDS`` late and is never lost.

Per process: every Synapse worker that serves the routes keeps its own copy, each read from the
shared database, so workers need no coordination. Bounded: least recently asked rooms are dropped.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from .._streams import Watermark
from . import synapse_tables as tables
from .status import RoomReads, advance, build


class _Room:
    def __init__(self, reads: RoomReads, receipts: Watermark, events: Watermark):
        self.reads = reads
        self.receipts = receipts
        self.events = events
        self.lock = threading.Lock()


class RoomReadsCache:
    """Room id -> read positions, for the database threads of one Synapse process."""

    def __init__(self, max_rooms: int = 200, clock: Callable[[], float] = time.monotonic):
        self.max_rooms = max_rooms
        self._clock = clock
        self._rooms: OrderedDict[str, _Room] = OrderedDict()
        self._lock = threading.Lock()  # guards _rooms; each room has its own lock for reading

    def reads(self, txn: Any, room_id: str) -> RoomReads:
        """The room's read positions as of this transaction (call inside ``run_db_interaction``)."""
        if self.max_rooms <= 0:
            return load(txn, room_id)[0]
        with self._lock:
            room = self._rooms.get(room_id)
            if room is not None:
                self._rooms.move_to_end(room_id)
        if room is None:
            now = self._clock()
            reads, receipts_seen, events_seen = load(txn, room_id)
            room = _Room(reads, Watermark(receipts_seen, now), Watermark(events_seen, now))
            self._keep(room_id, room)
            return reads
        with room.lock:
            room.reads = self._refresh(txn, room_id, room)
            return room.reads

    def _refresh(self, txn: Any, room_id: str, room: _Room) -> RoomReads:
        now = self._clock()
        receipts_from = room.receipts.read_from(now)
        events_from = room.events.read_from(now)
        receipts = tables.public_read_receipts(
            txn, room_id, tables.FROM_START if receipts_from is None else receipts_from)
        since = tables.events_since(txn, room_id, tables.FROM_START if events_from is None else events_from)
        membership: dict[str, int | None] = {}
        if events_from is None:  # from the start: membership as it is now, not its history
            members = tables.joined_members(txn, room_id)
            membership = {u: j for u, j in members.items() if room.reads.members.get(u) != j}
            membership.update({u: None for u in room.reads.members if u not in members})
        elif since.membership_changed:
            membership = tables.memberships(txn, room_id, since.membership_changed)
        room.receipts.after_read(now, receipts_from, max((r.stream_id for r in receipts), default=-1))
        room.events.after_read(now, events_from, since.last_stream_ordering)
        if not receipts and not since.sent and not membership:
            return room.reads
        return advance(room.reads, membership, receipts, since.sent)

    def _keep(self, room_id: str, room: _Room) -> None:
        with self._lock:
            self._rooms[room_id] = room
            self._rooms.move_to_end(room_id)
            while len(self._rooms) > self.max_rooms:
                self._rooms.popitem(last=False)


def load(txn: Any, room_id: str) -> tuple[RoomReads, int, int]:
    """A room read from scratch, with the highest receipt stream id and event position seen."""
    members = tables.joined_members(txn, room_id)
    receipts = tables.public_read_receipts(txn, room_id)
    since = tables.events_since(txn, room_id)
    return (build(members, receipts, since.sent), max((r.stream_id for r in receipts), default=-1),
            since.last_stream_ordering)


#: One per process, shared by the read status and acknowledgement stamp routes.
ROOM_READS = RoomReadsCache()
