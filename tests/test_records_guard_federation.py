"""Another homeserver cannot lift our legal hold, shorten our retention or redact them (issue #18),
with a stock Synapse federating with ours on loopback. Ours runs the zone module (the guard's home).
"""

from __future__ import annotations

import json

import pytest
from federation import federating_homeserver, make_tls, stock_homeservers
from nio import RoomPutStateResponse, RoomRedactResponse, RoomSendResponse
from test_zone_entry_points import q
from test_zone_federation import shared_room, timeline_types

from lgwan_chat.cli import main as cli
from lgwan_chat.provisioning.apply import Client
from lgwan_chat.records.config import HOLD_LIFETIME_MS

HOLD = "jp.lgwan.records.hold"
RETENTION = "m.room.retention"


@pytest.fixture(scope="module")
def federation_tls(tmp_path_factory):
    return make_tls(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def neighbours(federation_tls, tmp_path_factory):
    with stock_homeservers(tmp_path_factory, federation_tls, ("neighbour",)) as servers:
        yield servers


@pytest.fixture(scope="module")
def homeserver(hs_backend, federation_tls, tmp_path_factory):
    ours = federating_homeserver(tmp_path_factory.mktemp(f"ours-{hs_backend}"), hs_backend, federation_tls,
                                 modules=[{"module": "synapse_modules.zones.ZonePolicyModule", "config": {}}])
    ours.start()
    try:
        yield ours
    finally:
        ours.close()


async def test_a_remote_server_cannot_lift_our_hold_shorten_our_retention_or_redact_them(
        homeserver, login, neighbours, remote_login, tmp_path, capsys):
    staff = await login(homeserver.new_user("staff"), "lgwan")
    remote = await remote_login(neighbours[0], "partner")
    # the neighbour's user may change any state of the room, as far as power levels go
    room_id = await shared_room(staff, remote, "広域連携", remote_power=100)
    token = homeserver.new_user("records", admin=True).access_token
    admin = Client(homeserver.url("lgwan"), token)
    server = ["--homeserver", homeserver.url("lgwan"), "--admin-token", token]
    assert cli(["records", "hold", room_id, "--reason", "監査対応", *server,
                "--audit-log", str(tmp_path / "audit.log")]) == 0

    def records_state() -> dict[str, dict]:
        state = admin.call("GET", f"/_synapse/admin/v1/rooms/{q(room_id)}/state")["state"]
        return {ev["type"]: ev for ev in state if ev["type"] in (HOLD, RETENTION) and ev["state_key"] == ""}

    held = records_state()
    assert held[RETENTION]["content"] == {"max_lifetime": HOLD_LIFETIME_MS} and held[HOLD]["content"]["held"]
    # the neighbour has the hold too (its state is what it builds on)
    assert isinstance(await remote.room_send(room_id, "m.room.message", {"msgtype": "m.text", "body": "受領"}),
                      RoomSendResponse)
    await timeline_types(staff, room_id, "受領")

    for event_type, content in ((HOLD, {"held": False, "reason": "remote"}), (RETENTION, {"max_lifetime": 1000})):
        assert isinstance(await remote.room_put_state(room_id, event_type, content), RoomPutStateResponse)
    for event in held.values():
        assert isinstance(await remote.room_redact(room_id, event["event_id"], "remote"), RoomRedactResponse)
    assert isinstance(await remote.room_send(room_id, "m.room.message", {"msgtype": "m.text", "body": "目印"}),
                      RoomSendResponse)
    await timeline_types(staff, room_id, "目印")  # everything the neighbour sent has arrived

    # the neighbour's changes did not take: the same hold and retention events are our room's state
    now = records_state()
    assert {t: ev["event_id"] for t, ev in now.items()} == {t: ev["event_id"] for t, ev in held.items()}
    # Synapse applies the neighbour's redactions when reading them all the same (a module cannot stop
    # that): the purge job still reads the period Synapse stored with the retention event ...
    assert homeserver.query("SELECT max_lifetime FROM room_retention JOIN current_state_events"
                            " USING (event_id, room_id) WHERE room_id = ?", room_id) == [(HOLD_LIFETIME_MS,)]

    def holds() -> dict[str, dict]:
        capsys.readouterr()
        assert cli(["records", "holds", *server]) == 0
        return {h["room_id"]: h for h in map(json.loads, capsys.readouterr().out.splitlines())}

    # ... and the records tools still count the room as held, so the admin sees it and can write it anew
    assert holds()[room_id]["held"] is True
    for command in ("unhold", "hold"):
        assert cli(["records", command, room_id, "--reason", "再設定", *server,
                    "--audit-log", str(tmp_path / "audit.log")]) == 0
    assert holds()[room_id]["reason"] == "再設定" and "redacted" not in holds()[room_id]
    assert records_state()[RETENTION]["content"] == {"max_lifetime": HOLD_LIFETIME_MS}
