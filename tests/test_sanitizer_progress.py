"""Long files, cancelling, and editable Office copies (issue #20), as staff meet them: real Synapse behind
the suite's nginx, the real bot process with the real engine (sandboxed renderers, LibreOffice), nio
users reading the room as a client does (an edited message shows its latest edit).

- A long file gets one progress message ("無害化しています… 8/24 ページ") that is edited as pages come
  back from the jail, and at the end reads as the result.
- The sender may cancel their own file (❌ on it or on its progress message, or !キャンセル as a reply
  to it): a waiting one leaves the queue, a running one's jailed processes are killed; a colleague's
  cancel is refused; a restart after a cancel does not take the file up again.
- Files sent to the bot in a DM wait in the same queue: a progress message, cancelled by their sender,
  taken up again after a restart and answered once (into the room chosen with !送信先 too); the bot
  answers other messages meanwhile.
- The queue orders files by the size the media repository stores: a client claiming 1 byte for a
  large file does not jump the line.
- A long document (here 41 pages or more) gives way: its renderers run at the lowest CPU priority
  and its worker goes to the next file, so a photo is answered while two of them run.
- Office documents by policy: Word here is ``both`` (the PDF and the editable copy), Excel
  ``rasterize``; a member asks for the editable copy in a DM with !編集用. The request waits in the
  same queue: a long document shows its progress, which becomes the answer; its sender cancels it;
  another person's file is answered meanwhile; after a restart it is answered once, and not to
  someone who left the file's room meanwhile.
"""

from __future__ import annotations

import asyncio
import io
import os
import re
import shutil
import subprocess
import time
import zipfile
from pathlib import Path

import pytest
from bots_harness import BotProcess, ask, room_events, wait_membership, wait_replies
from corpus_documents import japanese_docx
from harness import download
from nio import RoomCreateResponse, RoomSendResponse, UploadResponse
from test_sanitizer_bot import jpeg_with_gps, many_page_pdf
from test_sanitizer_strip_active import Package, legitimate, linked_image, vba

from bots.sanitizer import config as sanitizer_config
from bots.sanitizer.engine import ooxml_verify

BOT = "sanitizer"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@pytest.fixture(scope="module")
def homeserver_modules():
    from harness import suite_modules_trusting

    return suite_modules_trusting(f"@{BOT}-bot:lgwan.test")


@pytest.fixture(scope="module")
def sanitizer_bot(homeserver, nginx_front, tmp_path_factory):
    folder = tmp_path_factory.mktemp("sanitizer-progress")
    with BotProcess(homeserver, folder, BOT, entry=["-m", "bots.sanitizer"],
                    options={"work_dir": str(folder / "work"), "small_file_kb": 100,
                             # a file of 10 pages or more shows its progress at once, every change shown
                             "progress": {"pages": 10, "every_s": 0},
                             "office": {"word": "both", "excel": "rasterize"},
                             # the 40-page files of the cancel tests keep their worker; 45 pages give way
                             "engine": {"background_pages": 41},
                             "upload": {"enabled": False}},
                    zone="internet", storage=homeserver.backend) as bot:
        bot.start().wait_ready()
        yield bot
        assert bot.stop() == 0


@pytest.fixture
async def staff(homeserver, login, nginx_front, sanitizer_bot):
    """Phone and office PC of one person, a colleague, a shared room with the bot in it."""
    user = homeserver.new_user("staff")
    phone = await login(user, "internet", via=nginx_front)
    pc = await login(user, "lgwan", via=nginx_front)
    colleague = await login(homeserver.new_user("colleague"), "lgwan", via=nginx_front)
    room = await pc.room_create(name="総務課", invite=[sanitizer_bot.user_id, colleague.user_id])
    assert isinstance(room, RoomCreateResponse), room
    await colleague.join(room.room_id)
    await wait_membership(pc, room.room_id, sanitizer_bot.user_id, "join")
    await wait_membership(pc, room.room_id, colleague.user_id, "join")
    return phone, pc, colleague, room.room_id


async def post_file(client, room_id: str, data: bytes, name: str, mimetype: str, claimed_size: int | None = None,
                    msgtype: str = "m.file") -> str:
    """Upload and post a file; ``claimed_size``: the size the client says (a lying client), else the true one."""
    uploaded, _ = await client.upload(io.BytesIO(data), content_type=mimetype, filename=name, filesize=len(data))
    assert isinstance(uploaded, UploadResponse), uploaded
    sent = await client.room_send(room_id, "m.room.message", {
        "msgtype": msgtype, "body": name, "url": uploaded.content_uri,
        "info": {"mimetype": mimetype, "size": len(data) if claimed_size is None else claimed_size}})
    assert isinstance(sent, RoomSendResponse), sent
    return sent.event_id


async def send(client, room_id: str, content: dict) -> str:
    sent = await client.room_send(room_id, content.pop("type", "m.room.message"), content)
    assert isinstance(sent, RoomSendResponse), sent
    return sent.event_id


async def reply_command(client, room_id: str, text: str, to: str) -> str:
    return await send(client, room_id, {"msgtype": "m.text", "body": text,
                                        "m.relates_to": {"m.in_reply_to": {"event_id": to}}})


async def react(client, room_id: str, to: str, key: str = "❌") -> str:
    return await send(client, room_id, {"type": "m.reaction",
                                        "m.relates_to": {"rel_type": "m.annotation", "event_id": to, "key": key}})


def edits_of(events: list[dict], event_id: str, sender: str) -> list[dict]:
    """The edits of ``event_id`` by its sender, oldest first: their new content."""
    return [e["content"]["m.new_content"] for e in events
            if e.get("sender") == sender and isinstance(e["content"].get("m.new_content"), dict)
            and (e["content"].get("m.relates_to") or {}).get("rel_type") == "m.replace"
            and e["content"]["m.relates_to"].get("event_id") == event_id]


async def shown(client, room_id: str, event: dict) -> str:
    """What a client shows for ``event``: the body of its latest edit, or its own."""
    edits = edits_of(await room_events(client, room_id), event["event_id"], event["sender"])
    return (edits[-1] if edits else event["content"])["body"]


async def wait_shown(client, room_id: str, event: dict, wanted: str, timeout: float = 180) -> str:
    deadline = time.monotonic() + timeout
    while True:
        text = await shown(client, room_id, event)
        if wanted in text or time.monotonic() > deadline:
            assert wanted in text, text
            return text
        await asyncio.sleep(0.3)


def jailed_renderers(pid: int) -> list[str]:
    """pdftoppm processes started by the bot (its descendants: other sessions run their own)."""
    children: dict[int, list[int]] = {}
    names: dict[int, str] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        name, rest = stat[stat.index("(") + 1:stat.rindex(")")], stat[stat.rindex(")") + 2:].split()
        names[int(entry)] = name
        children.setdefault(int(rest[1]), []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            todo.append(child)
            if names.get(child) == "pdftoppm":
                found.append(f"{child}")
    return found


async def renderer_seen(bot: BotProcess, timeout: float) -> list[str]:
    """A jailed pdftoppm of the bot, as soon as one is seen (a run of a few pages may end before a
    second look: what was seen is returned, not looked up again)."""
    assert bot.process is not None
    pid, deadline = bot.process.pid, time.monotonic() + timeout
    while not (seen := jailed_renderers(pid)) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    return seen


def nice_of(pid: str) -> int | None:
    """A process's nice value (proc(5): field 19 of /proc/PID/stat); None once it has ended."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat[stat.rindex(")") + 2:].split()[16])


async def dm_with(client, bot) -> str:
    dm = await client.room_create(is_direct=True, invite=[bot.user_id])
    assert isinstance(dm, RoomCreateResponse), dm
    await wait_membership(client, dm.room_id, bot.user_id, "join")
    return dm.room_id


def files_answering(events: list[dict], event_id: str, sender: str) -> list[dict]:
    return [e for e in events if e["sender"] == sender and e["content"].get("msgtype") in ("m.file", "m.image")
            and (e["content"].get("m.relates_to") or {}).get("m.in_reply_to", {}).get("event_id") == event_id]


# --- progress ---


async def test_a_long_file_shows_its_progress_in_one_message_that_becomes_the_result(staff, sanitizer_bot):
    phone, pc, _colleague, room = staff
    pdf = await post_file(phone, room, many_page_pdf(24), "議事録.pdf", "application/pdf")
    progress, copy = await wait_replies(pc, room, pdf, count=2, sender=sanitizer_bot.user_id, timeout=300)
    assert progress["content"]["body"].startswith("無害化しています… 0/24 ページ")
    assert "❌" in progress["content"]["body"] and "!キャンセル" in progress["content"]["body"]
    assert copy["content"]["msgtype"] == "m.file" and copy["content"]["body"] == "議事録.pdf"
    edits = [e["body"] for e in edits_of(await room_events(pc, room), progress["event_id"], sanitizer_bot.user_id)]
    counts = [int(m[1]) for m in (re.match(r"無害化しています… (\d+)/24 ページ", e) for e in edits) if m]
    assert counts and counts == sorted(counts) and any(0 < n < 24 for n in counts), edits
    # the last edit is the result: the room keeps one message for the file, not one per step
    assert edits[-1].startswith("無害化しました（PDF 文書: 画像化しました（PDF）／24ページ"), edits[-1]
    assert len(await wait_replies(pc, room, pdf, count=2, sender=sanitizer_bot.user_id)) == 2


async def test_a_quick_file_gets_its_answer_without_a_progress_message(staff, sanitizer_bot):
    phone, pc, _colleague, room = staff
    event_id = await post_file(phone, room, b"short note\n", "note.txt", "text/plain")
    report, _copy = await wait_replies(pc, room, event_id, count=2, sender=sanitizer_bot.user_id, timeout=60)
    assert report["content"]["body"].startswith("無害化しました")
    assert not edits_of(await room_events(pc, room), report["event_id"], sanitizer_bot.user_id)


# --- cancelling ---


async def test_the_sender_cancels_a_waiting_and_a_running_file_and_a_colleague_cannot(staff, sanitizer_bot):
    phone, pc, colleague, room = staff
    big = many_page_pdf(40)
    running = await post_file(phone, room, big, "大きい資料.pdf", "application/pdf")
    await sanitizer_bot.await_log(re.compile("file started .*event_id=" + re.escape(running)), timeout=120)
    # the room's second large file waits: the last free worker is kept for small files and other rooms
    waiting = await post_file(phone, room, big, "二つ目.pdf", "application/pdf")
    await sanitizer_bot.await_log(re.compile("handled .*event_id=" + re.escape(waiting)), timeout=60)
    (progress,) = await wait_replies(pc, room, running, count=1, sender=sanitizer_bot.user_id, timeout=120)
    assert progress["content"]["body"].startswith("無害化しています")

    # a colleague may not cancel someone else's file: neither by command nor by reaction
    command = await reply_command(colleague, room, "!キャンセル", running)
    (refusal,) = await wait_replies(pc, room, command, count=1, sender=sanitizer_bot.user_id, timeout=60)
    assert refusal["content"]["body"].startswith("取り消せるのは、ファイルを送った方")
    await react(colleague, room, waiting)
    (refusal,) = await wait_replies(pc, room, waiting, count=1, sender=sanitizer_bot.user_id, timeout=60)
    assert refusal["content"]["body"].startswith("取り消せるのは、ファイルを送った方")

    # the sender's ❌ on the waiting file: it leaves the queue, a reply says so
    await react(pc, room, waiting)
    await sanitizer_bot.await_log(re.compile("file cancelled .*event_id=" + re.escape(waiting)), timeout=60)
    replies = await wait_replies(pc, room, waiting, count=2, sender=sanitizer_bot.user_id, timeout=60)
    assert replies[1]["content"]["body"] == "「二つ目.pdf」の無害化を取り消しました。ファイルはお渡ししていません"

    # the running file: its renderers in the jail are killed, its progress message says it was cancelled
    # pdftoppm runs a few pages at a time (the host compresses between runs): wait for one to be seen
    assert await renderer_seen(sanitizer_bot, timeout=120), "the file is being rendered"
    await reply_command(pc, room, "!キャンセル", running)
    await sanitizer_bot.await_log(re.compile("file cancelled .*event_id=" + re.escape(running)), timeout=60)
    assert jailed_renderers(sanitizer_bot.process.pid) == []
    await wait_shown(pc, room, progress, "「大きい資料.pdf」の無害化を取り消しました", timeout=60)
    assert sanitizer_bot.query("SELECT event_id FROM sanitizer_jobs") == []

    # nothing is delivered for either: a later file is answered, and still no file for them
    later = await post_file(phone, room, b"after\n", "after.txt", "text/plain")
    await wait_replies(pc, room, later, count=2, sender=sanitizer_bot.user_id, timeout=120)
    for cancelled in (running, waiting):
        files = [e for e in await room_events(pc, room) if e["sender"] == sanitizer_bot.user_id
                 and e["content"].get("msgtype") == "m.file"
                 and (e["content"].get("m.relates_to") or {}).get("m.in_reply_to", {}).get("event_id") == cancelled]
        assert files == []


async def test_a_file_cancelled_before_a_restart_is_not_taken_up_after_it(staff, sanitizer_bot):
    phone, pc, _colleague, room = staff
    pdf = await post_file(phone, room, many_page_pdf(40), "取消後.pdf", "application/pdf")
    (progress,) = await wait_replies(pc, room, pdf, count=1, sender=sanitizer_bot.user_id, timeout=180)
    await react(pc, room, progress["event_id"])  # ❌ on the progress message
    await sanitizer_bot.await_log(re.compile("file cancelled .*event_id=" + re.escape(pdf)), timeout=60)
    assert sanitizer_bot.stop() == 0
    sanitizer_bot.start().wait_ready()
    later = await post_file(phone, room, b"after the restart\n", "after.txt", "text/plain")
    await wait_replies(pc, room, later, count=2, sender=sanitizer_bot.user_id, timeout=120)
    await sanitizer_bot.await_log(re.compile("file answered .*event_id=" + re.escape(later)), timeout=60)
    await asyncio.sleep(2)
    assert [e["content"]["msgtype"] for e in await wait_replies(pc, room, pdf, sender=sanitizer_bot.user_id)] \
        == ["m.notice"], "no answer but the progress message"
    assert "取り消しました" in await shown(pc, room, progress)
    # taken up once, before the restart, never after it
    assert len(re.findall("file started .*event_id=" + re.escape(pdf), sanitizer_bot.log_text(False))) == 1
    assert sanitizer_bot.query("SELECT event_id FROM sanitizer_jobs") == []


# --- files sent in a DM: the same queue ---


async def test_a_large_file_in_a_dm_shows_progress_and_its_sender_cancels_it_while_the_bot_answers(
        staff, sanitizer_bot):
    phone, _pc, _colleague, _room = staff
    dm = await dm_with(phone, sanitizer_bot)
    pdf = await post_file(phone, dm, many_page_pdf(40), "大きい資料.pdf", "application/pdf")
    (progress,) = await wait_replies(phone, dm, pdf, count=1, sender=sanitizer_bot.user_id, timeout=180)
    assert progress["content"]["body"].startswith("無害化しています… 0/40 ページ"), progress["content"]["body"]
    assert "❌" in progress["content"]["body"]
    # the file runs in the queue: the bot still answers in the DM meanwhile
    assert "送信先" in await ask(phone, dm, "!送信先", sanitizer_bot.user_id)
    assert sanitizer_bot.query("SELECT event_id FROM sanitizer_jobs WHERE event_id = ?", pdf) == [(pdf,)]

    await react(phone, dm, progress["event_id"])
    await sanitizer_bot.await_log(re.compile("file cancelled .*event_id=" + re.escape(pdf)), timeout=60)
    await wait_shown(phone, dm, progress, "「大きい資料.pdf」の無害化を取り消しました", timeout=60)
    assert jailed_renderers(sanitizer_bot.process.pid) == []
    assert sanitizer_bot.query("SELECT event_id FROM sanitizer_jobs") == []
    later = await post_file(phone, dm, b"after\n", "after.txt", "text/plain")
    await wait_replies(phone, dm, later, count=2, sender=sanitizer_bot.user_id, timeout=120)
    assert files_answering(await room_events(phone, dm), pdf, sanitizer_bot.user_id) == []


async def test_a_photo_in_a_dm_is_answered_while_long_pdfs_in_a_room_run_at_low_priority(staff, sanitizer_bot):
    phone, _pc, _colleague, room = staff
    big = many_page_pdf(45)
    pdfs = []
    for name in ("年報1.pdf", "年報2.pdf"):
        pdfs.append(await post_file(phone, room, big, name, "application/pdf"))
        # a long document gives its worker up: the room's second one starts too, and the photo after them
        await sanitizer_bot.await_log(re.compile("file gives way .*event_id=" + re.escape(pdfs[-1])), timeout=120)
    nices: list[int] = []
    deadline = time.monotonic() + 60
    while not nices and time.monotonic() < deadline:  # a run of a few pages may end between two looks
        nices = [n for n in map(nice_of, jailed_renderers(sanitizer_bot.process.pid)) if n is not None]
        await asyncio.sleep(0.05)
    assert nices and all(n == 19 for n in nices), nices

    dm = await dm_with(phone, sanitizer_bot)
    photo = await post_file(phone, dm, jpeg_with_gps(), "現場写真.jpg", "image/jpeg", msgtype="m.image")
    report, copy = await wait_replies(phone, dm, photo, count=2, sender=sanitizer_bot.user_id, timeout=120)
    assert report["content"]["body"].startswith("無害化しました"), report["content"]["body"]
    assert copy["content"]["msgtype"] == "m.image"
    # answered while both PDFs were still being sanitized (the photo's row goes just after its copy is sent)
    await sanitizer_bot.await_log(re.compile("file answered .*event_id=" + re.escape(photo)), timeout=60)
    assert sorted(sanitizer_bot.query("SELECT event_id FROM sanitizer_jobs")) == sorted((e,) for e in pdfs)
    for pdf in pdfs:  # their sender cancels them: nothing more to wait for
        await react(phone, room, pdf)
        await sanitizer_bot.await_log(re.compile("file cancelled .*event_id=" + re.escape(pdf)), timeout=60)
    assert sanitizer_bot.query("SELECT event_id FROM sanitizer_jobs") == []


async def test_a_dm_file_running_at_a_restart_goes_to_the_chosen_room_once_after_it(staff, sanitizer_bot):
    phone, pc, _colleague, room = staff
    dm = await dm_with(phone, sanitizer_bot)
    assert "送信先をルーム「総務課」にしました" in await ask(phone, dm, f"!送信先 {room}", sanitizer_bot.user_id)
    pdf = await post_file(phone, dm, many_page_pdf(20), "議事録.pdf", "application/pdf")
    await sanitizer_bot.await_log(re.compile("file started .*event_id=" + re.escape(pdf)), timeout=60)
    assert sanitizer_bot.stop() == 0  # its event is recorded as handled: only the queue remembers the file
    restarted_ms = int(time.time() * 1000)
    sanitizer_bot.start().wait_ready()
    await sanitizer_bot.await_log(re.compile("file answered .*event_id=" + re.escape(pdf)), timeout=240)
    await asyncio.sleep(2)  # a second answer would come right after the first

    # the DM: one message (the progress message, 20 pages: shown at once) that ends saying where the file went
    replies = await wait_replies(phone, dm, pdf, count=1, sender=sanitizer_bot.user_id)
    assert len(replies) == 1, [e["content"]["body"] for e in replies]
    said = replies[0]
    assert (await shown(phone, dm, said)).startswith("ルーム「総務課」に届けました: 無害化しました")
    assert files_answering(await room_events(phone, dm), pdf, sanitizer_bot.user_id) == []
    # the room: the sanitized copy, once, sent after the restart
    copies = [e for e in await room_events(pc, room) if e["sender"] == sanitizer_bot.user_id
              and e["content"].get("msgtype") == "m.file" and e["content"].get("body") == "議事録.pdf"]
    assert len(copies) == 1 and copies[0]["origin_server_ts"] > restarted_ms
    assert sanitizer_bot.query("SELECT event_id FROM sanitizer_jobs") == []


# --- the order of the queue ---


async def test_a_client_claiming_one_byte_for_a_large_file_does_not_jump_the_line(staff, sanitizer_bot):
    phone, pc, _colleague, room = staff
    honest = await post_file(phone, room, many_page_pdf(20), "一つ目.pdf", "application/pdf")
    await sanitizer_bot.await_log(re.compile("file started .*event_id=" + re.escape(honest)), timeout=60)
    big = many_page_pdf(21)
    liar = await post_file(phone, room, big, "二つ目.pdf", "application/pdf", claimed_size=1)
    await sanitizer_bot.await_log(re.compile("handled .*event_id=" + re.escape(liar)), timeout=60)
    # queued at the size the media repository stores, so a large file: the room's last free worker is
    # kept for small files, and it waits for the first
    assert sanitizer_bot.query("SELECT size FROM sanitizer_jobs WHERE event_id = ?", liar) == [(len(big),)]
    await sanitizer_bot.await_log(re.compile("file answered .*event_id=" + re.escape(honest)), timeout=240)
    log = sanitizer_bot.log_path.read_text()
    answered = re.search("file answered .*event_id=" + re.escape(honest), log)
    started = re.search("file started .*event_id=" + re.escape(liar), log)
    assert answered and started and answered.start() < started.start()
    for pdf in (honest, liar):
        report, _copy = await wait_replies(pc, room, pdf, count=2, sender=sanitizer_bot.user_id, timeout=240)
        assert (await shown(pc, room, report)).startswith("無害化しました")


# --- editable Office documents ---


def docx_with_macro_and_external_link() -> bytes:
    pkg = Package("docx")
    vba(pkg, "main")
    linked_image(pkg, "main")
    pkg.body.append("<w:p><w:r><w:t>見積書の本文</w:t></w:r></w:p>")
    return pkg.build()


def libreoffice_opens(data: bytes, suffix: str, tmp_path: Path) -> str:
    """The text of ``data`` as LibreOffice converts it to PDF (it opened the file)."""
    source = tmp_path / f"copy{suffix}"
    source.write_bytes(data)
    subprocess.run([shutil.which("soffice") or "soffice", f"-env:UserInstallation=file://{tmp_path}/profile",
                    "--headless", "--convert-to", "pdf", "--outdir", str(tmp_path), str(source)],
                   check=True, capture_output=True, timeout=300)
    return subprocess.run(["pdftotext", str(tmp_path / "copy.pdf"), "-"], check=True, capture_output=True,
                          text=True).stdout


async def test_word_by_policy_both_gives_the_pdf_and_an_editable_copy_that_passes_the_verifier(
        staff, sanitizer_bot, nginx_front, tmp_path):
    phone, pc, _colleague, room = staff
    event_id = await post_file(phone, room, docx_with_macro_and_external_link(), "見積書.docm", DOCX)
    report, pdf, editable = await wait_replies(pc, room, event_id, count=3, sender=sanitizer_bot.user_id,
                                               timeout=300)
    said = await shown(pc, room, report)
    assert said.startswith("無害化しました（Office 文書: "
                           "画像化した PDF と、マクロ等を取り除いた編集用の文書にしました"), said
    assert "マクロ（VBA）" in said and "外部への参照" in said
    assert pdf["content"]["body"] == "見積書.pdf" and editable["content"]["body"] == "見積書.docx"
    status, data = await download(f"http://{nginx_front.spec.lgwan_listen}", pc, editable["content"]["url"])
    assert status == 200
    assert ooxml_verify.verify_package(data) == []
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        assert not [n for n in z.namelist() if "vba" in n.lower()]
        assert b"evil.example" not in b"".join(z.read(n) for n in z.namelist())
    assert "見積書の本文" in libreoffice_opens(data, ".docx", tmp_path)


async def test_the_editable_copy_on_request_in_a_dm_and_refused_where_the_policy_rasterizes(
        staff, sanitizer_bot, nginx_front):
    phone, pc, colleague, room = staff
    word = await post_file(pc, room, docx_with_macro_and_external_link(), "仕様書.docx", DOCX)
    excel = await post_file(pc, room, legitimate("xlsx"), "集計表.xlsx", XLSX)
    dm = await pc.room_create(is_direct=True, invite=[sanitizer_bot.user_id])
    assert isinstance(dm, RoomCreateResponse), dm
    await wait_membership(pc, dm.room_id, sanitizer_bot.user_id, "join")

    asked = await send(pc, dm.room_id, {"msgtype": "m.text", "body": f"!編集用 https://matrix.to/#/{room}/{word}"})
    report, copy = await wait_replies(pc, dm.room_id, asked, count=2, sender=sanitizer_bot.user_id, timeout=300)
    body = await shown(pc, dm.room_id, report)  # on a slow day a progress message that became the answer
    assert body.startswith("「仕様書.docx」の編集用の写しです。\n"
                           "無害化しました（Office 文書: マクロ等を取り除いた文書にしました"), body
    removed = body.split("削除: ", 1)[1]
    assert "マクロ（VBA）" in removed and "外部への参照（リンクされた画像・ファイル・外部データ）" in removed
    assert copy["content"]["body"] == "仕様書.docx"
    status, data = await download(f"http://{nginx_front.spec.lgwan_listen}", pc, copy["content"]["url"])
    assert status == 200 and ooxml_verify.verify_package(data) == []

    asked = await send(pc, dm.room_id, {"msgtype": "m.text", "body": f"!編集用 https://matrix.to/#/{room}/{excel}"})
    (refusal,) = await wait_replies(pc, dm.room_id, asked, count=1, sender=sanitizer_bot.user_id, timeout=300)
    assert refusal["content"]["body"].startswith("この種類の文書は、設定により編集用の写しをお渡しできません")

    # a file in a room the asker is not in is not theirs to ask for
    other_room = await phone.room_create(name="人事課", invite=[sanitizer_bot.user_id])
    assert isinstance(other_room, RoomCreateResponse), other_room
    await wait_membership(phone, other_room.room_id, sanitizer_bot.user_id, "join")
    other = await post_file(pc, other_room.room_id, docx_with_macro_and_external_link(), "人事.docx", DOCX)
    colleague_dm = await colleague.room_create(is_direct=True, invite=[sanitizer_bot.user_id])
    assert isinstance(colleague_dm, RoomCreateResponse), colleague_dm
    await wait_membership(colleague, colleague_dm.room_id, sanitizer_bot.user_id, "join")
    asked = await send(colleague, colleague_dm.room_id,
                       {"msgtype": "m.text", "body": f"!編集用 https://matrix.to/#/{other_room.room_id}/{other}"})
    (refusal,) = await wait_replies(colleague, colleague_dm.room_id, asked, count=1, sender=sanitizer_bot.user_id,
                                    timeout=60)
    assert refusal["content"]["body"].startswith("そのルームのメンバーではないため")


# --- !編集用 in the queue ---


WORD_TRANSITIONAL = b"http://schemas.openxmlformats.org/wordprocessingml/2006/main"
WORD_STRICT = b"http://purl.oclc.org/ooxml/wordprocessingml/main"


def long_strict_docx(pages: int) -> bytes:
    """About ``pages`` pages of Japanese text in ISO 29500 Strict form. Strict is never delivered as it
    is (ooxml.py): !編集用 makes an image PDF of it page by page, long enough to show its progress."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(japanese_docx(pages))) as source, \
            zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for name in source.namelist():  # in the same order: libmagic knows OOXML by its first entries
            target.writestr(name, source.read(name).replace(WORD_TRANSITIONAL, WORD_STRICT))
    return out.getvalue()


async def ask_editable(client, dm: str, room: str, file_event_id: str) -> str:
    return await send(client, dm, {"msgtype": "m.text", "body": f"!編集用 https://matrix.to/#/{room}/{file_event_id}"})


async def test_an_editable_copy_of_a_long_document_shows_its_progress_which_becomes_the_answer(staff, sanitizer_bot):
    _phone, pc, _colleague, room = staff
    word = await post_file(pc, room, long_strict_docx(12), "長い仕様書.docx", DOCX)
    dm = await dm_with(pc, sanitizer_bot)
    asked = await ask_editable(pc, dm, room, word)
    progress, copy = await wait_replies(pc, dm, asked, count=2, sender=sanitizer_bot.user_id, timeout=300)
    # the progress message of a file, as a reply to the request, saying how to cancel the request
    said = progress["content"]["body"]
    assert said.startswith("無害化しています…"), said
    assert "❌" in said and "!編集用 のメッセージに返信して !キャンセル" in said, said
    # ... edited as pages come back (posted after a few seconds, it may not have had the count yet), then
    # replaced by the answer, the copy after it (Strict: never delivered as it is, so a PDF, and it says so)
    edits = [e["body"] for e in edits_of(await room_events(pc, dm), progress["event_id"], sanitizer_bot.user_id)]
    assert any(re.match(r"無害化しています… \d+/\d+ ページ\n", text) for text in [said, *edits]), edits
    answer = await shown(pc, dm, progress)
    assert answer.startswith("「長い仕様書.docx」の編集用の写しです。\n無害化しました（Office 文書: "), answer
    assert copy["content"]["msgtype"] == "m.file" and copy["content"]["body"] == "長い仕様書.pdf"
    assert len(await wait_replies(pc, dm, asked, sender=sanitizer_bot.user_id)) == 2
    await sanitizer_bot.await_log(re.compile("file answered .*event_id=" + re.escape(asked)), timeout=60)
    assert sanitizer_bot.query("SELECT event_id FROM sanitizer_jobs") == []


async def test_an_editable_request_does_not_hold_up_another_persons_file_and_its_sender_cancels_it(
        staff, sanitizer_bot):
    _phone, pc, colleague, room = staff
    word = await post_file(pc, room, long_strict_docx(40), "年次報告.docx", DOCX)
    dm = await dm_with(pc, sanitizer_bot)
    asked = await ask_editable(pc, dm, room, word)
    await sanitizer_bot.await_log(re.compile("file started .*event_id=" + re.escape(asked)), timeout=120)

    # a colleague's small file is answered while the request runs (it was answered inline before: it waited)
    colleague_dm = await dm_with(colleague, sanitizer_bot)
    note = await post_file(colleague, colleague_dm, b"short note\n", "note.txt", "text/plain")
    report, _copy = await wait_replies(colleague, colleague_dm, note, count=2, sender=sanitizer_bot.user_id,
                                       timeout=120)
    assert report["content"]["body"].startswith("無害化しました")
    assert files_answering(await room_events(pc, dm), asked, sanitizer_bot.user_id) == []
    assert sanitizer_bot.query("SELECT kind FROM sanitizer_jobs WHERE event_id = ?", asked) == [("editable",)]

    # its sender cancels it as the progress message says: !キャンセル as a reply to the request
    (progress,) = await wait_replies(pc, dm, asked, count=1, sender=sanitizer_bot.user_id, timeout=180)
    assert progress["content"]["body"].startswith("無害化しています")
    await reply_command(pc, dm, "!キャンセル", asked)
    await sanitizer_bot.await_log(re.compile("file cancelled .*event_id=" + re.escape(asked)), timeout=60)
    await wait_shown(pc, dm, progress, "「年次報告.docx」の無害化を取り消しました", timeout=60)
    assert jailed_renderers(sanitizer_bot.process.pid) == []
    assert sanitizer_bot.query("SELECT event_id FROM sanitizer_jobs") == []
    # its work has stopped by the time the log says so: nothing is delivered for it
    assert files_answering(await room_events(pc, dm), asked, sanitizer_bot.user_id) == []


async def test_editable_requests_running_at_a_restart_are_answered_once_but_not_to_who_left_the_room(
        staff, sanitizer_bot):
    _phone, pc, colleague, room = staff
    word = await post_file(pc, room, long_strict_docx(20), "議事録.docx", DOCX)
    dm = await dm_with(pc, sanitizer_bot)
    colleague_dm = await dm_with(colleague, sanitizer_bot)
    asked = await ask_editable(pc, dm, room, word)
    theirs = await ask_editable(colleague, colleague_dm, room, word)
    for request in (asked, theirs):
        await sanitizer_bot.await_log(re.compile("file started .*event_id=" + re.escape(request)), timeout=120)
    assert sanitizer_bot.stop() == 0  # the requests are recorded as handled: only the queue remembers them
    # while the bot is down the colleague leaves the room: the file is no longer theirs to ask for
    await colleague.room_leave(room)
    await wait_membership(pc, room, colleague.user_id, "leave")
    restarted_ms = int(time.time() * 1000)
    sanitizer_bot.start().wait_ready()
    for request in (asked, theirs):
        await sanitizer_bot.await_log(re.compile("file answered .*event_id=" + re.escape(request)), timeout=300)
    # the bot has gone on to later events: nothing of the requests is left to do or to send
    assert "送信先" in await ask(pc, dm, "!送信先", sanitizer_bot.user_id)
    assert sanitizer_bot.query("SELECT event_id FROM sanitizer_jobs") == []

    # the one who stayed: one message (the progress message or a reply) that is the answer, one copy
    notices = await wait_replies(pc, dm, asked, sender=sanitizer_bot.user_id)
    assert [e["content"]["msgtype"] for e in notices] == ["m.notice", "m.file"], [e["content"] for e in notices]
    answer = await shown(pc, dm, notices[0])
    assert answer.startswith("「議事録.docx」の編集用の写しです。\n無害化しました"), answer
    assert notices[1]["content"]["body"] == "議事録.pdf" and notices[1]["origin_server_ts"] > restarted_ms
    # the one who left: told why, and no copy
    answered = await wait_replies(colleague, colleague_dm, theirs, sender=sanitizer_bot.user_id)
    assert [e["content"]["msgtype"] for e in answered] == ["m.notice"], [e["content"] for e in answered]
    said = await shown(colleague, colleague_dm, answered[0])
    assert said.startswith("そのルームのメンバーではないため"), said


def test_office_policies_are_checked_with_messages_in_both_languages():
    from lgwan_chat.core.configcheck import typed
    from lgwan_chat.core.i18n import t

    def check(raw):
        return typed.check(sanitizer_config.SanitizerOptions, raw)

    assert check({"office": {"word": "both", "excel": "strip-active", "powerpoint": "rasterize"}}) \
        == []
    (issue,) = check({"office": {"word": "editable"}})
    assert issue.path == ("office", "word")
    (issue,) = check({"engine": {"policies": {"office": "refuse"}}, "office": {"word": "both"}})
    assert issue.path == ("office", "word") and issue.key == "config.sanitizer_office_refused"
    assert "refuse" in t(issue.key, "ja", **issue.params) and "refuse" in t(issue.key, "en", **issue.params)
