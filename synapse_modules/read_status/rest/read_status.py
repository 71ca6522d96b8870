"""Read status routes under ``/_synapse/client/lgwan/v1/rooms/{roomId}/``.

- ``GET  read_status/{eventId}``: who has and has not read one event.
- ``POST read_status`` ``{"event_ids": [...]}``: read / unread counts for many events.
- ``GET  read_status?limit=N``: the same for the room's last N events.

Only joined members of the room may ask. Everything is read in one database
transaction (the unchanged part of a room from memory, see ``room_cache.py``); nothing is
added to sending events or receipts.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from synapse.api.errors import Codes
from synapse.module_api import ModuleApi

from synapse_modules._errors import error, refusal
from synapse_modules._metrics import READ_STATUS_SECONDS
from synapse_modules._rest import request_body

from .. import synapse_tables as tables
from ..config import ReadStatusConfig
from ..room_cache import ROOM_READS
from ..status import Counter, Status, status
from ..synapse_tables import EventPosition

if TYPE_CHECKING:
    from synapse.http.site import SynapseRequest


def event_status_txn(cur: Any, room_id: str, event_id: str, user_id: str) -> tuple[EventPosition, Status] | str:
    """One event's read status as ``user_id`` may see it, or "not_member" / "unknown_event".
    Shared by the read status and the acknowledgement stamps routes."""
    reads = ROOM_READS.reads(cur, room_id)
    if user_id not in reads.members:
        return "not_member"
    event = tables.event_positions(cur, room_id, [event_id]).get(event_id)
    if event is None:
        return "unknown_event"
    return event, status(reads, event)


class ReadStatusRoutes:
    def __init__(self, api: ModuleApi, config: ReadStatusConfig):
        self._api = api
        self._config = config

    async def _member(self, request: SynapseRequest) -> str:
        return (await self._api.get_user_by_req(request)).user.to_string()

    async def one(self, request: SynapseRequest, room_id: str, event_id: str) -> tuple[int, dict]:
        user_id = await self._member(request)

        def txn(cur: Any) -> dict | str:
            found = event_status_txn(cur, room_id, event_id, user_id)
            if isinstance(found, str):
                return found
            event, result = found
            # Who showed they read it by writing after it: when they first wrote (one query for all).
            by_writing = [u for u, ts in result.read if ts is None]
            wrote = tables.first_sent_at_or_after(cur, room_id, by_writing, event.stream_ordering) if by_writing else {}
            # In the order they read (who read least far first); clients sort by "ts" as they like.
            read = [{"user_id": u, "ts": ts if ts is not None else wrote.get(u)} for u, ts in result.read]
            return {"event_id": event_id, "read": read, "unread": result.unread,
                    "read_count": len(read), "unread_count": len(result.unread)}

        with READ_STATUS_SECONDS.labels("one").time():
            answer = await self._api.run_db_interaction("lgwan_read_status_one", txn)
        return 200, self.raise_for(answer, event_id)

    async def many(self, request: SynapseRequest, room_id: str) -> tuple[int, dict]:
        user_id = await self._member(request)
        event_ids = self._event_ids(request)
        limit = self._limit(request) if event_ids is None else 0  # 0: unused, the ids say which

        def txn(cur: Any) -> dict | str:
            reads = ROOM_READS.reads(cur, room_id)
            if user_id not in reads.members:
                return "not_member"
            if event_ids is None:
                events = tables.recent_events(cur, room_id, limit)
            else:
                found = tables.event_positions(cur, room_id, event_ids)
                events = [found[e] for e in event_ids if e in found]
            counter = Counter(reads, events)
            counted = []
            for event in events:
                read, unread = counter.counts(event)
                counted.append({"event_id": event.event_id, "read_count": read, "unread_count": unread})
            missing = [] if event_ids is None else [e for e in event_ids if e not in {c["event_id"] for c in counted}]
            return {"room_id": room_id, "events": counted, "not_found": missing}

        with READ_STATUS_SECONDS.labels("many").time():
            answer = await self._api.run_db_interaction("lgwan_read_status_many", txn)
        return 200, self.raise_for(answer, None)

    def _event_ids(self, request: SynapseRequest) -> list[str] | None:
        if request.method != b"POST":
            return None
        try:
            body = json.loads(request_body(request) or b"{}")
        except ValueError:
            raise error(400, Codes.NOT_JSON, "read_status.bad_batch", limit=self._config.max_batch) from None
        ids = body.get("event_ids") if isinstance(body, dict) else None
        if (not isinstance(ids, list) or not ids or len(ids) > self._config.max_batch
                or not all(isinstance(i, str) and i.startswith("$") for i in ids)):
            raise error(400, Codes.BAD_JSON, "read_status.bad_batch", limit=self._config.max_batch)
        return list(dict.fromkeys(ids))

    def _limit(self, request: SynapseRequest) -> int:
        raw = request.args.get(b"limit", [b""])[0].decode("ascii", "replace")
        if not raw:
            return self._config.default_recent
        if not raw.isdigit() or not 1 <= int(raw) <= self._config.max_batch:
            raise error(400, Codes.INVALID_PARAM, "read_status.bad_limit", limit=self._config.max_batch)
        return int(raw)

    @staticmethod
    def raise_for(answer: dict | str, event_id: str | None) -> dict:
        """The refusals every room-scoped answer may turn into (shared with the stamps routes);
        the answer itself when it is not one."""
        if answer == "not_member":
            raise refusal("not_member", "read_status.not_member")
        if answer == "unknown_event":
            raise error(404, Codes.NOT_FOUND, "read_status.unknown_event", event_id=event_id)
        if isinstance(answer, str):
            raise ValueError(f"unexpected refusal {answer!r}")
        return answer
