"""Files of purged messages: ``lgwan-chat records purge-media``.

Synapse's retention purge removes events, not the files they point to, and its own
``media_retention`` deletes by last access, whatever room a file is in (a held room's files
too). This job deletes a local file only when it was seen in some room's messages at an
earlier run and is no longer referenced by any message of any room: its messages were purged
(or deleted by their sender and pruned by Synapse). Files never seen in a message (profile
pictures, stamp packs, uploads waiting for the sanitizer) are never touched, nor files last
seen in a room under legal hold. Run it daily, after Synapse's purge job (a systemd timer);
what it saw is kept in ``state_file`` (0600), what it deleted is returned for the audit log.
"""

from __future__ import annotations

import json
import os
import urllib.parse
from pathlib import Path
from typing import Any

from .retention import HOLD_EVENT, all_rooms


def _q(value: str) -> str:
    return urllib.parse.quote(value, safe="")


def referenced(client: Any) -> dict[str, str]:
    """Local mxc URI -> a room whose messages reference it, over every room."""
    found: dict[str, str] = {}
    for room_id in all_rooms(client):
        for mxc in client.call("GET", f"/_synapse/admin/v1/room/{_q(room_id)}/media").get("local") or []:
            found.setdefault(mxc, room_id)
    return found


def _held(client: Any, room_id: str) -> bool:
    state = client.call("GET", f"/_synapse/admin/v1/rooms/{_q(room_id)}/state").get("state") or []
    # a redacted marker (no "held" at all) counts as held, as in retention.Rooms.held
    return any(ev["type"] == HOLD_EVENT and ev.get("state_key") == "" and ev["content"].get("held", True)
               for ev in state)


def purge_media(client: Any, state_file: Path, dry_run: bool = False) -> list[str]:
    """Delete the files no message references any more; returns their mxc URIs."""
    try:
        seen: dict[str, str] = json.loads(state_file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        seen = {}
    now = referenced(client)
    gone = {mxc: room for mxc, room in seen.items() if mxc not in now}
    held = {room for room in set(gone.values()) if _held(client, room)}
    deleted = []
    keep = dict(now)
    for mxc, room in sorted(gone.items()):
        if room in held:
            keep[mxc] = room  # still the hold's: looked at again once the hold is lifted
            continue
        server, media_id = mxc[len("mxc://"):].split("/", 1)
        if not dry_run:
            client.call("DELETE", f"/_synapse/admin/v1/media/{_q(server)}/{_q(media_id)}")
        deleted.append(mxc)
    if not dry_run:
        state_file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = state_file.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(keep, f)
        os.replace(tmp, state_file)
    return deleted
