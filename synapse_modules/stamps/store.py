"""The stamps module's tables: uploaded images (content-addressed) and users already set up."""

from __future__ import annotations

from typing import Any

from synapse.module_api import ModuleApi

from synapse_modules._storage import ModuleStore

MIGRATIONS = [
    [
        # An image is uploaded once: the same normalized bytes (sha256) reuse the same mxc URI.
        """CREATE TABLE IF NOT EXISTS lgwan_stamp_media (
            sha256 TEXT NOT NULL PRIMARY KEY,
            mxc TEXT NOT NULL
        )""",
        # Users given the pack (room joined, account data set), per pack room.
        """CREATE TABLE IF NOT EXISTS lgwan_stamp_users (
            user_id TEXT NOT NULL,
            pack_room TEXT NOT NULL,
            set_up_ts BIGINT NOT NULL,
            PRIMARY KEY (user_id, pack_room)
        )""",
    ],
]


class StampStore:
    def __init__(self, api: ModuleApi):
        self._api = api
        self._db = ModuleStore(api, "stamps", MIGRATIONS)

    async def media_for(self, sha256s: list[str]) -> dict[str, str]:
        def txn(cur: Any) -> dict[str, str]:
            if not sha256s:
                return {}
            cur.execute(f"SELECT sha256, mxc FROM lgwan_stamp_media WHERE sha256 IN ({','.join('?' * len(sha256s))})",
                        tuple(sha256s))
            return dict(cur.fetchall())

        return await self._db.run("media_for", txn)

    async def remember_media(self, sha256: str, mxc: str) -> None:
        def txn(cur: Any) -> None:
            cur.execute("INSERT INTO lgwan_stamp_media (sha256, mxc) VALUES (?, ?) ON CONFLICT (sha256) DO NOTHING",
                        (sha256, mxc))

        await self._db.run("remember_media", txn)

    async def users_set_up(self, pack_room: str) -> set[str]:
        def txn(cur: Any) -> set[str]:
            cur.execute("SELECT user_id FROM lgwan_stamp_users WHERE pack_room = ?", (pack_room,))
            return {row[0] for row in cur.fetchall()}

        return await self._db.run("users_set_up", txn)

    async def mark_set_up(self, user_id: str, pack_room: str) -> None:
        def txn(cur: Any) -> None:
            cur.execute("INSERT INTO lgwan_stamp_users (user_id, pack_room, set_up_ts) VALUES (?, ?, ?)"
                        " ON CONFLICT (user_id, pack_room) DO NOTHING",
                        (user_id, pack_room, self._api.get_current_time_msec()))

        await self._db.run("mark_set_up", txn)
