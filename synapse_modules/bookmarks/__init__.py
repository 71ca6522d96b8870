"""Bookmarks module: staff bookmark any message by reacting 🔖 (ブックマーク).

Load it in homeserver.yaml (every key: config/modules.yaml, docs/admin-guide)::

    modules:
      - module: synapse_modules.bookmarks.BookmarksModule
        config:
          readers: ["@memo:city.example.lg.jp"]

- ``reactions.py``: a 🔖 reaction by a local user, in any room, adds a bookmark; redacting the
  reaction removes it (read from Synapse's tables: nothing is added to sending events).
- ``GET /_synapse/client/lgwan/v1/bookmarks``: the caller's bookmarks, newest first, or any
  user's for the accounts in ``readers`` (the memo bot's ``!ブックマーク``); see ``rest/bookmarks.py``.
"""

from __future__ import annotations

from typing import Any

from synapse.module_api import ModuleApi

from .config import BookmarksConfig, parse
from .reactions import ReactionFeed
from .rest.bookmarks import PATH, BookmarksResource
from .store import BookmarkStore


class BookmarksModule:
    def __init__(self, config: BookmarksConfig, api: ModuleApi):
        store = BookmarkStore(api)
        feed = ReactionFeed(api, config, store)
        api.register_web_resource(PATH, BookmarksResource(api, config, store, feed))
        if api.should_run_background_tasks():
            feed.start()

    @staticmethod
    def parse_config(raw: dict[str, Any]) -> BookmarksConfig:
        return parse(raw)
