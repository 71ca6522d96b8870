"""Fresh PostgreSQL databases for homeservers started by the tests and the benchmarks."""

from __future__ import annotations

import itertools
import os
import secrets
from typing import Any, TypedDict


class PgSettings(TypedDict, total=False):
    host: str
    port: int
    user: str
    password: str


# libpq settings for the local PostgreSQL (trust auth here); override with the usual PG* variables.
PG_SETTINGS: PgSettings = {
    "host": os.environ.get("PGHOST", "127.0.0.1"),
    "port": int(os.environ.get("PGPORT", "5432")),
    "user": os.environ.get("PGUSER", "postgres"),
}
if os.environ.get("PGPASSWORD"):
    PG_SETTINGS["password"] = os.environ["PGPASSWORD"]


def postgres_unreachable_reason() -> str | None:
    """None when the local PostgreSQL accepts us, else why not."""
    try:
        import psycopg2
    except ImportError as e:
        return f"psycopg2 not installed ({e})"
    try:
        psycopg2.connect(dbname="postgres", connect_timeout=3, **PG_SETTINGS).close()
    except Exception as e:  # any failure to connect means: not reachable
        return str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    return None


class PostgresDatabase:
    """A fresh database for one homeserver, as Synapse requires it (UTF8, C collation)."""

    _counter = itertools.count()

    def __init__(self, existing: str | None = None) -> None:
        """A new database, or ``existing`` (a name this class made before) to use it again."""
        if existing is not None:
            if not existing.startswith("lgwan_test_") or not existing.replace("_", "").isalnum():
                raise ValueError(f"not a database of ours: {existing!r}")
            self.name = existing
            return
        self.name = f"lgwan_test_{os.getpid()}_{next(self._counter)}_{secrets.token_hex(3)}"
        self._admin(f"CREATE DATABASE {self.name} ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0")

    def synapse_config(self) -> dict:
        return {"name": "psycopg2", "allow_unsafe_locale": False,
                "args": {"database": self.name, "cp_min": 1, "cp_max": 5, **PG_SETTINGS}}

    def drop(self) -> None:
        self._admin(f"DROP DATABASE IF EXISTS {self.name} WITH (FORCE)")

    @staticmethod
    def _admin(sql: str) -> None:
        import psycopg2

        conn = psycopg2.connect(dbname="postgres", **PG_SETTINGS)
        conn.autocommit = True
        try:
            with conn.cursor() as cur:
                cur.execute(sql)
        finally:
            conn.close()

    def analyze(self) -> None:
        """Refresh the planner's statistics, as autovacuum would (it may be off on a test machine)."""
        import psycopg2

        conn = psycopg2.connect(dbname=self.name, **PG_SETTINGS)
        conn.autocommit = True
        try:
            with conn.cursor() as cur:
                cur.execute("ANALYZE")
        finally:
            conn.close()

    def query(self, sql: str, *args: Any) -> list[tuple]:
        import psycopg2

        conn = psycopg2.connect(dbname=self.name, **PG_SETTINGS)
        try:
            with conn.cursor() as cur:
                cur.execute(sql.replace("?", "%s"), args)
                return cur.fetchall()
        finally:
            conn.close()
