"""``GET /_synapse/client/lgwan/v1/bookmarks``: a user's bookmarked messages, newest first.

Query: ``limit`` (1-100, default 20), ``from`` (the ``next`` of the previous
page), ``user_id`` (someone else's: only for the accounts in ``readers``).
Each message is shown as its owner may see it now: with its latest edit; no
content once it is redacted, invisible to them, or they have left the room.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from synapse.api.errors import Codes
from synapse.module_api import DirectServeJsonResource, ModuleApi

from lgwan_chat.core.routes import BOOKMARKS
from synapse_modules._errors import error, refusal
from synapse_modules._synapse_internals import events_seen_by

from ..config import BookmarksConfig
from ..store import Bookmark, BookmarkStore

if TYPE_CHECKING:
    from synapse.http.site import SynapseRequest

    from ..reactions import ReactionFeed

PATH = BOOKMARKS
DEFAULT_LIMIT = 20
MAX_LIMIT = 100
#: A Matrix user id, historical localparts (any printable ASCII but ":") included.
USER_ID = re.compile(r"@[!-9;-~]+:[A-Za-z0-9.-]+(:[0-9]{1,5})?")
EVENT_ID = re.compile(r"\$[!-~]{1,255}")
TOKEN_TS = re.compile(r"[0-9]{1,19}")


def encode_token(bookmark: Bookmark) -> str:
    """Opaque and URL-safe: event ids hold ``$``, ``+`` and ``/``."""
    raw = f"{bookmark.ts}:{bookmark.event_id}".encode()
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def decode_token(token: str) -> tuple[int, str] | None:
    try:
        raw = base64.b64decode(token + "=" * (-len(token) % 4), altchars=b"-_", validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    ts, _, event_id = raw.partition(":")
    # Whatever reaches SQL must fit: a BIGINT, and an event id without NUL or spaces.
    if not TOKEN_TS.fullmatch(ts) or int(ts) >= 2**63 or not EVENT_ID.fullmatch(event_id):
        return None
    return int(ts), event_id


def text_of(content: Any) -> tuple[str | None, str | None]:
    """(body, msgtype) of message content; polls carry their text in the extensible-events field."""
    body = content.get("body")
    if not isinstance(body, str):
        body = content.get("org.matrix.msc1767.text")
    msgtype = content.get("msgtype")
    return (body if isinstance(body, str) else None), (msgtype if isinstance(msgtype, str) else None)


class BookmarksResource(DirectServeJsonResource):
    def __init__(self, api: ModuleApi, config: BookmarksConfig, store: BookmarkStore, feed: ReactionFeed):
        super().__init__()
        self._api = api
        self._config = config
        self._store = store
        self._feed = feed

    async def _async_render_GET(self, request: SynapseRequest) -> tuple[int, dict]:
        caller = (await self._api.get_user_by_req(request)).user.to_string()
        limit = self._limit(request)
        before = self._from(request)
        user_id = self._user_id(request) or caller
        if user_id != caller and caller not in self._config.readers:
            raise refusal("not_reader", "bookmarks.not_reader")
        await self._feed.catch_up()  # what was reacted a moment ago is in the answer
        bookmarks, more = await self._store.page(user_id, limit, before)
        answer: dict[str, Any] = {"bookmarks": await self._describe(user_id, bookmarks)}
        if more:
            answer["next"] = encode_token(bookmarks[-1])
        return 200, answer

    async def _describe(self, user_id: str, bookmarks: list[Bookmark]) -> list[dict]:
        rooms: dict[str, str | None] = {}  # joined room -> its name
        for room_id in {b.room_id for b in bookmarks}:
            state = await self._api.get_room_state(room_id, [("m.room.member", user_id), ("m.room.name", "")])
            member = state.get(("m.room.member", user_id))
            if member is not None and member.content.get("membership") == "join":
                name = state.get(("m.room.name", ""))
                name = name.content.get("name") if name is not None else None
                rooms[room_id] = name if isinstance(name, str) and name else None
        wanted = [b.event_id for b in bookmarks if b.room_id in rooms]
        seen = await events_seen_by(self._api, user_id, wanted) if wanted else {}
        return [self._item(b, rooms, seen) for b in bookmarks]

    def _item(self, bookmark: Bookmark, rooms: dict[str, str | None], seen: dict[str, tuple[Any, Any]]) -> dict:
        item: dict[str, Any] = {
            "room_id": bookmark.room_id, "room_name": rooms.get(bookmark.room_id),
            "event_id": bookmark.event_id, "bookmarked_ts": bookmark.ts,
            "sender": None, "origin_server_ts": None, "body": None, "msgtype": None,
            "permalink": (self._config.permalink_base + quote(bookmark.room_id, safe="") + "/"
                          + quote(bookmark.event_id, safe="")),
            "unavailable": None,
        }
        event, edit = seen.get(bookmark.event_id, (None, None))
        if bookmark.room_id not in rooms:
            item["unavailable"] = "not_member"  # nothing of the room after leaving it, not even its name
        elif event is None or event.room_id != bookmark.room_id:
            item["unavailable"] = "not_found"  # unknown, or never visible to them (Synapse answers 404 too)
        else:
            item["sender"], item["origin_server_ts"] = event.sender, event.origin_server_ts
            if event.internal_metadata.is_redacted():
                item["unavailable"] = "redacted"
            else:
                new_content = edit.content.get("m.new_content") if edit is not None else None
                item["body"], item["msgtype"] = text_of(new_content if isinstance(new_content, dict)
                                                        else event.content)
        return item

    @staticmethod
    def _arg(request: SynapseRequest, name: bytes) -> str | None:
        values = request.args.get(name)
        return values[0].decode("utf-8", "replace") if values else None

    def _limit(self, request: SynapseRequest) -> int:
        raw = self._arg(request, b"limit")
        if raw is None:
            return DEFAULT_LIMIT
        if not re.fullmatch(r"[0-9]{1,3}", raw) or not 1 <= int(raw) <= MAX_LIMIT:
            raise error(400, Codes.INVALID_PARAM, "bookmarks.bad_limit", limit=MAX_LIMIT)
        return int(raw)

    def _from(self, request: SynapseRequest) -> tuple[int, str] | None:
        raw = self._arg(request, b"from")
        if raw is None:
            return None
        before = decode_token(raw)
        if before is None:
            raise error(400, Codes.INVALID_PARAM, "bookmarks.bad_from")
        return before

    def _user_id(self, request: SynapseRequest) -> str | None:
        raw = self._arg(request, b"user_id")
        if raw is None:
            return None
        if len(raw) > 255 or not USER_ID.fullmatch(raw):
            raise error(400, Codes.INVALID_PARAM, "bookmarks.bad_user_id")
        return raw
