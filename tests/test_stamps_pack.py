"""The stamp pack: images checked and normalized, uploaded once, published for every client family."""

from __future__ import annotations

import io
import json
import shutil
import struct
import time
import urllib.error
import urllib.request
import zlib
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from harness import RunningHomeserver, eventually, http_get
from PIL import Image

from lgwan_chat.cli import main
from synapse_modules.stamps.images import MAX_SIDE, StampImageError, load

SAMPLES = Path(__file__).resolve().parent.parent / "config" / "stamps"
STAMPS: list[dict[str, Any]] = [{"id": "ryokai", "label": {"ja": "了解", "en": "Got it"}, "image": "ryokai.png"},
          {"id": "kakunin", "label": {"ja": "確認しました", "en": "Checked"}, "image": "kakunin.png"}]


def stamps_module(images_dir: Path, stamps=STAMPS) -> list[dict]:
    return [{"module": "synapse_modules.stamps.StampsModule",
             "config": {"images_dir": str(images_dir), "pack_name": {"ja": "テスト市スタンプ", "en": "Test stamps"},
                        "stamps": stamps}}]


@pytest.fixture(scope="module")
def images_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("stamps")
    for item in STAMPS:
        shutil.copy(SAMPLES / item["image"], folder / item["image"])
    return folder


@pytest.fixture(scope="module")
def homeserver_modules(images_dir):
    return stamps_module(images_dir)


def client_get(homeserver, token: str, path: str) -> dict:
    status, _, body = http_get(homeserver.url("internet") + path, token)
    assert status == 200, body
    return json.loads(body)


def wait_until(condition, seconds: float = 30):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError("condition not met in time")


def wait_for_pack(homeserver) -> None:
    """The pack is published in the background at startup: wait until the pack room has it."""
    alias = quote(f"#stamps:{homeserver.server_name}")
    token = homeserver.new_user("waiter").access_token

    def published() -> bool:
        status, _, body = http_get(homeserver.url("internet") + f"/_matrix/client/v3/directory/room/{alias}", token)
        if status != 200:
            return False
        room_id = json.loads(body)["room_id"]
        status, _, body = http_get(homeserver.url("internet") + f"/_matrix/client/v3/rooms/{quote(room_id)}"
                                   "/state/m.room.image_pack/", token)
        return status == 200 and bool(json.loads(body).get("images"))

    wait_until(published)


def pack_room(homeserver, token: str) -> str:
    alias = quote(f"#stamps:{homeserver.server_name}")
    return client_get(homeserver, token, f"/_matrix/client/v3/directory/room/{alias}")["room_id"]


def has_pack(homeserver, user, room_id: str) -> None:
    """What each client family needs, as ``user`` sees it: membership of the pack room and the
    pack room listed (Cinny, FluffyChat, Nheko), the sticker picker widget (Element)."""
    base = homeserver.url("internet")
    status, _, body = http_get(base + "/_matrix/client/v3/joined_rooms", user.access_token)
    assert status == 200 and room_id in json.loads(body)["joined_rooms"], (user.user_id, body)
    status, _, body = http_get(base + f"/_matrix/client/v3/user/{quote(user.user_id)}/account_data/"
                               "im.ponies.emote_rooms", user.access_token)
    assert status == 200 and room_id in json.loads(body)["rooms"], (user.user_id, body)
    status, _, body = http_get(base + f"/_matrix/client/v3/user/{quote(user.user_id)}/account_data/m.widgets",
                               user.access_token)
    assert status == 200 and json.loads(body)["lgwan_stamps"]["content"]["type"] == "m.stickerpicker", body


async def test_new_staff_get_the_pack_in_every_client_family(homeserver, login):
    wait_for_pack(homeserver)
    user = homeserver.new_user("newstaff")
    client = await login(user, "internet")
    token = client.access_token
    room_id = pack_room(homeserver, token)

    # The pack is given in the background, a moment after the registration returned.
    await eventually(lambda: has_pack(homeserver, user, room_id))

    # Cinny / FluffyChat / Nheko: the pack room's image pack, listed in the user's account data.
    emote_rooms = client_get(homeserver, token, f"/_matrix/client/v3/user/{quote(user.user_id)}/account_data/"
                                                "im.ponies.emote_rooms")
    assert room_id in emote_rooms["rooms"]
    assert room_id in (await client.joined_rooms()).rooms
    for state_type in ("im.ponies.room_emotes", "m.room.image_pack"):
        pack = client_get(homeserver, token, f"/_matrix/client/v3/rooms/{quote(room_id)}/state/{state_type}/")
        assert pack["pack"]["display_name"] == "テスト市スタンプ"
        assert {k: v["body"] for k, v in pack["images"].items()} == {"ryokai": "了解", "kakunin": "確認しました"}

    # Element: a sticker picker widget in m.widgets, pointing at our own page.
    widgets = client_get(homeserver, token, f"/_matrix/client/v3/user/{quote(user.user_id)}/account_data/m.widgets")
    picker = widgets["lgwan_stamps"]["content"]
    assert picker["type"] == "m.stickerpicker"
    assert "/_synapse/client/lgwan/v1/stamps/picker" in picker["url"]

    # The images are real media, normalized: PNG, at most 256 px a side.
    url = pack["images"]["ryokai"]["url"]
    status, _, body = http_get(homeserver.url("internet") + "/_matrix/client/v1/media/download/" +
                               url[len("mxc://"):], token)
    assert status == 200
    image = Image.open(io.BytesIO(body))
    assert image.format == "PNG" and max(image.size) <= MAX_SIDE


async def test_a_sticker_from_the_pack_is_an_ordinary_m_sticker(homeserver, login):
    client = await login(homeserver.new_user("sender"), "internet")
    room = await client.room_create(name="スタンプ試験")
    pack = client_get(homeserver, client.access_token,
                      f"/_matrix/client/v3/rooms/{quote(pack_room(homeserver, client.access_token))}"
                      "/state/m.room.image_pack/")
    stamp = pack["images"]["kakunin"]
    sent = await client.room_send(room.room_id, "m.sticker", {"body": stamp["body"], "url": stamp["url"],
                                                              "info": stamp["info"]})
    assert sent.event_id.startswith("$")


def test_pack_room_belongs_to_the_pack(homeserver):
    """Staff can read the pack room but not change it."""
    user = homeserver.new_user("reader")
    room_id = pack_room(homeserver, user.access_token)
    request = urllib.request.Request(
        homeserver.url("internet") + f"/_matrix/client/v3/rooms/{quote(room_id)}/state/m.room.image_pack/",
        data=b'{"images": {}}', method="PUT",
        headers={"Authorization": f"Bearer {user.access_token}", "Content-Type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)
    assert refused.value.code == 403


def test_existing_staff_are_backfilled_and_images_uploaded_once(tmp_path, hs_backend):
    """Staff registered before the module was enabled get the pack; restarts re-upload nothing
    that did not change, and a changed image gets a new upload."""
    folder = tmp_path / "stamps"
    folder.mkdir()
    for item in STAMPS:
        shutil.copy(SAMPLES / item["image"], folder / item["image"])
    hs = RunningHomeserver(tmp_path / "hs", hs_backend, modules=[])
    hs.start()
    try:
        veteran = hs.new_user("veteran")
        hs.hs.stop()
        hs.hs.reconfigure(modules=stamps_module(folder))
        hs.hs.start()

        def widgets() -> dict | None:
            status, _, body = http_get(hs.url("internet") + f"/_matrix/client/v3/user/{quote(veteran.user_id)}"
                                       "/account_data/m.widgets", veteran.access_token)
            return json.loads(body) if status == 200 else None

        assert wait_until(widgets)["lgwan_stamps"]["content"]["type"] == "m.stickerpicker"
        first = dict(hs.query("SELECT sha256, mxc FROM lgwan_stamp_media"))
        assert len(first) == 2

        # Restart with one image changed: only that one is uploaded again.
        Image.new("RGB", (300, 100), (0, 0, 255)).save(folder / "kakunin.png")
        hs.hs.stop()
        hs.hs.start()
        wait_until(lambda: len(hs.query("SELECT sha256 FROM lgwan_stamp_media")) == 3)
        second = dict(hs.query("SELECT sha256, mxc FROM lgwan_stamp_media"))
        assert set(first) < set(second)
    finally:
        hs.close()


def write_image(path: Path, kind: str) -> None:
    if kind == "not-an-image":
        path.write_bytes(b"MZ\x90\x00 this is an executable, not a picture")
    elif kind == "bomb":
        # A valid PNG header claiming 30000 x 30000 pixels.
        header = struct.pack(">IIBBBBB", 30000, 30000, 8, 2, 0, 0, 0)
        chunk = b"IHDR" + header
        path.write_bytes(b"\x89PNG\r\n\x1a\n" + struct.pack(">I", len(header)) + chunk +
                         struct.pack(">I", zlib.crc32(chunk)) + b"\x00\x00\x00\x00IEND\xaeB`\x82")
    elif kind == "gps-photo":
        image = Image.new("RGB", (1024, 768), (200, 100, 50))
        exif = Image.Exif()
        exif[0x8825] = {1: "N", 2: (35.0, 41.0, 22.0)}  # GPSInfo
        exif[0x010F] = "PhoneMaker"
        image.save(path, "JPEG", exif=exif.tobytes())


@pytest.mark.parametrize("kind, message", [
    ("missing", "が見つかりません"),
    ("not-an-image", "の画像として読めません"),
    ("bomb", "画素数が多すぎます"),
])
def test_bad_stamp_images_are_refused_by_check_config(tmp_path, capsys, kind, message):
    image = tmp_path / "stamp.png"
    if kind != "missing":
        write_image(image, kind)
    config = tmp_path / "modules.yaml"
    config.write_text(json.dumps({"modules": stamps_module(tmp_path, [
        {"id": "bad", "label": {"ja": "だめ"}, "image": "stamp.png"}])}), encoding="utf-8")
    assert main(["check-config", str(config)]) == 1
    err = capsys.readouterr().err
    assert "modules[0].config.stamps[0].image" in err and message in err


def test_photos_lose_their_metadata_and_size(tmp_path):
    photo = tmp_path / "photo.jpg"
    write_image(photo, "gps-photo")
    assert Image.open(photo).getexif()  # the source has EXIF with GPS
    stamp = load(photo)
    result = Image.open(io.BytesIO(stamp.png))
    assert result.format == "PNG" and max(result.size) == MAX_SIDE
    assert not result.getexif() and "exif" not in result.info


def test_the_image_error_names_the_file(tmp_path):
    with pytest.raises(StampImageError) as caught:
        load(tmp_path / "nothing.png")
    assert str(caught.value.params["path"]).endswith("nothing.png")
