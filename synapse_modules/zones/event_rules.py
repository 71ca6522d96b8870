"""Rules on events: calls and encryption.

Run in Synapse's ``check_event_for_spam``, which sees every event a local
user sends (``/send``, ``/state``) and every event arriving over federation.
Every event pays for this check, so each rule looks at the event type first
and does nothing more for ordinary messages. (The third-party-rules
``check_event_allowed`` would also see a new room's events, but makes Synapse
load the whole room state for every event: measurably slower, see
docs/benchmarks.md. A new room's ``initial_state`` is checked in
``on_create_room`` instead.)
"""

from __future__ import annotations

from typing import Any, Mapping

from synapse.module_api import NOT_SPAM, ModuleApi

from synapse_modules._errors import refusal, spam_verdict
from synapse_modules._synapse_internals import event_device_id

from .config import ZonesConfig
from .store import ZoneStore

ENCRYPTION = "m.room.encryption"
#: A room whose state has this event with ``{"lgwan_only": true}`` allows no call at all.
ROOM_ZONE_STATE = "jp.lgwan.room.zone"

# VoIP (m.call.*), MatrixRTC / Element Call membership and ring notifications, stable and unstable.
CALL_TYPE_PREFIXES = ("m.call.", "org.matrix.call.", "org.matrix.msc3401.call", "m.rtc.",
                      "org.matrix.msc4143.rtc.", "org.matrix.msc4075.")
# Ending or declining a call is always allowed: only starting or joining one is refused.
CALL_TEARDOWN_TYPES = frozenset({"m.call.hangup", "m.call.reject"})
WIDGET_TYPES = frozenset({"im.vector.modular.widgets", "m.widget"})
CALL_WIDGET_KINDS = frozenset({"jitsi", "m.jitsi", "io.element.call", "m.call"})
CALL_WIDGET_URL_MARKS = ("jitsi", "element-call", "call.element.io")


def is_call_start(event_type: str, content: Mapping[str, Any]) -> bool:
    """Does this event start or join a call (as opposed to ending one, or being unrelated)?"""
    if event_type in WIDGET_TYPES:
        kind = str(content.get("type", "")).lower()
        url = str(content.get("url", "")).lower()
        return bool(content) and (kind in CALL_WIDGET_KINDS or any(m in url for m in CALL_WIDGET_URL_MARKS))
    if not event_type.startswith(CALL_TYPE_PREFIXES) or event_type in CALL_TEARDOWN_TYPES:
        return False
    # Leaving a MatrixRTC call is an empty membership ({} or {"memberships": []}).
    return bool(content) and content.get("memberships", True) != []


class EventRules:
    def __init__(self, config: ZonesConfig, store: ZoneStore, api: ModuleApi):
        self._config = config
        self._store = store
        self._api = api

    async def check_event_for_spam(self, event: Any) -> Any:
        event_type = event.type
        if event_type == ENCRYPTION and not self._config.allow_encryption:
            return spam_verdict("encryption_disabled", "zones.encryption_disabled")
        if is_call_start(event_type, event.content):
            if self._config.lgwan_only_rooms and await self._is_lgwan_only(event.room_id):
                return spam_verdict("call_in_lgwan_only_room", "zones.call_in_lgwan_only_room")
            if self._config.refuse_calls_from_lgwan and await self._sender_zone(event) == "lgwan":
                return spam_verdict("call_from_lgwan", "zones.call_from_lgwan")
        return NOT_SPAM

    async def _is_lgwan_only(self, room_id: str) -> bool:
        state = await self._api.get_room_state(room_id, [(ROOM_ZONE_STATE, "")])
        marker = state.get((ROOM_ZONE_STATE, ""))
        return marker is not None and marker.content.get("lgwan_only") is True

    async def check_room_creation(self, requester: Any, request_content: Mapping[str, Any],
                                  is_requester_admin: bool) -> None:
        """``on_create_room``: refuse an encrypted room before any of its events exists.

        (The event rule alone would leave a half-created room behind: Synapse
        persists the first events of a new room before ``initial_state``.)
        """
        if not self._config.allow_encryption:
            for item in request_content.get("initial_state") or []:
                if isinstance(item, dict) and item.get("type") == ENCRYPTION:
                    raise refusal("encryption_disabled", "zones.encryption_disabled")

    async def _sender_zone(self, event: Any) -> str | None:
        device_id = event_device_id(event)
        if device_id is None:
            return None  # sent by the server itself or through the admin API
        return await self._store.device_zone(event.sender, device_id)
