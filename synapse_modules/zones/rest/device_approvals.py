"""``/_synapse/client/lgwan/v1/device_approvals``: a user approves their own new device (``self``).

Only from an approved device of the LGWAN zone of the same user (a PC at the office: whoever
holds only the password and a phone cannot approve that phone):

- ``GET``  the caller's devices waiting for approval in a zone whose ``device_approval`` is
  ``self``: ``{"devices": [{"device_id", "display_name", "zone", "first_seen_ts", "user_agent"}]}``
- ``POST`` ``{"device_id", "decision": "approve" | "reject"}``: approve it, or reject it (it is
  logged out; an approved device of the user can be rejected the same way, e.g. a lost phone)
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from synapse.api.errors import Codes
from synapse.module_api import DirectServeJsonResource, ModuleApi

from lgwan_chat.core.routes import DEVICE_APPROVALS
from synapse_modules._errors import error, refusal
from synapse_modules._rest import request_body
from synapse_modules._synapse_internals import current_request_origin

from ..config import ZonesConfig
from ..device_approval import SELF_DECISIONS, DeviceApproval
from ..zone import zone_of

if TYPE_CHECKING:
    from synapse.http.site import SynapseRequest

PATH = DEVICE_APPROVALS


def json_body(request: SynapseRequest) -> dict[str, Any]:
    """The request's JSON object; a clear 400 otherwise."""
    try:
        body = json.loads(request_body(request) or b"{}")
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise error(400, Codes.NOT_JSON, "zones.device_bad_request")
    return body


class DeviceApprovalsResource(DirectServeJsonResource):
    def __init__(self, api: ModuleApi, config: ZonesConfig, approval: DeviceApproval):
        super().__init__()
        self._api = api
        self._config = config
        self._approval = approval

    async def _caller(self, request: SynapseRequest) -> str:
        """The user, if calling from an (approved: authentication checked it) LGWAN device."""
        requester = await self._api.get_user_by_req(request)
        origin = current_request_origin()
        zone = zone_of(origin, self._config) if origin is not None else None
        if zone != "lgwan" or requester.device_id is None:
            raise refusal("device_approval_from_lgwan", "zones.device_approval_from_lgwan")
        return requester.user.to_string()

    async def _async_render_GET(self, request: SynapseRequest) -> tuple[int, dict]:
        user_id = await self._caller(request)
        return 200, {"devices": await self._approval.pending_self_devices(user_id)}

    async def _async_render_POST(self, request: SynapseRequest) -> tuple[int, dict]:
        user_id = await self._caller(request)
        body = json_body(request)
        device_id, decision = body.get("device_id"), body.get("decision")
        if not isinstance(device_id, str) or decision not in SELF_DECISIONS:
            raise error(400, Codes.INVALID_PARAM, "zones.device_bad_request")
        state = await self._approval.decide_self(user_id, device_id, decision, "self")
        return 200, {"device_id": device_id, "state": state}
