"""``GET /_synapse/client/lgwan/v1/media_gate``: nginx ``auth_request`` for every media fetch.

nginx passes the original request URI in ``X-Original-URI`` and calls this on
the listener of its own zone, so the zone is decided exactly as for any other
request. 200 lets nginx serve the media; 403 makes it answer with the
"waiting for sanitization" placeholder instead.

A verdict that can never change is marked cacheable (``X-Accel-Expires``), so the
LGWAN entrance asks again only after that many seconds: "untrusted" is final (a
mark is never removed), so are an unknown path, remote media (decided by the
configuration) and local media that already has its content (its upload, and the
untrusted mark of an internet-side upload, happened before the content became
visible). An allow that holds only for the internet zone is never cached (nginx's cache
is per path, and with ``zone_source: ip`` both zones can reach one entrance). Local media
without content is refused and never cached: a media ID from
``/_matrix/media/v1/create`` gets its content, and so its zone, only at upload, and
Synapse would hold a download that passed the gate until then.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from synapse.api.errors import SynapseError
from synapse.module_api import DirectServeJsonResource

from lgwan_chat.core.routes import MEDIA_GATE
from synapse_modules._errors import refusal, refusal_reason
from synapse_modules._metrics import MEDIA_GATE_VERDICTS
from synapse_modules._synapse_internals import current_request_origin, local_media_has_content

from .. import media_paths
from ..config import ZonesConfig
from ..media import MediaRules
from ..zone import zone_of

if TYPE_CHECKING:
    from synapse.http.site import SynapseRequest

PATH = MEDIA_GATE
ORIGINAL_URI_HEADER = b"X-Original-URI"
#: nginx forwards this to media_pending (auth_request_set), which words its answer by it.
REASON_HEADER = b"X-Lgwan-Gate-Reason"
#: How long nginx may keep a final verdict (seconds); bounds how long a change of
#: ``trusted_remote_servers`` takes to reach the entrance.
FINAL_VERDICT_SECONDS = 60


def original_uri(request: SynapseRequest) -> str | None:
    """The client's request URI as nginx saw it; None if absent or not ASCII (refused)."""
    raw = request.getHeader(ORIGINAL_URI_HEADER)
    if raw is None:
        return None
    try:
        return raw.decode("ascii") if isinstance(raw, bytes) else raw.encode("ascii").decode("ascii")
    except (UnicodeDecodeError, UnicodeEncodeError):
        return None


class MediaGateResource(DirectServeJsonResource):
    def __init__(self, config: ZonesConfig, rules: MediaRules, api: Any):
        super().__init__()
        self._config = config
        self._rules = rules
        self._api = api

    async def _async_render_GET(self, request: SynapseRequest) -> tuple[int, dict]:
        try:
            answer = await self._verdict(request)
        except SynapseError as err:
            MEDIA_GATE_VERDICTS.labels(refusal_reason(err) or "error").inc()
            raise
        except Exception:
            MEDIA_GATE_VERDICTS.labels("error").inc()
            raise
        MEDIA_GATE_VERDICTS.labels("allowed").inc()
        return answer

    async def _verdict(self, request: SynapseRequest) -> tuple[int, dict]:
        uri = original_uri(request)
        origin = current_request_origin()
        zone = zone_of(origin, self._config) if origin is not None else None
        if uri is None or not await self._rules.may_fetch(zone, uri):
            if uri is not None and zone is not None:
                final(request)
            raise refusal("media_pending_sanitization", "zones.media_pending_sanitization")
        if zone == "internet":
            # Allowed for this client's zone only. nginx keeps verdicts per path, not per zone,
            # and with zones by IP both zones can reach one entrance: never mark this final.
            return 200, {}
        parsed = media_paths.parse(uri)
        if (zone != "internet" and self._config.untrusted_internet_media
                and isinstance(parsed, media_paths.MediaRequest)
                and parsed.server_name in (None, self._api.server_name)
                and not await local_media_has_content(self._api, parsed.media_id)):
            request.setHeader(REASON_HEADER, b"media_not_uploaded_yet")
            raise refusal("media_not_uploaded_yet", "nginx.media_not_uploaded_yet")
        final(request)
        return 200, {}


def final(request: SynapseRequest) -> None:
    request.setHeader(b"X-Accel-Expires", str(FINAL_VERDICT_SECONDS).encode())
