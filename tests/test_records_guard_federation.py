"""Another homeserver cannot lift our legal hold or LGWAN-only marker, shorten our retention or redact them,
with a stock Synapse federating with ours on loopback. Ours runs the zone module (the guard's home).
"""

from __future__ import annotations

import json

import pytest
from federation import federating_homeserver, make_tls
from harness import eventually
from nio import RoomPutStateResponse, RoomRedactResponse, RoomSendResponse
from test_zone_entry_points import q
from test_zone_federation import shared_room, timeline_types

from lgwan_chat.cli import main as cli
from lgwan_chat.provisioning.apply import Client
from lgwan_chat.records.config import HOLD_LIFETIME_MS

HOLD = "jp.lgwan.records.hold"
RETENTION = "m.room.retention"
ZONE = "jp.lgwan.room.zone"


@pytest.fixture(scope="module")
def federation_tls(tmp_path_factory):
    return make_tls(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def neighbours(federation_tls, tmp_path_factory):
    # A stock Synapse that tries again every few seconds to send what it could not (its default
    # waits up to a minute between tries): the test stops our server while the neighbour sends.
    neighbour = federating_homeserver(tmp_path_factory.mktemp("neighbour"), "sqlite", federation_tls, modules=[],
                                      extra={"federation": {"max_long_retry_delay": "2s"}})
    neighbour.start()
    try:
        yield [neighbour]
    finally:
        neighbour.close()


@pytest.fixture(scope="module")
def homeserver(hs_backend, federation_tls, tmp_path_factory):
    ours = federating_homeserver(tmp_path_factory.mktemp(f"ours-{hs_backend}"), hs_backend, federation_tls,
                                 modules=[{"module": "synapse_modules.zones.ZonePolicyModule", "config": {}}])
    ours.start()
    try:
        yield ours
    finally:
        ours.close()


async def test_a_remote_server_cannot_lift_our_hold_or_lgwan_only_marker_shorten_our_retention_or_redact_them(
        homeserver, login, neighbours, remote_login, tmp_path, capsys):
    staff = await login(homeserver.new_user("staff"), "lgwan")
    remote = await remote_login(neighbours[0], "partner")
    # the neighbour's user may change any state of the room, as far as power levels go
    room_id = await shared_room(staff, remote, "広域連携", remote_power=100)
    # the room is LGWAN-only too (its marker, set by our room admin, is kept the same way)
    assert isinstance(await staff.room_put_state(room_id, ZONE, {"lgwan_only": True}), RoomPutStateResponse)
    token = homeserver.new_user("records", admin=True).access_token
    admin = Client(homeserver.url("lgwan"), token)
    server = ["--homeserver", homeserver.url("lgwan"), "--admin-token", token]
    assert cli(["records", "hold", room_id, "--reason", "監査対応", *server,
                "--audit-log", str(tmp_path / "audit.log")]) == 0

    def records_state() -> dict[str, dict]:
        state = admin.call("GET", f"/_synapse/admin/v1/rooms/{q(room_id)}/state")["state"]
        return {ev["type"]: ev for ev in state if ev["type"] in (HOLD, RETENTION, ZONE) and ev["state_key"] == ""}

    held = records_state()
    assert held[RETENTION]["content"] == {"max_lifetime": HOLD_LIFETIME_MS} and held[HOLD]["content"]["held"]
    # the neighbour has the hold too (its state is what it builds on)
    assert isinstance(await remote.room_send(room_id, "m.room.message", {"msgtype": "m.text", "body": "受領"}),
                      RoomSendResponse)
    await timeline_types(staff, room_id, "受領")

    # The neighbour changes them while our server is down (a maintenance window), and our staff
    # change the topic before its events arrive: the room forks, and when the neighbour's events
    # come in Synapse resolves the two branches' state. A module can only soft-fail another server's
    # events (keep them out of the state when they arrive), not veto an event its power levels allow:
    # the resolved state may take the neighbour's hold and retention ...
    homeserver.hs.stop()
    for event_type, content in ((HOLD, {"held": False, "reason": "remote"}), (RETENTION, {"max_lifetime": 1000}),
                                (ZONE, {"lgwan_only": False})):
        assert isinstance(await remote.room_put_state(room_id, event_type, content), RoomPutStateResponse)
    for event in held.values():
        assert isinstance(await remote.room_redact(room_id, event["event_id"], "remote"), RoomRedactResponse)
    assert isinstance(await remote.room_send(room_id, "m.room.message", {"msgtype": "m.text", "body": "目印"}),
                      RoomSendResponse)
    homeserver.hs.start()
    assert isinstance(await staff.room_put_state(room_id, "m.room.topic", {"topic": "広域連携（監査対応中）"}),
                      RoomPutStateResponse)
    # everything the neighbour sent has arrived (its next try, after the one that found our server down)
    await eventually(lambda: timeline_types(staff, room_id, "目印"), timeout=120)
    # ... as it did
    changed = homeserver.query("SELECT e.sender FROM current_state_delta_stream AS d JOIN events AS e"
                               " USING (event_id) WHERE d.room_id = ? AND d.type IN (?, ?, ?)", room_id, HOLD,
                               RETENTION, ZONE)
    assert {sender for (sender,) in changed} == {ev["sender"] for ev in held.values()} | {remote.user_id}

    # ... so the server puts the records flow's values back, sent by the member who sent them
    def restored() -> dict[str, dict]:
        now = records_state()
        for event_type, event in now.items():
            assert event["sender"] == held[event_type]["sender"], event
            assert event["content"] == held[event_type]["content"], event
        return now

    now = await eventually(restored)
    # (our own events of then are redacted by the neighbour: only new ones hold the values in full)
    replaced = {t for t, ev in now.items() if ev["event_id"] != held[t]["event_id"]}
    assert replaced == {HOLD, RETENTION, ZONE}
    # the purge job reads the period Synapse stored with the current retention event
    assert homeserver.query("SELECT max_lifetime FROM room_retention JOIN current_state_events"
                            " USING (event_id, room_id) WHERE room_id = ?", room_id) == [(HOLD_LIFETIME_MS,)]

    def logged() -> None:  # each put back is in the server's log, naming the other server's event
        log = homeserver.log_path.read_text(encoding="utf-8")  # (written once its send returns)
        for event_type in replaced:
            assert f"state keeper: {event_type} of room {room_id} was replaced by @partner" in log

    await eventually(logged, timeout=10)

    def holds() -> dict[str, dict]:
        capsys.readouterr()
        assert cli(["records", "holds", *server]) == 0
        return {h["room_id"]: h for h in map(json.loads, capsys.readouterr().out.splitlines())}

    # the records tools count the room as held, and the admin can still change it
    assert holds()[room_id]["held"] is True
    for command in ("unhold", "hold"):
        assert cli(["records", command, room_id, "--reason", "再設定", *server,
                    "--audit-log", str(tmp_path / "audit.log")]) == 0
    assert holds()[room_id]["reason"] == "再設定" and "redacted" not in holds()[room_id]
    assert records_state()[RETENTION]["content"] == {"max_lifetime": HOLD_LIFETIME_MS}
