"""Reading Synapse's own tables for 🔖 reactions and their redactions: the only SQL on Synapse's
schema in this module. Read-only, portable; the columns are checked by
``tests/test_synapse_internals.py`` against a real Synapse database."""

from __future__ import annotations

from typing import Any, NamedTuple

#: At the very first start, bookmarks are looked for this far back in the stream (the module
#: bookmarks what happens once it is enabled; this only covers writes in flight at that moment).
FIRST_START_LOOKBACK = 1000


class Reaction(NamedTuple):
    event_id: str
    sender: str
    room_id: str
    target_event_id: str
    key: str
    origin_server_ts: int


class Redaction(NamedTuple):
    sender: str
    redacts: str


class Found(NamedTuple):
    reactions: list[Reaction]
    redactions: list[Redaction]
    #: the highest stream position of the server when read (where to go on from)
    highest: int


def feed_start(txn: Any) -> int:
    """The position kept by the last run, or (first start) just before the server's latest events."""
    txn.execute("SELECT stream_ordering FROM lgwan_bookmarks_feed WHERE id = 1")
    row = txn.fetchone()
    if row is not None:
        return row[0]
    txn.execute("SELECT MAX(stream_ordering) FROM events")
    latest = txn.fetchone()[0] or 0
    return latest - FIRST_START_LOOKBACK


def reactions_and_redactions_since(txn: Any, after: int) -> Found:
    """Annotations (reactions that are not redacted: Synapse deletes the relation row of a redacted
    event) and redactions of reactions, persisted after a position: ``events(event_id, type,
    sender, room_id, stream_ordering, origin_server_ts, outlier, rejection_reason)`` (unique index
    on ``stream_ordering``), ``event_relations(event_id, relates_to_id, relation_type,
    aggregation_key)``, ``redactions(event_id, redacts)``."""
    txn.execute("SELECT MAX(stream_ordering) FROM events")
    highest = txn.fetchone()[0] or after
    txn.execute(
        "SELECT e.event_id, e.sender, e.room_id, r.relates_to_id, r.aggregation_key, e.origin_server_ts"
        " FROM events AS e JOIN event_relations AS r ON r.event_id = e.event_id"
        " WHERE e.stream_ordering > ? AND e.stream_ordering <= ? AND e.type = 'm.reaction'"
        " AND r.relation_type = 'm.annotation' AND r.aggregation_key IS NOT NULL"
        " AND NOT e.outlier AND e.rejection_reason IS NULL",
        (after, highest))
    reactions = [Reaction(*row) for row in txn.fetchall()]
    txn.execute(
        "SELECT e.sender, d.redacts FROM events AS e JOIN redactions AS d ON d.event_id = e.event_id"
        " JOIN events AS target ON target.event_id = d.redacts AND target.type = 'm.reaction'"
        " WHERE e.stream_ordering > ? AND e.stream_ordering <= ? AND e.type = 'm.room.redaction'"
        " AND NOT e.outlier AND e.rejection_reason IS NULL",
        (after, highest))
    return Found(reactions, [Redaction(*row) for row in txn.fetchall()], highest)
