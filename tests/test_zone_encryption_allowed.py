"""With `allow_encryption: true` the switch really switches: encrypted rooms work."""

from __future__ import annotations

import json
import urllib.request

import pytest
from nio import RoomCreateResponse, RoomPutStateResponse, RoomSendResponse


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
