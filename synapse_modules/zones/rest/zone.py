"""``GET /_synapse/client/lgwan/v1/zone``: the caller's zone, device and user."""

from __future__ import annotations

from typing import TYPE_CHECKING

from synapse.module_api import DirectServeJsonResource, ModuleApi

from lgwan_chat.core.routes import ZONE
from synapse_modules._errors import refusal
from synapse_modules._synapse_internals import current_request_origin

from ..config import ZonesConfig
from ..zone import zone_of

if TYPE_CHECKING:
    from synapse.http.site import SynapseRequest

PATH = ZONE


class ZoneResource(DirectServeJsonResource):
    def __init__(self, api: ModuleApi, config: ZonesConfig):
        super().__init__()
        self._api = api
        self._config = config

    async def _async_render_GET(self, request: SynapseRequest) -> tuple[int, dict]:
        # Authentication already refused a device used outside its zone, so the
        # request's zone is the device's zone.
        requester = await self._api.get_user_by_req(request, allow_guest=True)
        origin = current_request_origin()
        zone = zone_of(origin, self._config) if origin is not None else None
        if zone is None:
            raise refusal("unknown_zone", "zones.unknown_zone")
        return 200, {"zone": zone, "device_id": requester.device_id, "user_id": requester.user.to_string()}
