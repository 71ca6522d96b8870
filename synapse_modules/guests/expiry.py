"""Expiry of guest accounts: told N days before, deactivated at the expiry time.

Runs on the background-tasks process only (``looping_background_call``); the
admin route ``POST /_synapse/client/lgwan/v1/guests/check`` runs the same
check at once.
"""

from __future__ import annotations

import datetime
import logging

from synapse.module_api import ModuleApi

from lgwan_chat.core.guest_dates import JST
from lgwan_chat.core.i18n import both
from synapse_modules._synapse_internals import deactivate_user

from .config import GuestsConfig
from .store import GuestStore, now_ms

logger = logging.getLogger(__name__)

DAY_MS = 86_400_000


def expiry_text(expires_ts: int) -> str:
    """The last valid moment, in Japan time (expiry is the start of the next day)."""
    last = datetime.datetime.fromtimestamp((expires_ts - 1) / 1000, JST)
    return last.strftime("%Y-%m-%d %H:%M")


class ExpiryCheck:
    def __init__(self, api: ModuleApi, config: GuestsConfig, store: GuestStore):
        self._api = api
        self._config = config
        self._store = store
        self._running = False

    def start(self) -> None:
        self._api.looping_background_call(self.run, self._config.check_interval_seconds * 1000,
                                          desc="lgwan_guests_expiry")

    async def run(self) -> dict[str, list[str]]:
        """Tell and deactivate whoever is due; returns who was."""
        if self._running:
            return {"notified": [], "deactivated": []}
        self._running = True
        try:
            to_tell, expired = await self._store.due(now_ms(), self._config.notify_days_before * DAY_MS)
            notified, deactivated = [], []
            for user_id in expired:
                try:
                    await self.deactivate(user_id, "expired")
                    deactivated.append(user_id)
                except Exception:
                    logger.exception("could not deactivate expired guest %s", user_id)
            if self._config.notify_days_before and self._config.notice_sender:
                for user_id in to_tell:
                    try:
                        await self.notify(user_id)
                        notified.append(user_id)
                    except Exception:
                        logger.exception("could not tell guest %s about the expiry", user_id)
            return {"notified": notified, "deactivated": deactivated}
        finally:
            self._running = False

    async def deactivate(self, user_id: str, reason: str) -> None:
        await deactivate_user(self._api, user_id)
        await self._store.mark_deactivated(user_id, reason)
        logger.info("guest %s deactivated (%s)", user_id, reason)

    async def notify(self, user_id: str) -> None:
        """A direct chat from ``notice_sender`` that the guest is joined to, with the notice."""
        guest = await self._store.get(user_id)
        if guest is None:
            return
        sender = self._config.notice_sender
        assert sender is not None
        room_id, _ = await self._api.create_room(sender, {"preset": "trusted_private_chat", "is_direct": True,
                                                          "name": both("guests.notice_room")},
                                                 ratelimit=False)
        await self._store.add_room(user_id, room_id, "notice")
        await self._api.update_room_membership(sender, user_id, room_id, "invite", {"is_direct": True})
        await self._api.update_room_membership(user_id, user_id, room_id, "join")
        await self._api.create_and_send_event_into_room({
            "type": "m.room.message", "room_id": room_id, "sender": sender,
            "content": {"msgtype": "m.notice",
                        "body": both("guests.expiry_notice", sep="\n\n", expires=expiry_text(guest.expires_ts))},
        })
        await self._store.mark_notified(user_id)
        logger.info("guest %s told about the expiry at %s", user_id, guest.expires_ts)
