"""Read status module: who has read a message and who has not (既読者・未読者).

Load it in homeserver.yaml::

    modules:
      - module: synapse_modules.read_status.ReadStatusModule
        config: {}

Routes (members of the room only; see ``rest/read_status.py``)::

    GET  /_synapse/client/lgwan/v1/rooms/{roomId}/read_status/{eventId}
    POST /_synapse/client/lgwan/v1/rooms/{roomId}/read_status      {"event_ids": [...]}
    GET  /_synapse/client/lgwan/v1/rooms/{roomId}/read_status?limit=50

The semantics (receipts on later events, threads, private receipts, members
who joined or left) are in ``status.py``. Nothing runs when events or
receipts are sent: the answer is computed from Synapse's tables on request, with each room's
unchanged part kept in memory (``room_cache.py``).
"""

from __future__ import annotations

from typing import Any

from synapse.module_api import ModuleApi

from synapse_modules._rest import room_router

from .config import ReadStatusConfig, parse
from .rest.read_status import ReadStatusRoutes
from .room_cache import ROOM_READS

EVENT_ROUTE = r"/(?P<room_id>[^/]+)/read_status/(?P<event_id>[^/]+)"
BATCH_ROUTE = r"/(?P<room_id>[^/]+)/read_status"


class ReadStatusModule:
    def __init__(self, config: ReadStatusConfig, api: ModuleApi):
        ROOM_READS.max_rooms = config.cache_rooms
        routes = ReadStatusRoutes(api, config)
        router = room_router(api)
        router.add("GET", EVENT_ROUTE, routes.one)
        router.add("GET", BATCH_ROUTE, routes.many)
        router.add("POST", BATCH_ROUTE, routes.many)

    @staticmethod
    def parse_config(raw: dict[str, Any]) -> ReadStatusConfig:
        return parse(raw)
