"""Phones: maps for location sharing per entrance, calls through coturn, push without content.

Real Synapse with the suite's modules, the suite's nginx entrances (``nginx_front``), Debian's
coturn and a real WebRTC stack (aiortc) for the call; the push gateway is a local aiohttp
server standing in for the operator's Sygnal (which the suite does not run).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import time
import uuid

import pytest
from aiohttp import web
from harness import http_get
from test_zone_entry_points import call, q

from lgwan_chat.core.i18n import t
from lgwan_chat.coturn import Coturn, CoturnSpec
from lgwan_chat.homeserver import suite_modules, turn_secret_path

PUBLIC_STYLE = "https://tiles.example.org/styles/basic/style.json"
FOCUS = {"type": "livekit", "livekit_service_url": "https://livekit-jwt.example.org"}
TILE_KEYS = ("m.tile_server", "org.matrix.msc3488.tile_server")
RTC_FOCI = "org.matrix.msc4143.rtc_foci"


@pytest.fixture(scope="module")
def homeserver_modules() -> list:
    modules = copy.deepcopy(suite_modules())
    zones = next(m for m in modules if m["module"].endswith("ZonePolicyModule"))
    zones["config"].update({"map_style_urls": {"internet": PUBLIC_STYLE, "lgwan": None}, "rtc_foci": [FOCUS]})
    return modules


@pytest.fixture(scope="module")
def homeserver_extra() -> dict:
    # The stand-in push gateway listens on loopback, which Synapse refuses to reach by default.
    return {"ip_range_whitelist": ["127.0.0.1"]}


@pytest.fixture(scope="module")
def coturn(homeserver, tmp_path_factory):
    """coturn as the demo runs it, with the homeserver's shared secret and TURN port."""
    host, port = homeserver.hs.turn_address
    server = Coturn(CoturnSpec(prefix=tmp_path_factory.mktemp("coturn"), listening_ip=host, port=port,
                               secret_file=turn_secret_path(homeserver.data_dir), realm=homeserver.server_name,
                               allow_loopback_peers=True))
    server.start()
    try:
        yield server
    finally:
        server.stop()


async def acall(url: str, method: str, path: str, token: str, body=None) -> tuple[int, dict]:
    """``call`` off the event loop (the call's ICE and the push gateway run on it)."""
    return await asyncio.to_thread(call, url, method, path, token, body)


def assert_refusal(status: int, body: dict, reason: str, **params) -> None:
    assert status == 403, body
    assert body["jp.lgwan.reason"] == reason, body
    assert body["jp.lgwan.message"] == {lang: t(f"zones.{reason}", lang, **params) for lang in ("ja", "en")}


async def shared_room(owner, *others) -> str:
    status, room = await acall(owner.homeserver, "POST", "/_matrix/client/v3/createRoom", owner.access_token,
                               {"preset": "private_chat", "invite": [o.user_id for o in others]})
    assert status == 200, room
    for other in others:
        status, body = await acall(other.homeserver, "POST", f"/_matrix/client/v3/join/{q(room['room_id'])}",
                                   other.access_token, {})
        assert status == 200, body
    return room["room_id"]


async def send(client, room_id: str, event_type: str, content: dict) -> tuple[int, dict]:
    return await acall(client.homeserver, "PUT", f"/_matrix/client/v3/rooms/{q(room_id)}/send/{event_type}/"
                       f"{uuid.uuid4().hex}", client.access_token, content)


# --- Location: maps per entrance ---------------------------------------------------------------

def well_known(base: str) -> dict:
    status, content_type, body = http_get(base + "/.well-known/matrix/client")
    assert status == 200 and content_type.startswith("application/json"), body
    return json.loads(body)


def test_each_entrance_serves_its_own_map_and_group_call_settings(homeserver, nginx_front):
    internet = well_known(nginx_front.url("internet"))
    for key in TILE_KEYS:
        assert internet[key] == {"map_style_url": PUBLIC_STYLE}
    assert internet[RTC_FOCI] == [FOCUS]
    lgwan = well_known(nginx_front.url("lgwan"))
    # No tile server at all: Element says maps are not configured instead of fetching tiles from
    # the internet; and no SFU: group calls stay refused on LGWAN.
    assert not set(TILE_KEYS) & set(lgwan) and RTC_FOCI not in lgwan
    # What both keep: the homeserver's address and the encryption setting.
    for answer in (internet, lgwan):
        assert answer["m.homeserver"]["base_url"] == homeserver.hs.spec.url("internet") + "/"
        assert answer["io.element.e2ee"]["force_disable"] is True


def test_an_lgwan_entrance_can_have_an_internal_tile_server():
    from synapse_modules.zones.config import parse
    from synapse_modules.zones.well_known import EntranceWellKnown

    internal = "http://tiles.city.lg.jp/style.json"
    answers = EntranceWellKnown(parse({"map_style_urls": {"internet": PUBLIC_STYLE, "lgwan": internal},
                                       "rtc_foci": [FOCUS]}))
    assert answers.for_zone("lgwan") == {key: {"map_style_url": internal} for key in TILE_KEYS}
    assert answers.for_zone("internet")[RTC_FOCI] == [FOCUS]
    assert answers.for_zone(None) == {}  # a request of no known zone gets neither


LOCATION = {"msgtype": "m.location", "body": "現場: 市道 3 号線 (35.6812, 139.7671)",
            "geo_uri": "geo:35.6812,139.7671;u=10",
            "org.matrix.msc3488.location": {"uri": "geo:35.6812,139.7671;u=10", "description": "現場"},
            "org.matrix.msc3488.asset": {"type": "m.pin"}, "org.matrix.msc3488.ts": 1764720000000}


async def test_location_posts_pass_the_zone_policy_from_both_entrances(homeserver, nginx_front, login):
    user = homeserver.new_user("field")
    phone = await login(user, "internet", via=nginx_front)
    pc = await login(user, "lgwan", via=nginx_front)
    room_id = await shared_room(phone)
    for client in (phone, pc):
        status, sent = await send(client, room_id, "m.room.message", LOCATION)
        assert status == 200, sent
        status, stored = await acall(client.homeserver, "GET", f"/_matrix/client/v3/rooms/{q(room_id)}/event/"
                                     f"{q(sent['event_id'])}", client.access_token)
        assert status == 200 and stored["content"]["geo_uri"] == LOCATION["geo_uri"]
        # The extensible-events type of a location (MSC3488) is not a call either.
        status, sent = await send(client, room_id, "m.location",
                                  {"m.location": LOCATION["org.matrix.msc3488.location"]})
        assert status == 200, sent


# --- Calls: TURN, a real call through coturn, and LGWAN refused at every step ---------------------

async def test_turn_credentials_only_for_internet_devices(homeserver, nginx_front, login, coturn):
    user = homeserver.new_user("turn")
    phone = await login(user, "internet", via=nginx_front)
    pc = await login(user, "lgwan", via=nginx_front)
    status, turn = await acall(phone.homeserver, "GET", "/_matrix/client/v3/voip/turnServer", phone.access_token)
    host, port = homeserver.hs.turn_address
    assert status == 200 and f"turn:{host}:{port}?transport=udp" in turn["uris"]
    assert turn["username"].endswith(":" + user.user_id) and turn["password"] and turn["ttl"] == 3600
    for version in ("v3", "r0", "api/v1"):  # every spelling of the route Synapse serves
        status, body = await acall(pc.homeserver, "GET", f"/_matrix/client/{version}/voip/turnServer", pc.access_token)
        assert_refusal(status, body, "call_from_lgwan")
    # Straight at Synapse's LGWAN listener (no nginx) too: the module refuses, not only the entrance.
    status, body = await acall(homeserver.url("lgwan"), "GET", "/_matrix/client/v3/voip/turnServer", pc.access_token)
    assert_refusal(status, body, "call_from_lgwan")


def split_candidates(sdp: str) -> tuple[str, list[dict]]:
    """An SDP without its ICE candidates, and the candidates as m.call.candidates carries them."""
    lines = sdp.replace("\r\n", "\n").strip().split("\n")
    candidates = [{"candidate": line[2:], "sdpMid": "0", "sdpMLineIndex": 0}
                  for line in lines if line.startswith("a=candidate:")]
    kept = [line for line in lines if not line.startswith(("a=candidate:", "a=end-of-candidates"))]
    return "\r\n".join(kept) + "\r\n", candidates


def join_candidates(sdp: str, candidates: list[dict]) -> str:
    """The one audio section gets the trickled candidates back (the SDP ends with it)."""
    return sdp + "".join(f"a={c['candidate']}\r\n" for c in candidates) + "a=end-of-candidates\r\n"


async def wait_for_event(client, room_id: str, event_type: str, call_id: str, sender: str,
                         timeout: float = 30) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status, page = await acall(client.homeserver, "GET", f"/_matrix/client/v3/rooms/{q(room_id)}/messages"
                                   "?dir=b&limit=50", client.access_token)
        assert status == 200, page
        for event in page["chunk"]:
            if event["type"] == event_type and event["sender"] == sender and event["content"].get("call_id") == call_id:
                return event
        await asyncio.sleep(0.3)
    raise AssertionError(f"no {event_type} for call {call_id} within {timeout}s")


async def peer_connection(client):
    """An RTCPeerConnection that may only use the TURN relay Synapse hands ``client``, and the
    TURN username Synapse made."""
    from aiortc import RTCConfiguration, RTCIceServer, RTCPeerConnection
    from aiortc.rtcconfiguration import RTCIceTransportPolicy

    status, turn = await acall(client.homeserver, "GET", "/_matrix/client/v3/voip/turnServer", client.access_token)
    assert status == 200, turn
    udp = [uri for uri in turn["uris"] if uri.endswith("transport=udp")]
    server = RTCIceServer(urls=udp, username=turn["username"], credential=turn["password"])
    return (RTCPeerConnection(RTCConfiguration(iceServers=[server], iceTransportPolicy=RTCIceTransportPolicy.RELAY)),
            turn["username"])


async def test_two_phones_call_each_other_through_synapse_and_coturn(homeserver, login, coturn):
    from aiortc.mediastreams import AudioStreamTrack

    caller_user, callee_user = homeserver.new_user("caller"), homeserver.new_user("callee")
    caller = await login(caller_user, "internet")
    callee = await login(callee_user, "internet")
    room_id = await shared_room(caller, callee)
    call_id = uuid.uuid4().hex
    (caller_pc, caller_username), (callee_pc, callee_username) = await peer_connection(caller), \
        await peer_connection(callee)
    received: list = []
    got_media = asyncio.Event()
    consumers: list[asyncio.Future] = []  # a task nobody holds may be collected before it ends

    @callee_pc.on("track")
    def on_track(track):
        async def consume():
            while len(received) < 25:
                received.append(await track.recv())
            got_media.set()
        consumers.append(asyncio.ensure_future(consume()))

    try:
        # Caller: offer without candidates in m.call.invite, its relay candidates in m.call.candidates.
        caller_pc.addTrack(AudioStreamTrack())
        await caller_pc.setLocalDescription(await caller_pc.createOffer())
        offer_sdp, offer_candidates = split_candidates(caller_pc.localDescription.sdp)
        assert offer_candidates and all(" typ relay" in c["candidate"] for c in offer_candidates)
        common = {"call_id": call_id, "version": "1"}
        status, body = await send(caller, room_id, "m.call.invite", {
            **common, "party_id": "caller", "lifetime": 60000, "offer": {"type": "offer", "sdp": offer_sdp}})
        assert status == 200, body
        status, body = await send(caller, room_id, "m.call.candidates",
                                  {**common, "party_id": "caller", "candidates": offer_candidates})
        assert status == 200, body

        # Callee: reads both from Synapse, answers the same way.
        from aiortc import RTCSessionDescription

        invite = await wait_for_event(callee, room_id, "m.call.invite", call_id, caller.user_id)
        candidates = await wait_for_event(callee, room_id, "m.call.candidates", call_id, caller.user_id)
        await callee_pc.setRemoteDescription(RTCSessionDescription(
            join_candidates(invite["content"]["offer"]["sdp"], candidates["content"]["candidates"]), "offer"))
        await callee_pc.setLocalDescription(await callee_pc.createAnswer())
        answer_sdp, answer_candidates = split_candidates(callee_pc.localDescription.sdp)
        assert answer_candidates and all(" typ relay" in c["candidate"] for c in answer_candidates)
        status, body = await send(callee, room_id, "m.call.answer", {
            **common, "party_id": "callee", "answer": {"type": "answer", "sdp": answer_sdp}})
        assert status == 200, body
        status, body = await send(callee, room_id, "m.call.candidates",
                                  {**common, "party_id": "callee", "candidates": answer_candidates})
        assert status == 200, body

        answer = await wait_for_event(caller, room_id, "m.call.answer", call_id, callee.user_id)
        candidates = await wait_for_event(caller, room_id, "m.call.candidates", call_id, callee.user_id)
        await caller_pc.setRemoteDescription(RTCSessionDescription(
            join_candidates(answer["content"]["answer"]["sdp"], candidates["content"]["candidates"]), "answer"))

        # Audio flows, and only through coturn (relay-only on both sides).
        await asyncio.wait_for(got_media.wait(), timeout=30)
        assert len(received) >= 25 and callee_pc.iceConnectionState in ("connected", "completed")
        status, body = await send(caller, room_id, "m.call.hangup", {**common, "party_id": "caller"})
        assert status == 200, body
    finally:
        await caller_pc.close()
        await callee_pc.close()
    # coturn's own record: each side's relay was allocated with the credentials Synapse made for it.
    log = coturn.log_path.read_text(encoding="utf-8", errors="replace")
    for username in (caller_username, callee_username):
        assert f"user <{username}>: incoming packet ALLOCATE processed, success" in log


async def test_an_office_pc_is_refused_at_every_step_of_a_call(homeserver, nginx_front, login, coturn):
    phone_user, pc_user = homeserver.new_user("phone"), homeserver.new_user("office")
    phone = await login(phone_user, "internet", via=nginx_front)
    pc = await login(pc_user, "lgwan", via=nginx_front)
    room_id = await shared_room(phone, pc)
    common = {"call_id": "c-lgwan", "version": "1", "party_id": "pc"}
    status, body = await acall(pc.homeserver, "GET", "/_matrix/client/v3/voip/turnServer", pc.access_token)
    assert_refusal(status, body, "call_from_lgwan")
    for event_type, content in (("m.call.invite", {"lifetime": 60000, "offer": {"type": "offer", "sdp": "v=0"}}),
                                ("m.call.candidates", {"candidates": [{"candidate": "candidate:1 1 udp 1 1.2.3.4 "
                                                                       "5 typ relay", "sdpMid": "0",
                                                                       "sdpMLineIndex": 0}]}),
                                ("m.call.answer", {"answer": {"type": "answer", "sdp": "v=0"}}),
                                ("m.call.select_answer", {"selected_party_id": "phone"}),
                                ("m.call.negotiate", {"lifetime": 60000,
                                                      "description": {"type": "offer", "sdp": "v=0"}})):
        status, body = await send(pc, room_id, event_type, {**common, **content})
        assert_refusal(status, body, "call_from_lgwan")
    # Call signalling straight to a device (to-device) is refused at the LGWAN entrance.
    status, body = await acall(pc.homeserver, "PUT",
                               f"/_matrix/client/v3/sendToDevice/m.call.invite/{uuid.uuid4().hex}", pc.access_token,
                               {"messages": {phone.user_id: {"*": common}}})
    assert status == 403 and body["jp.lgwan.reason"] == "to_device_refused"
    # Hanging up stays possible (the phone's call to the PC ends cleanly).
    status, body = await send(pc, room_id, "m.call.hangup", common)
    assert status == 200, body


# --- Push: notifications without content, internet devices only ------------------------------------

@pytest.fixture
async def push_gateway(unused_tcp_port):
    """A local HTTP server playing the operator's push gateway (Sygnal's /_matrix/push/v1/notify)."""
    received: list[dict] = []
    raw: list[bytes] = []
    arrived = asyncio.Event()

    async def notify(request: web.Request) -> web.Response:
        body = await request.read()
        raw.append(body)
        received.append(json.loads(body))
        arrived.set()
        return web.json_response({"rejected": []})

    app = web.Application()
    app.router.add_post("/_matrix/push/v1/notify", notify)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", unused_tcp_port).start()
    gateway = type("Gateway", (), {"url": f"http://127.0.0.1:{unused_tcp_port}/_matrix/push/v1/notify",
                                   "received": received, "raw": raw, "arrived": arrived})
    try:
        yield gateway
    finally:
        await runner.cleanup()


def pusher(url: str, pushkey: str, data_format: str | None = "event_id_only", kind: str = "http") -> dict:
    data = {"url": url} if data_format is None else {"url": url, "format": data_format}
    return {"kind": kind, "app_id": "jp.lgwan.chat.ios", "app_display_name": "lgwan-chat",
            "device_display_name": "iPhone", "pushkey": pushkey, "lang": "ja", "data": data}


async def notifications_for(gateway, event_id: str, timeout: float = 30) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for n in gateway.received:
            if n["notification"].get("event_id") == event_id:
                return n["notification"]
        gateway.arrived.clear()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(gateway.arrived.wait(), timeout=1)
    raise AssertionError(f"no notification for {event_id} within {timeout}s")


async def test_pushers_only_event_id_only_from_internet_devices(homeserver, login, push_gateway):
    user = homeserver.new_user("pushy")
    phone = await login(user, "internet")
    pc = await login(user, "lgwan")
    path = "/_matrix/client/v3/pushers/set"
    # Message text and sender names through Apple / Google: refused, whatever the kind.
    for body in (pusher(push_gateway.url, "k1", None), pusher(push_gateway.url, "k2", "full"),
                 {**pusher(push_gateway.url, "k3"), "kind": "email", "pushkey": "staff@city.example"}):
        assert_refusal(*await acall(phone.homeserver, "POST", path, phone.access_token, body), "pusher_format",
                       format="event_id_only")
    # An office PC registers no pusher at all.
    assert_refusal(*await acall(pc.homeserver, "POST", path, pc.access_token, pusher(push_gateway.url, "k4")),
                   "pusher_from_lgwan")
    status, body = await acall(phone.homeserver, "POST", path, phone.access_token, pusher(push_gateway.url, "k5"))
    assert status == 200, body
    status, listed = await acall(phone.homeserver, "GET", "/_matrix/client/v3/pushers", phone.access_token)
    assert [p["pushkey"] for p in listed["pushers"]] == ["k5"]  # nothing refused was kept
    # Synapse gives a pushkey to whoever registers it last and deletes the other users' pushers
    # with it first: an office PC's refused registration must not delete a colleague's phone pusher.
    colleague = await login(homeserver.new_user("pushy"), "lgwan")
    assert_refusal(*await acall(colleague.homeserver, "POST", path, colleague.access_token,
                                pusher(push_gateway.url, "k5")), "pusher_from_lgwan")
    status, listed = await acall(phone.homeserver, "GET", "/_matrix/client/v3/pushers", phone.access_token)
    assert [p["pushkey"] for p in listed["pushers"]] == ["k5"]
    # Removing a pusher (kind null) is always possible, from either device.
    status, body = await acall(pc.homeserver, "POST", path, pc.access_token,
                               {**pusher(push_gateway.url, "k5"), "kind": None})
    assert status == 200, body


async def test_the_push_gateway_gets_no_message_text_and_mentions_still_notify(homeserver, login, push_gateway):
    staff, colleague = homeserver.new_user("staff"), homeserver.new_user("boss")
    phone = await login(staff, "internet")
    pc = await login(colleague, "lgwan")
    room_id = await shared_room(pc, phone)
    status, body = await acall(phone.homeserver, "POST", "/_matrix/client/v3/pushers/set", phone.access_token,
                               pusher(push_gateway.url, "phone-token"))
    assert status == 200, body

    secret_text = "市長公室の予算案（非公開）"
    status, sent = await send(pc, room_id, "m.room.message", {"msgtype": "m.text", "body": secret_text})
    assert status == 200, sent
    notification = await notifications_for(push_gateway, sent["event_id"])
    assert notification["room_id"] == room_id and notification["devices"][0]["pushkey"] == "phone-token"
    assert not {"content", "sender", "sender_display_name", "room_name", "type"} & set(notification)
    assert all(secret_text.encode() not in body and colleague.localpart.encode() not in body
               for body in push_gateway.raw)

    # The staff member mutes the room (Element's "mentions only"): a mention (the safety check,
    # !未読リマインド) still wakes the phone, still without its text.
    status, body = await acall(phone.homeserver, "PUT", f"/_matrix/client/v3/pushrules/global/room/{q(room_id)}",
                               phone.access_token, {"actions": []})
    assert status == 200, body
    status, quiet = await send(pc, room_id, "m.room.message", {"msgtype": "m.text", "body": "雑談"})
    mention_text = f"{staff.localpart} さん、安否確認に回答してください"
    status, mention = await send(pc, room_id, "m.room.message", {
        "msgtype": "m.text", "body": mention_text, "m.mentions": {"user_ids": [staff.user_id]}})
    assert status == 200, mention
    notification = await notifications_for(push_gateway, mention["event_id"])
    assert notification["counts"]["unread"] >= 1 and "content" not in notification
    assert not any(n["notification"].get("event_id") == quiet["event_id"] for n in push_gateway.received)
    assert all(mention_text.encode() not in body for body in push_gateway.raw)


# --- Configuration --------------------------------------------------------------------------------

def test_generated_homeserver_config_has_turn_and_push_without_content(homeserver, coturn):
    import yaml

    rendered = yaml.safe_load((homeserver.data_dir / "homeserver.yaml").read_text(encoding="utf-8"))
    assert rendered["push"] == {"include_content": False}
    secret = turn_secret_path(homeserver.data_dir)
    assert rendered["turn_shared_secret_path"] == str(secret) and rendered["turn_allow_guests"] is False
    assert oct(secret.stat().st_mode & 0o777) == "0o600" and oct(secret.parent.stat().st_mode & 0o777) == "0o700"
    conf = coturn.conf.read_text(encoding="utf-8")
    assert f"static-auth-secret={secret.read_text().strip()}" in conf and "use-auth-secret" in conf
    assert oct(coturn.conf.stat().st_mode & 0o777) == "0o600"
    assert "denied-peer-ip=10.0.0.0-10.255.255.255" in conf and "no-tls" in conf


def test_check_config_says_group_calls_stay_refused_on_lgwan(tmp_path):
    from lgwan_chat.checkconfig import check_document, notes_file

    modules = {"modules": [{"module": "synapse_modules.zones.ZonePolicyModule", "config": {"rtc_foci": [FOCUS]}}]}
    path = tmp_path / "modules.yaml"
    path.write_text(json.dumps(modules), encoding="utf-8")
    assert check_document(modules) == []
    [note] = notes_file(path)
    assert "LGWAN 系の端末からの通話は、これまでどおり拒否されます" in note.format()
    assert "Calls from LGWAN devices stay refused" in note.format()
    # In homeserver.yaml's extra_well_known_client_content they would reach the LGWAN entrance too.
    homeserver = {**modules, "listeners": [{"tag": "internet"}, {"tag": "lgwan"}],
                  "extra_well_known_client_content": {RTC_FOCI: [FOCUS],
                                                      "m.tile_server": {"map_style_url": PUBLIC_STYLE}}}
    issues = check_document(homeserver)
    assert {i.key for i in issues} == {"config.zone_well_known_per_entrance"} and len(issues) == 2
    assert {i.params["setting"] for i in issues} == {"rtc_foci", "map_style_urls"}
