"""``GET /_synapse/client/lgwan/v1/media_status/{serverName}/{mediaId}``: is this file untrusted?

For bots and clients deciding what to show or offer (e.g. the memo bot marking
a file that LGWAN devices cannot open yet): ``{"mxc", "untrusted"}``, decided
exactly as the media gate decides (``MediaRules.untrusted``). Any logged-in
local user may ask.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING
from urllib.parse import unquote

from synapse.api.errors import Codes
from synapse.module_api import DirectServeJsonResource, ModuleApi

from lgwan_chat.core.routes import MEDIA_STATUS
from synapse_modules._errors import error

from ..media import MediaRules

if TYPE_CHECKING:
    from synapse.http.site import SynapseRequest

PATH = MEDIA_STATUS
# Server name: host name, IPv4 or [IPv6], optional port. Media id: the characters the spec allows.
SERVER_NAME = re.compile(r"(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?")
MEDIA_ID = re.compile(r"[A-Za-z0-9_-]{1,255}")


def parse_path(path: str) -> tuple[str, str] | None:
    """(server name, media id) from the raw path, each part unquoted as Synapse does; None if malformed."""
    if not path.startswith(PATH + "/"):
        return None
    parts = [unquote(p) for p in path[len(PATH) + 1:].split("/")]
    if len(parts) != 2 or not SERVER_NAME.fullmatch(parts[0]) or not MEDIA_ID.fullmatch(parts[1]):
        return None
    return parts[0], parts[1]


class MediaStatusResource(DirectServeJsonResource):
    # Serve every path below the prefix (Twisted would otherwise look for child resources).
    isLeaf = True

    def __init__(self, api: ModuleApi, rules: MediaRules):
        super().__init__()
        self._api = api
        self._rules = rules

    async def _async_render_GET(self, request: SynapseRequest) -> tuple[int, dict]:
        await self._api.get_user_by_req(request)
        parsed = parse_path(request.path.decode("ascii", "replace"))
        if parsed is None:
            raise error(400, Codes.INVALID_PARAM, "zones.bad_media_id")
        server_name, media_id = parsed
        return 200, {"mxc": f"mxc://{server_name}/{media_id}",
                     "untrusted": await self._rules.untrusted(server_name, media_id)}
