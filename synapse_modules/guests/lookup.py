"""Is this user a guest account of this module? Asked by the guest rules and by the zones module.

The guests module registers its store for its process when it is loaded; a
process without it has no registered guests. Once a guest, always a guest
(revoking deactivates the account), so a yes is kept; a no is kept briefly.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .store import GuestStore

#: How long a "not a guest" answer is reused (seconds).
NEGATIVE_TTL = 30.0

_stores: dict[str, GuestStore] = {}
_known: dict[str, set[str]] = {}
_not_guest: dict[str, dict[str, float]] = {}


def _key(api: Any) -> str:
    return f"{api.server_name}/{api.worker_name}"


def register(api: Any, store: GuestStore) -> None:
    key = _key(api)
    _stores[key] = store
    _known[key] = set()
    _not_guest[key] = {}


def note_guest(api: Any, user_id: str) -> None:
    key = _key(api)
    if key in _known:
        _known[key].add(user_id)
        _not_guest[key].pop(user_id, None)


async def is_registered_guest(api: Any, user_id: str) -> bool:
    """True when ``user_id`` was made a guest by ``synapse_modules.guests`` on this homeserver."""
    key = _key(api)
    store = _stores.get(key)
    if store is None:
        return False
    if user_id in _known[key]:
        return True
    now = time.monotonic()
    checked = _not_guest[key].get(user_id)
    if checked is not None and now - checked < NEGATIVE_TTL:
        return False
    if await store.is_guest(user_id):
        _known[key].add(user_id)
        _not_guest[key].pop(user_id, None)
        return True
    if len(_not_guest[key]) > 100_000:
        _not_guest[key].clear()
    _not_guest[key][user_id] = now
    return False
