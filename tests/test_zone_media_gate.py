"""Files from the internet side never reach an LGWAN device: real nginx in front of real Synapse.

A phone (internet) and an office PC (LGWAN) of the same city talk through the suite's nginx
config (config/nginx). Every media path an LGWAN device could use to fetch an untrusted file
is tried, including guessed and re-encoded URLs; each must be refused, with a picture or a
message saying the file waits for sanitization.
"""

from __future__ import annotations

import io
import json
import urllib.error
import urllib.request
from urllib.parse import quote

import pytest
from harness import http_get as fetch
from nio import UploadResponse
from PIL import Image

from lgwan_chat.core.i18n import t
from synapse_modules.zones.rest.media_pending import PLACEHOLDER

SANITIZER = "sanitizer-bot"


@pytest.fixture(scope="module")
def homeserver_modules():
    return [{"module": "synapse_modules.zones.ZonePolicyModule",
             "config": {"trusted_uploaders": [f"@{SANITIZER}:lgwan.test"],
                        "trusted_remote_servers": ["pref.example"]}}]


def png(colour=(200, 30, 30)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 48), colour).save(out, "PNG")
    return out.getvalue()


async def upload(client, data: bytes, name: str = "現場写真.png") -> tuple[str, str]:
    response, _ = await client.upload(io.BytesIO(data), content_type="image/png", filename=name,
                                      filesize=len(data))
    assert isinstance(response, UploadResponse), response
    server, media_id = response.content_uri[len("mxc://"):].split("/", 1)
    return server, media_id


@pytest.fixture
async def devices(homeserver, nginx_front, login):
    user = homeserver.new_user("staff")
    phone = await login(user, "internet", via=nginx_front)
    pc = await login(user, "lgwan", via=nginx_front)
    return phone, pc


def assert_pending_message(status: int, body: bytes):
    assert status == 403
    error = json.loads(body)
    assert error["errcode"] == "M_FORBIDDEN"
    assert error["jp.lgwan.reason"] == "media_pending_sanitization"
    assert error["jp.lgwan.message"]["ja"] == t("zones.media_pending_sanitization", "ja")


async def test_photo_from_phone_is_recorded_as_untrusted(homeserver, devices):
    phone, _ = devices
    _, media_id = await upload(phone, png())
    rows = homeserver.query("SELECT uploader, device_id, zone FROM lgwan_untrusted_media WHERE media_id = ?",
                            media_id)
    assert rows == [(phone.user_id, phone.device_id, "internet")]


async def test_office_pc_gets_a_placeholder_not_the_photo(homeserver, nginx_front, devices):
    phone, pc = devices
    photo = png()
    server, media_id = await upload(phone, photo)
    lgwan = nginx_front.url("lgwan")

    # The phone (internet side) sees its photo.
    status, _, body = fetch(f"{nginx_front.url('internet')}/_matrix/client/v1/media/download/{server}/{media_id}",
                            phone.access_token)
    assert (status, body) == (200, photo)

    # The office PC: thumbnails become the "waiting for sanitization" picture ...
    for path in (f"/_matrix/client/v1/media/thumbnail/{server}/{media_id}?width=32&height=32&method=scale",
                 f"/_matrix/media/v3/thumbnail/{server}/{media_id}?width=32&height=32",
                 f"/_matrix/media/r0/thumbnail/{server}/{media_id}?width=32&height=32"):
        status, content_type, body = fetch(lgwan + path, pc.access_token)
        assert (status, content_type) == (200, "image/png"), path
        assert body == PLACEHOLDER.read_bytes(), path
    # ... and downloads a 403 saying why, in Japanese and English.
    for path in (f"/_matrix/client/v1/media/download/{server}/{media_id}",
                 f"/_matrix/client/v1/media/download/{server}/{media_id}/renamed.png",
                 f"/_matrix/media/v3/download/{server}/{media_id}",
                 f"/_matrix/media/r0/download/{server}/{media_id}",
                 f"/_matrix/media/v1/download/{server}/{media_id}"):
        assert_pending_message(*fetch(lgwan + path, pc.access_token)[::2]), path


async def test_guessed_and_reencoded_urls_are_refused_too(homeserver, nginx_front, devices):
    phone, pc = devices
    photo = png((10, 120, 10))
    server, media_id = await upload(phone, photo)
    lgwan = nginx_front.url("lgwan")
    encoded_id = "".join(f"%{ord(c):02X}" for c in media_id)
    attempts = [
        f"/_matrix/client/v1/media/download/{quote(server)}/{encoded_id}",  # percent-encoded id
        f"/_matrix/client/v1/media/download/{server}/{media_id}?allow_redirect=true",
        f"/_matrix/client/v1/%6Dedia/download/{server}/{media_id}",  # encoded "media"
        f"/_matrix/client/v1/MEDIA/download/{server}/{media_id}",
        f"//_matrix/client/v1/media/download/{server}/{media_id}",
        f"/_matrix/client/v1/media/download/{server}/{media_id}/../{media_id}",
        "/_matrix/client/v1/media/preview_url?url=http://127.0.0.1/",
        f"/_matrix/federation/v1/media/download/{media_id}",  # another homeserver asking
        f"/_matrix/federation/v1/media/thumbnail/{media_id}?width=32&height=32",
    ]
    for path in attempts:
        status, _, body = fetch(lgwan + path, pc.access_token)
        assert body != photo, path
        # the placeholder picture, the gate's refusal, or nginx's (a non-canonical path, 400)
        assert status in (200, 400, 403), (path, status)
        if status == 200:
            assert body == PLACEHOLDER.read_bytes(), path
    # Straight to the gate, without nginx: it refuses what it cannot read.
    status, _, _ = fetch(homeserver.url("lgwan") + "/_synapse/client/lgwan/v1/media_gate")
    assert status == 403


async def test_office_pc_opens_what_lgwan_devices_uploaded(nginx_front, devices):
    _, pc = devices
    document = png((0, 0, 200))
    server, media_id = await upload(pc, document, "議事録.png")
    status, _, body = fetch(f"{nginx_front.url('lgwan')}/_matrix/client/v1/media/download/{server}/{media_id}",
                            pc.access_token)
    assert (status, body) == (200, document)


async def test_sanitizer_uploads_are_trusted_from_any_zone(homeserver, nginx_front, login, devices):
    _, pc = devices
    sanitizer = await login(homeserver.new_user(localpart=SANITIZER), "internet", via=nginx_front)
    clean = png((250, 250, 250))
    server, media_id = await upload(sanitizer, clean, "無害化済み.png")
    status, _, body = fetch(f"{nginx_front.url('lgwan')}/_matrix/client/v1/media/download/{server}/{media_id}",
                            pc.access_token)
    assert (status, body) == (200, clean)


def gate_verdict(base_url: str, uri: str) -> int:
    return fetch(base_url + "/_synapse/client/lgwan/v1/media_gate", headers={"X-Original-URI": uri})[0]


def test_remote_media_only_from_trusted_servers(homeserver):
    """The gate's verdict for other homeservers' media (which Synapse fetches over federation)."""
    lgwan, internet = homeserver.url("lgwan"), homeserver.url("internet")
    assert gate_verdict(lgwan, "/_matrix/client/v1/media/download/pref.example/abc") == 200
    assert gate_verdict(lgwan, "/_matrix/client/v1/media/download/elsewhere.example/abc") == 403
    assert gate_verdict(lgwan, "/_matrix/media/v3/upload") == 200  # uploading hands out nothing
    assert gate_verdict(lgwan, "/_matrix/client/v1/media/download/lgwan.test/\u00e9") == 403  # not ASCII
    # On the internet side everything may be fetched.
    assert gate_verdict(internet, "/_matrix/client/v1/media/download/elsewhere.example/abc") == 200


def mxc_urls(value) -> set[str]:
    """Every mxc:// URL anywhere in a JSON value (what a client could try to open)."""
    if isinstance(value, str):
        return {value} if value.startswith("mxc://") else set()
    if isinstance(value, dict):
        return set().union(*(mxc_urls(v) for v in value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*(mxc_urls(v) for v in value)) if value else set()
    return set()


def raw_sync(url: str, token: str) -> dict:
    request = urllib.request.Request(f"{url}/_matrix/client/v3/sync?timeout=0&full_state=true",
                                     headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=20) as r:
        return json.loads(r.read())


def image(mxc: str) -> dict:
    return {"msgtype": "m.image", "body": "photo.png", "url": mxc,
            "info": {"mimetype": "image/png", "w": 64, "h": 48, "thumbnail_url": mxc}}


SMUGGLERS = {
    "image message": lambda mxc, root: ("m.room.message", image(mxc), None),
    "edit (m.new_content)": lambda mxc, root: (
        "m.room.message", {"msgtype": "m.text", "body": "* photo", "m.new_content": image(mxc),
                           "m.relates_to": {"rel_type": "m.replace", "event_id": root}}, None),
    "reply": lambda mxc, root: (
        "m.room.message", {**image(mxc), "m.relates_to": {"m.in_reply_to": {"event_id": root}}}, None),
    "thread": lambda mxc, root: (
        "m.room.message", {**image(mxc), "m.relates_to": {"rel_type": "m.thread", "event_id": root}}, None),
    "sticker": lambda mxc, root: ("m.sticker", {"body": "了解", "url": mxc, "info": {"mimetype": "image/png"}}, None),
    "room avatar": lambda mxc, root: ("m.room.avatar", {"url": mxc}, ""),
    "state event with an image pack": lambda mxc, root: (
        "im.ponies.room_emotes", {"images": {"ok": {"url": mxc}}, "pack": {"display_name": "pack"}}, ""),
}


@pytest.mark.parametrize("smuggler", list(SMUGGLERS))
async def test_no_event_kind_carries_untrusted_media_into_lgwan(homeserver, nginx_front, devices, smuggler):
    phone, pc = devices
    photo = png((90, 90, 30))
    server, media_id = await upload(phone, photo)
    mxc = f"mxc://{server}/{media_id}"
    room = await phone.room_create(name="持ち込みテスト", is_direct=False)
    root = await phone.room_send(room.room_id, "m.room.message", {"msgtype": "m.text", "body": "報告"})
    event_type, content, state_key = SMUGGLERS[smuggler](mxc, root.event_id)
    if state_key is None:
        sent = await phone.room_send(room.room_id, event_type, content)
    else:
        sent = await phone.room_put_state(room.room_id, event_type, content, state_key=state_key)
    assert not hasattr(sent, "status_code"), sent

    # The office PC receives the reference (the rules do not hide events) ...
    assert mxc in mxc_urls(raw_sync(nginx_front.url("lgwan"), pc.access_token)["rooms"]["join"][room.room_id])
    # ... but never the file behind it.
    for kind in ("download", "thumbnail"):
        status, _, body = fetch(f"{nginx_front.url('lgwan')}/_matrix/client/v1/media/{kind}/{server}/{media_id}"
                                "?width=32&height=32", pc.access_token)
        assert body != photo and status in (200, 403)


async def test_profile_avatar_from_phone_is_not_opened_on_office_pc(nginx_front, devices):
    phone, pc = devices
    server, media_id = await upload(phone, png((1, 2, 3)))
    await phone.set_avatar(f"mxc://{server}/{media_id}")
    profile = await pc.get_profile(phone.user_id)
    assert profile.avatar_url == f"mxc://{server}/{media_id}"
    status, _, body = fetch(f"{nginx_front.url('lgwan')}/_matrix/client/v1/media/thumbnail/{server}/{media_id}"
                            "?width=32&height=32", pc.access_token)
    assert (status, body) == (200, PLACEHOLDER.read_bytes())


async def test_redact_and_resend_from_the_office_pc_does_not_launder(nginx_front, devices):
    """The phone's photo is redacted; the PC posts the same mxc itself: still untrusted."""
    phone, pc = devices
    photo = png((7, 7, 7))
    server, media_id = await upload(phone, photo)
    room = await phone.room_create(name="再送テスト")
    await pc.join(room.room_id)
    sent = await phone.room_send(room.room_id, "m.room.message", image(f"mxc://{server}/{media_id}"))
    await phone.room_redact(room.room_id, sent.event_id, reason="誤送信")
    await pc.room_send(room.room_id, "m.room.message", image(f"mxc://{server}/{media_id}"))
    status, _, body = fetch(f"{nginx_front.url('lgwan')}/_matrix/client/v1/media/download/{server}/{media_id}",
                            pc.access_token)
    assert status == 403 and body != photo
