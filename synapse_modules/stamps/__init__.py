"""Stamps module: the organisation's stamp pack, and acknowledgement stamps.

Load it in homeserver.yaml (every key: config/modules.yaml, docs/admin-guide)::

    modules:
      - module: synapse_modules.stamps.StampsModule
        config:
          stamps:
            - {id: ryokai, label: {ja: 了解, en: Got it}, image: ryokai.png}

- The pack (see ``pack.py``): images checked and normalized at startup, uploaded once,
  published as an image pack in ``#stamps:SERVER`` (Cinny, FluffyChat, Nheko) and as a
  sticker picker widget in every user's ``m.widgets`` (Element). New accounts get it in the
  background, a few seconds after registering.
- ``GET /_synapse/client/lgwan/v1/stamps/picker``: the picker page (``rest/picker.py``).
- ``GET /_synapse/client/lgwan/v1/rooms/{roomId}/stamps/{eventId}``: who acknowledged a
  message with which reaction, next to its read status (``rest/acknowledgements.py``).
"""

from __future__ import annotations

from typing import Any

from synapse.module_api import ModuleApi

from synapse_modules._rest import room_router

from .config import StampsConfig, parse
from .pack import SWEEP_EVERY_MS, PackPublisher
from .rest.acknowledgements import AcknowledgementRoutes
from .rest.picker import PREFIX, StampsResource
from .store import StampStore

ROUTE = r"/(?P<room_id>[^/]+)/stamps/(?P<event_id>[^/]+)"


class StampsModule:
    def __init__(self, config: StampsConfig, api: ModuleApi):
        room_router(api).add("GET", ROUTE, AcknowledgementRoutes(api, config).get)
        if not config.stamps:
            return
        publisher = PackPublisher(api, config, StampStore(api))
        api.register_web_resource(PREFIX, StampsResource(config, publisher))
        api.register_account_validity_callbacks(on_user_registration=publisher.on_user_registration)
        if api.worker_name is None:
            api.delayed_background_call(0, publisher.publish, desc="lgwan_stamps_publish")
        if api.should_run_background_tasks():  # whoever a restarted process still had queued
            api.looping_background_call(publisher.sweep, SWEEP_EVERY_MS, desc="lgwan_stamps_sweep")

    @staticmethod
    def parse_config(raw: dict[str, Any]) -> StampsConfig:
        return parse(raw)
