"""Which rooms count as LGWAN-only (``synapse_modules/zones/room_zone.py``), read from room state as
Synapse's event store hands it to the module: real events, redacted ones pruned by Synapse's own
``prune_event``. The live cases (calls refused, upgrades, another server's lift and redaction) are in
test_zone_calls_and_encryption.py and test_zone_federation.py."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from synapse.api.room_versions import RoomVersions
from synapse.events import make_event_from_dict
from synapse.events.utils import prune_event

from synapse_modules.zones.room_zone import MAX_PREDECESSORS, is_lgwan_only

ZONE, CREATE = "jp.lgwan.room.zone", "m.room.create"


def state_event(event_type: str, room_id: str, content: dict) -> Any:
    return make_event_from_dict({"type": event_type, "state_key": "", "room_id": room_id, "sender": "@a:lgwan.test",
                                 "content": content, "auth_events": [], "prev_events": [], "depth": 1,
                                 "origin_server_ts": 0, "hashes": {"sha256": "x"}, "signatures": {}},
                                RoomVersions.V10)


class RoomsApi:
    """``get_room_state`` over a few rooms: room id -> {event type: event}."""

    def __init__(self, rooms: dict[str, dict[str, Any]]):
        self.rooms = rooms

    async def get_room_state(self, room_id: str, keys: list[tuple[str, str]]) -> dict:
        return {(t, ""): ev for t, ev in self.rooms.get(room_id, {}).items() if (t, "") in keys}


def lgwan_only(rooms: dict[str, dict[str, Any]], room_id: str = "!r:lgwan.test") -> bool:
    return asyncio.run(is_lgwan_only(RoomsApi(rooms), room_id))  # type: ignore[arg-type]


@pytest.mark.parametrize("content, expected", [
    ({"lgwan_only": True}, True),
    ({"lgwan_only": False}, False),
    ({"lgwan_only": "true"}, False),  # only JSON true marks a room
    ({}, False),  # a marker sent empty by a room admin of ours
])
def test_the_marker_content_decides(content, expected):
    assert lgwan_only({"!r:lgwan.test": {ZONE: state_event(ZONE, "!r:lgwan.test", content)}}) is expected


@pytest.mark.parametrize("content", [{"lgwan_only": True}, {"lgwan_only": False}])
def test_a_redacted_marker_counts_as_lgwan_only_whatever_it_said(content):
    # another server's redaction, applied by Synapse on read even when the module refused it
    redacted = prune_event(state_event(ZONE, "!r:lgwan.test", content))
    assert redacted.content == {}
    assert lgwan_only({"!r:lgwan.test": {ZONE: redacted}}) is True


def test_a_room_without_a_marker_is_not_lgwan_only():
    assert lgwan_only({"!r:lgwan.test": {CREATE: state_event(CREATE, "!r:lgwan.test", {})}}) is False


def test_an_upgraded_room_inherits_the_marker_of_its_predecessors():
    rooms = {"!old:lgwan.test": {ZONE: state_event(ZONE, "!old:lgwan.test", {"lgwan_only": True})},
             "!r:lgwan.test": {CREATE: state_event(CREATE, "!r:lgwan.test",
                                                   {"predecessor": {"room_id": "!old:lgwan.test"}})}}
    assert lgwan_only(rooms) is True


def test_a_loop_or_a_too_long_chain_of_predecessors_counts_as_lgwan_only():
    loop = {f"!{i}:lgwan.test": {CREATE: state_event(CREATE, f"!{i}:lgwan.test",
                                                     {"predecessor": {"room_id": f"!{(i + 1) % 2}:lgwan.test"}})}
            for i in range(2)}
    assert lgwan_only(loop, "!0:lgwan.test") is True
    chain = {f"!{i}:lgwan.test": {CREATE: state_event(CREATE, f"!{i}:lgwan.test",
                                                      {"predecessor": {"room_id": f"!{i + 1}:lgwan.test"}})}
             for i in range(MAX_PREDECESSORS + 1)}
    assert lgwan_only(chain, "!0:lgwan.test") is True
    # a predecessor this server does not have adds nothing
    assert lgwan_only({"!0:lgwan.test": chain["!0:lgwan.test"]}, "!0:lgwan.test") is False


# --- another server's member cannot lift the marker (zones.event_rules, REMOTE_MARKER_LIFT) -------

#: Every JSON kind for ``lgwan_only``, and no key at all: only JSON true keeps a room LGWAN-only.
LGWAN_ONLY_VALUES = [True, False, None, 0, 1, "true", "True", "", [], [True], {}, {"lgwan_only": True}, 1.0]


def marker_contents() -> list[dict]:
    contents: list[dict] = [{}, {"lgwan_only_": True}, {"LGWAN_ONLY": True}]
    for value in LGWAN_ONLY_VALUES:
        contents += [{"lgwan_only": value}, {"lgwan_only": value, "note": "先方"}]
    return contents


class ServerApi(RoomsApi):
    """Our server is lgwan.test; everything else is another server."""

    public_baseurl = "https://chat.lgwan.test/"

    def is_mine(self, user_id: str) -> bool:
        return user_id.endswith(":lgwan.test")


def remote_lift_refused(sender: str, state_key: str, content: dict, room_lgwan_only: bool) -> bool:
    from synapse_modules.zones import ZonePolicyModule
    from synapse_modules.zones.event_rules import EventRules

    room = "!r:lgwan.test"
    marker = {"lgwan_only": True} if room_lgwan_only else {"lgwan_only": False}
    api = ServerApi({room: {ZONE: state_event(ZONE, room, marker)}})
    rules = EventRules(ZonePolicyModule.parse_config({}), None, api)  # type: ignore[arg-type]
    event = make_event_from_dict({"type": ZONE, "state_key": state_key, "room_id": room, "sender": sender,
                                  "content": content, "auth_events": [], "prev_events": [], "depth": 2,
                                  "origin_server_ts": 0, "hashes": {"sha256": "x"}, "signatures": {}},
                                 RoomVersions.V10)
    verdict = asyncio.run(rules.check_event_for_spam(event))
    return isinstance(verdict, tuple) and verdict[1].get("jp.lgwan.reason") == "zone_marker_remote_lift"


@pytest.mark.parametrize("content", marker_contents(), ids=repr)
def test_another_servers_marker_in_our_lgwan_only_room_is_refused_unless_it_keeps_it(content):
    keeps = content.get("lgwan_only") is True
    assert remote_lift_refused("@partner:remote.test", "", content, room_lgwan_only=True) is not keeps
    # our own room admins change it (under power levels); a room that is not LGWAN-only has nothing
    # to lift; a marker under another state key is not the one the zone rules read
    assert not remote_lift_refused("@kacho:lgwan.test", "", content, room_lgwan_only=True)
    assert not remote_lift_refused("@partner:remote.test", "", content, room_lgwan_only=False)
    assert not remote_lift_refused("@partner:remote.test", "x", content, room_lgwan_only=True)
