"""A bot's own database: SQLite by default, PostgreSQL when configured. Portable SQL only.

Every bot shares the runtime's tables (session, sync position, events already handled,
per-user / per-room settings) and adds its own through numbered migrations. Statements use
``?`` placeholders; they are rewritten for PostgreSQL. Calls are synchronous and short: a bot
handles one event at a time, and its database is local.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

RUNTIME_MIGRATIONS: list[list[str]] = [
    [
        "CREATE TABLE IF NOT EXISTS bot_session (key TEXT NOT NULL PRIMARY KEY, value TEXT NOT NULL)",
        # handled_ts lets old rows be dropped: an event comes back only within a sync or two
        "CREATE TABLE IF NOT EXISTS bot_handled_events"
        " (event_id TEXT NOT NULL PRIMARY KEY, handled_ts BIGINT NOT NULL)",
        """CREATE TABLE IF NOT EXISTS bot_settings (
            scope TEXT NOT NULL, scope_id TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,
            PRIMARY KEY (scope, scope_id, key))""",
    ],
]


class Storage:
    def __init__(self, sqlite_path: Path | None = None, postgres_dsn: str | None = None):
        self._lock = threading.Lock()
        self.postgres = postgres_dsn is not None
        if self.postgres:
            import psycopg2

            self._conn: sqlite3.Connection | psycopg2.extensions.connection = psycopg2.connect(postgres_dsn)
        else:
            path = Path(sqlite_path or ":memory:")
            if str(path) != ":memory:":
                path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            self._conn = conn
        self.execute("CREATE TABLE IF NOT EXISTS bot_schema_versions"
                     " (name TEXT NOT NULL PRIMARY KEY, version INTEGER NOT NULL)")

    def close(self) -> None:
        self._conn.close()

    def migrate(self, name: str, migrations: list[list[str]]) -> None:
        """Apply the migrations of ``name`` not applied yet, each in one transaction."""
        row = self.one("SELECT version FROM bot_schema_versions WHERE name = ?", (name,))
        done = row[0] if row else 0
        for number, statements in enumerate(migrations[done:], start=done + 1):
            with self.transaction() as cur:
                for statement in statements:
                    cur.execute(statement)
                self._run(cur, "INSERT INTO bot_schema_versions (name, version) VALUES (?, ?)"
                               " ON CONFLICT (name) DO UPDATE SET version = excluded.version", (name, number))

    @contextmanager
    def transaction(self) -> Iterator[Any]:
        with self._lock:
            cur = self._conn.cursor()
            if not self.postgres:
                cur.execute("BEGIN IMMEDIATE")
            try:
                yield _Cursor(cur, self.postgres)
            except BaseException:
                self._conn.rollback() if self.postgres else cur.execute("ROLLBACK")
                raise
            else:
                self._conn.commit() if self.postgres else cur.execute("COMMIT")

    def _run(self, cur: Any, sql: str, args: Sequence[Any] = ()) -> None:
        cur.execute(sql, args)

    def execute(self, sql: str, args: Sequence[Any] = ()) -> int:
        """One statement in its own transaction; returns the number of rows changed."""
        with self.transaction() as cur:
            cur.execute(sql, args)
            return cur.rowcount

    def all(self, sql: str, args: Sequence[Any] = ()) -> list[tuple]:
        with self.transaction() as cur:
            cur.execute(sql, args)
            return cur.fetchall()

    def one(self, sql: str, args: Sequence[Any] = ()) -> tuple | None:
        rows = self.all(sql, args)
        return rows[0] if rows else None

    # --- what the runtime keeps ---

    def get(self, key: str) -> str | None:
        row = self.one("SELECT value FROM bot_session WHERE key = ?", (key,))
        return row[0] if row else None

    def put(self, key: str, value: str) -> None:
        self.execute("INSERT INTO bot_session (key, value) VALUES (?, ?)"
                     " ON CONFLICT (key) DO UPDATE SET value = excluded.value", (key, value))

    def was_handled(self, event_id: str) -> bool:
        return self.one("SELECT 1 FROM bot_handled_events WHERE event_id = ?", (event_id,)) is not None

    def mark_handled(self, event_id: str) -> None:
        self.execute("INSERT INTO bot_handled_events (event_id, handled_ts) VALUES (?, ?)"
                     " ON CONFLICT (event_id) DO NOTHING", (event_id, int(time.time() * 1000)))

    def forget_handled_before(self, ts: int) -> None:
        self.execute("DELETE FROM bot_handled_events WHERE handled_ts < ?", (ts,))

    def setting(self, scope: str, scope_id: str, key: str) -> str | None:
        row = self.one("SELECT value FROM bot_settings WHERE scope = ? AND scope_id = ? AND key = ?",
                       (scope, scope_id, key))
        return row[0] if row else None

    def set_setting(self, scope: str, scope_id: str, key: str, value: str | None) -> None:
        if value is None:
            self.execute("DELETE FROM bot_settings WHERE scope = ? AND scope_id = ? AND key = ?",
                         (scope, scope_id, key))
        else:
            self.execute("INSERT INTO bot_settings (scope, scope_id, key, value) VALUES (?, ?, ?, ?)"
                         " ON CONFLICT (scope, scope_id, key) DO UPDATE SET value = excluded.value",
                         (scope, scope_id, key, value))


class _Cursor:
    """A DB-API cursor taking ``?`` placeholders on both databases."""

    def __init__(self, cur: Any, postgres: bool):
        self._cur = cur
        self._postgres = postgres

    def execute(self, sql: str, args: Sequence[Any] = ()) -> None:
        if self._postgres:
            sql = sql.replace("%", "%%").replace("?", "%s")
        self._cur.execute(sql, tuple(args))

    def fetchall(self) -> list[tuple]:
        return [tuple(r) for r in self._cur.fetchall()]

    def fetchone(self) -> tuple | None:
        row = self._cur.fetchone()
        return tuple(row) if row else None

    @property
    def rowcount(self) -> int:
        return self._cur.rowcount
