"""What a guest may not do, enforced in Synapse's spam-checker and third-party-rules callbacks."""

from __future__ import annotations

import logging
from typing import Any, Literal

from synapse.api.errors import Codes
from synapse.module_api import ModuleApi, ProfileInfo, UserID, UserProfile

from synapse_modules._errors import spam_verdict

from .config import GuestsConfig
from .lookup import is_registered_guest
from .store import GuestStore

logger = logging.getLogger(__name__)

NOT_SPAM: Literal["NOT_SPAM"] = "NOT_SPAM"
#: Room state marking an organisation-internal room (shared with the federation rules).
INTERNAL_MARKER = ("jp.lgwan.room.internal", "")


async def room_is_internal(api: ModuleApi, room_id: str) -> bool:
    state = await api.get_room_state(room_id, [INTERNAL_MARKER])
    marker = state.get(INTERNAL_MARKER)
    return marker is not None and marker.content.get("internal") is True


def with_suffix(name: str, suffix: str) -> str:
    name = name.strip()
    return name if name.endswith(suffix) else f"{name}{suffix}"


class GuestRules:
    def __init__(self, api: ModuleApi, config: GuestsConfig, store: GuestStore):
        self._api = api
        self._config = config
        self._store = store

    async def _guest(self, user_id: str) -> bool:
        return self._api.is_mine(user_id) and await is_registered_guest(self._api, user_id)

    async def user_may_create_room(self, user_id: str, room_config: Any) -> Any:
        if await self._guest(user_id):
            return spam_verdict("guest_create_room", "guests.no_create_room")
        return NOT_SPAM

    async def user_may_join_room(self, user_id: str, room_id: str, is_invited: bool) -> Any:
        if not await self._guest(user_id):
            return NOT_SPAM
        state = await self._api.get_room_state(room_id, [("m.room.member", user_id)])
        member = state.get(("m.room.member", user_id))
        if member is not None and member.membership == "join":
            return NOT_SPAM  # already in: a profile change re-sends the join
        if not await self._store.may_join(user_id, room_id):
            return spam_verdict("guest_room_not_allowed", "guests.room_not_allowed")
        if await room_is_internal(self._api, room_id):
            return spam_verdict("guest_internal_room", "guests.internal_room")
        return NOT_SPAM

    async def user_may_invite(self, inviter: str, invitee: str, room_id: str) -> Any:
        if not await self._guest(invitee):
            return NOT_SPAM
        if await room_is_internal(self._api, room_id):
            return spam_verdict("guest_internal_room", "guests.invite_internal_room")
        if not await self._store.may_join(invitee, room_id):
            return spam_verdict("guest_room_not_allowed", "guests.invite_room_not_allowed")
        return NOT_SPAM

    async def check_username_for_spam(self, user_profile: UserProfile, requester_id: str | None = None) -> bool:
        """User directory: a guest finds only people they share a room with (True hides a result)."""
        if requester_id is None or not await self._guest(requester_id):
            return False
        found = user_profile["user_id"]
        if found == requester_id:
            return False
        for room_id in await self._store.rooms_of(requester_id):
            state = await self._api.get_room_state(room_id, [("m.room.member", found),
                                                             ("m.room.member", requester_id)])
            theirs, mine = state.get(("m.room.member", found)), state.get(("m.room.member", requester_id))
            if (theirs is not None and mine is not None and theirs.membership == "join"
                    and mine.membership == "join"):
                return False
        return True

    async def user_may_send_state_event(self, user_id: str, room_id: str, event_type: str, state_key: str,
                                        content: dict) -> Any:
        """A guest's own room nickname keeps the suffix too (``PUT /rooms/{id}/state/m.room.member/{me}``).

        Synapse takes only an errcode from this callback: the client sees its own
        English text ("You are not permitted to send the state event").
        """
        if event_type != "m.room.member" or state_key != user_id or not await self._guest(user_id):
            return NOT_SPAM
        name = content.get("displayname")
        if isinstance(name, str) and name.strip() and not name.strip().endswith(self._config.display_suffix):
            logger.info("guest %s: room nickname %r without the suffix refused in %s", user_id, name, room_id)
            return Codes.FORBIDDEN
        return NOT_SPAM

    async def on_profile_update(self, user_id: str, profile: ProfileInfo, by_admin: bool,
                                deactivation: bool) -> None:
        """No callback can refuse a global display name change: the suffix is put back at once."""
        if deactivation or not await self._guest(user_id):
            return
        name = profile.display_name or ""
        if name.strip().endswith(self._config.display_suffix):
            return
        if not name.strip():
            guest = await self._store.get(user_id)
            name = guest.display_name if guest else user_id
        fixed = with_suffix(name, self._config.display_suffix)
        logger.info("guest %s changed the display name to %r: set back to %r", user_id, name, fixed)
        # After Synapse has finished this change (its propagation into rooms included): a
        # change made from inside this callback would race with the one being made.
        self._api.delayed_background_call(0, self._api.set_displayname, UserID.from_string(user_id), fixed,
                                          desc="lgwan_guests_display_suffix")

