"""The zone policy (``policy.py``) at every way an event enters a room.

Synapse 1.163 runs different module callbacks on different paths:

- ``/send``, ``/state``, ``/redact`` and events arriving over federation:
  the spam checker's ``check_event_for_spam`` (per event).
- ``createRoom``: its events (create event, ``initial_state``, presets, power
  levels) are built in ``RoomCreationHandler._send_events_for_new_room`` and
  persisted WITHOUT ``check_event_for_spam``. Before anything is written,
  Synapse calls the third-party-rules ``on_create_room(requester, config,
  is_requester_admin)`` for everyone (server admins included) with the whole
  request body: ``initial_state``, ``creation_content``, ``preset``,
  ``power_level_content_override``. It is checked there.
- Room upgrades: ``on_create_room`` is not called; ``clone_existing_room``
  calls the spam checker's ``user_may_create_room(user_id, {"creation_content",
  "initial_state"})`` for everyone (admins too) with what the new room gets
  (a fixed list of state types and the old room's ``type``). Checked there; the
  zone marker is inherited instead of copied (``room_zone.py``).

The records' state (legal holds, retention) is guarded at the same places
(``records_guard.py``). Another server cannot lift an LGWAN-only marker, nor redact it
(a redacted marker still counts: ``room_zone.py``); when state resolution brings such a change in
anyway, ``state_keeper.py`` puts ours back.

The third-party-rules ``check_event_allowed`` would see all of these, but makes
Synapse load the whole room state for every event: measurably slower (see
docs/benchmarks.md), so it is not used. Power levels are no way in: Synapse
merges ``power_level_content_override`` into ``m.room.power_levels`` only, and
the rules here do not depend on power levels.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from synapse.module_api import NOT_SPAM, ModuleApi

from lgwan_chat.core.records_state import RECORDS_STATE
from synapse_modules._errors import refusal, spam_verdict
from synapse_modules._synapse_internals import current_request_origin, event_device_id

from .config import ZonesConfig
from .policy import PROTECTED_STATE, ROOM_ZONE_STATE, WIDGET_TYPES, EventPolicy, Refusal, is_call_start
from .records_guard import RecordsGuard
from .room_zone import is_lgwan_only, marks_lgwan_only, predecessor_of
from .state_keeper import StateKeeper
from .store import ZoneStore
from .widgets import WidgetUrls
from .zone import zone_of

REDACTION = "m.room.redaction"
REMOTE_MARKER_LIFT = Refusal("zone_marker_remote_lift", "zones.zone_marker_remote_lift")


class EventRules:
    def __init__(self, config: ZonesConfig, store: ZoneStore, api: ModuleApi):
        self._config = config
        self._store = store
        self._api = api
        self._policy = EventPolicy(config, WidgetUrls(config.allowed_widget_urls, api.public_baseurl))
        self.keeper = StateKeeper(api)
        self.records = RecordsGuard(api, self.keeper)

    # --- /send, /state, /redact, federation -----------------------------------------------

    async def check_event_for_spam(self, event: Any) -> Any:
        event_type = event.type
        if event_type in RECORDS_STATE:
            found = await self.records.event_refusal(event)
        elif event_type == REDACTION:
            found = await self._redaction_refusal(event)
        elif event_type == ROOM_ZONE_STATE and await self._lifts_marker_remotely(event):
            found = REMOTE_MARKER_LIFT
        else:
            found = await self._refusal(event_type, event.content, event.room_id, lambda: self._sender_zone(event))
        return NOT_SPAM if found is None else spam_verdict(found.reason, found.message_key)

    async def _refusal(self, event_type: str, content: Mapping[str, Any], room_id: str | None,
                       zone: Any, lgwan_only: bool | None = None) -> Refusal | None:
        # Types on the allow-list (messages, state ...) pay for nothing: only possible calls and
        # widgets depend on the room's zone and the sender's (the zone passed for the others is never read).
        if not (is_call_start(event_type, content) or event_type in WIDGET_TYPES):
            return self._policy.refusal(event_type, content, None, False)
        if lgwan_only is None:
            lgwan_only = self._config.lgwan_only_rooms and await is_lgwan_only(self._api, room_id)
        return self._policy.refusal(event_type, content, await zone(), lgwan_only)

    async def _lifts_marker_remotely(self, event: Any) -> bool:
        """Another server's marker that is not LGWAN-only, in a room that is: its members' calls would
        reach ours (its own server applies its own zones to its users, not to ours)."""
        return (not self._api.is_mine(event.sender) and event.get_state_key() == ""
                and not marks_lgwan_only(event.content) and await is_lgwan_only(self._api, event.room_id))

    async def _redaction_refusal(self, event: Any) -> Refusal | None:
        """Refuse redacting the state the policy reads (whoever sends it: redaction needs no state power)."""
        target = getattr(event, "redacts", None) or event.content.get("redacts")
        state = await self._api.get_room_state(event.room_id, [(t, "") for t in PROTECTED_STATE])
        if any(e.event_id == target for e in state.values()):
            return Refusal("protected_state_redaction", "zones.protected_state_redaction")
        return await self.records.redaction_refusal(event.room_id, target)

    async def _sender_zone(self, event: Any) -> str | None:
        if not self._api.is_mine(event.sender):
            return "remote"  # another homeserver's user: its own server applies its zones
        return await self._requester_zone(event.sender, event_device_id(event))

    async def _requester_zone(self, user_id: str, device_id: str | None) -> str | None:
        """A device's bound zone; for a token without a device (admin-issued, application
        service) the zone of the entrance (listener) the request came through; None if unknown."""
        if device_id is not None:
            bound = await self._store.device_zone(user_id, device_id)
            if bound is not None:
                return bound
        origin = current_request_origin()
        if origin is None or origin.requester != user_id:
            return None  # not this user's client request (server-side work): no zone, refused like LGWAN
        return zone_of(origin, self._config)

    # --- createRoom and room upgrades -----------------------------------------------------

    async def check_room_creation(self, requester: Any, request_content: Mapping[str, Any],
                                  is_requester_admin: bool) -> None:
        """``on_create_room``: everything a createRoom request puts into the new room, before any
        of its events exists (a refusal later would leave a half-created room behind)."""
        user_id = requester.user.to_string()
        found = await self._creation_refusal(user_id, request_content,
                                             lambda: self._requester_zone(user_id, requester.device_id))
        if found is not None:
            raise refusal(found.reason, found.message_key)

    async def user_may_create_room(self, user_id: str, request_content: Mapping[str, Any]) -> Any:
        """Room upgrades (and createRoom again, harmlessly): the new room's type and copied state."""
        found = await self._creation_refusal(user_id, request_content, lambda: self._requester_zone(user_id, None))
        return NOT_SPAM if found is None else spam_verdict(found.reason, found.message_key)

    async def _creation_refusal(self, user_id: str, content: Mapping[str, Any], zone: Any) -> Refusal | None:
        creation = content.get("creation_content")
        creation = creation if isinstance(creation, Mapping) else {}
        found = self._policy.room_type_refusal(creation.get("type"))
        if found is not None:
            return found
        items = [i for i in content.get("initial_state") or [] if isinstance(i, Mapping)]
        found = await self.records.creation_refusal(user_id, items, predecessor_of(creation))
        if found is not None:
            return found
        contents = [(str(i.get("type")), c if isinstance(c := i.get("content"), Mapping) else {}) for i in items]
        lgwan_only = self._config.lgwan_only_rooms and (
            any(i.get("type") == ROOM_ZONE_STATE and i.get("state_key", "") == "" and marks_lgwan_only(i.get("content"))
                for i in items)
            or await is_lgwan_only(self._api, predecessor_of(creation)))
        for event_type, event_content in contents:
            found = await self._refusal(event_type, event_content, None, zone, lgwan_only)
            if found is not None:
                return found
        return None
