"""``/_synapse/client/lgwan/v1/device_approvals_admin``: server admins decide about any device
(what ``lgwan-chat device`` calls; the only way in zones whose ``device_approval`` is ``admin``).

- ``GET  ?user_id=@u:example.jp``  every current device of the user with its zone and state
  (``approved``, ``pending``, ``not_required``, ``unused``: no request yet)
- ``POST {"user_id", "device_id", "decision": "approve" | "revoke"}``: approve it, or revoke it
  (it is logged out: the device is deleted as the admin API's device deletion does)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from synapse.api.errors import Codes
from synapse.module_api import DirectServeJsonResource, ModuleApi

from lgwan_chat.core.routes import DEVICE_APPROVALS_ADMIN
from synapse_modules._errors import error, refusal
from synapse_modules._synapse_internals import delete_device

from ..device_approval import DeviceApproval
from ..store import APPROVED
from .device_approvals import json_body

if TYPE_CHECKING:
    from synapse.http.site import SynapseRequest

PATH = DEVICE_APPROVALS_ADMIN
DECISIONS = {"approve": APPROVED, "revoke": "revoked"}


class DeviceApprovalsAdminResource(DirectServeJsonResource):
    def __init__(self, api: ModuleApi, approval: DeviceApproval):
        super().__init__()
        self._api = api
        self._approval = approval

    async def _admin(self, request: SynapseRequest) -> str:
        caller = (await self._api.get_user_by_req(request)).user.to_string()
        if not await self._api.is_user_admin(caller):
            raise refusal("not_admin", "zones.device_not_admin")
        return caller

    def _local_user(self, user_id: object) -> str:
        if not isinstance(user_id, str) or not self._api.is_mine(user_id):
            raise error(400, Codes.INVALID_PARAM, "zones.device_bad_request")
        return user_id

    async def _async_render_GET(self, request: SynapseRequest) -> tuple[int, dict]:
        await self._admin(request)
        raw = request.args.get(b"user_id", [b""])[0].decode("utf-8", "replace")
        user_id = self._local_user(raw)
        return 200, {"user_id": user_id, "devices": await self._approval.devices(user_id)}

    async def _async_render_POST(self, request: SynapseRequest) -> tuple[int, dict]:
        caller = await self._admin(request)
        body = json_body(request)
        user_id = self._local_user(body.get("user_id"))
        device_id, decision = body.get("device_id"), body.get("decision")
        if not isinstance(device_id, str) or decision not in DECISIONS:
            raise error(400, Codes.INVALID_PARAM, "zones.device_bad_request")
        device = next((d for d in await self._approval.devices(user_id) if d["device_id"] == device_id), None)
        if device is None:
            raise error(404, Codes.NOT_FOUND, "zones.device_unknown", device=device_id, user=user_id)
        await self._approval.decide(user_id, device_id, DECISIONS[decision], caller, "admin", device["zone"])
        if decision == "revoke":
            await delete_device(self._api, user_id, device_id)
        return 200, {"user_id": user_id, "device_id": device_id, "state": DECISIONS[decision]}
