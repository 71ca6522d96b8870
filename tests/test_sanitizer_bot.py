"""The sanitization bot (無害化ボット) as staff and contractors meet it: real Synapse behind the suite's
nginx, a real bot process with the real engine (sandboxed renderers), real nio users, and the
contractor upload page in a real headless Chromium.

A member of staff has a phone (internet zone) and an office PC (LGWAN zone). What the phone posts
waits for sanitization: the PC cannot open it, only the bot's sanitized copy.
"""

from __future__ import annotations

import asyncio
import io
import itertools
import json
import random
import re
import shutil
import time
import urllib.request
from urllib.parse import quote

import pytest
from bots_harness import BotProcess, ask, room_events, wait_membership, wait_replies
from harness import download
from nio import RoomCreateResponse, RoomSendResponse, UploadResponse
from PIL import Image
from playwright.async_api import async_playwright

BOT = "sanitizer"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-sync",
                 "--disable-background-networking", "--disable-component-update"]


@pytest.fixture(scope="module")
def homeserver_modules():
    from harness import suite_modules_trusting

    return suite_modules_trusting(f"@{BOT}-bot:lgwan.test")


@pytest.fixture(scope="module")
def sanitizer_bot(homeserver, nginx_front, tmp_path_factory):
    internet = f"http://{nginx_front.spec.internet_listen}"
    folder = tmp_path_factory.mktemp("sanitizer-bot")
    with BotProcess(homeserver, folder, BOT, entry=["-m", "bots.sanitizer"],
                    options={"work_dir": str(folder / "work"), "small_file_kb": 100,
                             "upload": {"listen": nginx_front.spec.upload_page, "public_url": f"{internet}/upload/",
                                        "default_max_mb": 5, "max_files": 3, "min_power_level": 50}},
                    zone="internet", storage=homeserver.backend) as bot:
        bot.start().wait_ready()
        yield bot
        assert bot.stop() == 0


@pytest.fixture
async def staff(homeserver, login, nginx_front, sanitizer_bot):
    """Phone and office PC of one person (through nginx, as deployed), a colleague, a shared room
    with the bot in it."""
    user = homeserver.new_user("staff")
    phone = await login(user, "internet", via=nginx_front)
    pc = await login(user, "lgwan", via=nginx_front)
    colleague = await login(homeserver.new_user("colleague"), "lgwan", via=nginx_front)
    room = await pc.room_create(name="総務課", invite=[sanitizer_bot.user_id, colleague.user_id])
    assert isinstance(room, RoomCreateResponse), room
    await colleague.join(room.room_id)
    await wait_membership(pc, room.room_id, sanitizer_bot.user_id, "join")
    return phone, pc, room.room_id


def jpeg_with_gps() -> bytes:
    image = Image.new("RGB", (320, 240), (30, 120, 200))
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"  # Make
    gps = {1: "N", 2: (35.0, 41.0, 22.0), 3: "E", 4: (139.0, 41.0, 30.0)}
    exif[0x8825] = gps
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif)
    return out.getvalue()


async def post_file(client, room_id: str, data: bytes, name: str, mimetype: str, msgtype: str = "m.file") -> str:
    uploaded, _ = await client.upload(io.BytesIO(data), content_type=mimetype, filename=name, filesize=len(data))
    assert isinstance(uploaded, UploadResponse), uploaded
    sent = await client.room_send(room_id, "m.room.message", {
        "msgtype": msgtype, "body": name, "url": uploaded.content_uri, "info": {"mimetype": mimetype,
                                                                               "size": len(data)}})
    assert isinstance(sent, RoomSendResponse), sent
    return sent.event_id


def lgwan_url(nginx_front) -> str:
    return f"http://{nginx_front.spec.lgwan_listen}"


async def test_a_photo_from_a_phone_reaches_the_office_pc_only_as_a_sanitized_copy(staff, nginx_front,
                                                                                   sanitizer_bot):
    phone, pc, room = staff
    original = jpeg_with_gps()
    event_id = await post_file(phone, room, original, "現場写真.jpg", "image/jpeg", "m.image")
    report, copy = await wait_replies(pc, room, event_id, count=2, sender=sanitizer_bot.user_id, timeout=60)
    assert report["content"]["msgtype"] == "m.notice"
    assert report["content"]["body"].startswith("無害化しました")
    assert "位置情報" in report["content"]["body"]
    assert copy["content"]["msgtype"] == "m.image"
    # The office PC: the original waits for sanitization, the bot's copy opens.
    original_mxc = next(e for e in await room_events(pc, room) if e["event_id"] == event_id)["content"]["url"]
    status, _ = await download(lgwan_url(nginx_front), pc, original_mxc)
    assert status == 403
    status, body = await download(lgwan_url(nginx_front), pc, copy["content"]["url"])
    assert status == 200
    sanitized = Image.open(io.BytesIO(body))
    assert sanitized.size == (320, 240)
    assert not sanitized.getexif(), "EXIF (with GPS) must be gone"
    assert b"PhoneMaker" not in body


async def test_files_from_the_office_pc_are_left_alone(staff, sanitizer_bot):
    phone, pc, room = staff
    event_id = await post_file(pc, room, b"memo from the office\n", "memo.txt", "text/plain")
    # a later file from the phone is answered: by then the PC's file has been seen and skipped
    later = await post_file(phone, room, b"from the phone\n", "phone.txt", "text/plain")
    await wait_replies(pc, room, later, count=2, sender=sanitizer_bot.user_id, timeout=60)
    assert not [e for e in await room_events(pc, room)
                if (e["content"].get("m.relates_to") or {}).get("m.in_reply_to", {}).get("event_id") == event_id]


async def test_an_executable_named_pdf_is_refused_with_a_reason_and_nothing_delivered(staff, sanitizer_bot):
    phone, pc, room = staff
    fake = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00" + b"\x00" * 48 + b"PE\x00\x00" + b"\x00" * 200
    event_id = await post_file(phone, room, fake, "請求書.pdf", "application/pdf")
    (refusal,) = await wait_replies(pc, room, event_id, count=1, sender=sanitizer_bot.user_id, timeout=60)
    body = refusal["content"]["body"]
    assert body.startswith("このファイル（実行ファイル）はお渡しできません")
    assert "代わりに" in body
    time.sleep(1)
    replies = [e for e in await room_events(pc, room) if e["sender"] == sanitizer_bot.user_id
               and (e["content"].get("m.relates_to") or {}).get("m.in_reply_to", {}).get("event_id") == event_id]
    assert [e["content"]["msgtype"] for e in replies] == ["m.notice"], "no file may follow a refusal"


async def test_a_file_sent_in_a_dm_comes_back_sanitized_or_goes_to_the_chosen_room(homeserver, login, staff,
                                                                                  sanitizer_bot):
    phone, pc, room = staff
    dm = await phone.room_create(is_direct=True, invite=[sanitizer_bot.user_id])
    await wait_membership(phone, dm.room_id, sanitizer_bot.user_id, "join")
    event_id = await post_file(phone, dm.room_id, "議事録\r\n1. 予算\r\n".encode("cp932"), "議事録.txt", "text/plain")
    _report, copy = await wait_replies(phone, dm.room_id, event_id, count=2, sender=sanitizer_bot.user_id,
                                      timeout=60)
    assert copy["content"]["body"] == "議事録.txt"
    status, body = await download(homeserver.url("internet"), phone, copy["content"]["url"])
    assert status == 200 and body.decode("utf-8").replace("\r\n", "\n") == "議事録\n1. 予算\n"

    # A room the person is not in cannot be the target.
    other = await (await login(homeserver.new_user("other"), "lgwan")).room_create(
        name="人事課", invite=[sanitizer_bot.user_id])
    await wait_membership(pc, room, sanitizer_bot.user_id, "join")
    time.sleep(1)
    assert "メンバーではない" in await ask(phone, dm.room_id, f"!送信先 {other.room_id}", sanitizer_bot.user_id)
    assert "送信先をルーム「総務課」にしました" in await ask(phone, dm.room_id, f"!送信先 {room}",
                                                          sanitizer_bot.user_id)
    event_id = await post_file(phone, dm.room_id, b"second file\n", "second.txt", "text/plain")
    (confirmation,) = await wait_replies(phone, dm.room_id, event_id, count=1, sender=sanitizer_bot.user_id,
                                         timeout=60)
    assert "「総務課」に届けました" in confirmation["content"]["body"]
    delivered = [e for e in await room_events(pc, room) if e["sender"] == sanitizer_bot.user_id
                 and e["content"].get("body") == "second.txt"]
    assert len(delivered) == 1
    assert "!送信先 解除" in await ask(phone, dm.room_id, "!送信先", sanitizer_bot.user_id)
    assert "解除しました" in await ask(phone, dm.room_id, "!送信先 解除", sanitizer_bot.user_id)


# --- the contractor upload page ---


@pytest.fixture
async def browser():
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        await chromium.close()


def link_in(reply: str) -> str:
    found = re.search(r"https?://\S+/upload/\S+", reply)
    assert found, reply
    return found.group(0)


async def test_a_contractor_uploads_through_a_one_time_link_without_javascript(staff, sanitizer_bot, browser,
                                                                              tmp_path):
    _phone, pc, room = staff
    reply = await ask(pc, room, "!アップロードURL 1回 2MB", sanitizer_bot.user_id)
    assert "1回限り" in reply and "2MB" in reply
    url = link_in(reply)
    (tmp_path / "見積書.csv").write_bytes("品目,金額\n机,=1+2\n".encode("cp932"))
    context = await browser.new_context(java_script_enabled=False)
    page = await context.new_page()
    await page.goto(url)
    assert await page.title() == "ファイルの送付"
    await page.fill("input[name=name]", "山田 太郎")
    await page.fill("input[name=org]", "株式会社サンプル建設")
    await page.set_input_files("input[name=files]", str(tmp_path / "見積書.csv"))
    await page.click("button[type=submit]")
    await page.wait_for_selector("ul.results")
    await page.screenshot(path=str(tmp_path / "upload-done.png"))
    assert await page.title() == "送信しました"
    assert "担当者に届けました" in await page.inner_text("ul.results")
    # In the room: who sent it, then the sanitized file (formula neutralised).
    header = await wait_for(pc, room, lambda e: "外部からのアップロード" in e["content"].get("body", ""))
    assert "山田 太郎（株式会社サンプル建設）" in header["content"]["body"]
    (_report, copy) = await wait_replies(pc, room, header["event_id"], count=2, sender=sanitizer_bot.user_id)
    assert copy["content"]["body"] == "見積書.csv"
    status, body = await download(pc.homeserver, pc, copy["content"]["url"])
    assert status == 200 and body.startswith(b"\xef\xbb\xbf") and "'=1+2" in body.decode("utf-8-sig")
    # Single use: the same link now gets a clear page, not the form.
    await page.goto(url)
    assert "すでに使われています" in await page.inner_text("main")
    # A forged token and a cut-off link: a clear page too.
    response = await page.goto(url[:-5] + "AAAAA")
    assert response.status == 404 and "正しくありません" in await page.inner_text("main")
    response = await page.goto(url.rsplit("/", 1)[0] + "/short")
    assert response.status == 404
    await context.close()


async def test_with_javascript_the_page_shows_progress_and_checks_sizes_before_sending(staff, sanitizer_bot,
                                                                                       browser, tmp_path):
    _phone, pc, room = staff
    url = link_in(await ask(pc, room, "!アップロードURL 複数 1MB 24時間", sanitizer_bot.user_id))
    (tmp_path / "big.txt").write_bytes(b"x" * (1024 * 1024 + 10))
    (tmp_path / "small.txt").write_bytes("連絡事項\n".encode())
    page = await browser.new_page()
    requests: list = []
    page.on("request", lambda r: requests.append((r.method, r.resource_type)))
    await page.goto(url + "?lang=ja")
    await page.fill("input[name=name]", "佐藤")
    await page.set_input_files("input[name=files]", str(tmp_path / "big.txt"))
    await page.click("button[type=submit]")
    await page.wait_for_selector("#client-problem:not([hidden])")
    assert "大きすぎます" in await page.inner_text("#client-problem")
    assert ("POST", "xhr") not in requests and ("POST", "document") not in requests
    await page.set_input_files("input[name=files]", str(tmp_path / "small.txt"))
    await page.click("button[type=submit]")
    await page.wait_for_selector("ul.results")
    assert ("POST", "xhr") in requests
    # a link for many uses still opens after a submission
    await page.goto(url)
    assert await page.title() == "ファイルの送付"
    await page.close()


async def test_expired_and_revoked_links_and_who_may_make_them(homeserver, login, staff, sanitizer_bot, browser):
    _phone, pc, room = staff
    url = link_in(await ask(pc, room, "!アップロードURL", sanitizer_bot.user_id))
    numbers = re.findall(r"#(\d+)", await ask(pc, room, "!アップロードURL一覧", sanitizer_bot.user_id))
    number = int(numbers[-1])
    assert "取り消しました" in await ask(pc, room, f"!アップロードURL取消 {number}", sanitizer_bot.user_id)
    page = await browser.new_page()
    response = await page.goto(url)
    assert response.status == 410 and "取り消されています" in await page.inner_text("main")
    # Time passing: the link's expiry moved into the past in the bot's own database.
    url = link_in(await ask(pc, room, "!アップロードURL", sanitizer_bot.user_id))
    assert sanitizer_bot.execute("UPDATE sanitizer_upload_links SET expires_ts = 1 WHERE room_id = ?"
                                 " AND revoked = 0 AND uses = 0", room) == 1
    response = await page.goto(url)
    assert response.status == 410 and "有効期限が切れています" in await page.inner_text("main")
    await page.close()
    # Terms not understood get the reason and an example.
    reply = await ask(pc, room, "!アップロードURL 3ヶ月", sanitizer_bot.user_id)
    assert "「3ヶ月」が分かりません" in reply
    # Only power level >= 50 (min_power_level of this bot) may make or revoke links.
    colleague = await login(homeserver.new_user("kakari"), "lgwan")
    await pc.room_invite(room, colleague.user_id)
    await colleague.join(room)
    await asyncio.sleep(1)  # the bot sees the new member's power level (the default: 0)
    assert "権限レベル 50 以上" in await ask(colleague, room, "!アップロードURL", sanitizer_bot.user_id)
    assert "権限レベル 50 以上" in await ask(colleague, room, f"!アップロードURL取消 {number}",
                                        sanitizer_bot.user_id)


async def wait_for(client, room_id: str, wanted, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for event in await room_events(client, room_id):
            if event.get("type") == "m.room.message" and wanted(event):
                return event
        await asyncio.sleep(0.3)
    raise AssertionError("no such event")


async def test_the_upload_page_answers_bad_requests_with_pages_not_stack_traces(staff, sanitizer_bot,
                                                                               nginx_front):
    import urllib.error
    import urllib.request

    _phone, pc, room = staff
    url = link_in(await ask(pc, room, "!アップロードURL", sanitizer_bot.user_id))
    # not a multipart form
    request = urllib.request.Request(url, data=b"garbage", method="POST",
                                     headers={"Content-Type": "application/x-www-form-urlencoded"})
    with pytest.raises(urllib.error.HTTPError) as bad:
        urllib.request.urlopen(request, timeout=30)
    page = bad.value.read().decode()
    assert bad.value.code == 400 and "送信の形式が正しくありません" in page and "Traceback" not in page
    # a body larger than the link allows, announced up front
    big = b"--b\r\nContent-Disposition: form-data; name=\"files\"; filename=\"a.txt\"\r\n\r\n" + b"x" * (6 << 20)
    request = urllib.request.Request(url, data=big + b"\r\n--b--\r\n", method="POST",
                                     headers={"Content-Type": "multipart/form-data; boundary=b"})
    with pytest.raises(urllib.error.HTTPError) as large:
        urllib.request.urlopen(request, timeout=30)
    assert large.value.code == 413
    # the link was not used up by either
    with urllib.request.urlopen(url, timeout=30) as response:
        assert response.status == 200 and "ファイルの送付" in response.read().decode()


# --- what staff and contractors ran into (issue 21) ---

#: a MIME type as a person must never read it ("video/audio" is English, not a MIME type)
MIME = re.compile(r"\b(?:application|video|audio|text|image|font|model|inode|chemical)/(?!audio\b|video\b)[\w.+-]+")


def jst(ts_ms: int) -> str:
    import datetime
    return datetime.datetime.fromtimestamp(ts_ms / 1000, datetime.timezone(datetime.timedelta(hours=9))
                                           ).strftime("%Y-%m-%d %H:%M")


async def test_a_room_is_a_room_and_a_dm_is_a_dm_whatever_the_number_of_members(homeserver, login, sanitizer_bot):
    """DM-ness is the room's DM marking (the invite's is_direct), never the member count: a new room
    with one colleague and the bot is a room; a DM stays a DM when a third person is added."""
    person = await login(homeserver.new_user("kouji", displayname="工事 担当"), "lgwan")
    third = await login(homeserver.new_user("hojo"), "lgwan")
    rooms = {}
    for direct, extra in itertools.product((False, True), (False, True)):
        made = await person.room_create(name=None if direct else "工事打合せ", is_direct=direct,
                                        invite=[sanitizer_bot.user_id])
        assert isinstance(made, RoomCreateResponse), made
        room = made.room_id
        await wait_membership(person, room, sanitizer_bot.user_id, "join")
        if extra:
            await person.room_invite(room, third.user_id)
            await third.join(room)
            await wait_membership(person, room, third.user_id, "join")
        case = f"direct={direct}, members={3 if extra else 2}"
        link = await ask(person, room, "!アップロードURL", sanitizer_bot.user_id)
        target = await ask(person, room, "!送信先", sanitizer_bot.user_id)
        if direct:
            assert "ルームで使ってください" in link, (case, link)
            assert "送信先" in target and "ダイレクトメッセージでのみ" not in target, (case, target)
        else:
            assert "アップロード URL #" in link and "/upload/" in link, (case, link)
            assert "ダイレクトメッセージでのみ使えます" in target, (case, target)
        rooms[direct, extra] = room

    # The bot keeps its DMs in its own m.direct, as clients do (on the server: it outlives its
    # storage); a room added there is a DM to the bot from then on, whatever its size.
    url = (f"{homeserver.url(sanitizer_bot.zone)}/_matrix/client/v3/user/{quote(sanitizer_bot.user_id)}"
           "/account_data/m.direct")
    token = sanitizer_bot.stored("access_token")
    marked = json.loads(urllib.request.urlopen(urllib.request.Request(
        url, headers={"Authorization": f"Bearer {token}"})).read())
    assert sorted(marked[person.user_id]) == sorted([rooms[True, False], rooms[True, True]]), marked
    marked[person.user_id].append(rooms[False, False])
    urllib.request.urlopen(urllib.request.Request(url, data=json.dumps(marked).encode(), method="PUT", headers={
        "Authorization": f"Bearer {token}", "Content-Type": "application/json"}))
    deadline = time.monotonic() + 30
    while "ルームで使ってください" not in await ask(person, rooms[False, False], "!アップロードURL",
                                                    sanitizer_bot.user_id):
        assert time.monotonic() < deadline, "the bot did not take its m.direct as the DM marking"


async def test_expiries_are_shown_in_japan_time_and_say_so(staff, sanitizer_bot, browser, tmp_path):
    """The host runs on UTC; the contractor and the staff read Japan time, with the zone named."""
    _phone, pc, room = staff
    reply = await ask(pc, room, "!アップロードURL 3時間", sanitizer_bot.user_id)
    found = re.search(r"#(\d+)", reply)
    assert found, reply
    number = int(found.group(1))
    ((expires_ts,),) = sanitizer_bot.query(
        "SELECT expires_ts FROM sanitizer_upload_links WHERE room_id = ? AND number = ?", room, number)
    expiry = f"{jst(expires_ts)}（日本時間）"
    assert f"期限 {expiry}" in reply, reply
    listed = await ask(pc, room, "!アップロードURL一覧", sanitizer_bot.user_id)
    assert expiry in listed, listed
    page = await browser.new_page(viewport={"width": 800, "height": 720})
    await page.goto(link_in(reply))
    assert f"有効期限: {expiry}" in await page.inner_text("ul.terms")
    await page.fill("input[name=name]", "山田 太郎")
    await page.fill("input[name=org]", "株式会社サンプル建設")
    await page.screenshot(path=str(tmp_path / "upload-form.png"))  # the user guide's picture
    await page.goto(link_in(reply) + "?lang=en")
    assert f"{jst(expires_ts)} (Japan time)" in await page.inner_text("ul.terms")
    await page.close()


def refused_samples() -> dict[str, bytes]:
    """Files the engine refuses, one of each kind whose reason names the file's type."""
    mz = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00" + b"\x00" * 44 + b"\x40\x00\x00\x00" \
        + b"PE\x00\x00" + b"\x00" * 200
    elf = b"\x7fELF\x02\x01\x01\x00" + b"\x00" * 8 + b"\x02\x00\x3e\x00\x01\x00\x00\x00" + b"\x00" * 200
    mp4 = b"\x00\x00\x00\x20ftypisom\x00\x00\x02\x00isomiso2avc1mp41" + b"\x00" * 200
    noise = bytes((i * 131 + 7) % 256 for i in range(4096))
    return {"setup.exe": mz, "tool.bin": elf, "movie.mp4": mp4, "data.dat": noise}


@pytest.mark.parametrize("lang", ["ja", "en"])
async def test_refused_files_are_said_in_words_and_the_headline_says_they_were_not_delivered(
        staff, sanitizer_bot, browser, tmp_path, lang):
    _phone, pc, room = staff
    url = link_in(await ask(pc, room, "!アップロードURL 複数 5MB", sanitizer_bot.user_id))
    samples = refused_samples()
    for name, data in samples.items():
        (tmp_path / name).write_bytes(data)
    (tmp_path / "memo.txt").write_bytes("連絡事項\n".encode())
    context = await browser.new_context(java_script_enabled=False, viewport={"width": 800, "height": 720})
    page = await context.new_page()
    titles = {"ja": ("お届けできませんでした", "一部のファイルをお届けできませんでした", "プログラム（実行ファイル）"),
              "en": ("Not delivered", "Some files were not delivered", "a program (executable)")}[lang]
    names = list(samples)
    # every refused kind (three per submission), then refused and accepted together
    for batch, expected_title in ((names[:3], titles[0]), (names[3:] + ["memo.txt"], titles[1])):
        await page.goto(url + f"?lang={lang}")
        await page.fill("input[name=name]", "山田 太郎")
        await page.set_input_files("input[name=files]", [str(tmp_path / n) for n in batch])
        await page.click("button[type=submit]")
        await page.wait_for_selector("ul.results")
        text = await page.inner_text("main")
        assert await page.title() == expected_title and await page.inner_text("h1") == expected_title, text
        assert "送信しました" not in text and await page.inner_text("h1") != "Sent"
        assert "受け付けました" not in text, text
        assert not MIME.search(text), text
        assert await page.locator("ul.results li.refused").count() == sum(1 for n in batch if n != "memo.txt")
        if "setup.exe" in batch:
            assert titles[2] in await page.inner_text("ul.results li.refused >> nth=0"), text
            await page.screenshot(path=str(tmp_path / f"upload-refused.{lang}.png"))  # the user guide's picture
    await context.close()
    # the reports posted in the room say the same in words
    reports = [e["content"]["body"] for e in await room_events(pc, room) if e["sender"] == sanitizer_bot.user_id
               and e["content"].get("msgtype") == "m.notice"]
    refusals = [r for r in reports if "お渡しできません" in r]
    assert refusals and not [r for r in refusals if MIME.search(r)], refusals
    assert any("プログラム（実行ファイル）" in r for r in refusals), refusals


def test_every_type_the_engine_refuses_reads_as_words_in_both_languages():
    """Every MIME type the engine names in a refusal (its refused sets, media, unknown types) is
    said in words: the reason a person reads never carries a MIME type."""
    from bots.sanitizer.delivery import file_type_words, report
    from bots.sanitizer.engine import Result, detect
    from bots.sanitizer.engine.engine import REFUSED_KINDS
    from bots.sanitizer.engine.result import Note
    from lgwan_chat.core.i18n import catalogue

    mimes = sorted(detect.EXECUTABLE | detect.SCRIPT | detect.HTML | detect.ENCRYPTED) + [
        "video/mp4", "video/quicktime", "audio/mpeg", "audio/x-wav", "application/octet-stream", "font/ttf",
        "image/x-icon", "text/x-c", "model/gltf-binary", "application/x-sqlite3", "inode/x-empty",
        "application/vnd.microsoft.portable-executable; charset=binary", ""]
    for lang in ("ja", "en"):
        for mime in mimes:
            words = file_type_words(mime, lang)
            assert words and not MIME.search(words) and "/" not in words, (mime, words)
            for kind, (reason, instead) in REFUSED_KINDS.items():
                result = Result(verdict="refused", detected=mime, kind=kind, policy="refuse",
                                reason=Note(reason, {"mime": mime}), instead=Note(instead))
                said = report(result, lang)
                assert not MIME.search(said), (kind, mime, said)
                if "{mime}" in catalogue(lang)[reason]:
                    assert words in said, (kind, mime, said)
    assert file_type_words("application/vnd.microsoft.portable-executable", "ja") == "プログラム（実行ファイル）"


# --- no waiting in line (issue #20) ---

async def final(client, room_id: str, event: dict) -> dict:
    """What a client shows for the bot's ``event`` and when it was last changed: a long file's progress
    message is edited into its report (``body`` and ``origin_server_ts`` of the latest edit)."""
    edits = [e for e in await room_events(client, room_id) if e.get("sender") == event["sender"]
             and (e["content"].get("m.relates_to") or {}).get("rel_type") == "m.replace"
             and e["content"]["m.relates_to"].get("event_id") == event["event_id"]]
    latest = edits[-1] if edits else None
    return {"body": (latest["content"]["m.new_content"] if latest else event["content"])["body"],
            "origin_server_ts": (latest or event)["origin_server_ts"]}


def many_page_pdf(pages: int) -> bytes:
    """A scanned-looking PDF (a noisy page image on every page): slow to rasterize, like a big batch."""
    noise = Image.frombytes("L", (800, 1100), bytes(random.Random(pages).getrandbits(8) for _ in range(800 * 1100)))
    out = io.BytesIO()
    noise.convert("RGB").save(out, "PDF", save_all=True, append_images=[noise.convert("RGB")] * (pages - 1),
                              resolution=100)
    return out.getvalue()


async def test_a_photo_in_another_room_is_not_held_up_by_a_big_batch(staff, sanitizer_bot):
    phone, pc, room = staff
    other = await pc.room_create(name="税務課", invite=[sanitizer_bot.user_id])
    assert isinstance(other, RoomCreateResponse), other
    await wait_membership(pc, other.room_id, sanitizer_bot.user_id, "join")
    batch = many_page_pdf(20)
    assert len(batch) > 100 * 1024  # above small_file_kb: a large file for the queue
    first = await post_file(phone, room, batch, "議事録1.pdf", "application/pdf")
    second = await post_file(phone, room, batch, "議事録2.pdf", "application/pdf")
    photo = await post_file(phone, other.room_id, jpeg_with_gps(), "現場写真.jpg", "image/jpeg", "m.image")
    photo_report = await final(pc, other.room_id, (await wait_replies(
        pc, other.room_id, photo, count=2, sender=sanitizer_bot.user_id, timeout=180))[0])
    assert photo_report["body"].startswith("無害化しました")
    answered = [await final(pc, room, (await wait_replies(pc, room, pdf, count=2, sender=sanitizer_bot.user_id,
                                                          timeout=300))[0]) for pdf in (first, second)]
    assert all(r["body"].startswith("無害化しました") for r in answered)
    # the photo's answer came while the other room's PDFs were still being sanitized
    assert photo_report["origin_server_ts"] < min(r["origin_server_ts"] for r in answered)


async def test_a_file_still_running_when_the_bot_restarts_is_answered_once_after_it(staff, sanitizer_bot):
    phone, pc, room = staff
    pdf = await post_file(phone, room, many_page_pdf(20), "議事録.pdf", "application/pdf")
    await sanitizer_bot.await_log(re.compile("file started .*event_id=" + re.escape(pdf)), timeout=60)
    assert sanitizer_bot.stop() == 0  # its event is recorded as handled: only the queue remembers the file
    restarted_ms = int(time.time() * 1000)
    sanitizer_bot.start().wait_ready()
    first, copy = await wait_replies(pc, room, pdf, count=2, sender=sanitizer_bot.user_id, timeout=180)
    report = await final(pc, room, first)  # a progress message from before the stop ends as the report
    assert report["body"].startswith("無害化しました")
    assert report["origin_server_ts"] > restarted_ms, "answered after the restart, not before the stop"
    assert copy["content"]["msgtype"] == "m.file"
    await sanitizer_bot.await_log(re.compile("file answered .*event_id=" + re.escape(pdf)), timeout=30)
    await asyncio.sleep(2)  # a second answer would come right after the first
    assert len(await wait_replies(pc, room, pdf, count=2, sender=sanitizer_bot.user_id)) == 2
    assert sanitizer_bot.query("SELECT event_id FROM sanitizer_jobs") == []


def test_work_dir_with_postgres_storage_is_never_a_fixed_name_in_tmp(monkeypatch, tmp_path):
    """A fixed /tmp/... name could be created first by another account (files being sanitized)."""
    import tempfile
    from types import SimpleNamespace

    from bots.sanitizer.app import SanitizerBot

    bot = SimpleNamespace(config=SimpleNamespace(sqlite_path=None, name="sanitizer"))
    monkeypatch.delenv("STATE_DIRECTORY", raising=False)
    monkeypatch.delenv("XDG_STATE_HOME", raising=False)
    default = SanitizerBot._default_work_dir(bot)  # type: ignore[arg-type]
    assert not str(default).startswith(tempfile.gettempdir())
    monkeypatch.setenv("STATE_DIRECTORY", str(tmp_path))  # systemd's StateDirectory=
    assert SanitizerBot._default_work_dir(bot) == tmp_path / "lgwan-chat" / "sanitizer-work"  # type: ignore[arg-type]
