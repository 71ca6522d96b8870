"""Publishing the organisation's stamp pack so that every client family can use it.

At startup the main process
1. uploads each stamp image once (content-addressed: unchanged images keep their mxc URI),
2. keeps a public, world-readable pack room ``#stamps:SERVER`` owned by ``@stamps:SERVER``,
   whose state holds the pack as ``im.ponies.room_emotes`` and ``m.room.image_pack``
   (Cinny, FluffyChat, Nheko),
3. sets every existing user up (backfill): joins them to the pack room, lists the room in their
   ``im.ponies.emote_rooms`` account data, and adds the sticker picker widget to their
   ``m.widgets`` account data (Element Web, Desktop, Android, iOS).

New users are set up after they register (``on_user_registration``, on whichever process), in
the background: the registration does not wait. Synapse makes the joins of one room wait for each
other (a lock per room in each process), so when 2,000 staff sign in for the first time on the same
morning, the 2,000th registration used to return only after 1,999 joins. Each process now sets its
new users up one at a time (``SetUpQueue``): one join in flight per process, registrations at their
own speed. Whatever a process did not get to (a restart with users still queued) is picked up by
the backfill, which also runs periodically on the background-tasks process.

The room stays public and world-readable: Synapse's user directory records a member of such a
room in one row, where a private room's join would add a row per pair of members.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Literal, overload

from synapse.api.errors import SynapseError
from synapse.module_api import ModuleApi

from lgwan_chat.core.routes import STAMPS_PICKER
from synapse_modules._synapse_internals import active_local_users_txn, upload_media

from .config import StampsConfig
from .store import StampStore

logger = logging.getLogger(__name__)

SYSTEM_LOCALPART = "stamps"
PACK_STATE_TYPES = ("im.ponies.room_emotes", "m.room.image_pack")
EMOTE_ROOMS = "im.ponies.emote_rooms"
WIDGETS = "m.widgets"
WIDGET_ID = "lgwan_stamps"
PICKER_PATH = STAMPS_PICKER
#: How often the background-tasks process looks for accounts without the pack (a process restarted
#: with users still queued); the main process also looks at every start.
SWEEP_EVERY_MS = 15 * 60 * 1000


class SetUpQueue:
    """This process's accounts waiting for the pack, set up one at a time in a background process.

    An account queued twice is set up once; one whose set-up fails is left to the next backfill.
    Nothing is kept across a restart: the backfill finds whoever was still waiting."""

    def __init__(self, api: ModuleApi, set_up: Callable[[str], Awaitable[None]]):
        self._api = api
        self._set_up = set_up
        self._waiting: dict[str, None] = {}  # an ordered set: first registered, first served
        self._running = False

    def add(self, user_id: str) -> None:
        self._waiting.setdefault(user_id, None)
        if not self._running:
            self._running = True
            self._api.run_as_background_process("lgwan_stamps_set_up", self._drain)

    async def _drain(self) -> None:
        try:
            while self._waiting:
                user_id = next(iter(self._waiting))
                del self._waiting[user_id]
                try:
                    await self._set_up(user_id)
                except Exception:  # one account's problem must not stop the others
                    logger.warning("Stamp pack not given to %s; the next backfill will", user_id, exc_info=True)
        finally:
            # No await between the loop's last check and here: an add() cannot slip in unseen.
            self._running = False


class PackPublisher:
    def __init__(self, api: ModuleApi, config: StampsConfig, store: StampStore):
        self._api = api
        self._config = config
        self._store = store
        self.system_user = f"@{SYSTEM_LOCALPART}:{api.server_name}"
        self.alias = f"#{SYSTEM_LOCALPART}:{api.server_name}"
        self._mxc: dict[str, str] = {}
        self.queue = SetUpQueue(api, self._set_up_queued)
        self._joinable_room: str | None = None

    @property
    def picker_url(self) -> str:
        base = self._config.picker_base_url or self._api.public_baseurl
        # Element fills in the client's language; the page falls back to Japanese.
        return base.rstrip("/") + PICKER_PATH + "?lang=$org.matrix.msc2873.client_language"

    async def mxc_by_stamp(self) -> dict[str, str]:
        """stamp id -> mxc URI (any process: read from the database once uploaded)."""
        if len(self._mxc) < len(self._config.stamps):
            known = await self._store.media_for([s.image.sha256 for s in self._config.stamps])
            self._mxc = {s.id: known[s.image.sha256] for s in self._config.stamps if s.image.sha256 in known}
        return self._mxc

    def pack_content(self, mxc: dict[str, str]) -> dict:
        images = {}
        for stamp in self._config.stamps:
            if stamp.id in mxc:
                images[stamp.id] = {"url": mxc[stamp.id], "body": stamp.label_ja, "usage": ["sticker"],
                                    "info": {"w": stamp.image.width, "h": stamp.image.height,
                                             "mimetype": "image/png", "size": len(stamp.image.png)}}
        return {"pack": {"display_name": self._config.pack_name_ja, "usage": ["sticker"]}, "images": images}

    async def publish(self) -> None:
        """Main process, at startup. Each step is idempotent: a restart changes only what changed."""
        if await self._api.check_user_exists(self.system_user) is None:
            await self._api.register_user(SYSTEM_LOCALPART, displayname="スタンプ / Stamps")
        await self._upload_images()
        room_id = await self.pack_room(create=True)
        await self._update_pack_state(room_id)
        await self._backfill(room_id)

    async def _upload_images(self) -> None:
        known = await self._store.media_for([s.image.sha256 for s in self._config.stamps])
        for stamp in self._config.stamps:
            if stamp.image.sha256 not in known:
                mxc = await upload_media(self._api, self.system_user, stamp.image.png, "image/png", f"{stamp.id}.png")
                await self._store.remember_media(stamp.image.sha256, mxc)
                known[stamp.image.sha256] = mxc
        self._mxc = {s.id: known[s.image.sha256] for s in self._config.stamps}

    @overload
    async def pack_room(self, create: Literal[True]) -> str: ...
    @overload
    async def pack_room(self, create: bool = False) -> str | None: ...

    async def pack_room(self, create: bool = False) -> str | None:
        try:
            room_id, _ = await self._api.lookup_room_alias(self.alias)
            return room_id
        except SynapseError:
            if not create:
                return None
        room_id, _ = await self._api.create_room(self.system_user, {
            "preset": "public_chat", "room_alias_name": SYSTEM_LOCALPART, "visibility": "private",
            "name": f"{self._config.pack_name_ja} / {self._config.pack_name_en}",
            "topic": "組織のスタンプ集です（変更は管理者が設定ファイルで行います） / The organisation's stamps",
            # Only the pack's owner changes anything; everyone may read it.
            "power_level_content_override": {"events_default": 100, "state_default": 100},
            "initial_state": [{"type": "m.room.history_visibility", "state_key": "",
                               "content": {"history_visibility": "world_readable"}}],
        }, ratelimit=False)
        return room_id

    async def _update_pack_state(self, room_id: str) -> None:
        wanted = self.pack_content(self._mxc)
        state = await self._api.get_room_state(room_id, [(t, "") for t in PACK_STATE_TYPES])
        for event_type in PACK_STATE_TYPES:
            current = state.get((event_type, ""))
            if current is None or dict(current.content) != wanted:
                await self._api.create_and_send_event_into_room({
                    "type": event_type, "room_id": room_id, "sender": self.system_user, "state_key": "",
                    "content": wanted})

    async def _backfill(self, room_id: str) -> None:
        """Queue every active account not yet set up (those already queued keep their place)."""
        done = await self._store.users_set_up(room_id)
        users = await self._api.run_db_interaction("lgwan_stamps_users", active_local_users_txn)
        missing = [u for u in users if u != self.system_user and u not in done]
        if missing:
            logger.info("Giving the stamp pack to %d account(s) that do not have it yet", len(missing))
        for user_id in missing:
            self.queue.add(user_id)

    async def sweep(self) -> None:
        """Periodically, on the background-tasks process: the backfill, once the pack is published."""
        room_id = await self._published_room()
        if room_id is not None:
            await self._backfill(room_id)

    async def _published_room(self) -> str | None:
        """The pack room once joinable. Synapse adds a new room's alias before its first events:
        until the join rule is there a join is refused ("not invited"); the startup backfill,
        which follows the room's creation, sets up whoever registered meanwhile."""
        if self._joinable_room is None:
            room_id = await self.pack_room()
            if room_id is None or not await self._api.get_room_state(room_id, [("m.room.join_rules", "")]):
                return None
            self._joinable_room = room_id
        return self._joinable_room

    async def on_user_registration(self, user_id: str) -> None:
        """A new account gets the pack soon after: queued here, so the registration neither waits
        for the join nor fails with it."""
        if user_id != self.system_user:
            self.queue.add(user_id)

    async def _set_up_queued(self, user_id: str) -> None:
        room_id = await self._published_room()
        if room_id is None:
            logger.info("Stamp pack room still being created; %s gets the pack from the startup backfill", user_id)
            return
        await self.set_up_user(user_id, room_id)

    async def set_up_user(self, user_id: str, room_id: str) -> None:
        state = await self._api.get_room_state(room_id, [("m.room.member", user_id)])
        member = state.get(("m.room.member", user_id))
        if member is None or member.content.get("membership") != "join":
            await self._api.update_room_membership(user_id, user_id, room_id, "join")
        accounts = self._api.account_data_manager
        emote_rooms = dict(await accounts.get_global(user_id, EMOTE_ROOMS) or {})
        rooms = dict(emote_rooms.get("rooms") or {})
        if room_id not in rooms:
            rooms[room_id] = {"": {}}
            await accounts.put_global(user_id, EMOTE_ROOMS, {**emote_rooms, "rooms": rooms})
        widgets = dict(await accounts.get_global(user_id, WIDGETS) or {})
        widget = {"content": {"type": "m.stickerpicker", "url": self.picker_url,
                              "name": f"{self._config.pack_name_ja} / {self._config.pack_name_en}", "data": {}},
                  "sender": user_id, "state_key": WIDGET_ID, "type": "m.widget", "id": WIDGET_ID}
        if widgets.get(WIDGET_ID) != widget:
            widgets[WIDGET_ID] = widget  # other widgets of the user are kept
            await accounts.put_global(user_id, WIDGETS, widgets)
        await self._store.mark_set_up(user_id, room_id)
