"""``GET /_synapse/client/lgwan/v1/device_status``: the calling device's approval state (端末認証).

The one route (with logout) a device waiting for approval may call: ``{"user_id", "device_id",
"zone", "policy", "state"}``, state ``approved``, ``pending`` or ``not_required``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from synapse.module_api import DirectServeJsonResource, ModuleApi

from lgwan_chat.core.routes import DEVICE_STATUS
from synapse_modules._errors import refusal
from synapse_modules._synapse_internals import current_request_origin

from ..config import ZonesConfig
from ..device_approval import DeviceApproval
from ..zone import zone_of

if TYPE_CHECKING:
    from synapse.http.site import SynapseRequest

PATH = DEVICE_STATUS


class DeviceStatusResource(DirectServeJsonResource):
    def __init__(self, api: ModuleApi, config: ZonesConfig, approval: DeviceApproval):
        super().__init__()
        self._api = api
        self._config = config
        self._approval = approval

    async def _async_render_GET(self, request: SynapseRequest) -> tuple[int, dict]:
        requester = await self._api.get_user_by_req(request)
        origin = current_request_origin()
        zone = zone_of(origin, self._config) if origin is not None else None
        if zone is None:
            raise refusal("unknown_zone", "zones.unknown_zone")
        user_id = requester.user.to_string()
        if requester.device_id is None or not self._approval.held(user_id, zone):
            state = "not_required"
        elif await self._approval.is_approved(user_id, requester.device_id, zone):
            state = "approved"
        else:
            state = "pending"
        return 200, {"user_id": user_id, "device_id": requester.device_id, "zone": zone,
                     "policy": self._config.approval_policy(zone), "state": state}
