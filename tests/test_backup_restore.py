"""Backup and restore drill (``lgwan-chat backup`` / ``lgwan-chat restore``), as an admin would run it.

A real Synapse with the suite's modules (zones, read status, bookmarks, guests) and the three bots
(memo, polls, sanitizer with its upload page) as real processes, each bot keeping its store on the
same kind of database as Synapse. Staff fill it: messages, a file from a phone (sanitized) and one
from an office PC (left alone), a memo, a poll with votes, read receipts, a bookmark, a guest, an
upload link. The backup runs while a load generator keeps sending messages; then everything stops,
the backup is restored into a fresh folder (and fresh PostgreSQL databases), and the restored copy
starts: everything acknowledged before the backup's point is there, and the bots go on without
answering anything twice.

A backup that was changed or cut short is refused before anything is written.
"""

from __future__ import annotations

import asyncio
import copy
import io
import json
import os
import re
import shutil
import stat
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import yaml
from bots_harness import BotProcess, ask, replies, room_events, wait_membership, wait_replies
from harness import RunningHomeserver, download, eventually, suite_modules_trusting
from nio import AsyncClient, RoomCreateResponse, RoomPreset, RoomSendResponse, RoomVisibility, UploadResponse

from bots.polls import events
from lgwan_chat import cli
from lgwan_chat.core import SOURCE_ROOT
from lgwan_chat.homeserver import child_env, free_port
from lgwan_chat.postgres import PG_SETTINGS, PostgresDatabase

SERVER = "lgwan.test"
BOOKMARK = "🔖"
STAFF_MESSAGES = ["おはようございます", "本日の会議は 10 時からです", "資料は共有フォルダにあります",
                  "議事録をお願いします", "承知しました"]


@pytest.fixture(scope="module")
def homeserver_modules():
    modules = suite_modules_trusting(f"@sanitizer-bot:{SERVER}")
    for module in modules:
        if module["module"].startswith("synapse_modules.bookmarks"):
            module["config"] = {**(module.get("config") or {}), "readers": [f"@memo-bot:{SERVER}"]}
    return [*modules, {"module": "synapse_modules.guests.GuestAccountsModule",
                       "config": {"notice_sender": f"@guest-notices:{SERVER}", "notify_days_before": 3,
                                  "check_interval_seconds": 3600}}]


def call(url: str, token: str, method: str = "GET", body: dict | None = None) -> tuple[int, Any]:
    request = urllib.request.Request(url, method=method, data=json.dumps(body).encode() if body is not None else None,
                                     headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as r:
            return r.status, json.loads(r.read() or b"{}")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


def page_status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=30) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


async def send(client: AsyncClient, room_id: str, event_type: str, content: dict) -> str:
    sent = await client.room_send(room_id, event_type, content)
    assert isinstance(sent, RoomSendResponse), sent
    return sent.event_id


async def post_file(client: AsyncClient, room_id: str, data: bytes, name: str) -> tuple[str, str]:
    uploaded, _ = await client.upload(io.BytesIO(data), content_type="text/plain", filename=name, filesize=len(data))
    assert isinstance(uploaded, UploadResponse), uploaded
    event_id = await send(client, room_id, "m.room.message", {
        "msgtype": "m.file", "body": name, "url": uploaded.content_uri,
        "info": {"mimetype": "text/plain", "size": len(data)}})
    return event_id, uploaded.content_uri


def lgwan_cli(*args: str) -> tuple[int, str, str]:
    """``python -m lgwan_chat.cli ARGS`` as an admin runs it: exit code, stdout, stderr."""
    import subprocess

    result = subprocess.run([sys.executable, "-m", "lgwan_chat.cli", *args], capture_output=True, text=True,
                            env=child_env(), cwd=SOURCE_ROOT, stdin=subprocess.DEVNULL, timeout=600)
    return result.returncode, result.stdout, result.stderr


def private_everywhere(root: Path) -> list[str]:
    """Paths under ``root`` that others than the owner could read (should be none)."""
    loose = []
    for path in [root, *root.rglob("*")]:
        mode = stat.S_IMODE(path.lstat().st_mode)
        if mode != (0o700 if path.is_dir() else 0o600):
            loose.append(f"{path} {oct(mode)}")
    return loose


class Filled:
    """What the drill put into the deployment before the backup, to look for after the restore."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    def __getattr__(self, name: str) -> Any:
        try:
            return self.values[name]
        except KeyError:
            raise AttributeError(name) from None


def start_bots(homeserver: RunningHomeserver, root: Path) -> dict[str, BotProcess]:
    """The three bots with their stores in the deployment folder, all read from one bots.yaml."""
    upload_listen = f"127.0.0.1:{free_port()}"
    options: dict[str, dict] = {
        "memo": {},
        "polls": {"summary_interval_s": 0.2},
        "sanitizer": {"work_dir": str(root / "sanitizer-work"), "small_file_kb": 100,
                      "upload": {"listen": upload_listen, "public_url": f"http://{upload_listen}/upload/"}},
    }
    zones = {"memo": "lgwan", "polls": "lgwan", "sanitizer": "internet"}
    made = {name: BotProcess(homeserver, root, name, ["-m", f"bots.{name}"], options=opts, zone=zones[name],
                             storage=homeserver.backend)
            for name, opts in options.items()}
    combined = {"bots": {name: bot.config["bots"][name] for name, bot in made.items()}}
    bots_yaml = root / "bots.yaml"
    bots_yaml.write_text(yaml.safe_dump(combined, allow_unicode=True, sort_keys=False), encoding="utf-8")
    for bot in made.values():
        bot.config_path = bots_yaml
        bot.start()
    for bot in made.values():
        bot.wait_ready()
    return made


def restored_bot(original: BotProcess, root: Path) -> BotProcess:
    """The same bot (account, name) run from the restored deployment's bots.yaml."""
    bot = copy.copy(original)
    bot.dir = root / original.dir.name
    bot.config_path = root / "bots.yaml"
    bot.log_path = bot.dir / "restored.log"
    bot.process = None
    bot.database = None  # the restored database is dropped by the drill
    block = yaml.safe_load(bot.config_path.read_text(encoding="utf-8"))["bots"][original.name]
    bot.sqlite_path = Path(block["storage"]["sqlite"]) if "sqlite" in block["storage"] else None
    bot.postgres_dsn = block["storage"].get("postgres")
    return bot


async def fill(homeserver: RunningHomeserver, bots: dict[str, BotProcess], filled: Filled) -> None:
    hs = homeserver
    admin = hs.new_user("admin", admin=True)
    hs.new_user(localpart="guest-notices", admin=True)
    kacho_user = hs.new_user("kacho", displayname="課長")
    kacho_pc = await hs.login(kacho_user, "lgwan")
    kacho_phone = await hs.login(kacho_user, "internet")
    sato_user = hs.new_user("sato", displayname="佐藤")
    sato = await hs.login(sato_user, "lgwan")
    created = await kacho_pc.room_create(name="総務課", alias="soumu",
                                         invite=[sato.user_id, *(b.user_id for b in bots.values())])
    assert isinstance(created, RoomCreateResponse), created
    room = created.room_id
    await sato.join(room)
    for bot in bots.values():
        await wait_membership(kacho_pc, room, bot.user_id, "join")
    said = [await send(kacho_pc if i % 2 == 0 else sato, room, "m.room.message", {"msgtype": "m.text", "body": text})
            for i, text in enumerate(STAFF_MESSAGES)]
    # read receipts: sato has read up to the third message
    status, body = call(f"{hs.url('lgwan')}/_matrix/client/v3/rooms/{quote(room)}/receipt/m.read/{quote(said[2])}",
                        sato.access_token, "POST", {})
    assert status == 200, body
    # a bookmark: sato's 🔖 on the meeting message
    await send(sato, room, "m.reaction", {"m.relates_to": {"rel_type": "m.annotation", "event_id": said[1],
                                                           "key": BOOKMARK}})
    async def bookmarked() -> None:
        status, body = call(f"{hs.url('lgwan')}/_synapse/client/lgwan/v1/bookmarks", sato.access_token)
        assert status == 200 and [b["event_id"] for b in body["bookmarks"]] == [said[1]], body

    await eventually(bookmarked, timeout=60)  # written in the background: acknowledged once listed
    # files: one from the phone (sanitized by the bot), one from the office PC (left alone)
    phone_bytes, pc_bytes = "現場からの報告\n".encode(), "庁内の資料\n".encode()
    phone_file, phone_mxc = await post_file(kacho_phone, room, phone_bytes, "report.txt")
    pc_file, pc_mxc = await post_file(kacho_pc, room, pc_bytes, "office.txt")
    report, sanitized = await wait_replies(kacho_pc, room, phone_file, count=2, sender=bots["sanitizer"].user_id,
                                           timeout=90)
    assert report["content"]["body"].startswith("無害化しました"), report
    # a memo and a command answered before the backup
    dm = await kacho_pc.room_create(is_direct=True, invite=[bots["memo"].user_id])
    assert isinstance(dm, RoomCreateResponse), dm
    await wait_membership(kacho_pc, dm.room_id, bots["memo"].user_id, "join")
    assert "メモ #1 を保存しました" in await ask(kacho_pc, dm.room_id, "来週の打合せ資料を準備", bots["memo"].user_id)
    listing = await send(kacho_pc, dm.room_id, "m.room.message", {"msgtype": "m.text", "body": "!一覧"})
    await wait_replies(kacho_pc, dm.room_id, listing, sender=bots["memo"].user_id)
    # a poll with votes
    question = await send(kacho_pc, room, "m.room.message",
                          {"msgtype": "m.text", "body": "!アンケート 忘年会の会場は？\n居酒屋さくら\nホテル東"})

    async def poll_started() -> dict:
        found = [e for e in await room_events(kacho_pc, room) if e["type"] == events.START]
        assert found
        return found[0]

    poll = await eventually(poll_started, timeout=60)
    ids = [a["id"] for a in poll["content"][events.START]["answers"]]
    await send(sato, room, events.RESPONSE, events.response_content(poll["event_id"], [ids[1]]))
    await send(kacho_pc, room, events.RESPONSE, events.response_content(poll["event_id"], [ids[1]]))

    async def counted() -> None:
        assert "・ホテル東: 2 票（100%）" in await ask(kacho_pc, room, "!結果 1", bots["polls"].user_id)

    await eventually(counted, timeout=60)
    # an upload link for a contractor
    link = re.search(r"https?://\S+/upload/\S+", await ask(kacho_pc, room, "!アップロードURL 複数 24時間",
                                                           bots["sanitizer"].user_id))
    assert link, "no upload link"
    assert page_status(link.group(0)) == 200
    # a guest, in a public room of staff
    guest_room = await kacho_pc.room_create(alias="project-a", name="プロジェクトA", preset=RoomPreset.public_chat,
                                            visibility=RoomVisibility.public)
    assert isinstance(guest_room, RoomCreateResponse), guest_room
    code, out, err = lgwan_cli("guest", "--homeserver", hs.url("lgwan"), "--token", admin.access_token,
                               "create", "contractor1", "--name", "山田（〇〇建設）", "--expires",
                               time.strftime("%Y-%m-%d", time.localtime(time.time() + 30 * 86400)),
                               "--room", f"#project-a:{SERVER}")
    assert code == 0, err
    guest_password = out.split("Initial password: ")[1].strip().splitlines()[0]
    status, key_before = call(f"{hs.url('lgwan')}/_matrix/key/v2/server", "")
    assert status == 200
    filled.values.update(
        admin=admin, kacho_user=kacho_user, sato_user=sato_user, room=room, said=said, phone_file=phone_file,
        phone_mxc=phone_mxc, phone_bytes=phone_bytes, pc_file=pc_file, pc_mxc=pc_mxc, pc_bytes=pc_bytes,
        sanitized=sanitized, dm=dm.room_id, listing=listing, question=question, poll=poll["event_id"],
        link=link.group(0), guest_password=guest_password, guest_room=guest_room.room_id,
        verify_keys=key_before["verify_keys"])


async def load_generator(homeserver: RunningHomeserver, acked: list[tuple[str, float]],
                         stop: asyncio.Event) -> tuple[str, Any]:
    """Staff sending messages into a busy room until ``stop``: (event id, when Synapse acknowledged it)."""
    user = homeserver.new_user("load")
    client = await homeserver.login(user, "lgwan")
    created = await client.room_create(name="負荷")
    assert isinstance(created, RoomCreateResponse), created
    number = 0
    while not stop.is_set() and number < 5000:  # bounded: at most 5,000 messages
        number += 1
        event_id = await send(client, created.room_id, "m.room.message",
                              {"msgtype": "m.text", "body": f"load {number}"})
        acked.append((event_id, time.time()))
    return created.room_id, user


@pytest.fixture(scope="module")
def drill(homeserver: RunningHomeserver, tmp_path_factory) -> Iterator[dict[str, Any]]:
    """Fill the deployment, back it up under load, stop everything: what the restore tests need."""
    root = homeserver.hs.data_dir
    backup_dir = tmp_path_factory.mktemp("backups") / "backup-1"
    bots = start_bots(homeserver, root)
    filled = Filled()
    acked: list[tuple[str, float]] = []

    async def run() -> tuple[tuple[str, Any], float, float, tuple[int, str, str]]:
        await fill(homeserver, bots, filled)
        stop = asyncio.Event()
        load = asyncio.create_task(load_generator(homeserver, acked, stop))
        while len(acked) < 20:  # the load is going before the backup starts
            await asyncio.sleep(0.05)
        began = time.time()
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "lgwan_chat.cli", "backup", str(backup_dir), "--deployment", str(root),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=child_env(), cwd=SOURCE_ROOT)
        out, err = await process.communicate()
        ended = time.time()
        await asyncio.sleep(0.5)  # the load goes on after the backup too
        stop.set()
        load_room = await load
        await homeserver.close_clients()
        assert process.returncode is not None
        return load_room, began, ended, (process.returncode, out.decode(), err.decode())

    try:
        load_room, began, ended, (code, out, err) = asyncio.run(run())
    finally:
        for bot in bots.values():
            bot.stop(check=False)
    assert code == 0, out + err
    print(out)  # the backup's time and size (docs/admin-guide: the drill's measured times)
    homeserver.hs.stop()
    # The admin keeps a copy of the backup key off the machine (the guide says so): a restore onto a
    # new machine is given it with --key-file.
    kept = tmp_path_factory.mktemp("kept-off-the-machine") / "backup_manifest_key"
    shutil.copy2(root / "secrets" / "backup_manifest_key", kept)
    yield {"root": root, "backup": backup_dir, "bots": bots, "filled": filled, "acked": acked,
           "load_room": load_room, "began": began, "ended": ended, "out": out, "key": kept}
    for bot in bots.values():
        bot.close()


def test_backup_is_private_and_its_manifest_names_every_file(drill):
    backup = drill["backup"]
    assert "バックアップを作成しました" in drill["out"] and "Backup written" in drill["out"]
    assert private_everywhere(backup) == []
    manifest = json.loads((backup / "manifest.json").read_text(encoding="utf-8"))
    files = {p.relative_to(backup).as_posix() for p in backup.rglob("*") if p.is_file()} - {"manifest.json"}
    assert set(manifest["files"]) == files
    assert manifest["versions"]["matrix-synapse"] and manifest["versions"]["lgwan-chat"]
    included = manifest["included"]
    assert set(included["bots"]) == {"memo", "polls", "sanitizer"}
    engine = "postgres" if drill["root"].joinpath("overrides.yaml").read_text().count("psycopg2") else "sqlite"
    assert included["synapse_database"]["engine"] == engine
    assert included["media_store"]["files"] >= 3  # two files and the sanitized copy
    assert "files/signing.key" in manifest["files"]
    # signed with the deployment's backup key, which is private and never in a backup
    key_file = drill["root"] / "secrets" / "backup_manifest_key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600 and re.fullmatch(r"[0-9a-f]{64}", manifest["hmac"])
    assert not any(name.endswith("backup_manifest_key") for name in manifest["files"])
    key = key_file.read_bytes().strip()
    assert all(key not in p.read_bytes() for p in backup.rglob("*") if p.is_file() and p.stat().st_size < 10**7)
    assert any(path.endswith("audit.jsonl") for path in manifest["files"])  # the sanitizer's audit log
    # the load really ran across the backup
    assert any(ack > drill["ended"] for _, ack in drill["acked"])
    code, out, err = lgwan_cli("restore", str(backup), "--verify-only")
    assert code == 0 and "検証しました" in out and "checked" in out, out + err


def lose_the_machine(homeserver: RunningHomeserver, drill: dict) -> Path:
    """The old deployment is gone (its folder moved away, its databases dropped): whatever the
    restored copy runs on came from the backup. Returns where the folder went."""
    lost = drill["root"].with_name(drill["root"].name + "-lost")
    drill["root"].rename(lost)
    if homeserver.database is not None:
        homeserver.database.drop()
    for bot in drill["bots"].values():
        if bot.database is not None:
            bot.database.drop()
    return lost


def test_restore_drill(drill, homeserver, hs_backend, homeserver_modules, tmp_path_factory):
    target = tmp_path_factory.mktemp("restored-machine") / "lgwan-chat"
    databases: list[PostgresDatabase] = []
    lost = lose_the_machine(homeserver, drill)
    args = ["restore", str(drill["backup"]), "--target", str(target), "--key-file", str(drill["key"])]
    if hs_backend == "postgres":
        synapse_db = PostgresDatabase()
        databases.append(synapse_db)
        args += ["--postgres-database", synapse_db.name]
        for name in drill["bots"]:
            db = PostgresDatabase()
            databases.append(db)
            dsn = " ".join(f"{k}={v}" for k, v in {**PG_SETTINGS, "dbname": db.name}.items())
            args += ["--bot-postgres", f"{name}={dsn}"]
    try:
        code, out, err = lgwan_cli(*args)
        assert code == 0, out + err
        print(out)  # the restore's time
        assert "復元しました" in out and "Restored into" in out
        assert private_everywhere(target) == []
        # the restored deployment signs its next backups with the same key
        assert (target / "secrets" / "backup_manifest_key").read_bytes() == drill["key"].read_bytes()
        for path in target.rglob("*.yaml"):  # nothing points at the lost machine any more
            assert str(drill["root"]) + "/" not in path.read_text(encoding="utf-8"), path
        hs = RunningHomeserver(target, hs_backend, modules=homeserver_modules,
                               existing_database=databases[0].name if databases else None)
        hs.start()
        bots = {name: restored_bot(bot, target) for name, bot in drill["bots"].items()}
        try:
            for bot in bots.values():
                bot.start()
            for bot in bots.values():
                bot.wait_ready()
            asyncio.run(check_restored(hs, bots, drill))
        finally:
            for bot in bots.values():
                bot.kill()
            asyncio.run(hs.close_clients())
            hs.close()
    finally:
        for db in databases:
            db.drop()
        lost.rename(drill["root"])


async def check_restored(hs: RunningHomeserver, bots: dict[str, BotProcess], drill: dict) -> None:
    filled: Filled = drill["filled"]
    kacho = await hs.login(filled.kacho_user, "lgwan")
    phone = await hs.login(filled.kacho_user, "internet")
    sato = await hs.login(filled.sato_user, "lgwan")
    room = filled.room
    timeline = await room_events(kacho, room)
    ids = {e["event_id"] for e in timeline}
    # the messages, the files and the bot's answers from before the backup
    assert set(filled.said) <= ids
    assert [e["content"]["body"] for e in timeline if e["event_id"] in filled.said] == STAFF_MESSAGES
    assert {filled.phone_file, filled.pc_file, filled.question} <= ids
    # every message the load generator had acknowledged before the backup's point is there
    manifest = json.loads((drill["backup"] / "manifest.json").read_text(encoding="utf-8"))
    point = manifest["included"]["synapse_database"]["snapshot_started"]
    before = [event_id for event_id, ack in drill["acked"] if ack < point]
    assert before, "the load sent nothing before the backup"
    load_room, load_user = drill["load_room"]
    reader = await hs.login(load_user, "lgwan")
    load_ids = {e["event_id"] for e in await room_events(reader, load_room, limit=10000)}
    missing = [event_id for event_id in before if event_id not in load_ids]
    assert missing == [], f"{len(missing)} of {len(before)} acknowledged messages lost"
    # the same federation signing key
    status, keys = call(f"{hs.url('lgwan')}/_matrix/key/v2/server", "")
    assert status == 200 and keys["verify_keys"] == filled.verify_keys
    # read receipts: sato read up to the third message (read status module)
    status, body = call(f"{hs.url('lgwan')}/_synapse/client/lgwan/v1/rooms/{quote(room)}/read_status/"
                        f"{quote(filled.said[2])}", kacho.access_token)
    assert status == 200, body
    assert filled.sato_user.user_id in {r["user_id"] for r in body["read"]}
    # the bookmark (bookmarks module's table)
    status, body = call(f"{hs.url('lgwan')}/_synapse/client/lgwan/v1/bookmarks", sato.access_token)
    assert status == 200, body
    assert [b["event_id"] for b in body["bookmarks"]] == [filled.said[1]]
    # the files: both originals and the sanitized copy, byte for byte
    assert await download(hs.url("internet"), phone, filled.phone_mxc) == (200, filled.phone_bytes)
    assert await download(hs.url("lgwan"), kacho, filled.pc_mxc) == (200, filled.pc_bytes)
    status, copy_bytes = await download(hs.url("lgwan"), kacho, filled.sanitized["content"]["url"])
    assert status == 200 and "現場からの報告" in copy_bytes.decode("utf-8-sig")
    # the guest logs in from the internet side with its password, and is still listed
    guest = AsyncClient(hs.url("internet"), f"@contractor1:{SERVER}")
    try:
        assert (await guest.login(filled.guest_password)).__class__.__name__ == "LoginResponse"
    finally:
        await guest.close()
    code, out, err = lgwan_cli("guest", "--homeserver", hs.url("lgwan"), "--token", filled.admin.access_token,
                               "list")
    assert code == 0 and f"@contractor1:{SERVER}" in out and filled.guest_room in out, out + err
    # the bots resume: new commands answered from the restored stores...
    memo = bots["memo"].user_id
    assert "来週の打合せ資料を準備" in await ask(kacho, filled.dm, "!一覧", memo)
    assert "・ホテル東: 2 票（100%）" in await ask(kacho, room, "!結果 1", bots["polls"].user_id)
    assert "#1" in await ask(kacho, room, "!アップロードURL一覧", bots["sanitizer"].user_id)
    assert page_status(filled.link) == 200  # the contractor's link still opens the form
    # ...and nothing answered before the backup is answered again
    await asyncio.sleep(2)  # the bots have synced past everything restored
    assert len(await replies(kacho, filled.dm, filled.listing, sender=memo)) == 1
    assert len(await replies(kacho, room, filled.phone_file, sender=bots["sanitizer"].user_id)) == 2
    assert await replies(kacho, room, filled.pc_file, sender=bots["sanitizer"].user_id) == []
    polls = [e for e in await room_events(kacho, room) if e["type"] == events.START]
    assert [e["event_id"] for e in polls] == [filled.poll]


@pytest.fixture
def copy_of_backup(drill, tmp_path) -> Path:
    target = tmp_path / "backup"
    shutil.copytree(drill["backup"], target)
    return target


def restore_refused(backup: Path, target: Path, key: Path, *extra: str) -> str:
    code, out, err = lgwan_cli("restore", str(backup), "--target", str(target), "--key-file", str(key), *extra)
    assert code == 1, out + err
    assert "何も書き込まずに復元を中止しました" in err and "nothing was written" in err, err
    assert not target.exists() or not any(target.iterdir()), "a refused restore wrote something"
    return err


def test_a_changed_file_is_refused_naming_it(drill, copy_of_backup, tmp_path):
    media = sorted((copy_of_backup / "media").rglob("*"))
    victim = next(p for p in media if p.is_file())
    data = bytearray(victim.read_bytes())
    data[0] ^= 1  # one bit, same size
    victim.write_bytes(bytes(data))
    err = restore_refused(copy_of_backup, tmp_path / "target", drill["key"])
    assert "変更されています" in err and "was changed after the backup" in err and victim.name in err


def test_a_backup_cut_short_is_refused(drill, copy_of_backup, tmp_path):
    (copy_of_backup / "synapse" / next(iter(os.listdir(copy_of_backup / "synapse")))).unlink()
    err = restore_refused(copy_of_backup, tmp_path / "target", drill["key"])
    assert "バックアップが不完全です" in err and "is incomplete" in err


def test_a_backup_without_its_manifest_is_refused(drill, copy_of_backup, tmp_path):
    (copy_of_backup / "manifest.json").unlink()
    err = restore_refused(copy_of_backup, tmp_path / "target", drill["key"])
    assert "マニフェスト" in err and "manifest" in err


def test_a_file_slipped_into_a_backup_is_refused(drill, copy_of_backup, tmp_path):
    (copy_of_backup / "files" / "extra.yaml").write_text("modules: []\n", encoding="utf-8")
    err = restore_refused(copy_of_backup, tmp_path / "target", drill["key"])
    assert "extra.yaml" in err and "マニフェストにないファイル" in err


def tamper_with_config(backup: Path) -> dict[str, Any]:
    """What an intruder with write access to the backups does: a changed homeserver.yaml (a listener
    opened to everyone) and the manifest's size and SHA-256 recomputed to match. Returns the manifest."""
    changed = backup / "files" / "homeserver.yaml"
    text = changed.read_text(encoding="utf-8")
    assert "127.0.0.1" in text
    changed.write_text(text.replace("127.0.0.1", "0.0.0.0"), encoding="utf-8")
    manifest = json.loads((backup / "manifest.json").read_text(encoding="utf-8"))
    manifest["files"]["files/homeserver.yaml"] = {"size": changed.stat().st_size, "sha256": sha256_of(changed)}
    return manifest


def sha256_of(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_manifest(backup: Path, manifest: dict[str, Any]) -> None:
    (backup / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False, indent=1), encoding="utf-8")


def test_a_changed_backup_with_a_recomputed_manifest_is_refused(drill, copy_of_backup, tmp_path):
    write_manifest(copy_of_backup, tamper_with_config(copy_of_backup))  # checksums right, signature stale
    err = restore_refused(copy_of_backup, tmp_path / "target", drill["key"])
    assert "署名がバックアップの署名鍵と一致しません" in err and "does not match the backup key" in err, err


def test_an_unsigned_manifest_is_refused(drill, copy_of_backup, tmp_path):
    manifest = tamper_with_config(copy_of_backup)
    del manifest["hmac"]  # as if written without the key
    write_manifest(copy_of_backup, manifest)
    err = restore_refused(copy_of_backup, tmp_path / "target", drill["key"])
    assert "署名（hmac）がありません" in err and "carries no signature" in err, err


def test_a_backup_checked_with_another_deployments_key_is_refused(drill, tmp_path):
    other = tmp_path / "other-key"
    other.write_text("k" * 64 + "\n", encoding="utf-8")
    other.chmod(0o600)
    err = restore_refused(drill["backup"], tmp_path / "target", other)
    assert "一致しません" in err and "does not match" in err, err


def test_a_restore_onto_a_new_machine_asks_for_the_key(drill, tmp_path):
    code, out, err = lgwan_cli("restore", str(drill["backup"]), "--target", str(tmp_path / "new"))
    assert code == 1 and "--key-file" in err and "署名鍵" in err and "backup key" in err, out + err
    assert not (tmp_path / "new").exists()


def test_a_folder_in_use_is_not_overwritten_unless_asked(drill, tmp_path, capsys):
    target = tmp_path / "in-use"
    target.mkdir()
    (target / "homeserver.yaml").write_text("# the admin's\n", encoding="utf-8")
    code = cli.main(["restore", str(drill["backup"]), "--target", str(target), "--key-file", str(drill["key"])])
    err = capsys.readouterr().err
    assert code == 1 and "空ではありません" in err and "--force" in err
    assert (target / "homeserver.yaml").read_text(encoding="utf-8") == "# the admin's\n"


def test_backing_up_into_a_folder_with_files_is_refused(drill, tmp_path, capsys):
    out = tmp_path / "old"
    out.mkdir()
    (out / "keep.txt").write_text("x", encoding="utf-8")
    code = cli.main(["backup", str(out), "--deployment", str(drill["root"])])
    assert code == 1 and "空ではありません" in capsys.readouterr().err
    assert os.listdir(out) == ["keep.txt"]


# --- a deployment written by `lgwan-chat deploy init` --------------------------------------------

async def test_a_deployment_from_deploy_init_is_restored_elsewhere_and_runs(tmp_path, monkeypatch):
    """The production layout (synapse/*.yaml, secrets/, bots/, systemd units), its SQLite database kept
    outside the folder: restored into another folder, the units and configs point there and it runs."""
    from test_deploy import Deployment, deploy, make_tls, unit_command

    tls = make_tls(tmp_path / "tls")
    monkeypatch.setenv("SSL_CERT_FILE", str(tls["ca"]))
    deployment = deploy(tmp_path, tls, "single", {"sqlite": str(tmp_path / "db" / "homeserver.db")}, ["memo"])
    server = deployment.doc["server_name"]
    memo = f"@memo-bot:{server}"
    backup_dir = tmp_path / "backups" / "nightly"
    try:
        (tmp_path / "db").mkdir(mode=0o700)
        deployment.start_synapse()
        deployment.start_nginx()  # the bots reach Synapse through the entrances, as deployed
        accounts = lgwan_cli("deploy", "accounts", str(deployment.out))
        assert accounts[0] == 0, accounts[2]
        deployment.start_bot("memo")
        deployment.register("tanaka", "pw-tanaka-1234")
        pc = AsyncClient(deployment.synapse_url("lgwan"), f"@tanaka:{server}")
        try:
            assert (await pc.login("pw-tanaka-1234")).__class__.__name__ == "LoginResponse"
            dm = await pc.room_create(is_direct=True, invite=[memo])
            assert isinstance(dm, RoomCreateResponse), dm
            await wait_membership(pc, dm.room_id, memo, "join", timeout=90)
            assert "メモ #1" in await ask(pc, dm.room_id, "議会答弁の資料を確認", memo, timeout=90)
        finally:
            await pc.close()
        code, out, err = lgwan_cli("backup", str(backup_dir), "--deployment", str(deployment.out))
        assert code == 0, out + err
    finally:
        deployment.stop()
    manifest = json.loads((backup_dir / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["deployment"]["layout"] == "deploy"
    assert "files/secrets/signing.key" in manifest["files"] and "bots/memo.sqlite3" in manifest["files"]
    assert "files/secrets/backup_manifest_key" not in manifest["files"]
    # the machine is lost; a new one has another folder
    shutil.rmtree(tmp_path / "db")
    deployment.out.rename(tmp_path / "lost")
    target = tmp_path / "new-machine" / "lgwan-chat"
    code, out, err = lgwan_cli("restore", str(backup_dir), "--target", str(target), "--key-file",
                               str(tmp_path / "lost" / "secrets" / "backup_manifest_key"))
    assert code == 0, out + err
    assert private_everywhere(target) == []
    assert str(target) in " ".join(unit_command(target, "lgwan-chat-synapse.service"))
    for path in [*target.rglob("*.yaml"), *(target / "systemd").iterdir()]:
        text = path.read_text(encoding="utf-8")
        assert str(tmp_path / "out") + "/" not in text and str(tmp_path / "db") not in text, path
    check = lgwan_cli("deploy", "check", str(target))
    assert check[0] == 0, check[2]
    restored = Deployment(tmp_path, target, deployment.doc)
    try:
        restored.start_synapse()
        restored.start_nginx()
        restored.start_bot("memo")
        pc = AsyncClient(restored.synapse_url("lgwan"), f"@tanaka:{server}")
        try:
            assert (await pc.login("pw-tanaka-1234")).__class__.__name__ == "LoginResponse"
            assert "議会答弁の資料を確認" in await ask(pc, dm.room_id, "!一覧", memo, timeout=90)
        finally:
            await pc.close()
    finally:
        restored.stop()


@pytest.mark.parametrize("guide", ["admin-guide.ja.md", "admin-guide.en.md"])
def test_the_guides_commands_are_the_clis(guide):
    """Every ``lgwan-chat backup/restore`` line of the guide's section names options the command has."""
    text = (Path(__file__).resolve().parent.parent / "docs" / guide).read_text(encoding="utf-8")
    start = text.index("### 5.2 ")
    end = min([i for i in (text.find("\n## ", start), text.find("\n### ", start + 10)) if i > 0] or [len(text)])
    lines = [line for block in re.findall(r"```sh\n(.*?)```", text[start:end], re.S)
             for line in block.splitlines() if line.startswith("lgwan-chat ")]
    assert {line.split()[1] for line in lines} == {"backup", "restore"}
    for line in lines:
        words = line.split()
        code, usage, _ = lgwan_cli(words[1], "--help")
        assert code == 0
        for option in (w for w in words if w.startswith("--")):
            assert option in usage, (line, option)


def test_bench_backup_keeps_working(tmp_path):
    """`make bench-backup` at a tiny size: it fills, backs up, restores and reports (no timing asserted)."""
    import subprocess

    out = tmp_path / "result.json"
    result = subprocess.run([sys.executable, str(Path(SOURCE_ROOT or ".") / "bench" / "backup.py"), "--users", "2",
                             "--messages", "5", "--file-every", "2", "--backup-during", "3", "--json", str(out)],
                            capture_output=True,
                            text=True, timeout=600, env={**child_env(), "TMPDIR": str(tmp_path)},
                            stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stdout + result.stderr
    summary = json.loads(out.read_text(encoding="utf-8"))
    assert summary["load"].startswith("2 users, 5 messages") and summary["files"] >= 2
    assert summary["backup_mb"] > 0 and summary["restore_s"] >= 0 and summary["messages_restored"] == 5
    [during] = summary["during_the_fill"]  # the backup taken while the fill went on has what it began with
    assert 3 <= during["messages_before"] <= during["messages_restored"] <= during["messages_after"] <= 5
    assert "3 messages sent: a backup while the fill goes on" in result.stdout
