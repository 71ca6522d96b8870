"""An HMAC-SHA256 over a JSON manifest, keyed with a file of the deployment's secrets (0600).

Written once for what the suite signs: ``records export``'s archives and ``backup``'s backups. The
signature covers every field but ``hmac`` itself (keys sorted), so a manifest whose checksums were
recomputed after a file was changed no longer verifies without the key.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
from pathlib import Path
from typing import Any

FIELD = "hmac"
MIN_KEY_BYTES = 32


class KeyProblem(Exception):
    """A key file that cannot be used. ``kind``: key_unreadable, key_too_open or key_short; each
    caller says it in its own words (``records.<kind>``, ``ops.<kind>``)."""

    def __init__(self, kind: str, **params: Any):
        super().__init__(kind)
        self.kind = kind
        self.params = params


def read_key(path: Path) -> bytes:
    """The key in ``path``, refused when others can read the file or when it is short."""
    try:
        mode = path.stat().st_mode & 0o777
        key = path.read_bytes().strip()
    except OSError as e:
        raise KeyProblem("key_unreadable", path=path, problem=e) from None
    if mode & 0o077:
        raise KeyProblem("key_too_open", path=path, mode=oct(mode))
    if len(key) < MIN_KEY_BYTES:
        raise KeyProblem("key_short", path=path)
    return key


def create_key(path: Path) -> bytes:
    """A new random key in ``path`` (0600, its folder 0700); an existing file is never replaced."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = secrets.token_urlsafe(48)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(key + "\n")
    return key.encode()


def signature(manifest: dict[str, Any], key: bytes) -> str:
    body = json.dumps({k: v for k, v in manifest.items() if k != FIELD}, sort_keys=True, ensure_ascii=False)
    return hmac.new(key, body.encode(), hashlib.sha256).hexdigest()


def sign(manifest: dict[str, Any], key: bytes) -> dict[str, Any]:
    """``manifest`` with its ``hmac`` field set."""
    return {**manifest, FIELD: signature(manifest, key)}


def is_signed_by(manifest: Any, key: bytes) -> bool:
    """Whether ``manifest`` carries a valid ``hmac`` for ``key`` (False when unsigned)."""
    if not isinstance(manifest, dict) or not isinstance(manifest.get(FIELD), str):
        return False
    return hmac.compare_digest(manifest[FIELD], signature(manifest, key))
