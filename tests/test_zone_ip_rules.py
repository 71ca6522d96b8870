"""Zones decided by client IP (one listener behind a proxy), and unmatched clients refused."""

from __future__ import annotations

import pytest
from test_zone_endpoint import call_zone


@pytest.fixture(scope="module")
def homeserver_modules():
    # Loopback clients are "LGWAN" by address here; nothing else matches and is refused.
    return [{"module": "synapse_modules.zones.ZonePolicyModule",
             "config": {"zone_source": "ip", "ip_zones": {"lgwan": ["127.0.0.0/8"], "internet": ["192.0.2.0/24"]}}}]


async def test_ip_rule_applies_on_every_listener(homeserver, login):
    user = homeserver.new_user("ipzone")
    client = await login(user, "internet")
    for zone in ("internet", "lgwan"):  # the listener does not matter in ip mode
        status, body = call_zone(homeserver.url(zone), client.access_token)
        assert (status, body["zone"]) == (200, "lgwan")
