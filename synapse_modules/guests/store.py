"""The guest module's tables: who is a guest, until when, and which rooms they may join."""

from __future__ import annotations

import time
from typing import Any

import attrs
from synapse.module_api import ModuleApi

from synapse_modules._storage import ModuleStore

MIGRATIONS = [
    [
        """CREATE TABLE IF NOT EXISTS lgwan_guests (
            user_id TEXT NOT NULL PRIMARY KEY,
            display_name TEXT NOT NULL,
            expires_ts BIGINT NOT NULL,
            created_ts BIGINT NOT NULL,
            created_by TEXT NOT NULL,
            notified_ts BIGINT,
            deactivated_ts BIGINT,
            deactivated_reason TEXT
        )""",
        # rooms a guest may join: given by the admin, or the direct chat of the expiry notice
        """CREATE TABLE IF NOT EXISTS lgwan_guest_rooms (
            user_id TEXT NOT NULL,
            room_id TEXT NOT NULL,
            kind TEXT NOT NULL,
            PRIMARY KEY (user_id, room_id)
        )""",
    ],
]


@attrs.frozen
class Guest:
    user_id: str
    display_name: str
    expires_ts: int
    created_ts: int
    created_by: str
    notified_ts: int | None
    deactivated_ts: int | None
    deactivated_reason: str | None
    rooms: tuple[str, ...] = ()

    def as_json(self) -> dict[str, Any]:
        return {"user_id": self.user_id, "display_name": self.display_name, "expires_ts": self.expires_ts,
                "created_ts": self.created_ts, "created_by": self.created_by, "notified_ts": self.notified_ts,
                "deactivated_ts": self.deactivated_ts, "deactivated_reason": self.deactivated_reason,
                "rooms": list(self.rooms)}


_COLUMNS = ("user_id, display_name, expires_ts, created_ts, created_by, notified_ts, deactivated_ts,"
            " deactivated_reason")


def now_ms() -> int:
    return int(time.time() * 1000)


class GuestStore:
    def __init__(self, api: ModuleApi):
        self._store = ModuleStore(api, "guests", MIGRATIONS)

    async def add(self, user_id: str, display_name: str, expires_ts: int, created_by: str,
                  rooms: list[str]) -> bool:
        """False when the user is already a guest."""
        def txn(t: Any) -> bool:
            t.execute("SELECT 1 FROM lgwan_guests WHERE user_id = ?", (user_id,))
            if t.fetchone():
                return False
            t.execute(f"INSERT INTO lgwan_guests ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, NULL, NULL, NULL)",
                      (user_id, display_name, expires_ts, now_ms(), created_by))
            for room_id in rooms:
                t.execute("INSERT INTO lgwan_guest_rooms (user_id, room_id, kind) VALUES (?, ?, 'given')"
                          " ON CONFLICT (user_id, room_id) DO NOTHING", (user_id, room_id))
            return True
        return await self._store.run("add", txn)

    async def get(self, user_id: str) -> Guest | None:
        found = await self._store.run("get", self._select_txn, user_id)
        return found[0] if found else None

    async def all(self) -> list[Guest]:
        return await self._store.run("all", self._select_txn, None)

    @staticmethod
    def _select_txn(t: Any, user_id: str | None) -> list[Guest]:
        where, args = ("WHERE user_id = ?", (user_id,)) if user_id else ("", ())
        t.execute(f"SELECT {_COLUMNS} FROM lgwan_guests {where} ORDER BY user_id", args)
        rows: list[tuple[str, str, int, int, str, int | None, int | None, str | None]] = t.fetchall()
        t.execute(f"SELECT user_id, room_id FROM lgwan_guest_rooms {where} AND kind = 'given' ORDER BY room_id"
                  if where else "SELECT user_id, room_id FROM lgwan_guest_rooms WHERE kind = 'given'"
                  " ORDER BY room_id", args)
        rooms: dict[str, list[str]] = {}
        for uid, room_id in t.fetchall():
            rooms.setdefault(uid, []).append(room_id)
        return [Guest(*row, rooms=tuple(rooms.get(row[0], ()))) for row in rows]

    async def is_guest(self, user_id: str) -> bool:
        def txn(t: Any) -> bool:
            t.execute("SELECT 1 FROM lgwan_guests WHERE user_id = ?", (user_id,))
            return t.fetchone() is not None
        return await self._store.run("is_guest", txn)

    async def may_join(self, user_id: str, room_id: str) -> bool:
        def txn(t: Any) -> bool:
            t.execute("SELECT 1 FROM lgwan_guest_rooms WHERE user_id = ? AND room_id = ?", (user_id, room_id))
            return t.fetchone() is not None
        return await self._store.run("may_join", txn)

    async def add_room(self, user_id: str, room_id: str, kind: str) -> None:
        def txn(t: Any) -> None:
            t.execute("INSERT INTO lgwan_guest_rooms (user_id, room_id, kind) VALUES (?, ?, ?)"
                      " ON CONFLICT (user_id, room_id) DO NOTHING", (user_id, room_id, kind))
        await self._store.run("add_room", txn)

    async def rooms_of(self, user_id: str) -> list[str]:
        def txn(t: Any) -> list[str]:
            t.execute("SELECT room_id FROM lgwan_guest_rooms WHERE user_id = ?", (user_id,))
            return [r[0] for r in t.fetchall()]
        return await self._store.run("rooms_of", txn)

    async def remove(self, user_id: str) -> None:
        """Forget a guest whose account was never created (the CLI's creation failed half-way)."""
        def txn(t: Any) -> None:
            t.execute("DELETE FROM lgwan_guest_rooms WHERE user_id = ?", (user_id,))
            t.execute("DELETE FROM lgwan_guests WHERE user_id = ?", (user_id,))
        await self._store.run("remove", txn)

    async def set_expiry(self, user_id: str, expires_ts: int) -> None:
        """A new expiry also means a new notice before it."""
        def txn(t: Any) -> None:
            t.execute("UPDATE lgwan_guests SET expires_ts = ?, notified_ts = NULL WHERE user_id = ?",
                      (expires_ts, user_id))
        await self._store.run("set_expiry", txn)

    async def mark_notified(self, user_id: str) -> None:
        def txn(t: Any) -> None:
            t.execute("UPDATE lgwan_guests SET notified_ts = ? WHERE user_id = ?", (now_ms(), user_id))
        await self._store.run("notified", txn)

    async def mark_deactivated(self, user_id: str, reason: str) -> bool:
        """False when someone else (another process) deactivated it first."""
        def txn(t: Any) -> bool:
            t.execute("UPDATE lgwan_guests SET deactivated_ts = ?, deactivated_reason = ?"
                      " WHERE user_id = ? AND deactivated_ts IS NULL", (now_ms(), reason, user_id))
            return t.rowcount == 1
        return await self._store.run("deactivated", txn)

    async def due(self, now: int, notify_before_ms: int) -> tuple[list[str], list[str]]:
        """(guests to tell now, guests to deactivate now)."""
        def txn(t: Any) -> tuple[list[str], list[str]]:
            t.execute("SELECT user_id FROM lgwan_guests WHERE deactivated_ts IS NULL AND expires_ts <= ?"
                      " ORDER BY user_id", (now,))
            expired = [r[0] for r in t.fetchall()]
            t.execute("SELECT user_id FROM lgwan_guests WHERE deactivated_ts IS NULL AND notified_ts IS NULL"
                      " AND expires_ts > ? AND expires_ts <= ? ORDER BY user_id", (now, now + notify_before_ms))
            return [r[0] for r in t.fetchall()], expired
        return await self._store.run("due", txn)
