"""Approved devices (端末認証): a new device of a zone with ``device_approval`` self/admin may do
nothing until it is approved.

Checked on every authenticated request, after the device's zone (``DeviceZoneGuard``): a device of
a held zone without an approval gets a 403 (``JP_LGWAN_DEVICE_PENDING``, ``jp.lgwan.reason:
device_pending``) on everything but logout and its own status route. The decision is per device
of one user (``lgwan_device_approvals``: user_id, device_id), so:

- a new login (new device_id), a login token (``m.login.token``) or a refresh of a pending
  device's token gives a device that is still pending;
- a login naming the device_id of an existing device of a held zone is refused: it would share
  that device's approval (an approved device's ID is no secret: device lists show it);
- a revoked or rejected device is logged out (deleted); a login reusing its ID is a new device.

An approval is remembered per access token (its ``access_token_id``) in each process: every new
token (login, refresh) is checked against the database once, and the only way back from
approved, a revoke, deletes the device and so its tokens, on every worker.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from synapse.api.errors import Codes
from synapse.module_api import ModuleApi

from lgwan_chat.core.routes import DEVICE_STATUS
from synapse_modules._errors import error, refusal, spam_verdict
from synapse_modules._synapse_internals import RequestOrigin, delete_device, user_devices

from .config import ZONES, ZonesConfig
from .store import APPROVED, ZoneStore

logger = logging.getLogger(__name__)

#: The errcode of a device waiting for approval (clients branch on it).
DEVICE_PENDING = "JP_LGWAN_DEVICE_PENDING"
#: What a device waiting for approval may still do: log out (this device only), ask its status.
_ALLOWED_WHILE_PENDING = re.compile(
    r"^(?:/_matrix/client/(?:api/v1|r0|v3|unstable)/logout|" + re.escape(DEVICE_STATUS) + r")/?$")
#: what a user decides about their own device (``self``), and the state it leaves
SELF_DECISIONS = {"approve": APPROVED, "reject": "rejected"}


def allowed_while_pending(origin: RequestOrigin) -> bool:
    return _ALLOWED_WHILE_PENDING.match(origin.url.split("?", 1)[0]) is not None


def audit_log(decision: str, user_id: str, device_id: str, decided_by: str, via: str, zone: str | None) -> None:
    """One log line per decision (never a token)."""
    logger.info("device approval: %s user=%s device=%s by=%s via=%s zone=%s",
                decision, user_id, device_id, decided_by, via, zone)


class DeviceApproval:
    def __init__(self, config: ZonesConfig, store: ZoneStore, api: ModuleApi):
        self._config = config
        self._store = store
        self._api = api
        #: access tokens (their ids) of approved devices, in this process
        self._approved_tokens: set[int] = set()

    def held(self, user_id: str, zone: str) -> bool:
        """Does a device of this user in this zone need an approval?"""
        return (self._config.approval_policy(zone) != "off"
                and user_id not in self._config.device_approval_exempt_users)

    async def is_approved(self, user_id: str, device_id: str, zone: str) -> bool:
        return not self.held(user_id, zone) or await self._store.is_approved(user_id, device_id)

    async def check(self, requester: Any, zone: str, origin: RequestOrigin) -> None:
        """Raise the 403 when the requester's device (of ``zone``) waits for approval."""
        user_id = requester.user.to_string()
        if not self.held(user_id, zone) or allowed_while_pending(origin):
            return
        token_id = requester.access_token_id
        if token_id is not None and token_id in self._approved_tokens:
            return
        if not await self._store.is_approved(user_id, requester.device_id):
            raise refusal("device_pending", "zones.device_pending", errcode=DEVICE_PENDING,
                          device=requester.device_id)
        if token_id is not None:
            if len(self._approved_tokens) > 100_000:  # bounded
                self._approved_tokens.clear()
            self._approved_tokens.add(token_id)

    async def check_login(self, user_id: str, device_id: str | None) -> Any:
        """``check_login_for_spam``: refuse a login that names an existing device of a held zone."""
        if device_id is None:
            return "NOT_SPAM"
        if device_id not in await user_devices(self._api, user_id):
            return "NOT_SPAM"  # a new ID, or a logged-out (revoked, rejected) device's: a new device
        binding = await self._store.device_binding(user_id, device_id)
        zone = binding[0] if binding is not None else None
        # A device that made no request yet has no zone: held if any zone is.
        if not any(self.held(user_id, z) for z in ([zone] if zone is not None else ZONES)):
            return "NOT_SPAM"
        await self._store.audit(user_id, device_id, "login_refused", user_id, "login", zone)
        audit_log("login_refused", user_id, device_id, user_id, "login", zone)
        return spam_verdict("device_id_in_use", "zones.device_id_in_use", device=device_id)

    async def devices(self, user_id: str) -> list[dict[str, Any]]:
        """Every current device of a user: id, name, zone, first request, state (approved,
        pending, not_required)."""
        names = await user_devices(self._api, user_id)
        bindings = await self._store.user_bindings(user_id)
        states = await self._store.approval_states(user_id)
        devices = []
        for device_id, name in sorted(names.items()):
            zone, first_ts, user_agent = bindings.get(device_id, (None, None, ""))
            if zone is None:
                state = "unused"  # no request yet: its zone (and so its rule) is not known
            elif not self.held(user_id, zone):
                state = "not_required"
            else:
                state = "approved" if states.get(device_id) == APPROVED else "pending"
            devices.append({"device_id": device_id, "display_name": name, "zone": zone, "first_seen_ts": first_ts,
                            "user_agent": user_agent, "state": state})
        return devices

    async def decide(self, user_id: str, device_id: str, state: str, decided_by: str, via: str,
                     zone: str | None) -> None:
        await self._store.decide(user_id, device_id, state, decided_by, via, zone)
        audit_log(state, user_id, device_id, decided_by, via, zone)

    async def pending_self_devices(self, user_id: str) -> list[dict[str, Any]]:
        """What a user is shown of their own devices waiting for them: id, name, zone, first use."""
        return [{k: d[k] for k in ("device_id", "display_name", "zone", "first_seen_ts", "user_agent")}
                for d in await self.self_devices(user_id) if d["state"] == "pending"]

    async def self_devices(self, user_id: str) -> list[dict[str, Any]]:
        """The user's devices in a zone where they approve their own (``self``), pending or approved."""
        return [d for d in await self.devices(user_id)
                if d["zone"] is not None and self._config.approval_policy(d["zone"]) == "self"
                and d["state"] in ("pending", "approved")]

    async def decide_self(self, user_id: str, device_id: str, decision: str, via: str) -> str:
        """The user approves a pending device of theirs, or rejects one (logged out); the new state.
        The caller has checked that the user asks from an approved LGWAN device."""
        device = next((d for d in await self.self_devices(user_id) if d["device_id"] == device_id), None)
        if device is None or (decision == "approve" and device["state"] != "pending"):
            raise error(404, Codes.NOT_FOUND, "zones.device_not_pending", device=device_id)
        await self.decide(user_id, device_id, SELF_DECISIONS[decision], user_id, via, device["zone"])
        if decision == "reject":
            await delete_device(self._api, user_id, device_id)
        return SELF_DECISIONS[decision]
