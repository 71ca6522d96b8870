"""What the zone policy refuses, for one event, whichever way it enters a room.

One function decides for an event sent with ``/send`` or ``/state``, for each
``initial_state`` item of ``createRoom``, for what a room upgrade copies and for
events arriving over federation (``event_rules.py`` feeds it from each entry
point). It knows the sender's zone and whether the room is LGWAN-only.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from .config import ZonesConfig
from .widgets import WidgetUrls

ENCRYPTION = "m.room.encryption"
ENCRYPTED = "m.room.encrypted"
#: A room whose state has this event with ``{"lgwan_only": true}`` allows no call at all.
ROOM_ZONE_STATE = "jp.lgwan.room.zone"
CREATE = "m.room.create"
#: State the policy reads: never redacted (a redacted marker loses ``lgwan_only``; a
#: redacted create event loses ``predecessor`` and ``type`` in older room versions).
PROTECTED_STATE = frozenset({ROOM_ZONE_STATE, CREATE})

# VoIP (m.call.*), MatrixRTC / Element Call membership and ring notifications, stable and unstable:
# known call types only name the refusal ("call_..."); what is refused is every type not below.
CALL_TYPE_PREFIXES = ("m.call.", "org.matrix.call.", "org.matrix.msc3401.call", "m.rtc.",
                      "org.matrix.msc4143.rtc.", "org.matrix.msc4075.", "io.element.call.")
# Ending or declining a call is always allowed: only starting or joining one is refused.
CALL_TEARDOWN_TYPES = frozenset({"m.call.hangup", "m.call.reject"})
#: MatrixRTC memberships: leaving a call is an empty one ({} or {"memberships": []}).
CALL_MEMBERSHIP_TYPES = frozenset({"m.call.member", "org.matrix.msc3401.call.member", "m.rtc.member",
                                   "org.matrix.msc4143.rtc.member"})
#: Event types known NOT to start or join a call (an allow-list: a type not here, e.g. the
#: call signalling of a future MSC or another client's, counts as a call start). Messages,
#: reactions, polls, location, in-room device verification, the spec's room state, stamps
#: (image packs), Element's widget layout and bot list, retention; widgets have their own rule (below).
SAFE_EVENT_TYPES = frozenset({
    "m.room.message", "m.sticker", "m.reaction", "m.room.redaction", "m.room.encrypted",
    "m.poll.start", "m.poll.response", "m.poll.end",
    "org.matrix.msc3381.poll.start", "org.matrix.msc3381.poll.response", "org.matrix.msc3381.poll.end",
    "m.location", "org.matrix.msc3488.location",
    "m.beacon", "org.matrix.msc3672.beacon", "m.beacon_info", "org.matrix.msc3672.beacon_info",
    "m.key.verification.ready", "m.key.verification.start", "m.key.verification.accept",
    "m.key.verification.key", "m.key.verification.mac", "m.key.verification.done", "m.key.verification.cancel",
    "m.room.create", "m.room.member", "m.room.name", "m.room.topic", "m.room.avatar", "m.room.canonical_alias",
    "m.room.aliases", "m.room.join_rules", "m.room.guest_access", "m.room.history_visibility",
    "m.room.power_levels", "m.room.pinned_events", "m.room.server_acl", "m.room.tombstone", "m.room.encryption",
    "m.room.third_party_invite", "m.space.child", "m.space.parent",
    "m.room.retention",  # message retention (Synapse, MSC1763), set by `lgwan-chat records`
    "im.ponies.room_emotes", "m.room.image_pack", "io.element.widgets.layout", "io.element.functional_members",
})
#: The suite's own event types (its namespace).
SAFE_EVENT_TYPE_PREFIXES = ("jp.lgwan.",)
WIDGET_TYPES = frozenset({"im.vector.modular.widgets", "m.widget"})
#: Widget kinds that are calls (refused as calls, whatever their URL).
CALL_WIDGET_KINDS = frozenset({"jitsi", "m.jitsi", "io.element.call", "m.call", "org.matrix.msc3401.call"})
#: Room types (``creation_content.type``) known to be safe; any other (video rooms
#: ``io.element.video`` / ``org.matrix.msc3417.call``, unknown ones) is refused.
SAFE_ROOM_TYPES = frozenset({None, "m.space"})


@attrs.frozen
class Refusal:
    reason: str
    message_key: str


def _refusal(reason: str) -> Refusal:
    return Refusal(reason, "zones." + reason)


def is_call_start(event_type: str, content: Mapping[str, Any]) -> bool:
    """May this event start or join a call (as opposed to ending one, or being known not to)?"""
    if event_type in WIDGET_TYPES:
        return bool(content) and str(content.get("type", "")).lower() in CALL_WIDGET_KINDS
    if event_type in SAFE_EVENT_TYPES or event_type.startswith(SAFE_EVENT_TYPE_PREFIXES):
        return False
    if event_type in CALL_TEARDOWN_TYPES:
        return False
    # Leaving a MatrixRTC call is an empty membership ({} or {"memberships": []}).
    return not (event_type in CALL_MEMBERSHIP_TYPES and (not content or content.get("memberships", True) == []))


def is_known_call_type(event_type: str) -> bool:
    return event_type.startswith(CALL_TYPE_PREFIXES)


class EventPolicy:
    def __init__(self, config: ZonesConfig, widget_urls: WidgetUrls):
        self._config = config
        self._widget_urls = widget_urls

    def refusal(self, event_type: str, content: Mapping[str, Any], zone: str | None,
                lgwan_only_room: bool) -> Refusal | None:
        """Why this event is refused, or None.

        ``zone``: the sender's zone ("lgwan", "internet", "remote" for another
        homeserver's user, None when it cannot be determined: refused like LGWAN).
        """
        if not self._config.allow_encryption and event_type in (ENCRYPTION, ENCRYPTED):
            return _refusal("encryption_disabled")
        lgwan_only = lgwan_only_room and self._config.lgwan_only_rooms
        if is_call_start(event_type, content):
            # A type not known either way is refused like a call, with its own reason.
            unknown = event_type not in WIDGET_TYPES and not is_known_call_type(event_type)
            if lgwan_only:
                return _refusal("event_type_in_lgwan_only_room" if unknown else "call_in_lgwan_only_room")
            if self._config.refuse_calls_from_lgwan and zone in ("lgwan", None):
                return _refusal("event_type_from_lgwan" if unknown else "call_from_lgwan")
            return None
        # An LGWAN device (or anyone, in an LGWAN-only room) adds only the admin's widgets.
        if (event_type in WIDGET_TYPES and content and (zone in ("lgwan", None) or lgwan_only)
                and not self._widget_urls.allows(content.get("url"))):
            return _refusal("widget_not_allowed")
        return None

    @staticmethod
    def room_type_refusal(room_type: Any) -> Refusal | None:
        return None if room_type in SAFE_ROOM_TYPES else _refusal("room_type_not_allowed")
