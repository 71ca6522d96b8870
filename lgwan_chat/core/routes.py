"""The suite's own HTTP routes (served by its Synapse modules, called by its bots and tools).

One constant per route so a module and its callers cannot drift apart; ``room_route`` builds
the per-room paths that ``synapse_modules/_rest.py`` serves.
"""

from __future__ import annotations

from urllib.parse import quote

#: every route of the suite's modules starts here
PREFIX = "/_synapse/client/lgwan/v1"

ZONE = PREFIX + "/zone"
MEDIA_GATE = PREFIX + "/media_gate"
MEDIA_PENDING = PREFIX + "/media_pending"
#: ``MEDIA_STATUS/{serverName}/{mediaId}``: see ``media_status_route``
MEDIA_STATUS = PREFIX + "/media_status"
BOOKMARKS = PREFIX + "/bookmarks"
#: guest accounts: ``GUESTS``, ``GUESTS/create``, ``GUESTS/check``, ``GUESTS/{userId}``
GUESTS_PATH = PREFIX + "/guests"
STAMPS = PREFIX + "/stamps"
STAMPS_PICKER = STAMPS + "/picker"
#: ``ROOMS/{roomId}/...``: see ``room_route``
ROOMS = PREFIX + "/rooms"
#: approved devices (端末認証): the caller's device's state (allowed while pending)
DEVICE_STATUS = PREFIX + "/device_status"
#: the caller's devices waiting for approval; approve or reject one (from an approved LGWAN device)
DEVICE_APPROVALS = PREFIX + "/device_approvals"
#: server admins: any user's devices; approve or revoke one (lgwan-chat device)
DEVICE_APPROVALS_ADMIN = PREFIX + "/device_approvals_admin"
#: bots (device_approval_bots) carrying a user's approval command from their approved LGWAN device
DEVICE_APPROVALS_BOT = PREFIX + "/device_approvals_bot"


def room_route(room_id: str, *parts: str) -> str:
    """``ROOMS/{roomId}/part/...``, the room ID and each part quoted as one path segment."""
    return "/".join([ROOMS, quote(room_id, safe=""), *(quote(p, safe="") for p in parts)])


def media_status_route(server_name: str, media_id: str) -> str:
    """``MEDIA_STATUS/{serverName}/{mediaId}``, each part quoted as one path segment."""
    return f"{MEDIA_STATUS}/{quote(server_name, safe='')}/{quote(media_id, safe='')}"
