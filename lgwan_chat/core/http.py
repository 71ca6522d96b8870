"""One JSON request to a homeserver, for the tools and one-time setup steps (blocking, urllib).

The bots use their own asynchronous session (``bots/runtime/bot.py``); this is for the CLI,
the demo, provisioning and an admin's setup of a bot account.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any


class HttpError(RuntimeError):
    def __init__(self, status: int, body: Any):
        super().__init__(f"HTTP {status}: {body}")
        self.status = status
        self.body = body

    @property
    def errcode(self) -> str | None:
        return self.body.get("errcode") if isinstance(self.body, dict) else None


def http_json(method: str, url: str, body: Any = None, token: str | None = None, timeout: float = 30) -> Any:
    """One JSON request to a homeserver; ``HttpError`` with the parsed error body otherwise."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as r:
            return json.loads(r.read() or b"{}")
    except urllib.error.HTTPError as e:
        raw = e.read()
        try:
            parsed = json.loads(raw)
        except ValueError:
            parsed = raw.decode("utf-8", "replace")
        raise HttpError(e.code, parsed) from None
