"""LGWAN / internet zone policy module.

Load it in homeserver.yaml::

    modules:
      - module: synapse_modules.zones.ZonePolicyModule
        config: {}   # see config/modules.yaml for every key

What it does so far: decides the zone of each client request from the
listener it arrived on (or the client IP) and tells a client its zone at
``GET /_synapse/client/lgwan/v1/zone``.
"""

from __future__ import annotations

from typing import Any

from synapse.module_api import ModuleApi

from .config import ZonesConfig, parse
from .rest import zone as zone_rest


class ZonePolicyModule:
    def __init__(self, config: ZonesConfig, api: ModuleApi):
        self._config = config
        self._api = api
        api.register_web_resource(zone_rest.PATH, zone_rest.ZoneResource(api, config))

    @staticmethod
    def parse_config(raw: dict[str, Any]) -> ZonesConfig:
        return parse(raw)
