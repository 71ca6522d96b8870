#!/usr/bin/env python3
"""`make screenshots`: pictures of the suite as staff see it in a real Matrix client, for the user guide.

Starts a demo of its own (``var/screenshots``, ports 8208/8218, so a running ``make demo`` is not
disturbed), fills it the way staff would (a photo and a program from a phone, a survey with votes,
stamps, a memo DM) through the same client-server API a client uses, then opens Nheko (Debian
package) under Xvfb, logged in through the internet or the LGWAN entrance, and photographs what it
shows into ``docs/images/``.

Nheko 0.11 (Debian 12) predates authenticated media (MSC3916) and fetches files from the legacy
``/_matrix/media/v3`` routes, which Synapse refuses for media uploaded with authenticated media on.
This demo alone turns it off (an admin edit of its homeserver.yaml, kept across restarts); the
entrances and the LGWAN media gate are unchanged: the gate treats legacy routes like the others.
Nheko 0.11 also does not render polls (MSC3381): the survey picture shows the bot's summary message,
which every client shows.

Needs root once for the packages: ``bash scripts/install-system-deps.sh screenshots`` (``make screenshots``
does it when run as root). Takes about three minutes.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
INTERNET_PORT, LGWAN_PORT = 8208, 8218
SCREEN = (1280, 800)
TOOLS = {"Xvfb": "xvfb", "nheko": "nheko", "xdotool": "xdotool", "import": "imagemagick"}


class Demo:
    """The screenshot demo: ``lgwan-chat demo`` in a data directory of its own."""

    def __init__(self, data_dir: Path):
        self.data_dir = data_dir
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        command = [str(Path(sys.executable).parent / "lgwan-chat"), "demo", "--data-dir", str(self.data_dir),
                   "--internet-port", str(INTERNET_PORT), "--lgwan-port", str(LGWAN_PORT)]
        with open(self.data_dir.parent / "screenshots-demo.log", "ab") as log:  # the child keeps its own copy
            self.process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=log)
            assert self.process.stdout is not None
            for line in self.process.stdout:
                log.write(line)
                if b"Press Ctrl-C to stop." in line:
                    return
        raise SystemExit(f"the demo did not start: see {log.name}")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(60)

    def allow_legacy_media(self) -> bool:
        """Turn authenticated media off in this demo's homeserver.yaml; True when it changed."""
        path = self.data_dir / "homeserver.yaml"
        text = path.read_text(encoding="utf-8")
        if "enable_authenticated_media:" in text:
            return False
        path.write_text(text + "\n# make screenshots: Nheko 0.11 (Debian 12) reads media from the legacy routes.\n"
                        "enable_authenticated_media: false\n", encoding="utf-8")
        return True

    def credentials(self) -> dict:
        return json.loads((self.data_dir / "credentials.json").read_text(encoding="utf-8"))


class Client:
    """A logged-in staff member on one entrance, through the client-server API."""

    def __init__(self, base: str, user: dict, device_name: str):
        self.base = base
        login = self.call("POST", "/_matrix/client/v3/login", {
            "type": "m.login.password", "identifier": {"type": "m.id.user", "user": user["user_id"]},
            "password": user["password"], "initial_device_display_name": device_name})
        self.user_id, self.token, self.device_id = login["user_id"], login["access_token"], login["device_id"]
        self.txn = 0

    def call(self, method: str, path: str, body: dict | bytes | None = None, content_type: str = "application/json"):
        data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.base + path, data=data, method=method)
        request.add_header("Content-Type", content_type)
        if getattr(self, "token", None):
            request.add_header("Authorization", f"Bearer {self.token}")
        for _ in range(30):
            try:
                with urllib.request.urlopen(request, timeout=60) as response:
                    return json.load(response)
            except urllib.error.HTTPError as e:
                if e.code != 429:
                    raise SystemExit(f"{method} {path}: {e.code} {e.read()[:300]!r}") from None
                time.sleep(json.loads(e.read() or b"{}").get("retry_after_ms", 1000) / 1000)
        raise SystemExit(f"{method} {path}: still rate limited")

    def send(self, room_id: str, content: dict, event_type: str = "m.room.message") -> str:
        self.txn += 1
        path = (f"/_matrix/client/v3/rooms/{q(room_id)}/send/{q(event_type)}/shot{time.time_ns()}{self.txn}")
        return self.call("PUT", path, content)["event_id"]

    def text(self, room_id: str, body: str) -> str:
        return self.send(room_id, {"msgtype": "m.text", "body": body})

    def upload(self, name: str, data: bytes, mimetype: str) -> str:
        path = "/_matrix/media/v3/upload?filename=" + q(name)
        return self.call("POST", path, data, content_type=mimetype)["content_uri"]

    def join(self, room_id: str) -> None:
        self.call("POST", f"/_matrix/client/v3/join/{q(room_id)}", {})

    def messages(self, room_id: str) -> list[dict]:
        return self.call("GET", f"/_matrix/client/v3/rooms/{q(room_id)}/messages?dir=b&limit=100")["chunk"]

    def wait_for(self, room_id: str, found, what: str, timeout: float = 120):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for event in self.messages(room_id):
                if found(event):
                    return event
            time.sleep(1)
        raise SystemExit(f"waited {timeout:.0f} s for {what}")


def q(value: str) -> str:
    return urllib.parse.quote(value, safe="")


def photo() -> bytes:
    """A site photo with GPS and camera data, as a phone would take it."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (1200, 900))
    draw = ImageDraw.Draw(image)
    for y in range(900):  # sky, then a road
        shade = (120 + y // 8, 170 + y // 12, 230) if y < 480 else (90, 90, 95)
        draw.line([(0, y), (1200, y)], fill=shade)
    draw.polygon([(520, 480), (680, 480), (900, 900), (300, 900)], fill=(60, 60, 64))
    draw.rectangle([(560, 330), (640, 480)], fill=(200, 60, 40))  # a fallen sign
    exif = Image.Exif()
    exif[0x010F], exif[0x0110] = "Phone maker", "Phone model"
    exif[0x8825] = {1: "N", 2: (35.0, 41.0, 22.0), 3: "E", 4: (139.0, 41.0, 30.0)}
    out = io.BytesIO()
    image.save(out, "JPEG", quality=88, exif=exif)
    return out.getvalue()


def program() -> bytes:
    """Bytes of a Windows program (the sanitizer refuses it whatever its name says)."""
    header = bytearray(512)
    header[0:2] = b"MZ"
    header[0x3C:0x40] = (0x80).to_bytes(4, "little")
    header[0x80:0x84] = b"PE\0\0"
    return bytes(header)


def fill(demo: Demo) -> dict:
    """Rooms and messages for the pictures; returns what the scenes open."""
    creds = demo.credentials()
    users = {u["user_id"].split(":")[0][1:]: u for u in creds["users"]}
    server = creds["server_name"]
    internet, lgwan = creds["listeners"]["internet"], creds["listeners"]["lgwan"]
    yamada_phone = Client(internet, users["yamada.taro"], "iPhone")
    suzuki_pc = Client(lgwan, users["suzuki.hanako"], "庁内 PC")
    others = [Client(lgwan, u, "庁内 PC") for name, u in users.items() if name not in ("yamada.taro", "suzuki.hanako")]

    bots = {name: f"@{name}-bot:{server}" for name in ("sanitizer", "polls", "memo")}
    room = yamada_phone.call("POST", "/_matrix/client/v3/createRoom", {
        "name": "道路維持係", "preset": "private_chat",
        "invite": [suzuki_pc.user_id, *(c.user_id for c in others[:2]), bots["sanitizer"]]})["room_id"]
    for client in (suzuki_pc, *others[:2]):
        client.join(room)
    yamada_phone.wait_for(room, lambda e: e["type"] == "m.room.member" and e["state_key"] == bots["sanitizer"]
                          and e["content"].get("membership") == "join", "the sanitizer bot to join")

    suzuki_pc.text(room, "県道 12 号の標識の件、現場の写真を送ってもらえますか。")
    picture = photo()
    url = yamada_phone.upload("現場写真.jpg", picture, "image/jpeg")
    yamada_phone.send(room, {"msgtype": "m.image", "body": "現場写真.jpg", "url": url,
                             "info": {"mimetype": "image/jpeg", "size": len(picture), "w": 1200, "h": 900}})
    bad = program()
    url = yamada_phone.upload("請求書.pdf", bad, "application/pdf")
    yamada_phone.send(room, {"msgtype": "m.file", "body": "請求書.pdf", "url": url,
                             "info": {"mimetype": "application/pdf", "size": len(bad)}})
    sanitizer_replies = lambda e: e["sender"] == bots["sanitizer"]  # noqa: E731
    yamada_phone.wait_for(room, lambda e: sanitizer_replies(e) and e["content"].get("msgtype") == "m.image",
                          "the sanitized photo")
    yamada_phone.wait_for(room, lambda e: sanitizer_replies(e) and "お渡しできません" in e["content"].get("body", ""),
                          "the refusal of the program")
    suzuki_pc.text(room, "ありがとうございます。確認しました。")

    # A survey (the polls bot), answered by three people, in a room of its own.
    sanitizer_room, room = room, yamada_phone.call("POST", "/_matrix/client/v3/createRoom", {
        "name": "忘年会幹事", "preset": "private_chat",
        "invite": [suzuki_pc.user_id, *(c.user_id for c in others[:2]), bots["polls"]]})["room_id"]
    for client in (suzuki_pc, *others[:2]):
        client.join(room)
    yamada_phone.wait_for(room, lambda e: e["type"] == "m.room.member" and e["state_key"] == bots["polls"]
                          and e["content"].get("membership") == "join", "the polls bot to join")
    suzuki_pc.text(room, "!アンケート 忘年会の会場は？\n居酒屋さくら\nホテル東\nどちらでも\n締切 12/24 17時")
    start = yamada_phone.wait_for(room, lambda e: e["sender"] == bots["polls"]
                                  and e["type"] in ("org.matrix.msc3381.poll.start", "m.poll.start"), "the poll")
    answers = start["content"].get("org.matrix.msc3381.poll.start", start["content"].get("m.poll"))["answers"]
    for client, choice in ((yamada_phone, 1), (others[0], 1), (others[1], 0)):
        client.send(room, {"m.relates_to": {"rel_type": "m.reference", "event_id": start["event_id"]},
                           "org.matrix.msc3381.poll.response": {"answers": [answers[choice]["id"]]}},
                    "org.matrix.msc3381.poll.response")
    yamada_phone.wait_for(room, lambda e: e["sender"] == bots["polls"] and "回答 3 人" in json.dumps(
        e["content"], ensure_ascii=False), "the summary to count three answers")

    # Stamps: one sent from the picker's pack the way clients send stickers.
    stamps_room = yamada_phone.call("GET", "/_matrix/client/v3/directory/room/" + q(f"#stamps:{server}"))["room_id"]
    pack = yamada_phone.call("GET", f"/_matrix/client/v3/rooms/{q(stamps_room)}/state/im.ponies.room_emotes/")
    shortcode, image = next(iter(pack["images"].items()))
    yamada_phone.send(room, {"body": image.get("body", shortcode), "url": image["url"],
                             "info": image.get("info", {})}, "m.sticker")

    # A memo DM from the office PC.
    dm = suzuki_pc.call("POST", "/_matrix/client/v3/createRoom", {
        "preset": "trusted_private_chat", "is_direct": True, "invite": [bots["memo"]]})["room_id"]
    suzuki_pc.wait_for(dm, lambda e: e["type"] == "m.room.member" and e["state_key"] == bots["memo"]
                       and e["content"].get("membership") == "join", "the memo bot to join", timeout=60)
    suzuki_pc.text(dm, "議会答弁の資料は総務課の共有フォルダ「令和8年度/12月議会」")
    suzuki_pc.text(dm, "https://www.soumu.go.jp/")
    suzuki_pc.text(dm, "!一覧")
    suzuki_pc.wait_for(dm, lambda e: e["sender"] == bots["memo"] and "#1" in e["content"].get("body", "")
                       and "#2" in e["content"].get("body", ""), "the memo list", timeout=60)
    return {"sanitizer_room": sanitizer_room, "survey_room": room, "dm": dm,
            "yamada_phone": yamada_phone, "suzuki_pc": suzuki_pc}


class Screen:
    """Xvfb and one Nheko at a time, logged in with a session made by ``Client``."""

    def __init__(self, display: str = ":93"):
        self.display = display
        self.env = dict(os.environ, DISPLAY=display, LC_ALL="ja_JP.UTF-8", LANGUAGE="ja")
        self.xvfb = subprocess.Popen(["Xvfb", display, "-screen", "0", f"{SCREEN[0]}x{SCREEN[1]}x24",
                                      "-nolisten", "tcp"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(1.5)
        self.nheko: subprocess.Popen | None = None
        self.home: Path | None = None
        self.nheko_env: dict[str, str] = {}

    def open(self, client: Client) -> None:
        self.close_nheko()
        self.home = Path(tempfile.mkdtemp(prefix="nheko-"))
        conf = self.home / ".config" / "nheko"
        conf.mkdir(parents=True)
        # Nheko keeps its session in this file when no secret service runs (0600 like any token).
        (conf / "nheko.conf").write_text(
            "[General]\nrun_without_secure_secrets_service=true\n\n"
            f"[auth]\naccess_token={client.token}\nhome_server={client.base}\n"
            f"user_id={client.user_id}\ndevice_id={client.device_id}\n\n"
            "[user]\nfont_family=Noto Sans CJK JP\nsmall_avatars_enabled=false\n", encoding="utf-8")
        os.chmod(conf / "nheko.conf", 0o600)
        runtime = self.home / "run"  # Nheko's single-instance socket: one per session
        runtime.mkdir(mode=0o700)
        self.nheko_env = dict(self.env, HOME=str(self.home), XDG_RUNTIME_DIR=str(runtime))
        log = self.home / "nheko.log"
        with open(log, "wb") as out:
            self.nheko = subprocess.Popen(["nheko"], env=self.nheko_env, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while not log.read_bytes() and time.monotonic() < deadline:
            time.sleep(1)
        time.sleep(3)
        for window in self.xdotool("search", "--class", "nheko").split():
            subprocess.run(["xdotool", "windowsize", window, str(SCREEN[0]), str(SCREEN[1])], env=self.env,
                           stderr=subprocess.DEVNULL)
            subprocess.run(["xdotool", "windowmove", window, "0", "0"], env=self.env, stderr=subprocess.DEVNULL)
        # After its first sync Nheko checks the account's cross-signing keys and offers to set them up
        # (encryption is off in the suite): Cancel it whenever it shows, until it has stayed away.
        deadline, quiet = time.monotonic() + 120, 0
        while time.monotonic() < deadline and quiet < 5:
            if self.dialog_open():
                self.click(SCREEN[0] - 67, SCREEN[1] - 40)
                quiet = 0
            else:
                quiet += 1 if b"self verification status" in log.read_bytes() else 0
                time.sleep(2)


    def dialog_open(self) -> bool:
        """A dialog covers the dark space bar on the left (the one pixel sampled)."""
        pixel = subprocess.run(["import", "-window", "root", "-crop", "1x1+30+300", "-depth", "8", "txt:-"],
                               env=self.env, capture_output=True, text=True).stdout
        rgb = pixel.rsplit("#", 1)[-1][:6]
        return len(rgb) == 6 and sum(int(rgb[i:i + 2], 16) for i in (0, 2, 4)) > 600

    def room(self, room_id: str) -> None:
        """Open a room: a matrix: URI handed to the running Nheko, as a link click would."""
        subprocess.run(["nheko", f"matrix:roomid/{room_id[1:]}"], env=self.nheko_env,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=30)
        time.sleep(5)

    def click(self, x: int, y: int) -> None:
        self.xdotool("mousemove", str(x), str(y), "click", "1")
        time.sleep(2)

    def key(self, *keys: str) -> None:
        self.xdotool("key", *keys)

    def shoot(self, path: Path) -> None:
        subprocess.run(["import", "-window", "root", str(path)], env=self.env, check=True)
        print(f"  {path}")

    def xdotool(self, *args: str) -> str:
        return subprocess.run(["xdotool", *args], env=self.env, capture_output=True, text=True).stdout

    def close_nheko(self) -> None:
        if self.nheko and self.nheko.poll() is None:
            self.nheko.terminate()
            self.nheko.wait(20)
        if self.home:
            shutil.rmtree(self.home, ignore_errors=True)
            self.home = None

    def close(self) -> None:
        self.close_nheko()
        self.xvfb.terminate()
        self.xvfb.wait(10)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=ROOT / "var" / "screenshots")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images")
    args = parser.parse_args(argv)
    missing = sorted({package for tool, package in TOOLS.items() if shutil.which(tool) is None})
    if missing:
        print(f"missing: {' '.join(missing)}: run `bash scripts/install-system-deps.sh screenshots` as root\n"
              f"不足しているパッケージ: {' '.join(missing)}", file=sys.stderr)
        return 1
    shutil.rmtree(args.data_dir, ignore_errors=True)  # the same pictures every time: a fresh demo
    args.data_dir.parent.mkdir(parents=True, exist_ok=True)
    demo = Demo(args.data_dir.resolve())
    screen = None
    try:
        demo.start()
        if demo.allow_legacy_media():
            demo.stop()
            demo.start()
        print("filling the demo / デモにデータを入れています")
        scene = fill(demo)
        screen = Screen()
        print("taking pictures / 撮影しています")
        screen.open(scene["suzuki_pc"])
        screen.room(scene["sanitizer_room"])
        screen.shoot(args.out / "nheko-sanitizer-lgwan.png")
        screen.room(scene["survey_room"])
        screen.click(SCREEN[0] - 96, SCREEN[1] - 20)  # the input bar's sticker button
        screen.shoot(args.out / "nheko-stamps.png")
        screen.key("Escape")
        screen.room(scene["dm"])
        screen.shoot(args.out / "nheko-memo.png")
        screen.open(scene["yamada_phone"])
        screen.room(scene["sanitizer_room"])
        screen.shoot(args.out / "nheko-sanitizer-internet.png")
    finally:
        if screen:
            screen.close()
        demo.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
