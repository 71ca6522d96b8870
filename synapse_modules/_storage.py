"""A module's own tables in Synapse's database, created once and versioned.

Synapse has no migration framework for modules. Each module lists its
migrations (lists of portable SQL statements); the main process applies the
missing ones in one transaction as soon as it starts, and records the version
in ``lgwan_schema_versions``. Workers never run DDL: their first use waits
(bounded) until the main process has migrated, since in a deployment with
workers the main process may never see a client request itself.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from synapse.module_api import ModuleApi

T = TypeVar("T")

VERSION_TABLE = "lgwan_schema_versions"


class SchemaNotReady(RuntimeError):
    pass


#: How long a worker waits for the main process to create the tables.
WORKER_WAIT_SECONDS = 60.0


class ModuleStore:
    def __init__(self, api: ModuleApi, module: str, migrations: Sequence[Sequence[str]]):
        self._api = api
        self._module = module
        self._migrations = migrations
        self._ready = False
        if api.worker_name is None:
            api.delayed_background_call(0, self._ensure_schema, desc=f"lgwan_{module}_migrate")

    @property
    def version(self) -> int:
        return len(self._migrations)

    async def run(self, desc: str, func: Callable[..., T], *args: Any) -> T:
        """``api.run_db_interaction`` once the module's tables are there."""
        await self._ensure_schema()
        return await self._api.run_db_interaction(f"lgwan_{self._module}_{desc}", func, *args)

    async def _ensure_schema(self) -> None:
        if self._ready:
            return
        if self._api.worker_name is None:
            # Two first uses may race inside the main process; a failed attempt (e.g.
            # PostgreSQL refusing a concurrent CREATE TABLE) is simply tried again.
            for attempt in range(3):
                try:
                    await self._api.run_db_interaction(f"lgwan_{self._module}_schema", self._migrate_txn)
                    break
                except Exception:
                    if attempt == 2:
                        raise
                    await self._api.sleep(0.2)
        else:
            waited = 0.0
            while True:
                try:
                    await self._api.run_db_interaction(f"lgwan_{self._module}_schema", self._migrate_txn)
                    break
                except SchemaNotReady:
                    if waited >= WORKER_WAIT_SECONDS:
                        raise
                    await self._api.sleep(0.5)
                    waited += 0.5
        self._ready = True

    def _migrate_txn(self, txn: Any) -> None:
        if self._api.worker_name is None:
            migrate(txn, self._module, self._migrations)
            return
        try:
            txn.execute(f"SELECT version FROM {VERSION_TABLE} WHERE module = ?", (self._module,))
            row = txn.fetchone()
        except Exception as e:
            raise SchemaNotReady(f"{self._module}: tables not created yet (start the main process first)") from e
        current = row[0] if row else 0
        if current < self.version:
            raise SchemaNotReady(f"{self._module}: schema v{current} < v{self.version} (main process migrates)")


def migrate(txn: Any, module: str, migrations: Sequence[Sequence[str]]) -> None:
    """Apply ``module``'s missing migrations on a cursor taking ``?`` parameters (Synapse's, or
    ``lgwan-chat deploy move-to-postgres`` creating the tables on PostgreSQL): the one way the
    suite's tables are made."""
    txn.execute(f"CREATE TABLE IF NOT EXISTS {VERSION_TABLE} "
                "(module TEXT NOT NULL PRIMARY KEY, version INTEGER NOT NULL)")
    txn.execute(f"SELECT version FROM {VERSION_TABLE} WHERE module = ?", (module,))
    row = txn.fetchone()
    current = row[0] if row else 0
    if current >= len(migrations):
        return
    for statements in migrations[current:]:
        for sql in statements:
            txn.execute(sql)
    txn.execute(
        f"INSERT INTO {VERSION_TABLE} (module, version) VALUES (?, ?) "
        "ON CONFLICT (module) DO UPDATE SET version = excluded.version",
        (module, len(migrations)))
