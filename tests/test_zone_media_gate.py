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
from nio import UploadResponse
from PIL import Image

from lgwan_chat.i18n import t
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


def fetch(url: str, token: str | None = None) -> tuple[int, str, bytes]:
    request = urllib.request.Request(url)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=20) as r:
            return r.status, r.headers.get("Content-Type", ""), r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type", ""), e.read()


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
        f"/_matrix/client/v1/media/preview_url?url=http://127.0.0.1/",
        f"/_matrix/federation/v1/media/download/{media_id}",  # another homeserver asking
        f"/_matrix/federation/v1/media/thumbnail/{media_id}?width=32&height=32",
    ]
    for path in attempts:
        status, _, body = fetch(lgwan + path, pc.access_token)
        assert body != photo, path
        assert status in (200, 403), (path, status)  # the placeholder picture or the refusal
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
    request = urllib.request.Request(base_url + "/_synapse/client/lgwan/v1/media_gate", headers={"X-Original-URI": uri})
    try:
        with urllib.request.urlopen(request, timeout=10) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def test_remote_media_only_from_trusted_servers(homeserver):
    """The gate's verdict for other homeservers' media (which Synapse fetches over federation)."""
    lgwan, internet = homeserver.url("lgwan"), homeserver.url("internet")
    assert gate_verdict(lgwan, "/_matrix/client/v1/media/download/pref.example/abc") == 200
    assert gate_verdict(lgwan, "/_matrix/client/v1/media/download/elsewhere.example/abc") == 403
    assert gate_verdict(lgwan, "/_matrix/media/v3/upload") == 200  # uploading hands out nothing
    assert gate_verdict(lgwan, "/_matrix/client/v1/media/download/lgwan.test/\u00e9") == 403  # not ASCII
    # On the internet side everything may be fetched.
    assert gate_verdict(internet, "/_matrix/client/v1/media/download/elsewhere.example/abc") == 200
