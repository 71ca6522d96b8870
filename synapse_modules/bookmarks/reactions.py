"""Bookmarks come and go with 🔖 reactions, read from Synapse's own tables after the fact.

The memo bot only sees rooms it was invited to, so bookmarks are found here, for every room.
Not through the ``on_new_event`` callback: with any such callback registered, Synapse loads the
room's whole state for every new event before calling it, which cost about 3 % of send
throughput in our benchmark (docs/benchmarks.md). Instead a feed reads what was persisted since
its last position (events' ``stream_ordering`` index): once a second on the background-tasks
process, and right before every bookmarks answer on whichever process serves it, so answers are
current and sending a message costs nothing.

Several processes may read the same rows: inserts are idempotent (keyed by the reaction) and a
redaction leaves a tombstone, so a reaction read late never brings its bookmark back. Rows
committed out of order are read again (``synapse_modules/_streams.py``); the position that is
known complete is kept in the database for the next start.
"""

from __future__ import annotations

import time

from synapse.module_api import ModuleApi, make_deferred_yieldable
from twisted.internet import defer

from synapse_modules._metrics import BOOKMARKS_FEED_LAG_SECONDS, BOOKMARKS_FEED_LAST_CATCH_UP
from synapse_modules._streams import Watermark

from . import synapse_tables as tables
from .config import BookmarksConfig, normalize_key
from .store import BookmarkStore

POLL_SECONDS = 1.0


class ReactionFeed:
    def __init__(self, api: ModuleApi, config: BookmarksConfig, store: BookmarkStore):
        self._api = api
        self._keys = config.reaction_keys
        self._store = store
        self._mark: Watermark | None = None
        self._lock = defer.DeferredLock()  # one catch-up at a time in this process

    def start(self) -> None:
        """Keep up in the background (on the background-tasks process only)."""
        self._api.looping_background_call(self._background_catch_up, POLL_SECONDS * 1000,
                                          desc="lgwan_bookmarks_feed")

    async def _background_catch_up(self) -> None:
        await self.catch_up()
        BOOKMARKS_FEED_LAST_CATCH_UP.set(time.time())  # only the loop: a stale value means it stopped

    async def catch_up(self) -> None:
        await make_deferred_yieldable(self._lock.acquire())
        try:
            if self._mark is None:
                kept = await self._store.run("feed_position", tables.feed_start)
                self._mark = Watermark(kept, time.monotonic(), safe=kept)
            now = time.monotonic()
            read_from = self._mark.read_from(now)
            found = await self._store.run("feed_read", tables.reactions_and_redactions_since, read_from)
            bookmarks = []
            for reaction in found.reactions:
                if (self._api.is_mine(reaction.sender) and normalize_key(reaction.key) in self._keys):
                    bookmarks.append(reaction)
            removed = [r.redacts for r in found.redactions if self._api.is_mine(r.sender)]
            self._mark.after_read(now, read_from, found.highest)
            added = await self._store.apply(bookmarks, removed, self._mark.safe)
            stored_ms = time.time() * 1000
            for reaction in added:
                BOOKMARKS_FEED_LAG_SECONDS.observe(max(0.0, stored_ms - reaction.origin_server_ts) / 1000)
        finally:
            self._lock.release()
