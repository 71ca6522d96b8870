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
from synapse_modules._synapse_internals import current_request_origin, delete_device

from ..config import ZonesConfig
from ..device_approval import DeviceApproval
from ..store import APPROVED
from ..zone import zone_of

if TYPE_CHECKING:
    from synapse.http.site import SynapseRequest

PATH = DEVICE_APPROVALS
DECISIONS = {"approve": APPROVED, "reject": "rejected"}


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

    async def _own_devices(self, user_id: str) -> list[dict[str, Any]]:
        """The user's devices in a zone they approve themselves."""
        return [d for d in await self._approval.devices(user_id)
                if d["zone"] is not None and self._config.approval_policy(d["zone"]) == "self"
                and d["state"] in ("pending", "approved")]

    async def _async_render_GET(self, request: SynapseRequest) -> tuple[int, dict]:
        user_id = await self._caller(request)
        return 200, {"devices": [{k: d[k] for k in ("device_id", "display_name", "zone", "first_seen_ts",
                                                    "user_agent")}
                                 for d in await self._own_devices(user_id) if d["state"] == "pending"]}

    async def _async_render_POST(self, request: SynapseRequest) -> tuple[int, dict]:
        user_id = await self._caller(request)
        body = json_body(request)
        device_id, decision = body.get("device_id"), body.get("decision")
        if not isinstance(device_id, str) or decision not in DECISIONS:
            raise error(400, Codes.INVALID_PARAM, "zones.device_bad_request")
        device = next((d for d in await self._own_devices(user_id) if d["device_id"] == device_id), None)
        if device is None or (decision == "approve" and device["state"] != "pending"):
            raise error(404, Codes.NOT_FOUND, "zones.device_not_pending", device=device_id)
        await self._approval.decide(user_id, device_id, DECISIONS[decision], user_id, "self", device["zone"])
        if decision == "reject":
            await delete_device(self._api, user_id, device_id)
        return 200, {"device_id": device_id, "state": DECISIONS[decision]}
