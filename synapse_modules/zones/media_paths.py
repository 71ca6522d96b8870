"""Which media a request path asks for, parsed exactly as Synapse routes it.

Synapse matches its route regexes against the raw (still percent-encoded)
path and then unquotes each captured part; doing the same here guarantees the
media id the gate checks is the media id Synapse would serve. A path under a
media prefix that matches none of these is refused for LGWAN (fail closed).
"""

from __future__ import annotations

import re
from typing import NamedTuple
from urllib.parse import unquote

_ID = r"(?P<media_id>[^/]*)"
_SERVER = r"(?P<server_name>[^/]*)"
_LEGACY = r"/_matrix/media/(?:r0|v3|v1)"

#: (kind, pattern); kind is "download" or "thumbnail"
_FETCH = [
    ("download", re.compile(rf"^/_matrix/client/v1/media/download/{_SERVER}/{_ID}(?:/[^/]*)?$")),
    ("thumbnail", re.compile(rf"^/_matrix/client/v1/media/thumbnail/{_SERVER}/{_ID}$")),
    ("download", re.compile(rf"^{_LEGACY}/download/{_SERVER}/{_ID}(?:/[^/]*)?$")),
    ("thumbnail", re.compile(rf"^{_LEGACY}/thumbnail/{_SERVER}/{_ID}$")),
    # Another homeserver fetching our media over federation: the media is always ours.
    ("download", re.compile(rf"^/_matrix/federation/v1/media/download/{_ID}$")),
    ("thumbnail", re.compile(rf"^/_matrix/federation/v1/media/thumbnail/{_ID}$")),
]

#: Media endpoints that hand out no content: uploading and the upload limits.
_HARMLESS = [
    re.compile(rf"^{_LEGACY}/upload$"),
    re.compile(r"^/_matrix/media/v3/upload/[^/]*/[^/]*$"),
    re.compile(r"^/_matrix/media/v1/create$"),
    re.compile(r"^/_matrix/client/v1/media/config$"),
    re.compile(rf"^{_LEGACY}/config$"),
]


class MediaRequest(NamedTuple):
    kind: str  # "download" | "thumbnail"
    server_name: str | None  # None: this homeserver (federation paths)
    media_id: str


def parse(uri: str) -> MediaRequest | str | None:
    """A MediaRequest for a fetch, "harmless" for upload/config, None for anything else."""
    path = uri.split("?", 1)[0]
    for kind, pattern in _FETCH:
        match = pattern.match(path)
        if match:
            server = match.groupdict().get("server_name")
            return MediaRequest(kind, unquote(server) if server is not None else None,
                                unquote(match.group("media_id")))
    if any(p.match(path) for p in _HARMLESS):
        return "harmless"
    return None
