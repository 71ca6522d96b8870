"""Zones by client IP behind the suite's nginx: a spoofed X-Forwarded-For does not change the zone."""

from __future__ import annotations

import json
import urllib.request

import pytest

from synapse_modules.zones.rest.zone import PATH


@pytest.fixture(scope="module")
def homeserver_spec():
    return {"x_forwarded": True}


@pytest.fixture(scope="module")
def homeserver_modules():
    return [{"module": "synapse_modules.zones.ZonePolicyModule",
             "config": {"zone_source": "ip", "ip_zones": {"lgwan": ["10.0.0.0/8"], "internet": ["127.0.0.0/8"]}}}]


def zone_with_header(url: str, token: str, forwarded_for: str) -> tuple[int, dict]:
    request = urllib.request.Request(url + PATH, headers={"Authorization": f"Bearer {token}",
                                                          "X-Forwarded-For": forwarded_for})
    try:
        with urllib.request.urlopen(request, timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


async def test_spoofed_forwarded_for_through_nginx_keeps_the_real_zone(homeserver, nginx_front, login):
    client = await login(homeserver.new_user("spoof"), "internet", via=nginx_front)
    status, body = zone_with_header(nginx_front.url("internet"), client.access_token, "10.1.2.3")
    assert (status, body["zone"]) == (200, "internet")  # nginx overwrote the header with the real 127.0.0.1


async def test_why_synapse_must_not_be_reachable_directly(homeserver, login):
    """Documented risk (admin guide): straight to an x_forwarded listener, the header decides."""
    client = await login(homeserver.new_user("direct"), "internet")
    # First request from loopback binds the device to the internet zone ...
    assert zone_with_header(homeserver.url("internet"), client.access_token, "127.0.0.1")[1]["zone"] == "internet"
    # ... so a forged LGWAN address is at least refused by the device binding.
    status, body = zone_with_header(homeserver.url("internet"), client.access_token, "10.1.2.3")
    assert status == 403 and body["jp.lgwan.reason"] == "device_zone_mismatch"
