"""TURN credentials (``GET /voip/turnServer``) only for devices that may call.

Synapse hands out time-limited coturn credentials (``turn_shared_secret``) to any
logged-in device; with them an LGWAN PC could relay media through the internet-side
TURN server even though its call events are refused. The zone module refuses the
route itself for LGWAN devices, with the usual call refusal.
"""

from __future__ import annotations

import re
from typing import Any

from synapse_modules._errors import refusal
from synapse_modules._synapse_internals import current_request_origin

from .config import ZonesConfig
from .zone import zone_of

#: Synapse's route (``synapse/rest/client/voip.py``: client_patterns("/voip/turnServer$", v1=True)),
#: matched like Synapse matches it: on the raw path.
TURN_SERVER_PATH = re.compile(r"^/_matrix/client/(?:api/v1|r0|v3|unstable)/voip/turnServer$")


class TurnCredentialsRule:
    def __init__(self, config: ZonesConfig):
        self._config = config

    async def check(self, requester: Any) -> None:
        """Raise a 403 when this request asks for TURN credentials from a zone that may not call.
        Runs after ``DeviceZoneGuard.check``: a device is used in its own zone, so the request's
        zone is the device's."""
        origin = current_request_origin()
        if origin is None or not TURN_SERVER_PATH.match(origin.url.split("?", 1)[0]):
            return
        if self._config.refuse_calls_from_lgwan and zone_of(origin, self._config) in ("lgwan", None):
            raise refusal("call_from_lgwan", "zones.call_from_lgwan")
