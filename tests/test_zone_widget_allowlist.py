"""The admin's widget allow-list replaces the default (the suite's own pages)."""

from __future__ import annotations

import pytest
from nio import RoomCreateResponse, RoomPutStateError, RoomPutStateResponse

PAD = "https://pad.city.example.lg.jp/p/"


@pytest.fixture(scope="module")
def homeserver_modules():
    return [{"module": "synapse_modules.zones.ZonePolicyModule", "config": {"allowed_widget_urls": [PAD]}}]


@pytest.mark.parametrize("url, allowed", [
    (PAD + "会議メモ", True), (PAD, True), ("https://PAD.City.Example.lg.jp/p/x", True),
    ("https://pad.city.example.lg.jp/P/x", False),
    ("https://pad.city.example.lg.jp/admin", False), ("https://pad.city.example.lg.jp.evil.example/p/x", False),
    ("http://pad.city.example.lg.jp/p/x", False), (PAD + "../admin", False), (PAD + "%2e%2e/admin", False),
    ("{base}/_synapse/client/lgwan/v1/stamps/picker", False)])
async def test_lgwan_devices_add_only_listed_widgets(homeserver, login, url, allowed):
    pc = await login(homeserver.new_user("staff"), "lgwan")
    room = await pc.room_create(name="ウィジェット")
    assert isinstance(room, RoomCreateResponse)
    content = {"type": "m.etherpad", "url": url.format(base=homeserver.url("internet")), "name": "メモ"}
    response = await pc.room_put_state(room.room_id, "im.vector.modular.widgets", content, state_key="w")
    if allowed:
        assert isinstance(response, RoomPutStateResponse), response
    else:
        assert isinstance(response, RoomPutStateError) and response.status_code == "M_FORBIDDEN", response
