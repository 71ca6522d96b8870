"""A device belongs to the zone of its first request; its token is refused from the other zone.

Bypass attempts: a token moved between listeners (both directions), events sent and state set
with a moved token, a refused attempt trying to flip the binding, a restart, and guests.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest
from nio import AsyncClient, RoomCreateResponse, RoomPutStateError, RoomSendError, SyncError, SyncResponse
from test_zone_endpoint import call_zone

from lgwan_chat.core.i18n import t

OTHER = {"internet": "lgwan", "lgwan": "internet"}


@pytest.fixture(scope="module")
def homeserver_extra():
    return {"allow_guest_access": True}


def moved(client: AsyncClient, url: str) -> AsyncClient:
    """The same access token and device, used against another listener."""
    thief = AsyncClient(url, client.user_id, device_id=client.device_id)
    thief.access_token = client.access_token
    return thief


@pytest.mark.parametrize("home", ["internet", "lgwan"])
async def test_token_moved_to_the_other_listener_is_refused(homeserver, login, home):
    user = homeserver.new_user("mover")
    client = await login(user, home)
    assert isinstance(await client.sync(timeout=0), SyncResponse)  # first request: binds to `home`
    other = OTHER[home]

    status, body = call_zone(homeserver.url(other), client.access_token)
    assert status == 403
    assert body["errcode"] == "M_FORBIDDEN"
    assert body["jp.lgwan.reason"] == "device_zone_mismatch"
    expected_ja = t("zones.device_zone_mismatch", "ja", device=client.device_id,
                    bound=t(f"zone.{home}", "ja"), current=t(f"zone.{other}", "ja"))
    assert body["jp.lgwan.message"]["ja"] == expected_ja
    assert body["error"].startswith(expected_ja)

    thief = moved(client, homeserver.url(other))
    try:
        assert isinstance(await thief.sync(timeout=0), SyncError)
        room = await client.room_create(name="移動テスト")
        assert isinstance(room, RoomCreateResponse)
        assert isinstance(await thief.room_send(room.room_id, "m.room.message",
                                                {"msgtype": "m.text", "body": "盗んだトークン"}), RoomSendError)
        assert isinstance(await thief.room_put_state(room.room_id, "m.room.topic", {"topic": "x"}),
                          RoomPutStateError)
    finally:
        await thief.close()

    # The refused attempts did not move the device: it still works at home, and only there.
    assert call_zone(homeserver.url(home), client.access_token) == (
        200, {"zone": home, "device_id": client.device_id, "user_id": user.user_id})
    rows = homeserver.query("SELECT zone FROM lgwan_device_zones WHERE user_id = ? AND device_id = ?",
                            user.user_id, client.device_id)
    assert rows == [(home,)]


async def test_same_account_on_phone_and_office_pc(homeserver, login):
    """One staff member, two devices, one per zone: both work, each only in its zone."""
    user = homeserver.new_user("staff")
    phone = await login(user, "internet")
    pc = await login(user, "lgwan")
    assert call_zone(homeserver.url("internet"), phone.access_token)[1]["zone"] == "internet"
    assert call_zone(homeserver.url("lgwan"), pc.access_token)[1]["zone"] == "lgwan"
    assert call_zone(homeserver.url("lgwan"), phone.access_token)[0] == 403
    assert call_zone(homeserver.url("internet"), pc.access_token)[0] == 403


def register_guest(url: str) -> str:
    request = urllib.request.Request(url + "/_matrix/client/v3/register?kind=guest", data=b"{}", method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as r:
        return json.loads(r.read())["access_token"]


def test_guests_only_from_the_internet_side(homeserver):
    token = register_guest(homeserver.url("internet"))
    assert call_zone(homeserver.url("internet"), token)[1]["zone"] == "internet"
    status, body = call_zone(homeserver.url("lgwan"), token)
    assert status == 403 and body["jp.lgwan.reason"] == "guest_zone"
    assert "ゲスト" in body["error"] and "Guest accounts" in body["error"]


async def test_binding_survives_a_homeserver_restart(homeserver, login):
    user = homeserver.new_user("restart")
    client = await login(user, "internet")
    assert call_zone(homeserver.url("internet"), client.access_token)[0] == 200
    homeserver.hs.stop()
    homeserver.hs.start()
    assert call_zone(homeserver.url("lgwan"), client.access_token)[0] == 403
    assert call_zone(homeserver.url("internet"), client.access_token)[0] == 200
