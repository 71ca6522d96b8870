"""``/_synapse/client/lgwan/v1/stamps/...``: the sticker picker page, the pack, the images.

- ``picker``: the widget page Element loads (``m.stickerpicker`` in ``m.widgets``);
- ``pack``: JSON the page reads (labels, mxc URIs, image paths);
- ``images/{id}.png``: the normalized stamp images, served from memory.

Widget pages are loaded without Matrix credentials, so these need no login;
they only reveal the organisation's stamps.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from synapse.api.errors import Codes, SynapseError
from synapse.module_api import DirectServeJsonResource

from lgwan_chat.core.routes import STAMPS

from ..config import StampsConfig
from ..pack import PackPublisher

if TYPE_CHECKING:
    from synapse.http.site import SynapseRequest

PREFIX = STAMPS
PAGE = (Path(__file__).resolve().parent.parent / "assets" / "picker.html").read_bytes()


class StampsResource(DirectServeJsonResource):
    isLeaf = True

    def __init__(self, config: StampsConfig, publisher: PackPublisher):
        super().__init__()
        self._config = config
        self._publisher = publisher
        self._images = {f"{s.id}.png": s.image.png for s in config.stamps}

    async def _async_render_GET(self, request: SynapseRequest) -> tuple[int, dict] | None:
        path = request.path.decode("ascii", "replace")[len(PREFIX):]
        if path == "/picker":
            return self._send(request, PAGE, b"text/html; charset=utf-8")
        if path == "/pack":
            mxc = await self._publisher.mxc_by_stamp()
            pack = {"name": {"ja": self._config.pack_name_ja, "en": self._config.pack_name_en},
                    "stamps": [{"id": s.id, "label": {"ja": s.label_ja, "en": s.label_en}, "url": mxc[s.id],
                                "image": f"images/{s.id}.png", "w": s.image.width, "h": s.image.height,
                                "size": len(s.image.png)}
                               for s in self._config.stamps if s.id in mxc]}
            return self._send(request, json.dumps(pack, ensure_ascii=False).encode(), b"application/json")
        if path.startswith("/images/") and path[len("/images/"):] in self._images:
            return self._send(request, self._images[path[len("/images/"):]], b"image/png")
        raise SynapseError(404, "Not found", Codes.NOT_FOUND)

    @staticmethod
    def _send(request: SynapseRequest, body: bytes, content_type: bytes) -> None:
        request.setResponseCode(200)
        request.setHeader(b"Content-Type", content_type)
        request.setHeader(b"Content-Length", str(len(body)).encode())
        # Element shows the picker in an iframe of its own origin; nothing else may frame it.
        request.setHeader(b"Content-Security-Policy",
                          b"default-src 'self'; img-src 'self'; style-src 'unsafe-inline'; "
                          b"script-src 'unsafe-inline'; connect-src 'self'")
        request.write(body)
        request.finish()
        return None
