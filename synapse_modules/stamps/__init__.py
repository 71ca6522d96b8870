"""Stamps module: acknowledgement stamps (who reacted 了解, 確認しました, ... to a message).

Load it in homeserver.yaml::

    modules:
      - module: synapse_modules.stamps.StampsModule
        config: {}

Route (members of the room only)::

    GET /_synapse/client/lgwan/v1/rooms/{roomId}/stamps/{eventId}

The organisation's stamp pack (sticker picker for Element, image packs for
Cinny / FluffyChat / Nheko) is not built yet.
"""

from __future__ import annotations

from typing import Any

from synapse.module_api import ModuleApi

from synapse_modules._rest import room_router

from .config import StampsConfig, parse
from .rest.acknowledgements import AcknowledgementRoutes

ROUTE = r"/(?P<room_id>[^/]+)/stamps/(?P<event_id>[^/]+)"


class StampsModule:
    def __init__(self, config: StampsConfig, api: ModuleApi):
        room_router(api).add("GET", ROUTE, AcknowledgementRoutes(api, config).get)

    @staticmethod
    def parse_config(raw: dict[str, Any]) -> StampsConfig:
        return parse(raw)
