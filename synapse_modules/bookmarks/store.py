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
]


class Bookmark(NamedTuple):
    room_id: str
    event_id: str
    #: when the (latest) bookmarking reaction was sent
    ts: int


class BookmarkStore:
    def __init__(self, api: ModuleApi):
        self._db = ModuleStore(api, "bookmarks", MIGRATIONS)

    async def add(self, reaction_event_id: str, user_id: str, room_id: str, target_event_id: str, ts: int) -> None:
        def txn(cur: Any) -> None:
            cur.execute("INSERT INTO lgwan_bookmarks (reaction_event_id, user_id, room_id, target_event_id, created_ts)"
                        " VALUES (?, ?, ?, ?, ?) ON CONFLICT (reaction_event_id) DO NOTHING",
                        (reaction_event_id, user_id, room_id, target_event_id, ts))

        await self._db.run("add", txn)

    async def remove(self, reaction_event_id: str) -> None:
        def txn(cur: Any) -> None:
            cur.execute("DELETE FROM lgwan_bookmarks WHERE reaction_event_id = ?", (reaction_event_id,))

        await self._db.run("remove", txn)

    async def page(self, user_id: str, limit: int, before: tuple[int, str] | None) -> tuple[list[Bookmark], bool]:
        """``user_id``'s bookmarked messages, newest first, each once; ``before`` = (ts, event id) of the
        last one of the previous page. Returns the page and whether more follow."""

        def txn(cur: Any) -> list[Bookmark]:
            having, args = "", [user_id]
            if before is not None:
                having = " HAVING MAX(created_ts) < ? OR (MAX(created_ts) = ? AND target_event_id < ?)"
                args += [before[0], before[0], before[1]]
            cur.execute("SELECT room_id, target_event_id, MAX(created_ts) AS ts FROM lgwan_bookmarks"
                        " WHERE user_id = ? GROUP BY room_id, target_event_id" + having +
                        " ORDER BY ts DESC, target_event_id DESC LIMIT ?", (*args, limit + 1))
            return [Bookmark(*row) for row in cur.fetchall()]

        rows = await self._db.run("page", txn)
        return rows[:limit], len(rows) > limit
