"""What ``/.well-known/matrix/client`` tells Element, per entrance.

The internet entrance may name a public tile server for location sharing and the LiveKit SFUs
of group calls; the LGWAN entrance names only what the admin set for it: an internal tile
server, or none (Element then says maps are not configured, instead of loading map tiles
from the internet), and never a group-call SFU (calls are refused there).
"""

from __future__ import annotations

from typing import Any

from synapse_modules._synapse_internals import current_request_origin

from .config import ZonesConfig
from .zone import zone_of

#: Element reads the stable key, older Element versions the unstable one (MSC3488).
TILE_SERVER_KEYS = ("m.tile_server", "org.matrix.msc3488.tile_server")
#: MatrixRTC's SFU list (MSC4143): Element Call's LiveKit focus.
RTC_FOCI_KEY = "org.matrix.msc4143.rtc_foci"


class EntranceWellKnown:
    def __init__(self, config: ZonesConfig):
        self._config = config

    def for_zone(self, zone: str | None) -> dict[str, Any]:
        found: dict[str, Any] = {}
        map_style_url = self._config.map_style_urls.get(zone) if zone else None
        if map_style_url:
            found.update({key: {"map_style_url": map_style_url} for key in TILE_SERVER_KEYS})
        # Group calls only where calls may happen: never at the LGWAN entrance while calls are refused there.
        if self._config.rtc_foci and zone == "internet":
            found[RTC_FOCI_KEY] = [dict(focus) for focus in self._config.rtc_foci]
        return found

    def __call__(self) -> dict[str, Any]:
        """The keys for the entrance of the request being answered (none outside a request)."""
        origin = current_request_origin()
        return self.for_zone(zone_of(origin, self._config) if origin is not None else None)
