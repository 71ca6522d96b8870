"""Zone rules for what arrives over federation, with real homeservers federating on loopback.

Ours (the suite, on the backend under test) federates with two stock Synapses: one listed in
trusted_remote_servers (a neighbouring municipality on LGWAN) and one not.
"""

from __future__ import annotations

import asyncio
import io

import pytest
from federation import federating_homeserver, make_tls, stock_homeservers
from harness import download, eventually
from nio import (
    JoinResponse,
    RoomGetStateEventError,
    RoomPutStateResponse,
    RoomRedactResponse,
    RoomSendResponse,
    UploadResponse,
)


@pytest.fixture(scope="module")
def federation_tls(tmp_path_factory):
    return make_tls(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def neighbours(federation_tls, tmp_path_factory):
    """(trusted, untrusted) stock homeservers."""
    with stock_homeservers(tmp_path_factory, federation_tls, ("trusted", "untrusted")) as servers:
        yield servers


@pytest.fixture(scope="module")
def homeserver(hs_backend, neighbours, federation_tls, tmp_path_factory):
    trusted, _ = neighbours
    ours = federating_homeserver(
        tmp_path_factory.mktemp(f"ours-{hs_backend}"), hs_backend, federation_tls,
        modules=[{"module": "synapse_modules.zones.ZonePolicyModule",
                  "config": {"trusted_remote_servers": [trusted.server_name]}}])
    ours.start()
    try:
        yield ours
    finally:
        ours.close()


async def shared_room(ours_client, remote_client, name: str, remote_power: int = 0) -> str:
    room = await ours_client.room_create(name=name, invite=[remote_client.user_id],
                                         power_level_override={"users": {remote_client.user_id: remote_power}})
    assert not hasattr(room, "status_code"), room
    for _ in range(100):  # the invite travels over federation
        if isinstance(await remote_client.join(room.room_id), JoinResponse):
            return room.room_id
        await asyncio.sleep(0.1)
    raise AssertionError("remote user could not join")


async def timeline_types(client, room_id: str, until_body: str) -> list[str]:
    """Event types in our client's view of the room, once a marker message has arrived."""
    for _ in range(100):
        response = await client.room_messages(room_id, start="", limit=50)
        if any(getattr(e, "body", None) == until_body for e in response.chunk):
            return [e.source["type"] for e in response.chunk]
        await asyncio.sleep(0.1)
    raise AssertionError(f"{until_body!r} never arrived over federation")


async def test_remote_call_into_an_lgwan_only_room_never_reaches_our_users(homeserver, login, neighbours,
                                                                           remote_login):
    pc = await login(homeserver.new_user("office"), "lgwan")
    remote = await remote_login(neighbours[0], "neighbour")
    room_id = await shared_room(pc, remote, "広域連携（LGWAN 専用）")
    assert isinstance(await pc.room_put_state(room_id, "jp.lgwan.room.zone", {"lgwan_only": True}),
                      RoomPutStateResponse)
    await asyncio.sleep(0.5)  # let the marker reach the neighbour
    invite = {"call_id": "c9", "lifetime": 60000, "version": "1", "party_id": "x",
              "offer": {"type": "offer", "sdp": "v=0"}}
    assert isinstance(await remote.room_send(room_id, "m.call.invite", invite), RoomSendResponse)
    assert isinstance(await remote.room_send(room_id, "m.room.message", {"msgtype": "m.text", "body": "後続"}),
                      RoomSendResponse)
    types = await timeline_types(pc, room_id, "後続")
    assert "m.call.invite" not in types


async def test_a_remote_room_admin_cannot_lift_or_redact_our_lgwan_only_marker(homeserver, login, neighbours,
                                                                              remote_login):
    from test_zone_calls_and_encryption import CALL_INVITE, assert_refused

    user = homeserver.new_user("kacho")
    pc = await login(user, "lgwan")
    phone = await login(user, "internet")
    remote = await remote_login(neighbours[0], "partner-admin")
    # the neighbour's member may change any state of the room, as far as power levels go
    room_id = await shared_room(pc, remote, "広域連携（LGWAN 専用）", remote_power=100)
    marker = await pc.room_put_state(room_id, "jp.lgwan.room.zone", {"lgwan_only": True})
    assert isinstance(marker, RoomPutStateResponse)

    async def lgwan_only_for(client) -> None:
        seen = await client.room_get_state_event(room_id, "jp.lgwan.room.zone")
        assert getattr(seen, "content", None) == {"lgwan_only": True}, seen

    await eventually(lambda: lgwan_only_for(remote))  # the neighbour's server builds on our marker

    # the neighbour lifts it (its own server accepts: power level 100) ...
    assert isinstance(await remote.room_put_state(room_id, "jp.lgwan.room.zone", {"lgwan_only": False}),
                      RoomPutStateResponse)
    assert isinstance(await remote.room_send(room_id, "m.room.message", {"msgtype": "m.text", "body": "解除後"}),
                      RoomSendResponse)
    await timeline_types(pc, room_id, "解除後")
    # ... but on ours the room stays LGWAN-only: no call even from our phone
    assert_refused(await phone.room_send(room_id, "m.call.invite", CALL_INVITE), "call_in_lgwan_only_room")
    assert (await pc.room_get_state_event(room_id, "jp.lgwan.room.zone")).content == {"lgwan_only": True}

    # the neighbour redacts our marker: Synapse applies another server's redaction when it reads the
    # marker, even though the zone module refused it, and the marker loses its content ...
    assert isinstance(await remote.room_redact(room_id, marker.event_id, "解除"), RoomRedactResponse)
    assert isinstance(await remote.room_send(room_id, "m.room.message", {"msgtype": "m.text", "body": "削除後"}),
                      RoomSendResponse)
    await timeline_types(pc, room_id, "削除後")
    # ... and a redacted marker still counts
    assert_refused(await phone.room_send(room_id, "m.call.invite", CALL_INVITE), "call_in_lgwan_only_room")
    # and the server sends it again as the room admin who set it, while its content is still stored
    # (Synapse blanks a redacted event's stored copy after redaction_retention_period)
    await eventually(lambda: lgwan_only_for(pc))
    assert homeserver.query("SELECT e.sender FROM current_state_events AS c JOIN events AS e USING (event_id)"
                            " WHERE c.room_id = ? AND c.type = 'jp.lgwan.room.zone' AND e.event_id != ?",
                            room_id, marker.event_id) == [(user.user_id,)]

    def logged() -> None:  # (written once the send returns: just after the marker is in the state)
        assert f"state keeper: jp.lgwan.room.zone of room {room_id} was redacted by event $" in \
            homeserver.log_path.read_text(encoding="utf-8")

    await eventually(logged, timeout=10)
    # a room admin of ours still lifts it with a new marker
    assert isinstance(await pc.room_put_state(room_id, "jp.lgwan.room.zone", {"lgwan_only": False}),
                      RoomPutStateResponse)
    assert isinstance(await phone.room_send(room_id, "m.call.invite", CALL_INVITE), RoomSendResponse)


async def test_remote_server_cannot_turn_on_encryption_in_our_room(homeserver, login, neighbours, remote_login):
    pc = await login(homeserver.new_user("office"), "lgwan")
    remote = await remote_login(neighbours[0], "admin")
    room_id = await shared_room(pc, remote, "暗号化テスト", remote_power=100)
    assert isinstance(await remote.room_put_state(room_id, "m.room.encryption",
                                                  {"algorithm": "m.megolm.v1.aes-sha2"}), RoomPutStateResponse)
    assert isinstance(await remote.room_send(room_id, "m.room.message", {"msgtype": "m.text", "body": "目印"}),
                      RoomSendResponse)
    await timeline_types(pc, room_id, "目印")
    assert isinstance(await pc.room_get_state_event(room_id, "m.room.encryption"), RoomGetStateEventError)


@pytest.mark.parametrize("which, expected", [(0, 200), (1, 403)])
async def test_office_pc_opens_media_only_from_trusted_servers(homeserver, nginx_front, login, neighbours,
                                                              remote_login, which, expected):
    pc = await login(homeserver.new_user("office"), "lgwan", via=nginx_front)
    remote = await remote_login(neighbours[which], "sender")
    data = b"%PDF-1.4 remote document " * 20
    uploaded, _ = await remote.upload(io.BytesIO(data), content_type="application/pdf", filename="通知.pdf",
                                      filesize=len(data))
    assert isinstance(uploaded, UploadResponse)
    status, body = await download(nginx_front.url("lgwan"), pc, uploaded.content_uri)
    assert status == expected
    assert (body == data) == (expected == 200)  # fetched from the neighbour over federation when allowed
