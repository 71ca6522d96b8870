"""Rules on events sent by local users: calls and encryption.

Run in Synapse's ``check_event_allowed`` (third-party rules), which sees every
event a local user creates, including the events of a new room, together with
the room state. Every event pays for this check, so each rule looks at the
event type first and does nothing more for ordinary messages.
"""

from __future__ import annotations

from typing import Any, Mapping

from synapse_modules._errors import refusal
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
    def __init__(self, config: ZonesConfig, store: ZoneStore, server_name: str):
        self._config = config
        self._store = store
        self._server_name = server_name

    async def check_event_allowed(self, event: Any, state: Mapping[tuple[str, str], Any]) -> tuple[bool, None]:
        event_type = event.type
        if event_type == ENCRYPTION and not self._config.allow_encryption:
            raise refusal("encryption_disabled", "zones.encryption_disabled")
        if is_call_start(event_type, event.content):
            marker = state.get((ROOM_ZONE_STATE, ""))
            if self._config.lgwan_only_rooms and marker is not None and marker.content.get("lgwan_only") is True:
                raise refusal("call_in_lgwan_only_room", "zones.call_in_lgwan_only_room")
            if self._config.refuse_calls_from_lgwan and await self._sender_zone(event) == "lgwan":
                raise refusal("call_from_lgwan", "zones.call_from_lgwan")
        return True, None

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
