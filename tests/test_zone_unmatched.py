"""A client whose address matches no zone rule is refused, in Japanese and English."""

from __future__ import annotations

import pytest
from test_zone_endpoint import call_zone

from lgwan_chat.core.i18n import t


@pytest.fixture(scope="module")
def homeserver_modules():
    return [{"module": "synapse_modules.zones.ZonePolicyModule",
             "config": {"zone_source": "ip", "ip_zones": {"lgwan": ["10.0.0.0/8"]}, "unmatched": "reject"}}]


def test_client_from_unknown_network_is_refused(homeserver):
    user = homeserver.new_user("stray")
    status, body = call_zone(homeserver.url("internet"), user.access_token)
    assert status == 403
    assert body["errcode"] == "M_FORBIDDEN"
    assert body["jp.lgwan.reason"] == "unknown_zone"
    assert body["jp.lgwan.message"] == {"ja": t("zones.unknown_zone", "ja"), "en": t("zones.unknown_zone", "en")}
    assert "ゾーン" in body["error"] and "zone" in body["error"]
