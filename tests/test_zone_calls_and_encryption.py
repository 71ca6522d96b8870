"""Calls only from internet devices and never in LGWAN-only rooms; no end-to-end encryption.

Through real nio clients on each zone's listener; each bypass (state endpoint, widgets,
MatrixRTC membership, room creation with encryption, encrypted events) is its own test. The
generated space of entry points x forbidden things x tokens is test_zone_entry_points.py.
"""

from __future__ import annotations

import json
import urllib.request

import pytest
from nio import (
    RoomCreateError,
    RoomCreateResponse,
    RoomPutStateError,
    RoomPutStateResponse,
    RoomSendError,
    RoomSendResponse,
)

from lgwan_chat.core.i18n import t

CALL_INVITE = {"call_id": "c1", "lifetime": 60000, "version": "1", "party_id": "p1",
               "offer": {"type": "offer", "sdp": "v=0"}}
JITSI_WIDGET = {"type": "jitsi", "url": "https://jitsi.example/x", "name": "会議", "data": {}}


@pytest.fixture
async def staff(homeserver, login):
    """One staff member with a phone (internet) and an office PC (LGWAN), in a shared room."""
    user = homeserver.new_user("caller")
    phone = await login(user, "internet")
    pc = await login(user, "lgwan")
    room = await phone.room_create(name="通話テスト")
    assert isinstance(room, RoomCreateResponse), room
    return phone, pc, room.room_id


def assert_refused(response, reason: str):
    assert isinstance(response, (RoomSendError, RoomPutStateError, RoomCreateError)), response
    assert response.status_code == "M_FORBIDDEN"
    assert t(f"zones.{reason}", "ja") in response.message and t(f"zones.{reason}", "en") in response.message


async def test_phone_can_call_office_pc_cannot(staff):
    phone, pc, room_id = staff
    assert isinstance(await phone.room_send(room_id, "m.call.invite", CALL_INVITE), RoomSendResponse)
    assert_refused(await pc.room_send(room_id, "m.call.invite", CALL_INVITE), "call_from_lgwan")
    # Declining or hanging up from the office PC stays possible.
    assert isinstance(await pc.room_send(room_id, "m.call.hangup", {"call_id": "c1", "version": "1",
                                                                     "party_id": "p2"}), RoomSendResponse)


@pytest.mark.parametrize("event_type", ["org.matrix.msc3401.call.member", "m.call.member"])
async def test_office_pc_cannot_join_a_matrixrtc_call_but_can_leave(staff, event_type):
    phone, pc, room_id = staff
    membership = {"application": "m.call", "call_id": "", "scope": "m.room", "device_id": pc.device_id,
                  "focus_active": {"type": "livekit"}, "foci_preferred": [], "expires": 3600000}
    key = f"_{pc.user_id}_{pc.device_id}"
    assert_refused(await pc.room_put_state(room_id, event_type, membership, state_key=key), "call_from_lgwan")
    assert isinstance(await pc.room_put_state(room_id, event_type, {}, state_key=key), RoomPutStateResponse)
    assert isinstance(await phone.room_put_state(room_id, event_type, membership,
                                                 state_key=f"_{phone.user_id}_{phone.device_id}"),
                      RoomPutStateResponse)


async def test_office_pc_cannot_add_a_jitsi_widget_but_can_remove_it(staff):
    phone, pc, room_id = staff
    assert_refused(await pc.room_put_state(room_id, "im.vector.modular.widgets", JITSI_WIDGET, state_key="w1"),
                   "call_from_lgwan")
    assert isinstance(await phone.room_put_state(room_id, "im.vector.modular.widgets", JITSI_WIDGET,
                                                 state_key="w1"), RoomPutStateResponse)
    assert isinstance(await pc.room_put_state(room_id, "im.vector.modular.widgets", {}, state_key="w1"),
                      RoomPutStateResponse)
    # Any other site's widget is refused from the office PC (allow-list), but not from the phone.
    pad = {"type": "m.etherpad", "url": "https://pad.example/x"}
    assert_refused(await pc.room_put_state(room_id, "im.vector.modular.widgets", pad, state_key="w2"),
                   "widget_not_allowed")
    assert isinstance(await phone.room_put_state(room_id, "im.vector.modular.widgets", pad, state_key="w2"),
                      RoomPutStateResponse)


async def test_no_call_at_all_in_an_lgwan_only_room(staff):
    phone, pc, room_id = staff
    assert isinstance(await phone.room_put_state(room_id, "jp.lgwan.room.zone", {"lgwan_only": True}),
                      RoomPutStateResponse)
    assert_refused(await phone.room_send(room_id, "m.call.invite", CALL_INVITE), "call_in_lgwan_only_room")
    assert_refused(await phone.room_put_state(room_id, "im.vector.modular.widgets", JITSI_WIDGET, state_key="w"),
                   "call_in_lgwan_only_room")
    # Ordinary messages are unaffected.
    assert isinstance(await pc.room_send(room_id, "m.room.message", {"msgtype": "m.text", "body": "了解"}),
                      RoomSendResponse)
    # Lifting the marker allows calls from the phone again.
    assert isinstance(await phone.room_put_state(room_id, "jp.lgwan.room.zone", {"lgwan_only": False}),
                      RoomPutStateResponse)
    assert isinstance(await phone.room_send(room_id, "m.call.invite", CALL_INVITE), RoomSendResponse)


@pytest.mark.parametrize("zone", ["internet", "lgwan"])
async def test_encryption_cannot_be_enabled_on_a_room(staff, zone):
    phone, pc, room_id = staff
    client = phone if zone == "internet" else pc
    assert_refused(await client.room_put_state(room_id, "m.room.encryption", {"algorithm": "m.megolm.v1.aes-sha2"}),
                   "encryption_disabled")


async def test_an_encrypted_room_cannot_be_created(staff):
    phone, _, _ = staff
    response = await phone.room_create(initial_state=[{"type": "m.room.encryption", "state_key": "",
                                                       "content": {"algorithm": "m.megolm.v1.aes-sha2"}}])
    assert_refused(response, "encryption_disabled")


@pytest.mark.parametrize("zone", ["internet", "lgwan"])
async def test_encrypted_events_are_refused(staff, zone):
    """Text the server cannot read would escape every rule: refused like enabling encryption."""
    phone, pc, room_id = staff
    client = phone if zone == "internet" else pc
    encrypted = {"algorithm": "m.megolm.v1.aes-sha2", "ciphertext": "AwgAEn", "sender_key": "k",
                 "session_id": "s", "device_id": client.device_id}
    assert_refused(await client.room_send(room_id, "m.room.encrypted", encrypted), "encryption_disabled")


@pytest.mark.parametrize("zone", ["internet", "lgwan"])
def test_element_is_told_not_to_offer_encryption(homeserver, zone):
    with urllib.request.urlopen(homeserver.url(zone) + "/.well-known/matrix/client", timeout=10) as r:
        assert json.loads(r.read())["io.element.e2ee"] == {"default": False, "force_disable": True}


async def test_server_admins_cannot_create_an_encrypted_room_either(homeserver, login):
    """Admins skip Synapse's room-creation spam check; the event rule still refuses, leaving no room."""
    admin = await login(homeserver.new_user("admin", admin=True), "lgwan")
    before = (await admin.joined_rooms()).rooms
    response = await admin.room_create(initial_state=[{"type": "m.room.encryption", "state_key": "",
                                                       "content": {"algorithm": "m.megolm.v1.aes-sha2"}}])
    assert_refused(response, "encryption_disabled")
    assert (await admin.joined_rooms()).rooms == before
