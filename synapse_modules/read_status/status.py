"""Who has read an event, from receipts, membership and what people sent. Pure logic.

A joined member U has read event E when any of these is at or after E's
position in the room's stream:

- U's public unthreaded ``m.read`` receipt (it covers the main timeline and every thread);
- U's public ``m.read`` receipt for E's timeline: ``main`` for the main timeline, the
  thread root for an event in a thread (a receipt on a LATER event counts: reading a
  later message means having read the earlier ones);
- U's last event in E's timeline (U sent E, or wrote after it). Membership changes do not count;
- E is a thread root and U wrote in its thread (nobody replies to a thread without its first
  message on screen; Element's matrix-js-sdk counts it so too, see tests/interop/read_status).

Private receipts (``m.read.private``) are never used, so a member who reads
privately appears unread to others: revealing even a count would reveal them.

Who is counted: the room's current joined members. A member who joined after E
counts as read if they did read it, and otherwise is left out of both lists (E
was not sent to them). Members who left are not counted.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import NamedTuple

from .synapse_tables import EventPosition, Receipt, Sent

MAIN = "main"


class ReadMark(NamedTuple):
    """A receipt as kept: how far it reaches and when it was sent (parsed once)."""

    stream_ordering: int
    ts: int


class RoomReads(NamedTuple):
    """Everything needed to answer for any event of a room. Never changed once built (a cached
    copy is shared by concurrent requests): ``advance`` returns a new one."""

    members: dict[str, int]  # joined user -> join position
    # user -> timeline -> furthest position known read (receipts and own events); timeline
    # None = unthreaded receipt, MAIN = main timeline, else thread root. Kept for users who
    # left too (they may come back; only members are ever counted).
    positions: dict[str, dict[str | None, int]]
    # user -> timeline -> receipt (for the time it was read)
    receipts: dict[str, dict[str | None, ReadMark]]
    # timeline -> members sorted by how far they read (built on first use)
    timelines: dict[str, TimelineIndex]
    # thread root -> users who wrote in the thread (they have seen its root)
    repliers: dict[str, frozenset[str]]


def build(members: dict[str, int], receipts: Iterable[Receipt], sent: Iterable[Sent]) -> RoomReads:
    return advance(RoomReads(dict(members), {}, {}, {}, {}), {}, receipts, sent)


def advance(reads: RoomReads, membership: dict[str, int | None], receipts: Iterable[Receipt],
            sent: Iterable[Sent]) -> RoomReads:
    """``reads`` moved on by what happened since: membership changes (user -> join position, or
    None = no longer joined), newer receipts and newer own events. Only touched users are copied."""
    members = reads.members
    if membership:
        members = dict(members)
        for user_id, joined_at in membership.items():
            if joined_at is None:
                members.pop(user_id, None)
            else:
                members[user_id] = joined_at
    positions = dict(reads.positions)
    by_user = dict(reads.receipts)
    copied: set[str] = set()

    def timelines_of(user_id: str) -> dict[str | None, int]:
        if user_id not in copied:
            positions[user_id] = dict(positions.get(user_id, {}))
            copied.add(user_id)
        return positions[user_id]

    for receipt in receipts:
        marks = by_user[receipt.user_id] = dict(by_user.get(receipt.user_id, {}))
        old = marks.get(receipt.thread_id)
        if old is None or receipt.stream_ordering >= old.stream_ordering:
            marks[receipt.thread_id] = ReadMark(receipt.stream_ordering, receipt.ts)
        _advance(timelines_of(receipt.user_id), receipt.thread_id, receipt.stream_ordering)
    repliers = reads.repliers
    for item in sent:
        _advance(timelines_of(item.sender), item.thread_id or MAIN, item.last_stream_ordering)
        if item.thread_id and item.sender not in repliers.get(item.thread_id, ()):
            if repliers is reads.repliers:
                repliers = dict(repliers)
            repliers[item.thread_id] = repliers.get(item.thread_id, frozenset()) | {item.sender}
    moved = RoomReads(members, positions, by_user, {}, repliers)
    changed = copied | set(membership)
    if len(changed) <= _PATCH_LIMIT:
        # A busy room changes by a receipt or two between questions: move those members within the
        # sorted indexes instead of sorting thousands again.
        for timeline, index in reads.timelines.items():
            def old_position(u: str, t: str = timeline) -> int | None:
                return position_for(reads, u, t) if u in reads.members else None

            def new_entry(u: str, t: str = timeline) -> tuple[int, int | None, int] | None:
                return _entry(moved, u, t) if u in moved.members else None

            moved.timelines[timeline] = _patched(index, changed, old_position, new_entry)
    return moved


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


class TimelineIndex(NamedTuple):
    """The members of a room sorted by how far they have read one timeline, with, per member, the
    earliest time among their receipts for it and the lowest position among those receipts: for an
    event at or below that position every receipt reaches it, so that time is the answer."""

    positions: list[int]
    users: list[str]
    first_ts: list[int | None]
    lowest_receipt: list[int]


_NEVER = 2 ** 63
#: More changed members than this since the last question: build the indexes again instead.
_PATCH_LIMIT = 256
#: A timeline no event is in: its index holds unthreaded receipts only, the base of thread indexes.
_UNTHREADED = "\x00unthreaded"


def _entry(reads: RoomReads, user: str, timeline: str) -> tuple[int, int | None, int]:
    """(position, earliest receipt time, lowest receipt position) of a member in a timeline."""
    marks = [m for k, m in (reads.receipts.get(user) or {}).items() if k is None or k == timeline]
    return (position_for(reads, user, timeline), min((m.ts for m in marks), default=None),
            min((m.stream_ordering for m in marks), default=_NEVER))


def timeline_index(reads: RoomReads, timeline: str) -> TimelineIndex:
    index = reads.timelines.get(timeline)
    if index is not None:
        return index
    if timeline in (MAIN, _UNTHREADED):
        ranked = sorted((position_for(reads, user, timeline), user) for user in reads.members)
        entries = [_entry(reads, user, timeline) for _, user in ranked]
        index = TimelineIndex([p for p, _ in ranked], [u for _, u in ranked], [e[1] for e in entries],
                              [e[2] for e in entries])
    else:
        # A thread: everyone reads it as far as their unthreaded receipt, but for the few members
        # with a receipt or a message of their own in it.
        base = timeline_index(reads, _UNTHREADED)
        own = {u for u, known in reads.positions.items() if timeline in known}
        own |= {u for u, marks in reads.receipts.items() if timeline in marks}
        index = _patched(base, own & reads.members.keys(), lambda u: position_for(reads, u, _UNTHREADED),
                         lambda u: _entry(reads, u, timeline))
    reads.timelines[timeline] = index
    return index


def _patched(index: TimelineIndex, users: set[str], old_position: Callable[[str], int | None],
             new_entry: Callable[[str], tuple[int, int | None, int] | None]) -> TimelineIndex:
    """``index`` with ``users`` taken out from where they were (``old_position``, None = not in it)
    and put back where they are now (``new_entry``, None = no longer a member)."""
    positions, members, first_ts, lowest = (list(index.positions), list(index.users), list(index.first_ts),
                                            list(index.lowest_receipt))
    for user in users:
        position = old_position(user)
        if position is not None:
            lo = bisect_left(positions, position)
            i = bisect_left(members, user, lo, bisect_right(positions, position, lo))
            if i < len(members) and members[i] == user:
                del positions[i], members[i], first_ts[i], lowest[i]
        entry = new_entry(user)
        if entry is not None:
            lo = bisect_left(positions, entry[0])
            i = bisect_left(members, user, lo, bisect_right(positions, entry[0], lo))
            positions.insert(i, entry[0])
            members.insert(i, user)
            first_ts.insert(i, entry[1])
            lowest.insert(i, entry[2])
    return TimelineIndex(positions, members, first_ts, lowest)


class Status(NamedTuple):
    read: list[tuple[str, int | None]]  # (user, receipt ts or None when shown by sending)
    unread: list[str]


def status(reads: RoomReads, event: EventPosition) -> Status:
    """Members who read the event (a bisection in the timeline's index) and those who did not.
    A reader's time is that of the earliest receipt covering the event (Synapse keeps only the
    latest receipt per timeline, so this is when they had read at least up to it); None when only
    writing after it shows they read it."""
    timeline = timeline_of(event)
    index = timeline_index(reads, timeline)
    at = event.stream_ordering
    first_reader = bisect_left(index.positions, at)
    read = [(user_id, ts if ts is None or lowest >= at else _covering_ts(reads, user_id, timeline, at))
            for user_id, ts, lowest in zip(index.users[first_reader:], index.first_ts[first_reader:],
                                           index.lowest_receipt[first_reader:], strict=True)]
    members = reads.members
    repliers = _repliers(reads, event)
    unread = [user_id for user_id in index.users[:first_reader] if members[user_id] <= at and user_id not in repliers]
    unread.sort()
    if repliers:
        shown = {user_id for user_id, _ in read}
        read += [(user_id, None) for user_id in sorted(repliers - shown)]
    return Status(read, unread)


def _repliers(reads: RoomReads, event: EventPosition) -> frozenset[str]:
    """Members who wrote in the thread ``event`` is the root of (a root is in the main timeline)."""
    if event.thread_id is not None:
        return frozenset()
    return reads.repliers.get(event.event_id, frozenset()) & reads.members.keys()


def _covering_ts(reads: RoomReads, user_id: str, timeline: str, at: int) -> int | None:
    """The earliest time among the user's receipts that reach the event (the rare case of a member
    with both an unthreaded and a timeline receipt, one of them below the event)."""
    times = [mark.ts for key, mark in (reads.receipts.get(user_id) or {}).items()
             if key in (None, timeline) and mark.stream_ordering >= at]
    return min(times) if times else None


class Counter:
    """Read / unread counts for many events of one room, without a loop over members per event.

    Per timeline, members' read positions come sorted from the room's timeline index (kept with
    the room between questions): "read" is then a bisection. "Unread"
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
        index = timeline_index(self._reads, timeline)
        positions = dict(zip(index.users, index.positions, strict=True))
        ranked = index.positions
        rank_values = sorted(set(ranked))
        rank = {p: i + 1 for i, p in enumerate(rank_values)}  # 1-based ranks for the tree
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

        joined = 0
        for event in events:
            while joined < len(joins) and joins[joined][0] <= event.stream_ordering:
                add(rank[positions[joins[joined][1]]])
                joined += 1
            read = len(ranked) - bisect_left(ranked, event.stream_ordering)
            unread = prefix(bisect_left(rank_values, event.stream_ordering))  # joined and below the event
            for user_id in _repliers(self._reads, event):  # below the root, yet read: they replied
                if positions[user_id] < event.stream_ordering:
                    read += 1
                    unread -= self._reads.members[user_id] <= event.stream_ordering
            self._answers[event.event_id] = (read, unread)

    def counts(self, event: EventPosition) -> tuple[int, int]:
        return self._answers[event.event_id]
