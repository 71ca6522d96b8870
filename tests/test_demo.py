"""`lgwan-chat demo` (what `make demo` runs) as a user would use it: start, log in, Ctrl-C, resume."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from bots_harness import answer, room_events, wait_membership, wait_replies
from harness import download, http_get
from nio import AsyncClient, JoinedRoomsResponse, LoginResponse, RoomCreateResponse, RoomResolveAliasResponse
from PIL import Image
from test_login_limits import outcome, password_login, whois_addresses
from test_zone_endpoint import call_zone

from lgwan_chat.ports import free_port, port_in_use, reserve_port

LGWAN_CHAT = str(Path(sys.executable).parent / "lgwan-chat")


OFFSET = 1000


def free_pair() -> int:
    """A port p with p, p+1 (the entrances), p+22 (the upload page), p+23 (coturn) and p+OFFSET,
    p+OFFSET+1 (Synapse behind nginx) free, all reserved for this process (other pytest-xdist workers
    pick ports too)."""
    while True:
        port = free_port()
        if all(reserve_port(port + offset) for offset in (1, 22, 23, OFFSET, OFFSET + 1)):
            return port


class Demo:
    def __init__(self, data_dir: Path, env: dict | None = None):
        self.data_dir = data_dir
        base = free_pair()
        self.ports = {"internet": base, "lgwan": base + 1}
        self.output = data_dir.parent / "demo-output.txt"
        self.env = {**os.environ, **(env or {})}

    def args(self) -> list[str]:
        return [LGWAN_CHAT, "demo", "--data-dir", str(self.data_dir), "--internet-port", str(self.ports["internet"]),
                "--lgwan-port", str(self.ports["lgwan"]), "--synapse-port-offset", str(OFFSET)]

    def start(self) -> None:
        with open(self.output, "w") as out:
            self.process = subprocess.Popen(self.args(), stdout=out, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, env=self.env)
        deadline = time.monotonic() + 180  # first start registers accounts (bcrypt): slow on a busy machine
        while "Press Ctrl-C to stop." not in self.text():
            assert self.process.poll() is None, self.text()
            assert time.monotonic() < deadline, self.text()
            time.sleep(0.2)

    def text(self) -> str:
        return self.output.read_text(encoding="utf-8")

    def interrupt(self) -> int:
        self.process.send_signal(signal.SIGINT)  # what Ctrl-C does
        return self.process.wait(60)


def stop_everything_under(path: Path) -> None:
    """Whatever a failed test left running for this demo (its Synapse, nginx) is killed."""
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmdline = (proc / "cmdline").read_bytes()
            except OSError:
                continue
            if str(path).encode() in cmdline:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(proc.name), signal.SIGKILL)


@pytest.fixture
def demo(tmp_path):
    demo = Demo(tmp_path / "demo")
    yield demo
    stop_demo(demo)


def stop_demo(demo: Demo) -> None:
    process = getattr(demo, "process", None)
    if process is not None and process.poll() is None:
        process.send_signal(signal.SIGINT)  # lets the demo stop its children itself
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
    stop_everything_under(demo.data_dir)


async def login(url: str, user_id: str, password: str) -> AsyncClient:
    client = AsyncClient(url, user_id)
    assert isinstance(await client.login(password), LoginResponse)
    return client


def readable_by_others(root: Path) -> list[str]:
    """Everything under root (root included) that its group or other users may read, write or enter."""
    return [f"{oct(path.stat().st_mode & 0o777)} {path}" for path in [root, *root.rglob("*")]
            if not path.is_symlink() and path.stat().st_mode & 0o077]


def assert_private(data_dir: Path) -> None:
    """The demo's data: directories 0700, files 0600, from the secrets to the staff's files."""
    for made in ("homeserver.db", "homeserver.db-wal", "homeserver.db-shm", "signing.key", "homeserver.yaml",
                 "overrides.yaml", "log.config", "bots.yaml", "credentials.json", "secrets/provisioner.token",
                 "logs/homeserver.log", "logs/nginx-access.log", "logs/memo.log", "bots/memo.sqlite3",
                 "nginx/nginx.conf"):
        assert (data_dir / made).is_file(), made  # the walk below covers what matters
    assert [p for p in (data_dir / "media_store").rglob("*") if p.is_file()], "no media stored yet"
    assert oct(data_dir.stat().st_mode & 0o777) == "0o700"
    assert readable_by_others(data_dir) == []
    assert not [p for p in data_dir.rglob("*") if p.is_file() and p.stat().st_mode & 0o777 != 0o600]


async def test_demo_starts_everything_and_resumes_with_the_same_data(demo):
    demo.start()
    text = demo.text()
    assert "ログイン方法" in text and "How to log in" in text
    assert "ボット「memo」を起動しています" in text

    creds = json.loads((demo.data_dir / "credentials.json").read_text(encoding="utf-8"))
    assert oct((demo.data_dir / "credentials.json").stat().st_mode & 0o777) == "0o600"
    assert creds["listeners"] == {zone: f"http://127.0.0.1:{port}" for zone, port in demo.ports.items()}
    assert creds["server_name"] == "demo-city.test" and creds["registration_shared_secret"]
    assert creds["admin"]["user_id"] == "@admin:demo-city.test"
    assert {u["department"] for u in creds["users"]} >= {"soumu", "doboku-douro"}
    assert creds["bots"] == {"memo": "@memo-bot:demo-city.test", "sanitizer": "@sanitizer-bot:demo-city.test",
                             "polls": "@polls-bot:demo-city.test"}
    assert "ボット「sanitizer」を起動しています" in text and "ボット「polls」を起動しています" in text
    assert oct((demo.data_dir / "secrets" / "memo-bot.password").stat().st_mode & 0o777) == "0o600"
    assert (demo.data_dir / "logs" / "homeserver.log").stat().st_size > 0
    assert "LGWAN 系のダウンロード制限（メディアゲート）は無効です" not in text  # nginx is in front
    assert (demo.data_dir / "logs" / "nginx-error.log").exists()

    # A staff member logs in through each zone's listener and gets that zone.
    staff = creds["users"][0]
    client = await login(creds["listeners"]["internet"], staff["user_id"], staff["password"])
    for _ in range(100):  # the stamp pack is published in the background at startup
        status, _, body = http_get(f"{creds['listeners']['internet']}/_matrix/client/v3/user/"
                                   f"{staff['user_id']}/account_data/m.widgets", client.access_token)
        if status == 200:
            break
        time.sleep(0.2)
    picker = json.loads(body)["lgwan_stamps"]["content"]
    assert picker["url"].startswith(creds["listeners"]["internet"] + "/_synapse/client/lgwan/v1/stamps/picker")
    status, content_type, _ = http_get(picker["url"].split("?")[0])
    assert (status, content_type) == (200, "text/html; charset=utf-8")  # served through the entrance
    await client.close()
    turn_port = demo.ports["internet"] + 23
    assert "TURN サーバー（coturn）を起動しています" in text and port_in_use(turn_port)
    for zone, url in creds["listeners"].items():
        client = await login(url, staff["user_id"], staff["password"])
        assert call_zone(url, client.access_token)[1]["zone"] == zone
        # Calls: TURN credentials for the internet side (the demo's coturn), none for LGWAN PCs.
        status, _, body = http_get(f"{url}/_matrix/client/v3/voip/turnServer", client.access_token)
        if zone == "internet":
            assert status == 200 and f"turn:127.0.0.1:{turn_port}?transport=udp" in json.loads(body)["uris"]
        else:
            assert status == 403 and json.loads(body)["jp.lgwan.reason"] == "call_from_lgwan"
        await client.close()
    # The admin account is a server admin.
    admin = await login(creds["listeners"]["lgwan"], creds["admin"]["user_id"], creds["admin"]["password"])
    admin_path = f"/_synapse/admin/v1/users/{creds['admin']['user_id']}/admin"
    synapse_lgwan = f"http://127.0.0.1:{demo.ports['lgwan'] + OFFSET}"  # behind nginx, for the operator
    status, _, body = http_get(synapse_lgwan + admin_path, admin.access_token)
    assert (status, json.loads(body)) == (200, {"admin": True})
    # The admin API is not reachable through the entrances clients use.
    assert http_get(creds["listeners"]["lgwan"] + admin_path, admin.access_token)[0] == 404
    room = await admin.room_create(name="全庁お知らせ")
    assert isinstance(room, RoomCreateResponse)
    await admin.close()

    # The organisation's rooms were provisioned: the staff member is in their department's room.
    staff_pc = await login(creds["listeners"]["lgwan"], staff["user_id"], staff["password"])
    assert "組織のルームとスペースを作成・更新しました" in text
    department = next(m["department"] for m in creds["users"] if m["user_id"] == staff["user_id"])
    alias = await staff_pc.room_resolve_alias(f"#demo-city-{department}:demo-city.test")
    assert isinstance(alias, RoomResolveAliasResponse), alias
    assert alias.room_id in (await staff_pc.joined_rooms()).rooms

    # The memo pad bot runs: a DM with it answers !ヘルプ and keeps a memo.
    dm = await staff_pc.room_create(is_direct=True, invite=[creds["bots"]["memo"]])
    assert isinstance(dm, RoomCreateResponse), dm
    await wait_membership(staff_pc, dm.room_id, creds["bots"]["memo"], "join")
    assert "使えるコマンド" in (await answer(staff_pc, dm.room_id, "!ヘルプ"))["body"]
    memo = await staff_pc.room_send(dm.room_id, "m.room.message",
                                    {"msgtype": "m.text", "body": "議事録は金曜までに提出"})
    assert "メモ #1 を保存しました" in (await wait_replies(staff_pc, dm.room_id, memo.event_id))[0]["content"]["body"]
    # 🔖 on a message bookmarks it (bookmarks module) and the memo bot may list it (readers).
    await staff_pc.room_send(dm.room_id, "m.reaction", {"m.relates_to": {
        "rel_type": "m.annotation", "event_id": memo.event_id, "key": "🔖"}})
    assert "議事録は金曜までに提出" in (await answer(staff_pc, dm.room_id, "!ブックマーク"))["body"]

    # The sanitizer bot runs: a photo from the phone reaches the office PC as a sanitized copy.
    phone = await login(creds["listeners"]["internet"], staff["user_id"], staff["password"])
    colleague = creds["users"][1]
    team = await staff_pc.room_create(name="総務課", invite=[creds["bots"]["sanitizer"], colleague["user_id"]])
    await wait_membership(staff_pc, team.room_id, creds["bots"]["sanitizer"], "join")
    photo = io.BytesIO()
    Image.new("RGB", (64, 48), (10, 120, 60)).save(photo, "JPEG")
    uploaded, _ = await phone.upload(io.BytesIO(photo.getvalue()), content_type="image/jpeg", filename="現場.jpg",
                                     filesize=len(photo.getvalue()))
    posted = await phone.room_send(team.room_id, "m.room.message", {
        "msgtype": "m.image", "body": "現場.jpg", "url": uploaded.content_uri, "info": {"mimetype": "image/jpeg"}})
    report, copy = await wait_replies(staff_pc, team.room_id, posted.event_id, count=2, timeout=120)
    assert report["content"]["body"].startswith("無害化しました")
    assert (await download(creds["listeners"]["lgwan"], staff_pc, uploaded.content_uri))[0] == 403
    assert (await download(creds["listeners"]["lgwan"], staff_pc, copy["content"]["url"]))[0] == 200
    # The contractor upload page answers through the internet entrance (a forged link: a clear page).
    status, content_type, body = http_get(f"{creds['listeners']['internet']}/upload/{'x' * 43}")
    assert status == 404 and content_type.startswith("text/html") and "正しくありません" in body.decode()
    await phone.close()

    # The polls bot runs: a survey becomes a native poll Element renders.
    await staff_pc.room_invite(team.room_id, creds["bots"]["polls"])
    await wait_membership(staff_pc, team.room_id, creds["bots"]["polls"], "join")
    await staff_pc.room_send(team.room_id, "m.room.message", {"msgtype": "m.text",
                                                              "body": "!アンケート 昼食は？ / 弁当 / 外食"})
    for _ in range(150):
        started = [e for e in await room_events(staff_pc, team.room_id)
                   if e["type"] == "org.matrix.msc3381.poll.start"]
        if started:
            break
        await asyncio.sleep(0.2)
    assert started and started[0]["sender"] == creds["bots"]["polls"]
    await staff_pc.close()

    # Everything the demo, Synapse, nginx and the bots wrote is for the demo's owner only.
    assert_private(demo.data_dir)

    assert demo.interrupt() == 0
    assert "すべて停止しました" in demo.text()
    assert not any(port_in_use(p) for p in (demo.ports["internet"], demo.ports["lgwan"], turn_port))

    # A deployment made before the permissions rule (world-readable) is tightened on the next start.
    for loose, mode in (("", 0o755), ("homeserver.db", 0o644), ("signing.key", 0o644), ("bots.yaml", 0o644),
                        ("media_store", 0o755), ("logs/homeserver.log", 0o644)):
        (demo.data_dir / loose).chmod(mode)
    assert readable_by_others(demo.data_dir)

    # Run again: same accounts, same passwords, the room is still there.
    demo.start()
    assert_private(demo.data_dir)
    assert "既存のデモ環境を使って再開します" in demo.text()
    again = json.loads((demo.data_dir / "credentials.json").read_text(encoding="utf-8"))
    assert again == creds
    admin = await login(creds["listeners"]["internet"], creds["admin"]["user_id"], creds["admin"]["password"])
    rooms = await admin.joined_rooms()
    assert isinstance(rooms, JoinedRoomsResponse) and room.room_id in rooms.rooms
    await admin.close()
    staff_pc = await login(creds["listeners"]["lgwan"], staff["user_id"], staff["password"])
    assert "議事録は金曜までに提出" in (await answer(staff_pc, dm.room_id, "!一覧"))["body"]  # the memo survived
    await staff_pc.close()
    assert demo.interrupt() == 0

    # Made with nginx in front, Synapse believes X-Forwarded-For: it refuses to face clients directly.
    without_nginx = subprocess.run(demo.args(), capture_output=True, text=True, timeout=120,
                                   env={**demo.env, "LGWAN_CHAT_NGINX": "none"})
    assert without_nginx.returncode == 1
    assert "nginx なしで Synapse に直接つなぐと、送信元アドレスを偽れてしまいます" in without_nginx.stdout
    assert not port_in_use(demo.ports["internet"] + OFFSET)


def test_demo_refuses_to_start_on_a_broken_config(demo):
    demo.data_dir.mkdir(parents=True)
    (demo.data_dir / "organisation.yaml").write_text(
        "organisation:\n  municipality: {id: x, name: {ja: 市}}\n  departments: []\n", encoding="utf-8")
    result = subprocess.run(demo.args(), capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert "organisation.departments: 少なくとも 1 個必要です" in result.stderr
    assert not (demo.data_dir / "homeserver.pid").exists()


async def test_demo_lets_a_whole_office_log_in_from_one_address(demo):
    """A fresh demo: the demo's own accounts and bots spent no logins, so every staff member gets in
    at once through one entrance (one address, as behind an office proxy); guessing is throttled."""
    demo.start()
    creds = json.loads((demo.data_dir / "credentials.json").read_text(encoding="utf-8"))
    logs = demo.data_dir / "logs"
    for name in creds["bots"]:  # each bot starts on the session its registration made, not a login
        for _ in range(300):
            if "session restored" in (logs / f"{name}.log").read_text(encoding="utf-8"):
                break
            time.sleep(0.2)
        assert "session restored" in (logs / f"{name}.log").read_text(encoding="utf-8")
        assert "logged in" not in (logs / f"{name}.log").read_text(encoding="utf-8")
    assert not re.search(r"POST /_matrix/client/[^/ ]+/login", (logs / "homeserver.log").read_text(encoding="utf-8"))

    entrance = creds["listeners"]["lgwan"]
    localparts = {u["user_id"]: u["user_id"][1:].split(":")[0] for u in creds["users"]}
    results = await asyncio.gather(*(asyncio.to_thread(password_login, entrance, localparts[u["user_id"]],
                                                       u["password"]) for u in creds["users"]))
    assert [outcome(r) for r in results] == [(200, None)] * len(creds["users"])
    guessed = localparts[creds["users"][0]["user_id"]]
    assert [outcome(password_login(entrance, guessed, "wrong-" + str(n))) for n in range(10)] == \
        [(403, "M_FORBIDDEN")] * 5 + [(429, "M_LIMIT_EXCEEDED")] * 5

    # An admin sees the bots' devices named as bots.yaml says (one each: the registration's).
    admin = await login(entrance, creds["admin"]["user_id"], creds["admin"]["password"])
    synapse_lgwan = f"http://127.0.0.1:{demo.ports['lgwan'] + OFFSET}"
    for name, user_id in creds["bots"].items():
        status, _, body = http_get(f"{synapse_lgwan}/_synapse/admin/v2/users/{user_id}/devices", admin.access_token)
        assert status == 200
        assert [d["display_name"] for d in json.loads(body)["devices"]] == \
            [{"memo": "メモ帳ボット (memo pad bot)", "sanitizer": "無害化ボット (sanitizer bot)",
              "polls": "投票ボット (polls bot)"}[name]]
        # ... and exempt from the message limit (a safety check must not wait out a burst spent on
        # earlier answers), set when the demo registered it.
        status, _, body = http_get(f"{synapse_lgwan}/_synapse/admin/v1/users/{user_id}/override_ratelimit",
                                   admin.access_token)
        assert (status, json.loads(body)) == (200, {"messages_per_second": 0, "burst_count": 0})
    await admin.close()
    assert demo.interrupt() == 0


async def test_demo_gates_media_for_lgwan_devices(demo):
    """Through the demo's nginx: a photo from a phone does not open on an office PC."""
    demo.start()
    creds = json.loads((demo.data_dir / "credentials.json").read_text(encoding="utf-8"))
    staff = creds["users"][2]
    phone = await login(creds["listeners"]["internet"], staff["user_id"], staff["password"])
    pc = await login(creds["listeners"]["lgwan"], staff["user_id"], staff["password"])
    data = b"\x89PNG\r\n\x1a\n" + b"road-photo" * 50
    uploaded, _ = await phone.upload(io.BytesIO(data), content_type="image/png", filename="photo.png",
                                     filesize=len(data))
    for url, client, expected in ((creds["listeners"]["internet"], phone, 200), (creds["listeners"]["lgwan"], pc, 403)):
        status, body = await download(url, client, uploaded.content_uri)
        assert status == expected
        assert (body == data) == (expected == 200)
    await phone.close()
    await pc.close()
    assert demo.interrupt() == 0


async def test_demo_without_nginx_says_the_gate_is_off(tmp_path):
    demo = Demo(tmp_path / "demo", env={"LGWAN_CHAT_NGINX": "none"})
    try:
        demo.start()
        assert "LGWAN 系のダウンロード制限（メディアゲート）は無効です" in demo.text()
        assert "the LGWAN download gate (media gate) is OFF" in demo.text()
        creds = json.loads((demo.data_dir / "credentials.json").read_text(encoding="utf-8"))
        staff = creds["users"][0]
        client = await login(creds["listeners"]["lgwan"], staff["user_id"], staff["password"])
        assert call_zone(creds["listeners"]["lgwan"], client.access_token)[1]["zone"] == "lgwan"
        # Clients reach Synapse directly here: an X-Forwarded-For they send is not believed.
        assert http_get(creds["listeners"]["lgwan"] + "/_matrix/client/v3/account/whoami", client.access_token,
                        headers={"X-Forwarded-For": "10.9.9.9"})[0] == 200
        admin = await login(creds["listeners"]["lgwan"], creds["admin"]["user_id"], creds["admin"]["password"])
        for _ in range(100):  # Synapse writes client addresses in batches
            seen = whois_addresses(creds["listeners"]["lgwan"], admin.access_token, staff["user_id"])
            if seen:
                break
            time.sleep(0.2)
        assert seen == {"127.0.0.1"}
        await admin.close()
        await client.close()
        assert demo.interrupt() == 0
    finally:
        stop_demo(demo)
