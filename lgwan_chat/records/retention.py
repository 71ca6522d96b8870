"""Retention with Synapse's own support, and legal holds.

Synapse purges a room's history older than the room's ``m.room.retention`` ``max_lifetime``
(rooms without one: the server's ``default_policy``) in the purge jobs of its ``retention:``
block. This module writes that block (``homeserver_block``) and sets ``m.room.retention`` on
the rooms the provisioning manages, by their kind (``apply``).

A legal hold (``hold``) is recorded in the room itself, in the state event ``HOLD_EVENT``
(reason, who, when, and the retention policy the room had), and sets the room's
``max_lifetime`` to ``HOLD_LIFETIME_MS`` (a thousand years). Synapse's purge job only looks at
rooms up to ``PURGE_CEILING``: a held room is never in its range, and no client ever sees its
history filtered either. ``unhold`` puts the remembered policy back. Both state events need
power level 100 (set by ``apply``), and the zone module refuses them (and their redaction) unless a
server admin's token sends them, directly or through the login as a member below
(``synapse_modules/zones/records_guard.py``): room creators outrank power levels from room version 12.
Kept in the room's state, a hold survives restarts and restores, is in every backup of the
database, and its history is the room's state history.

The admin need not be in the room (a DM between two members of staff): its state is read through
the admin API, and the state events are sent through the admin API's login as the local member
with the highest power level (a token valid for minutes, logged out at once), never by joining the
room. The marker then names that member in ``sent_as``, and the audit log says so.
"""

from __future__ import annotations

import contextlib
import time
import urllib.parse
from collections.abc import Iterator
from typing import Any

import attrs

from lgwan_chat.core.http import HttpError
from lgwan_chat.core.i18n import both
from lgwan_chat.core.organisation import Organisation
from lgwan_chat.core.records_state import HOLD_EVENT, RETENTION_EVENT

from .config import HOLD_LIFETIME_MS, PURGE_CEILING, Records, Retention, period_ms

#: power level needed to change either of them
GUARD_LEVEL = 100
#: Room versions whose creator holds an ordinary power level (from 12, creators outrank them all).
CLASSIC_ROOM_VERSIONS = frozenset(str(v) for v in range(1, 12))
#: How long the token of a member acted as is valid (it is logged out right after use).
ACT_AS_MS = 5 * 60 * 1000


class RecordsError(RuntimeError):
    """A problem the admin must fix; the message is Japanese then English."""


def _q(value: str) -> str:
    return urllib.parse.quote(value, safe="")


def homeserver_block(retention: Retention) -> dict[str, Any]:
    """The ``retention:`` block of homeserver.yaml for these periods."""
    periods = [period_ms(getattr(retention, kind)) for kind in ("departments", "projects", "announcement", "other")]
    periods += [period_ms(p) for p in retention.rooms.values()]
    finite = [p for p in periods if p is not None]
    block: dict[str, Any] = {
        "enabled": True,
        "purge_jobs": [{"interval": retention.purge_interval, "longest_max_lifetime": PURGE_CEILING}],
    }
    if retention.other != "forever":
        block["default_policy"] = {"max_lifetime": retention.other}
    if finite:
        # no room (a DM whose members set m.room.retention themselves) loses history sooner
        block["allowed_lifetime_min"] = min(finite)
    return block


@attrs.frozen
class ManagedRoom:
    alias_key: str  # <municipality>-<id>
    kind: str  # departments, projects, announcement
    org_id: str


def managed_rooms(org: Organisation) -> list[ManagedRoom]:
    """Every message room the provisioning makes, with its kind (spaces hold no messages)."""
    rooms = []
    for d in org.all_departments():
        rooms.append(ManagedRoom(f"{org.id}-{d.id}", "departments", d.id))
        rooms += [ManagedRoom(f"{org.id}-{r.id}", "departments", r.id) for r in d.rooms]
    rooms += [ManagedRoom(f"{org.id}-{p.id}", "projects", p.id) for p in org.projects]
    if org.announcement is not None:
        rooms.append(ManagedRoom(f"{org.id}-{org.announcement.id}", "announcement", org.announcement.id))
    return rooms


def wanted_policy(retention: Retention, room: ManagedRoom) -> dict[str, int]:
    ms = retention.lifetime_ms(room.kind, room.org_id)
    return {"max_lifetime": HOLD_LIFETIME_MS if ms is None else ms}


def all_rooms(client: Any) -> Iterator[str]:
    """Every room of the server (the admin API's room list), the admin's or not."""
    start: int | None = 0
    while start is not None:
        page = client.call("GET", f"/_synapse/admin/v1/rooms?limit=500&from={start}")
        for room in page.get("rooms") or []:
            yield room["room_id"]
        start = page.get("next_batch")


class Rooms:
    """Room state through the client-server API in the rooms the admin is in; through the admin API
    (and the admin API's login as a member, for writing) in the others."""

    def __init__(self, client: Any):
        self.client = client  # lgwan_chat.provisioning.apply.Client
        self._joined: set[str] | None = None
        self._me: str | None = None
        #: room id -> the member whose login sent this run's state events there (rooms the admin is not in)
        self.sent_as: dict[str, str] = {}

    def whoami(self) -> str:
        if self._me is None:
            self._me = str(self.client.call("GET", "/_matrix/client/v3/account/whoami")["user_id"])
        return self._me

    def joined(self, room_id: str) -> bool:
        if self._joined is None:
            self._joined = set(self.client.call("GET", "/_matrix/client/v3/joined_rooms")["joined_rooms"])
        return room_id in self._joined

    def _admin_state(self, room_id: str) -> list[dict[str, Any]]:
        try:
            return list(self.client.call("GET", f"/_synapse/admin/v1/rooms/{_q(room_id)}/state").get("state") or [])
        except HttpError as e:
            if e.status == 404:
                raise RecordsError(both("records.unknown_room_alias", room=room_id)) from None
            if e.status == 403:
                raise RecordsError(both("records.not_in_room", room=room_id)) from None
            raise

    def acting_member(self, room_id: str, event_type: str) -> str:
        """The local member allowed to send ``event_type`` with the highest power level."""
        state = self._admin_state(room_id)

        def content(event_type: str) -> dict[str, Any]:
            return next((ev["content"] for ev in state if ev["type"] == event_type and ev.get("state_key") == ""), {})

        levels = content("m.room.power_levels")
        needed = (levels.get("events") or {}).get(event_type, levels.get("state_default", 50))
        users = levels.get("users") or {}
        creators: set[str] = set()
        create = next((ev for ev in state if ev["type"] == "m.room.create" and ev.get("state_key") == ""), None)
        if create is not None and str(create["content"].get("room_version", "1")) not in CLASSIC_ROOM_VERSIONS:
            # room version 12 on: the creators (a DM's both members) outrank any power level
            creators = {create["sender"], *(create["content"].get("additional_creators") or [])}
        server = ":" + self.whoami().split(":", 1)[1]
        members = [ev["state_key"] for ev in state if ev["type"] == "m.room.member"
                   and ev["content"].get("membership") == "join" and ev["state_key"].endswith(server)]
        able = sorted(((float("inf") if m in creators else users.get(m, levels.get("users_default", 0)), m)
                       for m in members), reverse=True)
        if not able or able[0][0] < needed:
            raise RecordsError(both("records.no_member_can_hold", room=room_id))
        return able[0][1]

    def _put_as_member(self, room_id: str, event_type: str, content: dict[str, Any]) -> None:
        member = self.sent_as.get(room_id) or self.acting_member(room_id, event_type)
        login = self.client.call("POST", f"/_synapse/admin/v1/users/{_q(member)}/login",
                                 {"valid_until_ms": int(time.time() * 1000) + ACT_AS_MS})
        acting = attrs.evolve(self.client, token=login["access_token"])
        try:
            acting.call("PUT", f"/_matrix/client/v3/rooms/{_q(room_id)}/state/{_q(event_type)}/", content)
        except HttpError as e:
            if e.status == 403:
                raise RecordsError(both("records.not_allowed", room=room_id)) from None
            raise
        finally:
            with contextlib.suppress(HttpError):  # it expires within ACT_AS_MS anyway
                acting.call("POST", "/_matrix/client/v3/logout", {})
        self.sent_as[room_id] = member

    def resolve(self, room: str) -> str:
        """A room id from ``!id:server`` or ``#alias:server``."""
        if room.startswith("!"):
            return room
        if room.startswith("#"):
            try:
                return str(self.client.call("GET", f"/_matrix/client/v3/directory/room/{_q(room)}")["room_id"])
            except HttpError as e:
                if e.status == 404:
                    raise RecordsError(both("records.unknown_room_alias", room=room)) from None
                raise
        raise RecordsError(both("records.bad_room", room=room))

    def state(self, room_id: str, event_type: str) -> dict[str, Any] | None:
        if not self.joined(room_id):
            return next((dict(ev["content"]) for ev in self._admin_state(room_id)
                         if ev["type"] == event_type and ev.get("state_key") == ""), None)
        try:
            return dict(self.client.call(
                "GET", f"/_matrix/client/v3/rooms/{_q(room_id)}/state/{_q(event_type)}/"))
        except HttpError as e:
            if e.status == 404:
                return None
            if e.status == 403:
                raise RecordsError(both("records.not_in_room", room=room_id)) from None
            raise

    def put(self, room_id: str, event_type: str, content: dict[str, Any]) -> None:
        if not self.joined(room_id):
            self._put_as_member(room_id, event_type, content)
            return
        try:
            self.client.call("PUT", f"/_matrix/client/v3/rooms/{_q(room_id)}/state/{_q(event_type)}/", content)
        except HttpError as e:
            if e.status == 403:
                raise RecordsError(both("records.not_allowed", room=room_id)) from None
            raise

    def guard(self, room_id: str) -> bool:
        """Only power level 100 may change the retention policy or a hold. True if changed."""
        levels = self.state(room_id, "m.room.power_levels") or {}
        events = dict(levels.get("events") or {})
        if all(events.get(t, -1) >= GUARD_LEVEL for t in (RETENTION_EVENT, HOLD_EVENT)):
            return False
        for t in (RETENTION_EVENT, HOLD_EVENT):
            events[t] = max(GUARD_LEVEL, events.get(t, 0))
        self.put(room_id, "m.room.power_levels", {**levels, "events": events})
        return True

    def held(self, room_id: str) -> dict[str, Any] | None:
        marker = self.state(room_id, HOLD_EVENT)
        if marker is not None and "held" not in marker:
            # Redacted (every marker written here says "held"): only another server can, the zone module
            # refuses it here. Synapse still keeps the room (its purge reads the retention it stored), and
            # so does this: held, so that apply leaves it alone; unhold then hold again writes it anew.
            return {"held": True, "redacted": True, "reason": "", "by": "", "since": 0, "previous": None}
        return marker if marker and marker.get("held") else None


def apply(rooms: Rooms, org: Organisation, records: Records, dry_run: bool = False) -> list[str]:
    """Set ``m.room.retention`` (and its guard) on every managed room that exists; held rooms
    are left as they are. Returns what was done (or would be), one line each, ja / en."""
    server = rooms.whoami().split(":", 1)[1]
    done = []
    for room in managed_rooms(org):
        alias = f"#{room.alias_key}:{server}"
        try:
            room_id = rooms.resolve(alias)
        except RecordsError:
            continue  # not made yet: the next provisioning run sets it
        if rooms.held(room_id):
            done.append(both("records.apply_held", room=alias))
            continue
        want = wanted_policy(records.retention, room)
        have = rooms.state(room_id, RETENTION_EVENT)
        if have != want:
            done.append(both("records.apply_policy", room=alias, period=records.retention.rooms.get(
                room.org_id, getattr(records.retention, room.kind))))
            if not dry_run:
                rooms.put(room_id, RETENTION_EVENT, want)
        if not dry_run:
            rooms.guard(room_id)
    return done


def hold(rooms: Rooms, room: str, reason: str) -> dict[str, Any]:
    """Exempt a room from purging; returns the hold recorded in the room."""
    room_id = rooms.resolve(room)
    if rooms.held(room_id):
        raise RecordsError(both("records.already_held", room=room))
    previous = rooms.state(room_id, RETENTION_EVENT)
    marker: dict[str, Any] = {"held": True, "reason": reason, "by": rooms.whoami(),
                              "since": int(time.time() * 1000), "previous": previous}
    if not rooms.joined(room_id):
        member = rooms.acting_member(room_id, HOLD_EVENT)
        marker["sent_as"] = rooms.sent_as[room_id] = member
    # the marker first: if the policy cannot be set, unhold still knows what to put back
    rooms.put(room_id, HOLD_EVENT, marker)
    rooms.put(room_id, RETENTION_EVENT, {"max_lifetime": HOLD_LIFETIME_MS})
    rooms.guard(room_id)
    return {"room_id": room_id, **marker}


def unhold(rooms: Rooms, room: str, reason: str) -> dict[str, Any]:
    """Lift a hold: the room's retention policy from before the hold applies again."""
    room_id = rooms.resolve(room)
    marker = rooms.held(room_id)
    if marker is None:
        raise RecordsError(both("records.not_held", room=room))
    rooms.put(room_id, RETENTION_EVENT, marker.get("previous") or {})
    released = {"held": False, "reason": reason, "by": rooms.whoami(), "since": int(time.time() * 1000),
                "hold": {k: marker.get(k) for k in ("reason", "by", "since")}}
    if room_id in rooms.sent_as:
        released["sent_as"] = rooms.sent_as[room_id]
    rooms.put(room_id, HOLD_EVENT, released)
    return {"room_id": room_id, **released}


def holds(rooms: Rooms) -> list[dict[str, Any]]:
    """Every room under hold on the server, the admin's or not (DMs too)."""
    found = []
    for room_id in all_rooms(rooms.client):
        marker = rooms.held(room_id)
        if marker is not None:
            name = (rooms.state(room_id, "m.room.name") or {}).get("name", "")
            found.append({"room_id": room_id, "name": name, **marker})
    return sorted(found, key=lambda h: h["since"])
