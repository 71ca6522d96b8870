"""Which pushers (push notifications to phones) a device may register.

A push gateway forwards notifications to Apple's and Google's servers, so what it
receives leaves the municipality. Only pushers that carry nothing but the event id
are allowed (``kind: http``, ``data.format: event_id_only``): the phone app fetches
the message itself from the homeserver after waking up. LGWAN devices (office PCs)
register none: a notification about LGWAN work must not go through the internet.
Any other pusher (other formats, email pushers, unknown kinds) is refused.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from synapse_modules._errors import refusal
from synapse_modules._synapse_internals import current_request_origin

from .config import ZonesConfig
from .store import ZoneStore
from .zone import zone_of

#: The only pusher kind and format allowed.
HTTP_KIND = "http"
EVENT_ID_ONLY = "event_id_only"


class PusherRules:
    def __init__(self, config: ZonesConfig, store: ZoneStore):
        self._config = config
        self._store = store

    async def check(self, user_id: str, device_id: str | None, kind: Any, data: Any) -> None:
        """Raise a 403 (ja/en) unless this pusher is allowed (``wrap_pusher_registration``)."""
        await self.check_device(user_id, device_id)
        data = data if isinstance(data, Mapping) else {}
        if kind != HTTP_KIND or data.get("format") != EVENT_ID_ONLY:
            raise refusal("pusher_format", "zones.pusher_format", format=EVENT_ID_ONLY)

    async def check_device(self, user_id: str, device_id: str | None) -> None:
        """Raise a 403 unless this device may register pushers at all: also asked before Synapse
        takes the pushkey away from other users, so an office PC cannot delete a phone's pusher."""
        if await self._zone(user_id, device_id) != "internet":
            raise refusal("pusher_from_lgwan", "zones.pusher_from_lgwan")

    async def _zone(self, user_id: str, device_id: str | None) -> str | None:
        """The device's bound zone, else the zone of the request's entrance (None: unknown)."""
        if device_id is not None:
            bound = await self._store.device_zone(user_id, device_id)
            if bound is not None:
                return bound
        origin = current_request_origin()
        return zone_of(origin, self._config) if origin is not None else None
