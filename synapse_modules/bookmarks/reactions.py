"""Bookmarks come and go with 🔖 reactions, seen in every room through ``on_new_event``.

The memo bot only sees rooms it was invited to; this callback sees every event
of the homeserver after it is persisted. It is registered on one process only
(the background-tasks instance: every process is told of every event, and a
process without the callback pays nothing). Each 🔖 reaction costs one indexed
insert, each redaction by a local user one indexed delete; other events return
at once.
"""

from __future__ import annotations

import contextlib
from collections import OrderedDict
from typing import Any, AsyncIterator

from twisted.internet import defer

from synapse.module_api import ModuleApi, make_deferred_yieldable

from .config import BookmarksConfig, normalize_key
from .store import BookmarkStore

REMEMBERED_REDACTIONS = 10_000


class ReactionWatcher:
    def __init__(self, api: ModuleApi, config: BookmarksConfig, store: BookmarkStore):
        self._api = api
        self._keys = config.reaction_keys
        self._store = store
        # Synapse calls this from one background task per sent event, so a quick "bookmark, then
        # take it back" may reach the redaction first. Redactions are remembered (bounded) and
        # writes done one at a time, so a late reaction never brings its bookmark back.
        self._redacted: OrderedDict[str, None] = OrderedDict()
        self._lock = defer.DeferredLock()

    async def on_new_event(self, event: Any, state: Any) -> None:
        if event.type == "m.reaction":
            target = self._bookmarked(event)
            if target is None:
                return
            async with self._one_write_at_a_time():
                if event.event_id not in self._redacted:
                    await self._store.add(event.event_id, event.sender, event.room_id, target,
                                          event.origin_server_ts)
        elif event.type == "m.room.redaction" and isinstance(event.redacts, str) and self._api.is_mine(event.sender):
            # A local redaction is in force as soon as it exists (Synapse checked the sender may
            # redact). Another server's redaction of our user's reaction is not trusted to remove it.
            self._redacted[event.redacts] = None
            if len(self._redacted) > REMEMBERED_REDACTIONS:
                self._redacted.popitem(last=False)
            async with self._one_write_at_a_time():
                await self._store.remove(event.redacts)

    def _bookmarked(self, reaction: Any) -> str | None:
        """The event a local user's bookmarking reaction points at, else None."""
        relation = reaction.content.get("m.relates_to")
        if not isinstance(relation, dict) or relation.get("rel_type") != "m.annotation":
            return None
        key, target = relation.get("key"), relation.get("event_id")
        if not isinstance(key, str) or normalize_key(key) not in self._keys or not isinstance(target, str):
            return None
        return target if self._api.is_mine(reaction.sender) else None

    @contextlib.asynccontextmanager
    async def _one_write_at_a_time(self) -> AsyncIterator[None]:
        await make_deferred_yieldable(self._lock.acquire())
        try:
            yield
        finally:
            self._lock.release()
