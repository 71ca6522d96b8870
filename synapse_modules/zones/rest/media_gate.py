"""``GET /_synapse/client/lgwan/v1/media_gate``: nginx ``auth_request`` for every media fetch.

nginx passes the original request URI in ``X-Original-URI`` and calls this on
the listener of its own zone, so the zone is decided exactly as for any other
request. 200 lets nginx serve the media; 403 makes it answer with the
"waiting for sanitization" placeholder instead.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from synapse.module_api import DirectServeJsonResource

from synapse_modules._errors import refusal
from synapse_modules._synapse_internals import current_request_origin

from ..config import ZonesConfig
from ..media import MediaRules
from ..zone import zone_of

if TYPE_CHECKING:
    from synapse.http.site import SynapseRequest

PATH = "/_synapse/client/lgwan/v1/media_gate"
ORIGINAL_URI_HEADER = b"X-Original-URI"


def original_uri(request: "SynapseRequest") -> str | None:
    """The client's request URI as nginx saw it; None if absent or not ASCII (refused)."""
    raw = request.getHeader(ORIGINAL_URI_HEADER)
    if raw is None:
        return None
    try:
        return raw.decode("ascii") if isinstance(raw, bytes) else raw.encode("ascii").decode("ascii")
    except (UnicodeDecodeError, UnicodeEncodeError):
        return None


class MediaGateResource(DirectServeJsonResource):
    def __init__(self, config: ZonesConfig, rules: MediaRules):
        super().__init__()
        self._config = config
        self._rules = rules

    async def _async_render_GET(self, request: "SynapseRequest") -> tuple[int, dict]:
        uri = original_uri(request)
        origin = current_request_origin()
        zone = zone_of(origin, self._config) if origin is not None else None
        if uri is None or not await self._rules.may_fetch(zone, uri):
            raise refusal("media_pending_sanitization", "zones.media_pending_sanitization")
        return 200, {}
