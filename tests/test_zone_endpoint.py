"""GET /_synapse/client/lgwan/v1/zone through each listener of a real homeserver."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

from synapse_modules.zones.rest.zone import PATH


def call_zone(url: str, token: str | None) -> tuple[int, dict]:
    request = urllib.request.Request(url + PATH)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


@pytest.mark.parametrize("zone", ["internet", "lgwan"])
async def test_device_logged_in_through_a_listener_is_in_its_zone(homeserver, login, zone):
    user = homeserver.new_user("zone")
    client = await login(user, zone)
    status, body = call_zone(homeserver.url(zone), client.access_token)
    assert status == 200
    assert body == {"zone": zone, "device_id": client.device_id, "user_id": user.user_id}


def test_zone_endpoint_requires_a_login(homeserver):
    status, body = call_zone(homeserver.url("lgwan"), None)
    assert status == 401
    assert body["errcode"] == "M_MISSING_TOKEN"
    status, body = call_zone(homeserver.url("lgwan"), "syt_forged_token")
    assert status == 401
    assert body["errcode"] == "M_UNKNOWN_TOKEN"
