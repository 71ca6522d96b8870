"""Reading Synapse's own tables (receipts, events, membership): the only SQL on Synapse's schema.

Synapse offers no module API for "who has read what", so these queries read
its tables directly, read-only, with portable SQL. Each function depends on
the columns named in its docstring; ``tests/test_synapse_internals.py`` checks
them against a real Synapse database and fails loudly if an upgrade changes
them.
"""

from __future__ import annotations

import json
import re
from typing import Any, NamedTuple

_TS = re.compile(r'"ts"\s*:\s*(\d+)')


class EventPosition(NamedTuple):
    event_id: str
    stream_ordering: int
    sender: str
    origin_server_ts: int
    #: The thread root if the event is in a thread, else None (main timeline).
    thread_id: str | None


class Receipt(NamedTuple):
    user_id: str
    #: None = unthreaded (covers every thread), "main" = main timeline, else a thread root.
    thread_id: str | None
    stream_ordering: int
    #: Synapse's JSON ``data`` of the receipt (holds ``ts``); None when not asked for.
    data: str | None = None
    #: Position in Synapse's receipts stream (each new receipt takes a higher one).
    stream_id: int = 0

    @property
    def ts(self) -> int:
        """When the receipt was sent; parsed only when somebody asks (thousands per room)."""
        if not self.data:
            return 0
        match = _TS.search(self.data)
        if match:
            return int(match.group(1))
        try:
            return int(json.loads(self.data).get("ts", 0))
        except (ValueError, TypeError, AttributeError):
            return 0


class Sent(NamedTuple):
    sender: str
    thread_id: str | None
    last_stream_ordering: int


THREAD = "m.thread"


def event_positions(txn: Any, room_id: str, event_ids: list[str]) -> dict[str, EventPosition]:
    """``events(event_id, room_id, stream_ordering, sender, origin_server_ts, outlier,
    rejection_reason)`` and ``event_relations(event_id, relates_to_id, relation_type)``."""
    if not event_ids:
        return {}
    marks = ",".join("?" * len(event_ids))
    txn.execute(
        "SELECT e.event_id, e.stream_ordering, e.sender, e.origin_server_ts, r.relates_to_id"
        " FROM events AS e LEFT JOIN event_relations AS r ON r.event_id = e.event_id AND r.relation_type = ?"
        f" WHERE e.room_id = ? AND e.event_id IN ({marks}) AND NOT e.outlier AND e.rejection_reason IS NULL",
        (THREAD, room_id, *event_ids))
    return {row[0]: EventPosition(row[0], row[1], row[2], row[3] or 0, row[4]) for row in txn.fetchall()}


def recent_events(txn: Any, room_id: str, limit: int) -> list[EventPosition]:
    """The room's last ``limit`` timeline events that are not state (what a client shows)."""
    txn.execute(
        "SELECT e.event_id, e.stream_ordering, e.sender, e.origin_server_ts, r.relates_to_id"
        " FROM events AS e LEFT JOIN event_relations AS r ON r.event_id = e.event_id AND r.relation_type = ?"
        " WHERE e.room_id = ? AND e.state_key IS NULL AND NOT e.outlier AND e.rejection_reason IS NULL"
        " ORDER BY e.stream_ordering DESC LIMIT ?",
        (THREAD, room_id, limit))
    return [EventPosition(row[0], row[1], row[2], row[3] or 0, row[4]) for row in txn.fetchall()]


def joined_members(txn: Any, room_id: str) -> dict[str, int]:
    """user id -> stream ordering of their current join:
    ``current_state_events(room_id, type, state_key, membership, event_stream_ordering)``."""
    txn.execute(
        "SELECT state_key, event_stream_ordering FROM current_state_events"
        " WHERE room_id = ? AND type = 'm.room.member' AND membership = 'join'",
        (room_id,))
    return {row[0]: row[1] or 0 for row in txn.fetchall()}


def public_read_receipts(txn: Any, room_id: str, after_stream_id: int = -1) -> list[Receipt]:
    """Every user's latest public ``m.read`` receipts (never ``m.read.private``) written after a
    position of the receipts stream (all of them by default): ``receipts_linearized(room_id,
    receipt_type, user_id, thread_id, event_stream_ordering, data, stream_id)``, index
    ``(room_id, stream_id)``."""
    # Only (room_id, stream_id) in the WHERE clause: PostgreSQL would otherwise pick the
    # (room_id, receipt_type, ...) index and read every receipt of the room.
    txn.execute(
        "SELECT user_id, thread_id, event_stream_ordering, data, stream_id, receipt_type FROM receipts_linearized"
        " WHERE room_id = ? AND stream_id > ?",
        (room_id, after_stream_id))
    return [Receipt(*row[:5]) for row in txn.fetchall() if row[5] == "m.read" and row[2] is not None]


from .._streams import FROM_START  # noqa: E402 (one definition for every stream reader)


class Since(NamedTuple):
    """What happened in a room after a stream position."""

    #: Per sender and thread, their last event: sending implies having read.
    sent: list[Sent]
    #: Users whose membership event is among them (their membership may have changed).
    membership_changed: set[str]
    #: The highest stream ordering seen (the position to ask from next time).
    last_stream_ordering: int


def events_since(txn: Any, room_id: str, after_stream_ordering: int = FROM_START) -> Since:
    """The room's events after a position, summed up: ``events(room_id, stream_ordering, type,
    sender, state_key, outlier, rejection_reason)`` (index ``(room_id, stream_ordering)``) and
    ``event_relations``. Membership events do not count as sending (joining is not reading); from
    the start, who is a member comes from ``joined_members`` instead of the membership history."""
    if after_stream_ordering == FROM_START:  # the whole history: summed up by the database
        txn.execute(
            "SELECT e.sender, r.relates_to_id, MAX(e.stream_ordering)"
            " FROM events AS e LEFT JOIN event_relations AS r ON r.event_id = e.event_id AND r.relation_type = ?"
            " WHERE e.room_id = ? AND e.type <> 'm.room.member' AND NOT e.outlier AND e.rejection_reason IS NULL"
            " GROUP BY e.sender, r.relates_to_id",
            (THREAD, room_id))
        sent = [Sent(row[0], row[1], row[2]) for row in txn.fetchall()]
        txn.execute("SELECT MAX(stream_ordering) FROM events WHERE room_id = ?", (room_id,))
        row = txn.fetchone()
        highest = row[0] if row and row[0] is not None else FROM_START
        return Since(sent, set(), max([highest, *(item.last_stream_ordering for item in sent)]))
    # What happened since the last question: usually nothing or a few events, in one round trip.
    txn.execute(
        "SELECT e.sender, r.relates_to_id, e.stream_ordering, e.type, e.state_key"
        " FROM events AS e LEFT JOIN event_relations AS r ON r.event_id = e.event_id AND r.relation_type = ?"
        " WHERE e.room_id = ? AND e.stream_ordering > ? AND NOT e.outlier AND e.rejection_reason IS NULL",
        (THREAD, room_id, after_stream_ordering))
    last: dict[tuple[str, str | None], int] = {}
    changed: set[str] = set()
    highest = after_stream_ordering
    for sender, thread_id, position, event_type, state_key in txn.fetchall():
        highest = max(highest, position)
        if event_type == "m.room.member":
            changed.add(state_key)
        elif position > last.get((sender, thread_id), -1):
            last[(sender, thread_id)] = position
    return Since([Sent(s, t, so) for (s, t), so in last.items()], changed, highest)


def memberships(txn: Any, room_id: str, user_ids: set[str]) -> dict[str, int | None]:
    """user id -> stream ordering of their current join, or None if not joined now
    (``current_state_events``, as ``joined_members``)."""
    found: dict[str, int | None] = dict.fromkeys(user_ids)
    users = sorted(user_ids)
    for start in range(0, len(users), 500):  # bounded IN lists (SQLite's variable limit)
        chunk = users[start:start + 500]
        txn.execute(
            "SELECT state_key, event_stream_ordering FROM current_state_events"
            f" WHERE room_id = ? AND type = 'm.room.member' AND membership = 'join'"
            f" AND state_key IN ({','.join('?' * len(chunk))})",
            (room_id, *chunk))
        found.update({row[0]: row[1] or 0 for row in txn.fetchall()})
    return found


def first_sent_at_or_after(txn: Any, room_id: str, user_ids: list[str], stream_ordering: int) -> dict[str, int]:
    """user -> origin_server_ts of their first event at or after a position (when they showed they
    had read up to it). Per user an ordered index walk that stops at their first event (people who
    read by writing usually wrote soon after; one grouped query would read every later event of the
    room: 14 ms against 3 ms for 10 writers on PostgreSQL, 10,000 events), all in one round trip."""
    found: dict[str, int] = {}
    one = ("SELECT ? AS sender, ts FROM (SELECT origin_server_ts AS ts FROM events"
           " WHERE room_id = ? AND sender = ? AND stream_ordering >= ?"
           " AND type <> 'm.room.member' AND NOT outlier AND rejection_reason IS NULL"
           " ORDER BY stream_ordering LIMIT 1) AS first_{n}")
    for start in range(0, len(user_ids), 100):  # bounded statements (SQLite's variable limit)
        chunk = user_ids[start:start + 100]
        txn.execute(" UNION ALL ".join(one.format(n=n) for n in range(len(chunk))),
                    [value for user_id in chunk for value in (user_id, room_id, user_id, stream_ordering)])
        found.update({row[0]: row[1] for row in txn.fetchall()})
    return found


class Annotation(NamedTuple):
    sender: str
    key: str
    origin_server_ts: int


def reactions(txn: Any, room_id: str, event_id: str) -> list[Annotation]:
    """Reactions (``m.annotation``) to an event, oldest first. Redacted reactions are gone from
    ``event_relations(event_id, relates_to_id, relation_type, aggregation_key)`` already."""
    txn.execute(
        "SELECT e.sender, r.aggregation_key, e.origin_server_ts"
        " FROM event_relations AS r JOIN events AS e ON e.event_id = r.event_id"
        " WHERE r.relates_to_id = ? AND r.relation_type = 'm.annotation' AND e.room_id = ?"
        " AND NOT e.outlier AND e.rejection_reason IS NULL AND r.aggregation_key IS NOT NULL"
        " ORDER BY e.stream_ordering",
        (event_id, room_id))
    return [Annotation(row[0], row[1], row[2] or 0) for row in txn.fetchall()]
