"""Every suite module that keeps tables in Synapse's database, with its own migrations.

Read by ``lgwan-chat deploy move-to-postgres`` to create the tables on PostgreSQL and find which
ones to copy; ``tests/test_deploy_migrate.py`` fails when a module makes a table not listed here
(it would be lost when a deployment moves from SQLite to PostgreSQL).
"""

from __future__ import annotations

from collections.abc import Sequence

from synapse_modules.bookmarks.store import MIGRATIONS as BOOKMARKS
from synapse_modules.guests.store import MIGRATIONS as GUESTS
from synapse_modules.stamps.store import MIGRATIONS as STAMPS
from synapse_modules.zones.store import MIGRATIONS as ZONES

#: module name (as in ``lgwan_schema_versions``, given to its ``ModuleStore``) -> its migrations
MODULE_SCHEMAS: dict[str, Sequence[Sequence[str]]] = {
    "zones": ZONES,
    "stamps": STAMPS,
    "bookmarks": BOOKMARKS,
    "guests": GUESTS,
}
