"""The widget URLs an LGWAN device may add to a room: an allow-list the admin writes.

A widget is a web page every member's client opens inside the room, so from
the closed network only pages the admin chose may be added. Each allowed entry
is a URL prefix (scheme, host and port exact, path prefix); a URL that could
mean another path once a browser normalises it (dot segments, encoded ``/``,
``.`` or ``\\``, backslashes, user info) never matches.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

#: The suite's own pages on this homeserver (e.g. the stamp picker) when the admin lists none.
SUITE_PAGES = "_synapse/client/lgwan/"

_AMBIGUOUS = re.compile(r"%(2e|2f|5c|25)|\\|[\x00-\x20\x7f]", re.IGNORECASE)


def _split(url: str) -> tuple[str, str, str] | None:
    """(scheme, host[:port], path) of an absolute http(s) URL without ambiguity, else None."""
    if not isinstance(url, str) or _AMBIGUOUS.search(url):
        return None
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    if parts.scheme.lower() not in ("https", "http") or not parts.hostname or "@" in parts.netloc:
        return None
    segments = parts.path.split("/")
    if any(segment in (".", "..") for segment in segments) or "//" in parts.path:
        return None
    host = parts.hostname.lower() + (f":{port}" if port is not None else "")
    return parts.scheme.lower(), host, parts.path or "/"


class WidgetUrls:
    def __init__(self, allowed: Iterable[str] | None, public_baseurl: str):
        if allowed is None:
            allowed = [public_baseurl.rstrip("/") + "/" + SUITE_PAGES]
        self._prefixes = [p for p in (_split(url) for url in allowed) if p is not None]

    def allows(self, url: Any) -> bool:
        parts = _split(url)
        if parts is None:
            return False
        scheme, host, path = parts
        return any(scheme == p_scheme and host == p_host
                   and (path == p_path or path.startswith(p_path if p_path.endswith("/") else p_path + "/"))
                   for p_scheme, p_host, p_path in self._prefixes)
