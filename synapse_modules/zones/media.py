"""Media from the internet side is untrusted: recorded at upload, refused to LGWAN at download.

Synapse has no download hook, so downloads are gated in front of it: the
LGWAN-side nginx asks ``/_synapse/client/lgwan/v1/media_gate`` (auth_request)
before serving any media path. Uploads are seen in ``check_media_file_for_spam``,
which runs inside the upload request: its zone is the uploading device's zone
(devices are bound to their zone), and the device itself is remembered by the
authentication check of the same request.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from synapse.module_api import NOT_SPAM

from synapse_modules._synapse_internals import RequestOrigin, current_request_origin

from . import media_paths
from .config import ZonesConfig
from .store import ZoneStore
from .zone import zone_of


class UploadDevices:
    """request id -> device id, for upload requests only (bounded: entries are popped at upload)."""

    def __init__(self, limit: int = 1000):
        self._devices: OrderedDict[str, str | None] = OrderedDict()
        self._limit = limit

    def note(self, origin: RequestOrigin, device_id: str | None) -> None:
        if "/upload" not in origin.url:
            return
        self._devices[origin.request_id] = device_id
        while len(self._devices) > self._limit:
            self._devices.popitem(last=False)

    def pop(self, request_id: str) -> str | None:
        return self._devices.pop(request_id, None)


class MediaRules:
    def __init__(self, config: ZonesConfig, store: ZoneStore, server_name: str):
        self._config = config
        self._store = store
        self._server_name = server_name
        self.upload_devices = UploadDevices()

    async def check_media_file_for_spam(self, file: Any, file_info: Any) -> Any:
        """Record an upload from the internet side as untrusted (never refuses the upload)."""
        if not self._config.untrusted_internet_media:
            return NOT_SPAM
        if file_info.server_name is not None or file_info.thumbnail is not None or file_info.url_cache:
            return NOT_SPAM  # remote media, thumbnails and URL previews (untrusted by their url_cache) are not uploads
        origin = current_request_origin()
        if origin is None:
            return NOT_SPAM  # created by the server itself, not by a client
        zone = zone_of(origin, self._config)
        if zone == "lgwan" or (origin.requester in self._config.trusted_uploaders):
            return NOT_SPAM
        await self._store.mark_untrusted(file_info.file_id, origin.requester,
                                         self.upload_devices.pop(origin.request_id), zone or "unknown",
                                         origin.ip_address)
        return NOT_SPAM

    async def may_fetch(self, zone: str | None, uri: str) -> bool:
        """May a client in ``zone`` fetch the media at ``uri`` (the original request URI)?"""
        if zone == "internet" or not self._config.untrusted_internet_media:
            return True
        parsed = media_paths.parse(uri)
        if parsed == "harmless":
            return True
        if not isinstance(parsed, media_paths.MediaRequest) or zone is None:
            return False
        return not await self.untrusted(parsed.server_name or self._server_name, parsed.media_id)

    async def untrusted(self, server_name: str, media_id: str) -> bool:
        """Is this media kept from LGWAN devices (uploaded from the internet side, or from a
        server not in ``trusted_remote_servers``)? Also answered by ``media_status``."""
        if not self._config.untrusted_internet_media:
            return False
        if server_name != self._server_name:
            return server_name not in self._config.trusted_remote_servers
        return await self._store.is_untrusted(media_id)
