"""The memo pad bot (メモ帳ボット) as staff use it: a real bot process, real Synapse, real nio users.

One member of staff has a phone (internet zone) and an office PC (LGWAN zone); both talk to the
bot in the same DM.
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import socket
import threading
import time
import urllib.parse
import zipfile

import pytest
from bots_harness import BotProcess, answer, wait_membership, wait_replies
from harness import download
from nio import RoomCreateResponse, RoomSendResponse, UploadResponse
from PIL import Image

BOT = "memo"


@pytest.fixture(scope="module")
def homeserver_modules():
    from lgwan_chat.homeserver import suite_modules

    modules = suite_modules()
    for module in modules:
        if module["module"].startswith("synapse_modules.bookmarks"):
            module["config"] = {**(module.get("config") or {}), "readers": [f"@{BOT}-bot:lgwan.test"]}
    return modules


@pytest.fixture(scope="module")
def memo_bot(homeserver, tmp_path_factory):
    with BotProcess(homeserver, tmp_path_factory.mktemp("memo-bot"), BOT, entry=["-m", "bots.memo"],
                    options={"page_size": 3}, zone="lgwan",
                    storage=homeserver.backend) as bot:  # the bot's own tables on the same kind of database
        bot.start().wait_ready()
        yield bot
        assert bot.stop() == 0


@pytest.fixture
async def staff(homeserver, login, memo_bot):
    """A member of staff: phone, office PC, and their DM with the bot."""
    user = homeserver.new_user("staff")
    phone = await login(user, "internet")
    pc = await login(user, "lgwan")
    dm = await pc.room_create(is_direct=True, invite=[memo_bot.user_id])
    assert isinstance(dm, RoomCreateResponse), dm
    await wait_membership(pc, dm.room_id, memo_bot.user_id, "join")
    return phone, pc, dm.room_id


async def office_dm(homeserver, login, bot):
    """A member of staff on an office PC and their DM with ``bot``: (client, room ID)."""
    pc = await login(homeserver.new_user("staff"), "lgwan")
    dm = await pc.room_create(is_direct=True, invite=[bot.user_id])
    assert isinstance(dm, RoomCreateResponse), dm
    await wait_membership(pc, dm.room_id, bot.user_id, "join")
    return pc, dm.room_id


async def room_with_bot(homeserver, login, bot, name: str):
    """A room made by a section chief on an office PC, with a member on a phone and the bot."""
    owner = await login(homeserver.new_user("kacho"), "lgwan")
    member = await login(homeserver.new_user("kakari"), "internet")
    room = await owner.room_create(name=name, invite=[bot.user_id, member.user_id])
    await member.join(room.room_id)
    await wait_membership(owner, room.room_id, bot.user_id, "join")
    return owner, member, room


def png(colour=(200, 30, 30)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (32, 24), colour).save(out, "PNG")
    return out.getvalue()


async def send_file(client, room_id: str, data: bytes, name: str, mimetype: str, msgtype: str) -> dict:
    uploaded, _ = await client.upload(io.BytesIO(data), content_type=mimetype, filename=name, filesize=len(data))
    assert isinstance(uploaded, UploadResponse), uploaded
    return await answer(client, room_id, {"msgtype": msgtype, "body": name, "url": uploaded.content_uri,
                                              "info": {"mimetype": mimetype, "size": len(data)}})


async def latest_zip(client, room_id: str) -> dict:
    """The content of the latest zip file (an export) sent in the room."""
    page = await client.room_messages(room_id, limit=10)
    return next(e.source["content"] for e in page.chunk
                if e.source.get("content", {}).get("info", {}).get("mimetype") == "application/zip")


def japan(seconds: float, form: str) -> str:
    return time.strftime(form, time.gmtime(seconds + 9 * 3600))


async def test_everything_sent_in_the_dm_is_kept_and_listed_newest_first(staff):
    phone, pc, dm = staff
    assert "メモ #1 を保存しました" in (await answer(pc, dm, "来週の打合せ資料を準備"))["body"]
    link = await answer(phone, dm, "現場の地図 https://example.lg.jp/map?id=3 を確認")
    assert "メモ #2" in link["body"] and "https://example.lg.jp/map?id=3" in link["body"]
    # The link arrives on the other device as a clickable link.
    assert '<a href="https://example.lg.jp/map?id=3">' in link["formatted_body"]
    for n in range(3, 6):
        await answer(pc, dm, f"メモ本文 {n}")

    first = (await answer(pc, dm, "!一覧"))["body"]
    assert "1/2 ページ、全 5 件" in first
    assert first.index("#5") < first.index("#4") < first.index("#3") and "#2" not in first
    assert "!一覧 2" in first  # how to see more
    second = (await answer(pc, dm, "！一覧　２"))["body"]  # full-width prefix, space and digit
    assert "#2" in second and "#1" in second and "[リンク]" in second
    assert "3 ページ目はありません" in (await answer(pc, dm, "!list 3"))["body"]


async def test_search_ignores_width_and_kana(staff):
    _, pc, dm = staff
    await answer(pc, dm, "カタカナの資料は共有フォルダ")
    await answer(pc, dm, "ひらがなのメモ")
    await answer(pc, dm, "ＰＤＦ版は課長に送付")
    found = (await answer(pc, dm, "!検索 ｶﾀｶﾅ"))["body"]
    assert "カタカナの資料" in found and "ひらがな" not in found
    assert "カタカナの資料" in (await answer(pc, dm, "!search かたかな"))["body"]
    assert "ＰＤＦ版" in (await answer(pc, dm, "!検索 pdf 課長"))["body"]  # every word, any width/case
    assert "見つかりませんでした" in (await answer(pc, dm, "!検索 予算 課長"))["body"]
    await answer(pc, dm, "申請は1000件")
    assert "見つかりませんでした" in (await answer(pc, dm, "!検索 100%"))["body"]  # % is not a wildcard
    assert "見つかりませんでした" in (await answer(pc, dm, "!検索 申請_"))["body"]  # nor is _


async def test_show_tag_and_delete(staff):
    _, pc, dm = staff
    await answer(pc, dm, "予算要求の締切は12月5日")
    await answer(pc, dm, "会議室の予約")
    tagged = (await answer(pc, dm, "!タグ 1 会議、予算"))["body"]
    assert "#会議" in tagged and "#予算" in tagged
    assert "#会議" in (await answer(pc, dm, "!タグ ＃１ -予算"))["body"]
    assert "#予算" not in (await answer(pc, dm, "!タグ 1"))["body"]
    tags = (await answer(pc, dm, "!タグ一覧"))["body"]
    assert "#会議 (1)" in tags
    assert "予算要求の締切" in (await answer(pc, dm, "!タグ一覧 会議"))["body"]
    shown = (await answer(pc, dm, "!表示 1"))["body"]
    assert "メモ #1" in shown and "予算要求の締切は12月5日" in shown and "タグ: #会議" in shown
    assert "削除しました" in (await answer(pc, dm, "!削除 1"))["body"]
    assert "メモ #1 はありません" in (await answer(pc, dm, "!表示 1"))["body"]
    assert "予算要求" not in (await answer(pc, dm, "!一覧"))["body"]
    # A new memo never reuses a deleted number.
    assert "メモ #3" in (await answer(pc, dm, "新しいメモ"))["body"]
    # Deleting the message itself (in any client) deletes its memo.
    sent = await pc.room_send(dm, "m.room.message", {"msgtype": "m.text", "body": "間違えて送ったメモ"})
    await wait_replies(pc, dm, sent.event_id)
    await pc.room_redact(dm, sent.event_id)
    # (the bot handles the room's events in order: the deletion before the next command)
    assert "間違えて送った" not in (await answer(pc, dm, "!一覧"))["body"]


async def test_commands_typed_wrong_get_a_helpful_answer(staff):
    _, pc, dm = staff
    assert "数字を指定してください" in (await answer(pc, dm, "!表示 さん"))["body"]
    assert "番号 を指定してください" in (await answer(pc, dm, "!削除"))["body"]
    unknown = (await answer(pc, dm, "!いちらん"))["body"]
    assert "「いちらん」というコマンドはありません" in unknown and "!ヘルプ" in unknown
    help_text = (await answer(pc, dm, "!ヘルプ"))["body"]
    for name in ("!一覧", "!list", "!検索", "!エクスポート", "!ブックマーク", "!ノート作成"):
        assert name in help_text
    assert "!検索 ｶﾀｶﾅ" in (await answer(pc, dm, "!ヘルプ 検索"))["body"]
    assert "Replies are now in English" in (await answer(pc, dm, "!language en"))["body"]
    assert "No memo contains" in (await answer(pc, dm, "!search nothing-like-this"))["body"]
    assert "日本語" in (await answer(pc, dm, "!言語 ja"))["body"]


async def test_a_room_can_choose_english_for_everyone(homeserver, login, memo_bot):
    owner, guest_staff, room = await room_with_bot(homeserver, login, memo_bot, "International exchange")
    reply = await answer(owner, room.room_id, "!言語 en 部屋")
    assert "This room's default reply language is now English" in reply["body"]
    assert "This room has no notes yet" in (await answer(guest_staff, room.room_id, "!notes"))["body"]
    assert "このルームにノートはまだありません" not in (await answer(owner, room.room_id, "!ノート一覧"))["body"]
    await answer(owner, room.room_id, "!言語 ja")  # a person's own choice wins over the room's
    assert "このルームにノートはまだありません" in (await answer(owner, room.room_id, "!ノート一覧"))["body"]
    assert "指定できません" in (await answer(owner, room.room_id, "!言語 en みんな"))["body"]


async def test_files_from_the_phone_wait_for_sanitization_and_stay_out_of_exports(staff, homeserver):
    phone, pc, dm = staff
    from_phone = await send_file(phone, dm, png(), "現場写真.png", "image/png", "m.image")
    assert "メモ #1" in from_phone["body"] and "無害化が済んでから" in from_phone["body"]
    from_pc = await send_file(pc, dm, "課長へ\n=SUM(A1)".encode(), "報告.txt", "text/plain", "m.file")
    assert "メモ #2" in from_pc["body"] and "無害化" not in from_pc["body"]
    await answer(pc, dm, "=HYPERLINK(\"http://evil\") の形の文字列")

    # Re-posting a memo's file: the same file, as a message of the DM, opened on this device.
    repost = await pc.room_send(dm, "m.room.message", {"msgtype": "m.text", "body": "!ファイル 2"})
    assert isinstance(repost, RoomSendResponse)
    replies = await wait_replies(pc, dm, repost.event_id)
    assert "メモ #2 のファイルを送りました" in replies[0]["content"]["body"]
    page = await pc.room_messages(dm, limit=10)
    files = [e.source["content"] for e in page.chunk if e.source.get("content", {}).get("msgtype") == "m.file"
             and e.source.get("sender") != pc.user_id]
    assert files and files[0]["body"] == "報告.txt"

    exported_at = time.time()
    export = await answer(pc, dm, "!エクスポート csv")
    assert "メモ 3 件を書き出しました（入れられなかった添付ファイル: 1 件）" in export["body"]
    archive = await latest_zip(pc, dm)
    # named after when it was made in Japan time, whatever the host's zone
    assert archive["body"] in {f"memo-{japan(exported_at + d, '%Y%m%d-%H%M')}.zip" for d in (-60, 0, 60)}
    status, data = await download(homeserver.url("lgwan"), pc, archive["url"])
    assert status == 200
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        names = z.namelist()
        assert "attachments/0002-報告.txt" in names  # from the office side: included
        assert not [n for n in names if "現場写真" in n]  # from the phone, unsanitized: left out
        raw = z.read("memos.csv")
    assert raw.startswith("\ufeff".encode())  # Excel reads the Japanese correctly
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    assert rows[0] == ["番号", "作成日時", "種類", "内容", "タグ", "添付ファイル"]
    assert rows[1][1] in {japan(exported_at - d, "%Y-%m-%d %H:%M") for d in range(0, 600, 30)}, rows[1]
    assert rows[1][5] == "添付ファイルは無害化待ちのため含めていません"
    assert rows[3][3].startswith("'=HYPERLINK")  # a formula is kept as text

    markdown = await answer(pc, dm, "!export")
    assert "Exported" in markdown["body"] or "書き出しました" in markdown["body"]


async def test_memo_commands_belong_in_the_dm(homeserver, login, memo_bot):
    user, other = homeserver.new_user("kakari"), homeserver.new_user("kacho")
    pc = await login(user, "lgwan")
    room = await pc.room_create(name="土木課", invite=[memo_bot.user_id, other.user_id])
    await wait_membership(pc, room.room_id, memo_bot.user_id, "join")
    assert "ダイレクトメッセージでのみ使えます" in (await answer(pc, room.room_id, "!一覧"))["body"]


async def test_room_notes_are_messages_every_client_shows_with_their_history(homeserver, login, memo_bot):
    owner, member, room = await room_with_bot(homeserver, login, memo_bot, "工事記録")

    created = await answer(member, room.room_id, "!ノート作成 「県道12号 補修」\n11/20 着工前: 路面にひび割れ3か所")
    assert "ノート #1「県道12号 補修」を作りました" in created["body"]
    assert "ピン留めする権限がない" in created["body"]  # a member's power level cannot pin
    page = await owner.room_messages(room.room_id, limit=20)
    note = next(e for e in page.chunk if "📝 ノート #1" in e.source.get("content", {}).get("body", ""))
    assert "路面にひび割れ3か所" in note.source["content"]["body"]  # readable in any client as is

    edited = await answer(member, room.room_id, "!ノート編集 1\n11/21 完了後: 補修済み、写真あり")
    assert "第 2 版" in edited["body"]
    page = await owner.room_messages(room.room_id, limit=20)
    edit = next(e.source for e in page.chunk
                if (e.source.get("content", {}).get("m.relates_to") or {}).get("rel_type") == "m.replace")
    assert edit["content"]["m.relates_to"]["event_id"] == note.event_id
    assert "補修済み" in edit["content"]["m.new_content"]["body"]
    history = (await answer(owner, room.room_id, "!ノート履歴 1"))["body"]
    assert history.index("第 1 版") < history.index("ひび割れ") < history.index("第 2 版") < history.index("補修済み")
    assert "県道12号 補修" in (await answer(owner, room.room_id, "!ノート一覧"))["body"]
    assert "ノート #9 はありません" in (await answer(owner, room.room_id, "!ノート 9"))["body"]

    # With the power to pin (given by the room's creator), the next note is pinned.
    levels = await owner.room_get_state_event(room.room_id, "m.room.power_levels")
    content = dict(levels.content)
    content["users"] = {**content.get("users", {}), memo_bot.user_id: 50}
    await owner.room_put_state(room.room_id, "m.room.power_levels", content)
    pinned_reply = await answer(owner, room.room_id, "!ノート作成 議事録\n出席者: 5名")
    assert "ピン留め" not in pinned_reply["body"]
    pins = await owner.room_get_state_event(room.room_id, "m.room.pinned_events")
    assert len(pins.content["pinned"]) == 1


async def test_notes_name_their_writers_and_times_as_people_read_them(homeserver, login, memo_bot):
    """Writers by display name (as clients and the polls bot show them), never a user ID; times in
    Japan time, the zone named, whatever the host's zone."""
    writer = await login(homeserver.new_user("sato", displayname="佐藤 健二"), "lgwan")
    editor = await login(homeserver.new_user("suzuki", displayname="鈴木 花子"), "lgwan")
    room = await writer.room_create(name="道路管理", invite=[memo_bot.user_id, editor.user_id])
    await editor.join(room.room_id)
    await wait_membership(writer, room.room_id, memo_bot.user_id, "join")
    window = [time.time() - 60, time.time()]
    await answer(writer, room.room_id, "!ノート作成 巡回記録\n12/1 異常なし")
    await answer(editor, room.room_id, "!ノート編集 1\n12/2 落下物1件 撤去済み")
    window[1] = time.time() + 60

    def japan_times(suffix: str) -> set[str]:
        return {japan(t, "%Y-%m-%d %H:%M") + suffix for t in range(int(window[0]), int(window[1]) + 1, 30)}

    history = (await answer(writer, room.room_id, "!ノート履歴 1"))["body"]
    lines = [line for line in history.splitlines() if line.startswith("第 ")]
    assert [line.split("・")[:2] for line in lines] == [["第 1 版", "佐藤 健二"], ["第 2 版", "鈴木 花子"]], history
    for line in lines:
        assert line.split("・")[2] in japan_times("（日本時間）"), line
    shown = (await answer(writer, room.room_id, "!ノート 1"))["body"]
    listed = (await answer(writer, room.room_id, "!ノート一覧"))["body"]
    for text in (history, shown, listed):
        assert "@" not in text and "鈴木 花子" in text, text
    await answer(editor, room.room_id, "!言語 en")
    english = (await answer(editor, room.room_id, "!note-history 1"))["body"]
    assert "佐藤 健二" in english and "(Japan time)" in english and "@" not in english, english


async def test_bookmarks_made_with_a_reaction_anywhere_are_listed_in_the_dm(staff, homeserver, login):
    _phone, pc, dm = staff
    colleague = await login(homeserver.new_user("kakari"), "lgwan")
    room = await colleague.room_create(name="総務課", invite=[pc.user_id])  # the bot is not in this room
    await pc.join(room.room_id)
    message = await colleague.room_send(room.room_id, "m.room.message",
                                        {"msgtype": "m.text", "body": "年末調整の書類は12/10締切です"})
    reaction = await pc.room_send(room.room_id, "m.reaction", {"m.relates_to": {
        "rel_type": "m.annotation", "event_id": message.event_id, "key": "🔖"}})
    assert isinstance(reaction, RoomSendResponse), reaction

    listed = await answer(pc, dm, "!ブックマーク")
    assert "年末調整の書類は12/10締切です" in listed["body"] and "総務課" in listed["body"]
    assert message.event_id.replace("$", "%24") in listed["formatted_body"]  # a link to the message

    await pc.room_redact(room.room_id, reaction.event_id)  # the reaction taken back
    assert "ブックマークはありません" in (await answer(pc, dm, "!ブックマーク"))["body"]


async def test_memos_sent_while_the_bot_is_down_are_kept_once_each(homeserver, login, bot_process):
    bot = bot_process(BOT, ["-m", "bots.memo"], storage=homeserver.backend).start().wait_ready()
    pc, dm = await office_dm(homeserver, login, bot)
    assert "メモ #1" in (await answer(pc, dm, "停止前のメモ"))["body"]
    assert bot.stop() == 0
    sent = []
    for n in range(3):
        event = await pc.room_send(dm, "m.room.message", {"msgtype": "m.text", "body": f"停止中のメモ {n}"})
        sent.append(event.event_id)
    bot.start().wait_ready()
    for number, event_id in enumerate(sent, start=2):
        replies = await wait_replies(pc, dm, event_id)
        assert len(replies) == 1 and f"メモ #{number} を保存しました" in replies[0]["content"]["body"]
    listing = (await answer(pc, dm, "!一覧"))["body"]
    assert "全 4 件" in listing  # nothing lost, nothing doubled
    assert bot.stop() == 0
    bot.start().wait_ready()  # a restart with nothing new: no reply is sent again
    assert "全 4 件" in (await answer(pc, dm, "!一覧"))["body"]
    for event_id in sent:
        assert len(await wait_replies(pc, dm, event_id)) == 1


class CountingRelay:
    """A TCP relay in front of the homeserver that counts the bytes it passes back to its client
    (the bot): what the bot read from the server, whatever it then did with it."""

    def __init__(self, target_url: str):
        target = urllib.parse.urlsplit(target_url)
        assert target.port is not None, target_url
        self.target = (target.hostname, target.port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.to_client = 0
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.target)
            threading.Thread(target=self._pipe, args=(client, server, False), daemon=True).start()
            threading.Thread(target=self._pipe, args=(server, client, True), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket, counted: bool) -> None:
        try:
            while chunk := source.recv(64 * 1024):
                sink.sendall(chunk)  # blocks while the bot does not read: the server is not read either
                if counted:
                    with self._lock:
                        self.to_client += len(chunk)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self.listener.close()


async def test_an_attachment_past_the_export_limit_is_not_read_to_its_end(homeserver, login, tmp_path):
    """The limit holds while reading: the bot stops downloading a file once it is past the limit,
    whatever size its message claimed (here: none), and says in the export what it left out."""
    relay = CountingRelay(homeserver.url("lgwan"))
    bot = BotProcess(homeserver, tmp_path, BOT, entry=["-m", "bots.memo"], zone="lgwan", storage=homeserver.backend,
                     options={"export_max_mb": 1, "homeserver": {"internet": homeserver.url("internet"),
                                                                "lgwan": relay.url}})
    try:
        bot.start().wait_ready()
        pc, dm = await office_dm(homeserver, login, bot)
        big = os.urandom(40 * 1024 * 1024)
        uploaded, _ = await pc.upload(io.BytesIO(big), content_type="application/octet-stream",
                                      filename="図面.bin", filesize=len(big))
        assert isinstance(uploaded, UploadResponse), uploaded
        saved = await answer(pc, dm, {"msgtype": "m.file", "body": "図面.bin", "url": uploaded.content_uri,
                                      "info": {"mimetype": "application/octet-stream"}})
        assert "メモ #1" in saved["body"]
        await send_file(pc, dm, "打合せメモ".encode(), "メモ.txt", "text/plain", "m.file")

        before = relay.to_client
        export = await answer(pc, dm, "!エクスポート csv")
        read = relay.to_client - before
        assert "メモ 2 件を書き出しました（入れられなかった添付ファイル: 1 件）" in export["body"], export["body"]
        assert read < 16 * 1024 * 1024, f"the bot read {read} bytes of a 40 MB file past a 1 MB limit"

        archive = await latest_zip(pc, dm)
        status, data = await download(homeserver.url("lgwan"), pc, archive["url"])
        assert status == 200
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            assert "attachments/0002-メモ.txt" in z.namelist()
            assert not [n for n in z.namelist() if "図面" in n]
            rows = list(csv.reader(io.StringIO(z.read("memos.csv").decode("utf-8-sig"))))
        assert rows[1][5] == "添付ファイルは大きすぎるため含めていません（上限 1 MB）", rows[1]
    finally:
        bot.close()
        relay.close()
