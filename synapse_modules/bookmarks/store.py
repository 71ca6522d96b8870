"""The bookmarks module's table: one row per bookmarking reaction of a local user."""

from __future__ import annotations

from typing import Any, NamedTuple

from synapse.module_api import ModuleApi

from synapse_modules._storage import ModuleStore

MIGRATIONS = [
    [
        # Keyed by the reaction, so that writing it twice changes nothing and its redaction
        # finds it. A message bookmarked with two keys (🔖 and 🔖 + U+FE0F) has two rows.
        """CREATE TABLE IF NOT EXISTS lgwan_bookmarks (
            reaction_event_id TEXT NOT NULL PRIMARY KEY,
            user_id TEXT NOT NULL,
            room_id TEXT NOT NULL,
            target_event_id TEXT NOT NULL,
            created_ts BIGINT NOT NULL
        )""",
        "CREATE INDEX IF NOT EXISTS lgwan_bookmarks_user ON lgwan_bookmarks (user_id, created_ts)",
    ],
    [
        # Bookmarks are read from Synapse's tables by a feed (reactions.py), possibly by several
        # processes: a redacted reaction stays as a tombstone so that reading it late adds nothing.
        "ALTER TABLE lgwan_bookmarks ADD COLUMN removed INTEGER NOT NULL DEFAULT 0",
        # Where the feed has read everything up to (one row).
        """CREATE TABLE IF NOT EXISTS lgwan_bookmarks_feed (
            id INTEGER NOT NULL PRIMARY KEY,
            stream_ordering BIGINT NOT NULL
        )""",
    ],
]


class Bookmark(NamedTuple):
    room_id: str
    event_id: str
    #: when the (latest) bookmarking reaction was sent
    ts: int


class BookmarkStore:
    def __init__(self, api: ModuleApi):
        self._db = ModuleStore(api, "bookmarks", MIGRATIONS)

    async def run(self, desc: str, func: Any, *args: Any) -> Any:
        return await self._db.run(desc, func, *args)

    async def apply(self, reactions: list, removed: list[str], safe_position: int | None) -> list:
        """New bookmarking reactions, redacted ones (tombstones) and the feed's position, at once.
        Returns the reactions this call added (not those stored before, by this or another process)."""

        def txn(cur: Any) -> list:
            added = []
            for r in reactions:
                cur.execute("INSERT INTO lgwan_bookmarks (reaction_event_id, user_id, room_id, target_event_id,"
                            " created_ts) VALUES (?, ?, ?, ?, ?) ON CONFLICT (reaction_event_id) DO NOTHING",
                            (r.event_id, r.sender, r.room_id, r.target_event_id, r.origin_server_ts))
                if cur.rowcount == 1:
                    added.append(r)
            for reaction_event_id in removed:
                cur.execute("INSERT INTO lgwan_bookmarks (reaction_event_id, user_id, room_id, target_event_id,"
                            " created_ts, removed) VALUES (?, '', '', '', 0, 1)"
                            " ON CONFLICT (reaction_event_id) DO UPDATE SET removed = 1", (reaction_event_id,))
            if safe_position is not None:
                cur.execute("INSERT INTO lgwan_bookmarks_feed (id, stream_ordering) VALUES (1, ?)"
                            " ON CONFLICT (id) DO UPDATE SET stream_ordering = excluded.stream_ordering"
                            " WHERE lgwan_bookmarks_feed.stream_ordering < excluded.stream_ordering",
                            (safe_position,))
            return added

        if reactions or removed or safe_position is not None:
            return await self._db.run("apply", txn)
        return []

    async def page(self, user_id: str, limit: int, before: tuple[int, str] | None) -> tuple[list[Bookmark], bool]:
        """``user_id``'s bookmarked messages, newest first, each once; ``before`` = (ts, event id) of the
        last one of the previous page. Returns the page and whether more follow."""

        def txn(cur: Any) -> list[Bookmark]:
            having, args = "", list[str | int]([user_id])
            if before is not None:
                having = " HAVING MAX(created_ts) < ? OR (MAX(created_ts) = ? AND target_event_id < ?)"
                args += [before[0], before[0], before[1]]
            cur.execute("SELECT room_id, target_event_id, MAX(created_ts) AS ts FROM lgwan_bookmarks"
                        " WHERE user_id = ? AND removed = 0 GROUP BY room_id, target_event_id" + having +
                        " ORDER BY ts DESC, target_event_id DESC LIMIT ?", (*args, limit + 1))
            return [Bookmark(*row) for row in cur.fetchall()]

        rows = await self._db.run("page", txn)
        return rows[:limit], len(rows) > limit
