"""Bookmarks module: staff bookmark any message by reacting 🔖 (ブックマーク).

Load it in homeserver.yaml (every key: config/modules.yaml, docs/admin-guide)::

    modules:
      - module: synapse_modules.bookmarks.BookmarksModule
        config:
          readers: ["@memo:city.example.lg.jp"]

- ``reactions.py``: a 🔖 reaction by a local user, in any room, adds a bookmark; redacting the
  reaction removes it (``on_new_event``, on one process).
- ``GET /_synapse/client/lgwan/v1/bookmarks``: the caller's bookmarks, newest first, or any
  user's for the accounts in ``readers`` (the memo bot's ``!ブックマーク``); see ``rest/bookmarks.py``.
"""

from __future__ import annotations

from typing import Any

from synapse.module_api import ModuleApi

from .config import BookmarksConfig, parse
from .reactions import ReactionWatcher
from .rest.bookmarks import PATH, BookmarksResource
from .store import BookmarkStore


class BookmarksModule:
    def __init__(self, config: BookmarksConfig, api: ModuleApi):
        store = BookmarkStore(api)
        api.register_web_resource(PATH, BookmarksResource(api, config, store))
        # Every process is told of every new event; only one may write, so that a reaction and its
        # redaction are applied in order. Elsewhere no callback: Synapse then skips loading the
        # room's state for each event just to call modules.
        if api.should_run_background_tasks():
            api.register_third_party_rules_callbacks(on_new_event=ReactionWatcher(api, config, store).on_new_event)

    @staticmethod
    def parse_config(raw: dict[str, Any]) -> BookmarksConfig:
        return parse(raw)
