"""Which pool of Synapse processes serves a request: the one routing table of a deployment.

Taken from Synapse's documentation of its workers (docs/workers.md, "synapse.app.generic_worker"
and "synapse.app.media_repository", Synapse 1.163): what a generic worker can serve goes to the
zone's client workers, media to the media worker, and everything else to the main process
(allow-list: a path Synapse adds later stays on main, where every endpoint exists). The
stream-writer endpoints (typing, to-device, receipts, presence, push rules and account data
writes) stay on main, their stream writer. ``/rooms/.../messages`` stays on main too: Synapse
wants all pagination of a room on one process, and a room is read from both zones.

Patterns match ``METHOD /raw/path`` (no query string), as nginx's map in the sites file sees it.
"""

from __future__ import annotations

from lgwan_chat.nginx import UpstreamRoute

_ANY = "^[A-Z]+ "
_GET = "^GET "
_C = "/_matrix/client/"
_V = "(?:api/v1|r0|v3|unstable)"
_V3 = "(?:r0|v3|unstable)"

#: Served by the zone's client workers (generic workers), any method.
CLIENT_WORKER_PATHS = (
    # Sync
    rf"{_C}(?:r0|v3)/sync$",
    rf"{_C}(?:api/v1|r0|v3)/events$",
    rf"{_C}(?:api/v1|r0|v3)/initialSync$",
    rf"{_C}(?:api/v1|r0|v3)/rooms/[^/]+/initialSync$",
    # Client API
    rf"{_C}{_V}/createRoom$",
    rf"{_C}{_V}/publicRooms$",
    rf"{_C}{_V}/rooms/.*/joined_members$",
    rf"{_C}{_V}/rooms/.*/context/.*$",
    rf"{_C}{_V}/rooms/.*/members$",
    rf"{_C}{_V}/rooms/.*/state$",
    rf"{_C}v1/rooms/.*/hierarchy$",
    rf"{_C}(?:v1|unstable)/rooms/.*/relations/",
    rf"{_C}v1/rooms/.*/threads$",
    rf"{_C}{_V3}/account/3pid$",
    rf"{_C}{_V3}/account/whoami$",
    rf"{_C}{_V3}/account/deactivate$",
    rf"{_C}(?:r0|v3)/delete_devices$",
    rf"{_C}{_V}/devices(?:/|$)",
    rf"{_C}versions$",
    rf"{_C}{_V}/voip/turnServer$",
    rf"{_C}{_V}/rooms/.*/event/",
    rf"{_C}{_V}/joined_rooms$",
    rf"{_C}v1/rooms/.*/timestamp_to_event$",
    rf"{_C}(?:api/v1|r0|v3|unstable/.*)/rooms/.*/aliases",
    rf"{_C}{_V}/search$",
    rf"{_C}{_V3}/user/.*/filter(?:/|$)",
    rf"{_C}{_V}/directory/room/.*$",
    rf"{_C}{_V3}/capabilities$",
    rf"{_C}{_V3}/notifications$",
    # Encryption
    rf"{_C}{_V3}/keys/query$",
    rf"{_C}{_V3}/keys/changes$",
    rf"{_C}{_V3}/keys/claim$",
    rf"{_C}{_V3}/room_keys/",
    rf"{_C}{_V3}/keys/upload",
    rf"{_C}{_V}/keys/device_signing/upload$",
    rf"{_C}{_V}/keys/signatures/upload$",
    # Login
    rf"{_C}{_V}/login$",
    rf"{_C}{_V3}/register$",
    rf"{_C}{_V3}/register/available$",
    rf"{_C}{_V3}/password_policy$",
    # Event sending
    rf"{_C}{_V}/rooms/.*/redact",
    rf"{_C}{_V}/rooms/.*/send",
    rf"{_C}{_V}/rooms/.*/state/",
    rf"{_C}{_V}/rooms/.*/(?:join|invite|leave|ban|unban|kick)$",
    rf"{_C}{_V}/join/",
    rf"{_C}{_V}/knock/",
    rf"{_C}{_V}/profile/",
    rf"{_C}{_V3}/user_directory/search$",
    # The suite's own endpoints (module web resources exist in every process).
    r"/_synapse/client/lgwan/",
    # Federation, inbound (the LGWAN entrance only forwards it).
    r"/_matrix/federation/v1/version$",
    r"/_matrix/federation/v1/event/",
    r"/_matrix/federation/v1/state/",
    r"/_matrix/federation/v1/state_ids/",
    r"/_matrix/federation/v1/backfill/",
    r"/_matrix/federation/v1/get_missing_events/",
    r"/_matrix/federation/v1/publicRooms",
    r"/_matrix/federation/v1/query/",
    r"/_matrix/federation/v1/make_join/",
    r"/_matrix/federation/v1/make_leave/",
    r"/_matrix/federation/(?:v1|v2)/send_join/",
    r"/_matrix/federation/(?:v1|v2)/send_leave/",
    r"/_matrix/federation/v1/make_knock/",
    r"/_matrix/federation/v1/send_knock/",
    r"/_matrix/federation/(?:v1|v2)/invite/",
    r"/_matrix/federation/v1/event_auth/",
    r"/_matrix/federation/v1/timestamp_to_event/",
    r"/_matrix/federation/v1/exchange_third_party_invite/",
    r"/_matrix/federation/v1/user/devices/",
    r"/_matrix/key/v2/query",
    r"/_matrix/federation/v1/hierarchy/",
    r"/_matrix/federation/v1/send/",
)

#: Served by the client workers for GET only (their writes go to main, the stream writer).
CLIENT_WORKER_GET_PATHS = (
    rf"{_C}{_V}/pushrules/",
    rf"{_C}{_V3}/.*/tags",
    rf"{_C}{_V3}/.*/account_data",
    rf"{_C}{_V}/presence/",
)

#: Served by the media worker: every media path of the client, legacy and federation APIs.
MEDIA_WORKER_PATHS = (
    r"/_matrix/media/",
    r"/_matrix/client/v1/media/",
    r"/_matrix/federation/v1/media/",
)


def routes() -> tuple[UpstreamRoute, ...]:
    """The table in the order nginx tries it (media first: ``.../media/`` never goes elsewhere)."""
    return (
        *(UpstreamRoute(_ANY + path, "media") for path in MEDIA_WORKER_PATHS),
        *(UpstreamRoute(_ANY + path, "client") for path in CLIENT_WORKER_PATHS),
        *(UpstreamRoute(_GET + path, "client") for path in CLIENT_WORKER_GET_PATHS),
    )


def pool_of(method: str, raw_path: str) -> str:
    """The pool nginx picks for a request (first matching route, else main): for admins and tests."""
    import re

    key = f"{method} {raw_path}"
    return next((route.pool for route in routes() if re.search(route.pattern, key)), "main")
