"""Who has read an event, from receipts, membership and what people sent. Pure logic.

A joined member U has read event E when any of these is at or after E's
position in the room's stream:

- U's public unthreaded ``m.read`` receipt (it covers the main timeline and every thread);
- U's public ``m.read`` receipt for E's timeline: ``main`` for the main timeline, the
  thread root for an event in a thread (a receipt on a LATER event counts: reading a
  later message means having read the earlier ones);
- U's last event in E's timeline (U sent E, or wrote after it). Membership changes do not count.

Private receipts (``m.read.private``) are never used, so a member who reads
privately appears unread to others: revealing even a count would reveal them.

Who is counted: the room's current joined members. A member who joined after E
counts as read if they did read it, and otherwise is left out of both lists (E
was not sent to them). Members who left are not counted.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import defaultdict
from typing import Iterable, NamedTuple

from .synapse_tables import EventPosition, Receipt, Sent

MAIN = "main"


class RoomReads(NamedTuple):
    """Everything needed to answer for any event of a room."""

    members: dict[str, int]  # user -> join position
    # user -> timeline -> furthest position known read (receipts and own events); timeline
    # None = unthreaded receipt, MAIN = main timeline, else thread root
    positions: dict[str, dict[str | None, int]]
    # user -> timeline -> receipt (for the time it was read)
    receipts: dict[str, dict[str | None, Receipt]]


def build(members: dict[str, int], receipts: Iterable[Receipt], sent: Iterable[Sent]) -> RoomReads:
    positions: dict[str, dict[str | None, int]] = defaultdict(dict)
    by_user: dict[str, dict[str | None, Receipt]] = defaultdict(dict)
    for receipt in receipts:
        if receipt.user_id in members:
            by_user[receipt.user_id][receipt.thread_id] = receipt
            _advance(positions[receipt.user_id], receipt.thread_id, receipt.stream_ordering)
    for item in sent:
        if item.sender in members:
            _advance(positions[item.sender], item.thread_id or MAIN, item.last_stream_ordering)
    return RoomReads(members, positions, by_user)


def _advance(timelines: dict[str | None, int], timeline: str | None, position: int) -> None:
    if position > timelines.get(timeline, -1):
        timelines[timeline] = position


def position_for(reads: RoomReads, user_id: str, timeline: str) -> int:
    """How far ``user_id`` has read in ``timeline`` (MAIN or a thread root); -1 if nothing."""
    known = reads.positions.get(user_id)
    if not known:
        return -1
    return max(known.get(None, -1), known.get(timeline, -1))


def timeline_of(event: EventPosition) -> str:
    return event.thread_id or MAIN


class Status(NamedTuple):
    read: list[tuple[str, int | None]]  # (user, receipt ts or None when shown by sending)
    unread: list[str]


def status(reads: RoomReads, event: EventPosition) -> Status:
    timeline = timeline_of(event)
    read: list[tuple[str, int | None]] = []
    unread: list[str] = []
    for user_id, joined_at in reads.members.items():
        if position_for(reads, user_id, timeline) >= event.stream_ordering:
            read.append((user_id, _receipt_ts(reads, user_id, timeline, event.stream_ordering)))
        elif joined_at <= event.stream_ordering:
            unread.append(user_id)
    return Status(read, sorted(unread))


def _receipt_ts(reads: RoomReads, user_id: str, timeline: str, at: int) -> int | None:
    """The time of the earliest receipt that covers the event (Synapse keeps only the latest
    receipt per timeline, so this is when the member had read at least up to it)."""
    times = [r.ts for key, r in reads.receipts.get(user_id, {}).items()
             if key in (None, timeline) and r.stream_ordering >= at]
    return min(times) if times else None


class Counter:
    """Read / unread counts for many events of one room, without a loop over members per event.

    Per timeline, members' read positions are sorted once: "read" is then a bisection. "Unread"
    also needs "joined at or before the event": events are answered in stream order while a
    Fenwick tree collects the positions of the members who had joined by then, so any pattern of
    joins costs O((members + events) log members).
    """

    def __init__(self, reads: RoomReads, events: list[EventPosition]):
        self._reads = reads
        self._answers: dict[str, tuple[int, int]] = {}
        by_timeline: dict[str, list[EventPosition]] = defaultdict(list)
        for event in events:
            by_timeline[timeline_of(event)].append(event)
        joins = sorted((joined, user) for user, joined in reads.members.items())
        for timeline, timeline_events in by_timeline.items():
            self._count_timeline(timeline, sorted(timeline_events, key=lambda e: e.stream_ordering), joins)

    def _count_timeline(self, timeline: str, events: list[EventPosition], joins: list[tuple[int, str]]) -> None:
        positions = {user: position_for(self._reads, user, timeline) for _, user in joins}
        ranked = sorted(positions.values())
        rank = {p: i + 1 for i, p in enumerate(sorted(set(ranked)))}  # 1-based ranks for the tree
        tree = [0] * (len(rank) + 1)

        def add(i: int) -> None:
            while i < len(tree):
                tree[i] += 1
                i += i & -i

        def prefix(i: int) -> int:  # how many added positions have rank <= i
            total = 0
            while i > 0:
                total += tree[i]
                i -= i & -i
            return total

        rank_values = sorted(rank)
        joined = 0
        for event in events:
            while joined < len(joins) and joins[joined][0] <= event.stream_ordering:
                add(rank[positions[joins[joined][1]]])
                joined += 1
            read = len(ranked) - bisect_left(ranked, event.stream_ordering)
            unread = prefix(bisect_left(rank_values, event.stream_ordering))  # joined and below the event
            self._answers[event.event_id] = (read, unread)

    def counts(self, event: EventPosition) -> tuple[int, int]:
        return self._answers[event.event_id]
