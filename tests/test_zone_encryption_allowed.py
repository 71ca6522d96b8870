"""With `allow_encryption: true` the switch really switches: encrypted rooms work."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest
from nio import RoomCreateResponse, RoomPutStateResponse, RoomSendError, RoomSendResponse

from lgwan_chat.core.i18n import t


@pytest.fixture(scope="module")
def homeserver_modules():
    return [{"module": "synapse_modules.zones.ZonePolicyModule", "config": {"allow_encryption": True}}]


async def test_encryption_allowed_when_configured(homeserver, login):
    client = await login(homeserver.new_user("e2ee"), "lgwan")
    room = await client.room_create(initial_state=[{"type": "m.room.encryption", "state_key": "",
                                                    "content": {"algorithm": "m.megolm.v1.aes-sha2"}}])
    assert isinstance(room, RoomCreateResponse), room
    other = await client.room_create()
    assert isinstance(await client.room_put_state(other.room_id, "m.room.encryption",
                                                  {"algorithm": "m.megolm.v1.aes-sha2"}), RoomPutStateResponse)
    encrypted = {"algorithm": "m.megolm.v1.aes-sha2", "ciphertext": "AwgAEn", "sender_key": "k",
                 "session_id": "s", "device_id": client.device_id}
    assert isinstance(await client.room_send(other.room_id, "m.room.encrypted", encrypted), RoomSendResponse)


def test_element_may_offer_encryption(homeserver):
    """The well-known follows the module's switch: encryption offered, not on by default."""
    with urllib.request.urlopen(homeserver.url("lgwan") + "/.well-known/matrix/client", timeout=10) as r:
        assert json.loads(r.read())["io.element.e2ee"] == {"default": False}


async def test_turning_encryption_off_later_closes_upgrades_and_encrypted_events(homeserver, login):
    """An encrypted room made while encryption was allowed: once it is off, upgrading the room
    (Synapse copies m.room.encryption into the new room, past check_event_for_spam) and sending
    encrypted events are refused. Runs last: it restarts the module's homeserver."""
    client = await login(homeserver.new_user("later"), "internet")
    room = await client.room_create(initial_state=[{"type": "m.room.encryption", "state_key": "",
                                                    "content": {"algorithm": "m.megolm.v1.aes-sha2"}}])
    assert isinstance(room, RoomCreateResponse), room
    homeserver.hs.stop()
    homeserver.hs.reconfigure(modules=[{"module": "synapse_modules.zones.ZonePolicyModule", "config": {}}])
    homeserver.hs.start()

    status, body = call(homeserver.url("internet"), f"/_matrix/client/v3/rooms/{room.room_id}/upgrade",
                        client.access_token, {"new_version": "12"})
    assert (status, body.get("jp.lgwan.reason")) == (403, "encryption_disabled"), body
    assert t("zones.encryption_disabled", "ja") in body["error"]
    encrypted = {"algorithm": "m.megolm.v1.aes-sha2", "ciphertext": "AwgAEn", "sender_key": "k",
                 "session_id": "s", "device_id": client.device_id}
    response = await client.room_send(room.room_id, "m.room.encrypted", encrypted)
    assert isinstance(response, RoomSendError) and response.status_code == "M_FORBIDDEN", response


def call(url: str, path: str, token: str, body: dict) -> tuple[int, dict]:
    request = urllib.request.Request(url + path, data=json.dumps(body).encode(), method="POST",
                                     headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())
