"""The zone module's tables: which zone each device belongs to, which media is untrusted."""

from __future__ import annotations

from typing import Any

from synapse.module_api import ModuleApi

from synapse_modules._storage import ModuleStore
from synapse_modules._synapse_internals import is_url_preview_media_txn, sending_device_txn

MIGRATIONS = [
    [
        # A device's zone is decided by its first authenticated request and never changes.
        """CREATE TABLE IF NOT EXISTS lgwan_device_zones (
            user_id TEXT NOT NULL,
            device_id TEXT NOT NULL,
            zone TEXT NOT NULL,
            first_ip TEXT,
            first_user_agent TEXT,
            created_ts BIGINT NOT NULL,
            PRIMARY KEY (user_id, device_id)
        )""",
    ],
    [
        # Media uploaded from the internet side: never served to LGWAN devices.
        """CREATE TABLE IF NOT EXISTS lgwan_untrusted_media (
            media_id TEXT NOT NULL PRIMARY KEY,
            uploader TEXT,
            device_id TEXT,
            zone TEXT NOT NULL,
            ip TEXT,
            created_ts BIGINT NOT NULL
        )""",
    ],
    [
        # Device approval (端末認証): a device of a zone with device_approval self/admin may do
        # nothing until it has a row here in state 'approved'. No row, or any other state
        # ('revoked', 'rejected'): not approved.
        """CREATE TABLE IF NOT EXISTS lgwan_device_approvals (
            user_id TEXT NOT NULL,
            device_id TEXT NOT NULL,
            state TEXT NOT NULL,
            decided_by TEXT NOT NULL,
            decided_ts BIGINT NOT NULL,
            PRIMARY KEY (user_id, device_id)
        )""",
        # Every decision, kept: who decided what about which device, how (self, admin), when.
        """CREATE TABLE IF NOT EXISTS lgwan_device_approval_audit (
            user_id TEXT NOT NULL,
            device_id TEXT NOT NULL,
            decision TEXT NOT NULL,
            decided_by TEXT NOT NULL,
            via TEXT NOT NULL,
            zone TEXT,
            ts BIGINT NOT NULL
        )""",
        "CREATE INDEX IF NOT EXISTS lgwan_device_approval_audit_user ON lgwan_device_approval_audit (user_id, ts)",
    ],
]

#: The state of an approved device (lgwan_device_approvals.state).
APPROVED = "approved"


class ZoneStore:
    def __init__(self, api: ModuleApi):
        self._api = api
        self._db = ModuleStore(api, "zones", MIGRATIONS)
        # Bindings never change once made, so every process may cache them for good.
        self._device_zones: dict[tuple[str, str], str] = {}

    async def device_zone(self, user_id: str, device_id: str) -> str | None:
        """The zone a device is bound to, or None if it has made no authenticated request yet."""
        key = (user_id, device_id)
        if key in self._device_zones:
            return self._device_zones[key]

        def txn(cur: Any) -> str | None:
            cur.execute("SELECT zone FROM lgwan_device_zones WHERE user_id = ? AND device_id = ?",
                        (user_id, device_id))
            row = cur.fetchone()
            return row[0] if row else None

        zone = await self._db.run("device_zone", txn)
        if zone is not None:
            self._remember(key, zone)
        return zone

    def _remember(self, key: tuple[str, str], zone: str) -> None:
        if len(self._device_zones) > 100_000:  # bounded: a long-running process sees many devices
            self._device_zones.clear()
        self._device_zones[key] = zone

    async def bind_device(self, user_id: str, device_id: str, zone: str, ip: str | None,
                          user_agent: str | None) -> str:
        """The device's zone: the existing binding, or ``zone`` if this is its first request."""
        key = (user_id, device_id)
        cached = self._device_zones.get(key)
        if cached is not None:
            return cached
        now = self._api.get_current_time_msec()

        def txn(cur: Any) -> str:
            # Two processes may see a new device at once: the first insert wins, both read it.
            cur.execute(
                "INSERT INTO lgwan_device_zones (user_id, device_id, zone, first_ip, first_user_agent, created_ts)"
                " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (user_id, device_id) DO NOTHING",
                (user_id, device_id, zone, ip, (user_agent or "")[:512], now))
            cur.execute("SELECT zone FROM lgwan_device_zones WHERE user_id = ? AND device_id = ?",
                        (user_id, device_id))
            return cur.fetchone()[0]

        bound = await self._db.run("bind_device", txn)
        self._remember(key, bound)
        return bound

    async def device_binding(self, user_id: str, device_id: str) -> tuple[str, int, str] | None:
        """(zone, first request's time, first user agent) of a device, None if it never made a request."""
        def txn(cur: Any) -> tuple[str, int, str] | None:
            cur.execute("SELECT zone, created_ts, first_user_agent FROM lgwan_device_zones"
                        " WHERE user_id = ? AND device_id = ?", (user_id, device_id))
            row = cur.fetchone()
            return (row[0], row[1], row[2] or "") if row else None

        return await self._db.run("device_binding", txn)

    async def user_bindings(self, user_id: str) -> dict[str, tuple[str, int, str]]:
        """device_id -> (zone, first request's time, first user agent) of every device of a user."""
        def txn(cur: Any) -> dict[str, tuple[str, int, str]]:
            cur.execute("SELECT device_id, zone, created_ts, first_user_agent FROM lgwan_device_zones"
                        " WHERE user_id = ?", (user_id,))
            return {row[0]: (row[1], row[2], row[3] or "") for row in cur.fetchall()}

        return await self._db.run("user_bindings", txn)

    async def is_approved(self, user_id: str, device_id: str) -> bool:
        """Never cached here: a revoke on another process must count at once."""
        def txn(cur: Any) -> bool:
            cur.execute("SELECT state FROM lgwan_device_approvals WHERE user_id = ? AND device_id = ?",
                        (user_id, device_id))
            row = cur.fetchone()
            return row is not None and row[0] == APPROVED

        return await self._db.run("is_approved", txn)

    async def approval_states(self, user_id: str) -> dict[str, str]:
        """device_id -> state of every device of a user that has a decision."""
        def txn(cur: Any) -> dict[str, str]:
            cur.execute("SELECT device_id, state FROM lgwan_device_approvals WHERE user_id = ?", (user_id,))
            return {row[0]: row[1] for row in cur.fetchall()}

        return await self._db.run("approval_states", txn)

    async def decide(self, user_id: str, device_id: str, state: str, decided_by: str, via: str,
                     zone: str | None) -> None:
        """Record a decision about a device (its state now, and an audit row), in one transaction."""
        now = self._api.get_current_time_msec()

        def txn(cur: Any) -> None:
            cur.execute(
                "INSERT INTO lgwan_device_approvals (user_id, device_id, state, decided_by, decided_ts)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT (user_id, device_id) DO UPDATE SET"
                " state = excluded.state, decided_by = excluded.decided_by, decided_ts = excluded.decided_ts",
                (user_id, device_id, state, decided_by, now))
            cur.execute(
                "INSERT INTO lgwan_device_approval_audit (user_id, device_id, decision, decided_by, via, zone, ts)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)", (user_id, device_id, state, decided_by, via, zone, now))

        await self._db.run("decide", txn)

    async def audit(self, user_id: str, device_id: str, decision: str, decided_by: str, via: str,
                    zone: str | None) -> None:
        """An audit row only (e.g. a refused login naming an existing device)."""
        now = self._api.get_current_time_msec()

        def txn(cur: Any) -> None:
            cur.execute(
                "INSERT INTO lgwan_device_approval_audit (user_id, device_id, decision, decided_by, via, zone, ts)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)", (user_id, device_id, decision, decided_by, via, zone, now))

        await self._db.run("audit", txn)

    async def sending_device(self, event_id: str) -> tuple[str, str] | None:
        """(user, device) that sent a recent local event from a client."""
        return await self._db.run("sending_device", sending_device_txn, event_id)

    async def mark_untrusted(self, media_id: str, uploader: str | None, device_id: str | None, zone: str,
                             ip: str | None) -> None:
        def txn(cur: Any) -> None:
            cur.execute(
                "INSERT INTO lgwan_untrusted_media (media_id, uploader, device_id, zone, ip, created_ts)"
                " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (media_id) DO NOTHING",
                (media_id, uploader, device_id, zone, ip, self._api.get_current_time_msec()))

        await self._db.run("mark_untrusted", txn)

    async def is_untrusted(self, media_id: str) -> bool:
        """Uploaded from the internet side, or fetched from the internet by Synapse's URL previewer."""
        def txn(cur: Any) -> bool:
            cur.execute("SELECT 1 FROM lgwan_untrusted_media WHERE media_id = ?", (media_id,))
            return cur.fetchone() is not None or is_url_preview_media_txn(cur, media_id)

        return await self._db.run("is_untrusted", txn)
