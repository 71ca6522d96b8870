"""Every authenticated request: the device must be used from the zone it belongs to, and be
approved if its zone asks for that (``device_approval.py``)."""

from __future__ import annotations

from typing import Any

from lgwan_chat.core.i18n import Msg
from synapse_modules._errors import refusal, spam_verdict
from synapse_modules._synapse_internals import current_request_origin
from synapse_modules.guests.lookup import is_registered_guest

from .config import ZonesConfig
from .device_approval import DeviceApproval
from .media import UploadDevices
from .store import ZoneStore
from .zone import zone_of


class DeviceZoneGuard:
    def __init__(self, config: ZonesConfig, store: ZoneStore, upload_devices: UploadDevices, api: Any = None,
                 approval: DeviceApproval | None = None):
        self._api = api
        self._approval = approval
        self._config = config
        self._store = store
        self._upload_devices = upload_devices

    async def check(self, requester: Any) -> None:
        """Raise a 403 when this request's zone is not the zone of the requester's device."""
        origin = current_request_origin()
        if origin is None or requester.app_service_id is not None:
            return  # not a client request, or an application service (trusted server-side)
        zone = zone_of(origin, self._config)
        if zone is None:
            raise refusal("unknown_zone", "zones.unknown_zone")
        # Synapse's own guests, and the guest accounts of synapse_modules.guests
        if requester.is_guest or (self._api is not None
                                  and await is_registered_guest(self._api, requester.user.to_string())):
            if self._config.guest_zone is not None and zone != self._config.guest_zone:
                raise refusal("guest_zone", "zones.guest_zone", zone=Msg("zone." + self._config.guest_zone))
            return
        if requester.device_id is None:
            return  # admin-API tokens have no device
        if self._config.bind_devices:
            bound = await self._store.bind_device(requester.user.to_string(), requester.device_id, zone,
                                                  origin.ip_address, origin.user_agent)
            if bound != zone:
                raise refusal("device_zone_mismatch", "zones.device_zone_mismatch", device=requester.device_id,
                              bound=Msg("zone." + bound), current=Msg("zone." + zone))
        if self._approval is not None:
            # With bind_devices, the zone of the request is the device's (checked just above).
            await self._approval.check(requester, zone, origin)
        if self._config.bind_devices:
            self._upload_devices.note(origin, requester.device_id)

    async def check_login(self, user_id: str, *args: Any, **kwargs: Any) -> Any:
        """``check_login_for_spam``: a guest account of synapse_modules.guests logs in only from the guest zone;
        no login names an existing device that needs approval (``DeviceApproval.check_login``)."""
        if self._approval is not None:
            device_id = args[0] if args else kwargs.get("device_id")  # Synapse passes it positionally
            verdict = await self._approval.check_login(user_id, device_id)
            if verdict != "NOT_SPAM":
                return verdict
        origin = current_request_origin()
        if origin is None or self._api is None or self._config.guest_zone is None:
            return "NOT_SPAM"
        zone = zone_of(origin, self._config)
        if zone != self._config.guest_zone and await is_registered_guest(self._api, user_id):
            return spam_verdict("guest_zone", "zones.guest_zone", zone=Msg("zone." + self._config.guest_zone))
        return "NOT_SPAM"
