"""``POST /_synapse/client/lgwan/v1/device_approvals_bot``: a bot carries a user's approval
command (the memo bot's ``!端末`` / ``!端末承認`` / ``!端末拒否`` in its DM).

Only for the bots of ``device_approval_bots``, and only on the strength of the user's own
command message: ``{"room_id", "event_id", "decision": "list" | "approve" | "reject",
"device_id"?}``. The module reads that message as the bot sees it and decides for its sender
only if it was sent, within the last ``COMMAND_MAX_AGE_MS``, from an approved LGWAN device of
the sender (Synapse records which device sent an event with a transaction ID), and, to approve
or reject, if it names the device. So the bot cannot decide anything the user did not type on
an office PC.

- ``list``: ``{"user_id", "devices": [...]}`` the sender's devices waiting for them
- ``approve`` / ``reject``: ``{"user_id", "device_id", "state"}`` (a rejected device is logged out)

With ``"user_id"`` in the body (``!端末承認 @user:example.jp DEVICE`` typed by an admin), the sender
decides about that user's devices as a server admin, in any zone (what ``device_approval: admin``
needs): on the same strength (the command sent lately from the admin's approved LGWAN device, naming
the user and the device), and only if the sender is a server admin. ``list`` gives every device of
the user with its state (as ``lgwan-chat device list``); ``reject`` revokes (logs out) any device.
The decider in the audit is the admin.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from synapse.api.errors import Codes
from synapse.module_api import DirectServeJsonResource, ModuleApi

from lgwan_chat.core.routes import DEVICE_APPROVALS_BOT
from synapse_modules._errors import error, refusal
from synapse_modules._synapse_internals import delete_device, events_seen_by

from ..config import ZonesConfig
from ..device_approval import SELF_DECISIONS, DeviceApproval
from ..store import ZoneStore
from .device_approvals import json_body
from .device_approvals_admin import DECISIONS as ADMIN_DECISIONS

if TYPE_CHECKING:
    from synapse.http.site import SynapseRequest

PATH = DEVICE_APPROVALS_BOT
#: how old the user's command may be when the bot passes it on
COMMAND_MAX_AGE_MS = 10 * 60 * 1000


class DeviceApprovalsBotResource(DirectServeJsonResource):
    def __init__(self, api: ModuleApi, config: ZonesConfig, store: ZoneStore, approval: DeviceApproval):
        super().__init__()
        self._api = api
        self._config = config
        self._store = store
        self._approval = approval

    async def _async_render_POST(self, request: SynapseRequest) -> tuple[int, dict]:
        bot = (await self._api.get_user_by_req(request)).user.to_string()
        if bot not in self._config.device_approval_bots:
            raise refusal("not_approval_bot", "zones.device_not_approval_bot")
        body = json_body(request)
        event_id, decision = body.get("event_id"), body.get("decision")
        if not isinstance(event_id, str) or decision not in ("list", *SELF_DECISIONS):
            raise error(400, Codes.INVALID_PARAM, "zones.device_bad_request")
        user_id, text = await self._command(bot, event_id)
        if "user_id" in body:
            return await self._as_admin(bot, user_id, text, body, decision)
        if decision == "list":
            return 200, {"user_id": user_id, "devices": await self._approval.pending_self_devices(user_id)}
        device_id = body.get("device_id")
        if not isinstance(device_id, str) or device_id not in text.split():
            raise error(400, Codes.INVALID_PARAM, "zones.device_bad_request")
        state = await self._approval.decide_self(user_id, device_id, decision, "bot:" + bot)
        return 200, {"user_id": user_id, "device_id": device_id, "state": state}

    async def _as_admin(self, bot: str, admin: str, text: str, body: dict, decision: str) -> tuple[int, dict]:
        """The sender, a server admin, decides about another user's device (named in the command)."""
        if not await self._api.is_user_admin(admin):
            raise refusal("not_admin", "zones.device_not_admin")
        words = text.split()
        user_id = body.get("user_id")
        if not isinstance(user_id, str) or user_id not in words or not self._api.is_mine(user_id):
            raise error(400, Codes.INVALID_PARAM, "zones.device_bad_request")
        devices = await self._approval.devices(user_id)
        if decision == "list":
            return 200, {"user_id": user_id, "devices": devices}
        device_id = body.get("device_id")
        if not isinstance(device_id, str) or device_id not in words:
            raise error(400, Codes.INVALID_PARAM, "zones.device_bad_request")
        device = next((d for d in devices if d["device_id"] == device_id), None)
        if device is None:
            raise error(404, Codes.NOT_FOUND, "zones.device_unknown", device=device_id, user=user_id)
        state = ADMIN_DECISIONS["approve" if decision == "approve" else "revoke"]
        await self._approval.decide(user_id, device_id, state, admin, "admin-bot:" + bot, device["zone"])
        if decision == "reject":
            await delete_device(self._api, user_id, device_id)
        return 200, {"user_id": user_id, "device_id": device_id, "state": state}

    async def _command(self, bot: str, event_id: str) -> tuple[str, str]:
        """(sender, text) of the user's command, if sent lately from their approved LGWAN device."""
        seen = await events_seen_by(self._api, bot, [event_id])
        if event_id not in seen:
            raise error(404, Codes.NOT_FOUND, "zones.device_command_unknown")
        event = seen[event_id][0]
        sender = event.sender
        sent_by = await self._store.sending_device(event_id)
        device = sent_by[1] if sent_by is not None and sent_by[0] == sender else None
        binding = await self._store.device_binding(sender, device) if device is not None else None
        if (device is None or binding is None or binding[0] != "lgwan"
                or not await self._approval.is_approved(sender, device, "lgwan")):
            raise refusal("device_approval_from_lgwan", "zones.device_approval_from_lgwan")
        if self._api.get_current_time_msec() - event.origin_server_ts > COMMAND_MAX_AGE_MS:
            raise refusal("device_command_too_old", "zones.device_command_too_old")
        text = event.content.get("body")
        return sender, text if isinstance(text, str) else ""
