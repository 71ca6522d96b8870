"""With `allow_encryption: true` the switch really switches: encrypted rooms work."""

from __future__ import annotations

import pytest
from nio import RoomCreateResponse, RoomPutStateResponse


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
