"""One resource for every ``/_synapse/client/lgwan/v1/rooms/{roomId}/...`` route of the suite.

Synapse keeps the first resource registered for a path and ignores later
ones, and the room id comes before the feature name, so modules cannot each
register their own subtree. Each module adds its routes to the single router
of its process instead.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from synapse.api.errors import Codes, SynapseError
from synapse.module_api import DirectServeJsonResource, ModuleApi

from lgwan_chat.core.routes import ROOMS

if TYPE_CHECKING:
    from synapse.http.site import SynapseRequest

ROOMS_PREFIX = ROOMS

Handler = Callable[..., Awaitable[tuple[int, Any]]]


def request_body(request: SynapseRequest) -> bytes:
    """The body as sent (Twisted leaves ``content`` unset only before a request is read)."""
    return request.content.read() if request.content is not None else b""


class RoomRouter(DirectServeJsonResource):
    # Serve every path below the prefix (Twisted would otherwise look for child resources).
    isLeaf = True

    def __init__(self) -> None:
        super().__init__()
        self._routes: list[tuple[str, re.Pattern, Handler]] = []

    def add(self, method: str, pattern: str, handler: Handler) -> None:
        """``pattern`` after the prefix, e.g. ``/(?P<room_id>[^/]+)/read_status/(?P<event_id>[^/]+)``;
        the handler gets the request and the unquoted groups as keyword arguments."""
        self._routes.append((method, re.compile("^" + re.escape(ROOMS_PREFIX) + pattern + "$"), handler))

    async def _async_render(self, request: SynapseRequest) -> tuple[int, Any]:
        path = request.path.decode("ascii")
        method = request.method.decode("ascii")
        allowed = False
        for route_method, pattern, handler in self._routes:
            match = pattern.match(path)
            if match:
                allowed = True
                if route_method == method:
                    return await handler(request, **{k: unquote(v) for k, v in match.groupdict().items()})
        if allowed:
            raise SynapseError(405, "Method not allowed", Codes.UNRECOGNIZED)
        raise SynapseError(404, "Unrecognized request", Codes.UNRECOGNIZED)


_routers: dict[str, RoomRouter] = {}


def room_router(api: ModuleApi) -> RoomRouter:
    """The router of this homeserver process, registered with Synapse on first use."""
    key = f"{api.server_name}/{api.worker_name}"
    if key not in _routers:
        _routers[key] = RoomRouter()
        api.register_web_resource(ROOMS_PREFIX, _routers[key])
    return _routers[key]
