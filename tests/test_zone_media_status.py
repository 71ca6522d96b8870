"""``media_status``: whether a file is kept from LGWAN devices, decided exactly as the media gate decides."""

from __future__ import annotations

import json

import pytest
from harness import http_get
from test_zone_media_gate import gate_verdict, png, upload

from lgwan_chat.core.i18n import t

PATH = "/_synapse/client/lgwan/v1/media_status"


@pytest.fixture(scope="module")
def homeserver_modules():
    return [{"module": "synapse_modules.zones.ZonePolicyModule",
             "config": {"trusted_remote_servers": ["pref.example"]}}]


def status_of(homeserver, client, zone: str, path: str) -> tuple[int, dict]:
    status, _, body = http_get(homeserver.url(zone) + PATH + path, client.access_token)
    return status, json.loads(body)


async def test_untrusted_exactly_when_the_gate_refuses_lgwan(homeserver, login):
    user = homeserver.new_user("staff")
    phone = await login(user, "internet")
    pc = await login(user, "lgwan")
    from_phone = await upload(phone, png((200, 0, 0)))
    from_pc = await upload(pc, png((0, 0, 200)))
    cases = {from_phone: True, from_pc: False, ("pref.example", "abcDEF123"): False,
             ("elsewhere.example", "abcDEF123"): True}
    for (server, media_id), untrusted in cases.items():
        for client, zone in ((phone, "internet"), (pc, "lgwan")):  # the same answer for either side
            status, body = status_of(homeserver, client, zone, f"/{server}/{media_id}")
            assert (status, body) == (200, {"mxc": f"mxc://{server}/{media_id}", "untrusted": untrusted})
        verdict = gate_verdict(homeserver.url("lgwan"), f"/_matrix/client/v1/media/download/{server}/{media_id}")
        assert verdict == (403 if untrusted else 200)


@pytest.mark.parametrize("path", ["", "/", "/lgwan.test", "/lgwan.test/", "/lgwan.test/abc/def",
                                  "/bad%20server/abc", "/lgwan.test/ab%2Fc", "/lgwan.test/%E3%81%82",
                                  "//abc"])
async def test_malformed_ids_get_a_clear_400(homeserver, login, path):
    client = await login(homeserver.new_user("staff"), "internet")
    status, body = status_of(homeserver, client, "internet", path)
    assert status == 400, body
    assert body["errcode"] == "M_INVALID_PARAM"
    assert body["jp.lgwan.message"] == {"ja": t("zones.bad_media_id", "ja"), "en": t("zones.bad_media_id", "en")}


def test_only_for_logged_in_users(homeserver):
    status, _, _ = http_get(homeserver.url("internet") + PATH + "/lgwan.test/abc")
    assert status == 401
