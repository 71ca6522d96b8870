"""The records audit log: one JSON object per line, appended, never rewritten (mode 0600).

Each entry holds the SHA-256 of the line before it (``prev``), so a line removed or changed
later breaks the chain: ``verify_chain`` finds where.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any

GENESIS = "0" * 64


def _last_line(path: Path) -> bytes | None:
    try:
        with open(path, "rb") as f:
            lines = f.read().splitlines()
    except FileNotFoundError:
        return None
    return lines[-1] if lines else None


def append(path: Path, action: str, **details: Any) -> dict[str, Any]:
    """Write one entry (``action``, the time, ``details``) at the end of the log."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        import fcntl

        fcntl.flock(fd, fcntl.LOCK_EX)
        last = _last_line(path)
        entry = {"ts": int(time.time() * 1000), "action": action, **details,
                 "prev": hashlib.sha256(last).hexdigest() if last else GENESIS}
        os.write(fd, json.dumps(entry, ensure_ascii=False, sort_keys=True).encode() + b"\n")
    finally:
        os.close(fd)
    return entry


def read(path: Path) -> list[dict[str, Any]]:
    try:
        with open(path, encoding="utf-8") as f:
            return [json.loads(line) for line in f if line.strip()]
    except FileNotFoundError:
        return []


def verify_chain(path: Path) -> int | None:
    """The number (1-based) of the first line whose ``prev`` does not match; None when intact."""
    previous = GENESIS
    with open(path, "rb") as f:
        for number, line in enumerate(f.read().splitlines(), 1):
            try:
                entry = json.loads(line)
            except ValueError:
                return number
            if entry.get("prev") != previous:
                return number
            previous = hashlib.sha256(line).hexdigest()
    return None
