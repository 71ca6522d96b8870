"""``/_synapse/client/lgwan/v1/media_pending``: what an LGWAN device gets instead of untrusted media.

nginx answers a refused media fetch with this (``error_page 403``): a
thumbnail becomes a picture saying the file is waiting for sanitization (so
the timeline shows why, not a broken image); a download becomes a 403 whose
message says the same in Japanese and English. A file whose upload has not happened
yet (the gate's reason, passed on by nginx) is refused saying so instead.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from synapse.module_api import DirectServeJsonResource

from lgwan_chat.core.routes import MEDIA_PENDING
from synapse_modules._errors import refusal

from .. import media_paths
from .media_gate import REASON_HEADER, original_uri

if TYPE_CHECKING:
    from synapse.http.site import SynapseRequest

PATH = MEDIA_PENDING
PLACEHOLDER = Path(__file__).resolve().parent.parent / "assets" / "pending-sanitization.png"


class MediaPendingResource(DirectServeJsonResource):
    def __init__(self) -> None:
        super().__init__()
        self._png = PLACEHOLDER.read_bytes()

    async def _async_render_GET(self, request: SynapseRequest) -> tuple[int, dict] | None:
        if request.getHeader(REASON_HEADER) == b"media_not_uploaded_yet":
            raise refusal("media_not_uploaded_yet", "nginx.media_not_uploaded_yet")
        parsed = media_paths.parse(original_uri(request) or "")
        if isinstance(parsed, media_paths.MediaRequest) and parsed.kind == "thumbnail":
            request.setResponseCode(200)
            request.setHeader(b"Content-Type", b"image/png")
            request.setHeader(b"Content-Length", str(len(self._png)).encode())
            request.setHeader(b"Cache-Control", b"no-store")
            request.write(self._png)
            request.finish()
            return None
        raise refusal("media_pending_sanitization", "zones.media_pending_sanitization")
