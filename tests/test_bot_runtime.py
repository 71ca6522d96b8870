"""The bot runtime as a real process against a real Synapse: session, replies, restarts, invites.

The bot is ``tests/support/echo_bot.py`` (a test bot on ``bots.runtime``), started, stopped and killed
through ``bots_harness.BotProcess``; what is asserted is what a person sees in the room (read
with a nio client) or what an admin sees (exit codes, the account's devices, the bot's tables).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from bots_harness import ask, replies, room_events, send_text, wait_membership, wait_replies
from harness import http_get
from nio import AsyncClient, LoginResponse, RoomCreateResponse, RoomInviteResponse

from lgwan_chat.checkconfig import SUITE_BOTS
from lgwan_chat.cli import main as lgwan_chat
from lgwan_chat.core.i18n import t

ECHO = Path(__file__).resolve().parent / "support" / "echo_bot.py"


def echo_bot(bot_process, **kwargs):
    return bot_process("echo", ECHO, **kwargs)


def started(bot):
    return bot.start().wait_ready()


async def room_with(client: AsyncClient, bot, direct: bool = False, **kwargs) -> str:
    """A room ``client`` made and invited the bot into; returns once the bot has joined."""
    created = await client.room_create(invite=[bot.user_id], is_direct=direct, **kwargs)
    assert isinstance(created, RoomCreateResponse), created
    await wait_membership(client, created.room_id, bot.user_id, "join")
    return created.room_id


async def barrier(client: AsyncClient, room_id: str, bot, text: str = "区切り") -> None:
    """The bot handles events in order: once this is answered, everything before it was handled."""
    assert await ask(client, room_id, f"!こだま {text}", sender=bot.user_id) == text


def seen(bot) -> dict[str, int]:
    """How many times the echo bot handled each plain message (event id -> count)."""
    return dict(bot.query("SELECT event_id, COUNT(*) FROM echo_seen GROUP BY event_id"))


def devices(homeserver, token: str) -> list[str]:
    status, _, body = http_get(homeserver.url("lgwan") + "/_matrix/client/v3/devices", token)
    assert status == 200, body
    return sorted(d["device_id"] for d in json.loads(body)["devices"])


def whoami(homeserver, token: str) -> tuple[int, dict]:
    status, _, body = http_get(homeserver.url("lgwan") + "/_matrix/client/v3/account/whoami", token)
    return status, json.loads(body)


# --- session ---

async def test_logs_in_once_and_keeps_its_session_across_restarts(homeserver, login, bot_process):
    bot = started(echo_bot(bot_process))
    token, device = bot.stored("access_token"), bot.stored("device_id")
    assert token and device
    assert bot.log_text().count("logged in") == 1
    assert devices(homeserver, token) == [device]

    bot.stop()  # SIGTERM: exits 0 quickly (asserted by the harness)
    assert whoami(homeserver, token) == (200, {"user_id": bot.user_id, "device_id": device, "is_guest": False}), \
        "stopping must not log out: the device keeps its zone binding"

    started(bot)
    assert "session restored" in bot.log_text(since_start=True)
    assert "logged in" not in bot.log_text(since_start=True)
    assert (bot.stored("access_token"), bot.stored("device_id")) == (token, device)
    assert devices(homeserver, token) == [device]  # no new device per start

    user = homeserver.new_user("session")
    client = await login(user, "lgwan")
    room = await room_with(client, bot)
    assert await ask(client, room, "!こだま 戻りました") == "戻りました"
    bot.stop()
    assert devices(homeserver, token) == [device]


async def test_a_session_revoked_while_stopped_is_replaced_by_a_login_on_the_same_device(
        homeserver, login, bot_process):
    bot = started(echo_bot(bot_process))
    token, device = bot.stored("access_token"), bot.stored("device_id")
    bot.stop()
    request = urllib.request.Request(homeserver.url("lgwan") + "/_matrix/client/v3/logout", data=b"{}", method="POST")
    request.add_header("Authorization", f"Bearer {token}")
    urllib.request.urlopen(request, timeout=30).close()  # e.g. an admin signed the bot out

    started(bot)
    assert "stored session refused, logging in again" in bot.log_text(since_start=True)
    assert bot.stored("device_id") == device and bot.stored("access_token") != token
    client = await login(homeserver.new_user("revoked"), "lgwan")
    room = await room_with(client, bot)
    assert await ask(client, room, "!こだま 再ログインしました") == "再ログインしました"


async def test_replies_in_japanese_by_default_and_in_english_for_who_asks(homeserver, login, bot_process):
    bot = started(echo_bot(bot_process, options={"echo_prefix": "> "}))
    alice, bob = homeserver.new_user("alice"), homeserver.new_user("bob")
    a, b = await login(alice, "lgwan"), await login(bob, "internet")
    room = await room_with(a, bot)
    assert isinstance(await a.room_invite(room, bob.user_id), RoomInviteResponse)
    await b.join(room)

    help_ja = await ask(a, room, "!ヘルプ")
    assert help_ja.startswith(t("bot.help_header", "ja"))
    assert "!こだま <テキスト>  (!echo) — テキストをそのまま返します" in help_ja
    assert "!言語 [言語（ja / en）] [ルーム（ルーム全体の既定にする場合）]  (!language)" in help_ja
    assert await ask(a, room, "!数 ７") == "数は 7 です"
    assert await ask(a, room, "!こだま 設定も届く") == "> 設定も届く"  # the bot's own option

    english = t("bot.language_name.en", "en")
    assert await ask(a, room, "!language en") == t("bot.language_set", "en", language=english)
    help_en = await ask(a, room, "！ＨＥＬＰ")
    assert help_en.startswith(t("bot.help_header", "en"))
    assert "!echo <text>  (!こだま) — replies with the text" in help_en
    assert await ask(a, room, "!数 ７") == "The number is 7"
    assert await ask(a, room, "!言語") == t("bot.language_now", "en", language=english)
    assert await ask(b, room, "!数 ７") == "数は 7 です"  # per person: Bob still gets Japanese

    assert await ask(a, room, "!言語 日本語") == t("bot.language_set", "ja", language="日本語")
    assert await ask(b, room, "！言語　ＥＮ") == t("bot.language_set", "en", language=english)  # as an IME types it
    assert await ask(a, room, "!count 7") == "数は 7 です"
    assert await ask(a, room, "!言語 ｆｒ") == t("bot.language_unknown", "ja", value="ｆｒ")


async def test_mistakes_get_a_helpful_answer_and_a_failure_an_apology(homeserver, login, bot_process):
    bot = started(echo_bot(bot_process, options={"json_logs": True}))
    client = await login(homeserver.new_user("typo"), "lgwan")
    room = await room_with(client, bot)
    see_help = t("bot.see_help", "ja", help="!ヘルプ")

    # In a room, a command like none of the bot's is left to the room's other bots (the polls bot's
    # !アンケート must not draw "no such command" from the sanitizer bot); a near miss is answered.
    not_mine = await send_text(client, room, "!ないよ")
    await barrier(client, room, bot)
    assert await replies(client, room, not_mine) == []
    answer = await ask(client, room, "!こだ")
    assert answer.startswith("「こだ」というコマンドはありません") and answer.endswith(see_help)
    assert "!こだま" in answer
    dm = await room_with(client, bot, direct=True)
    answer = await ask(client, dm, "!ないよ")  # in a DM the bot is the one asked
    assert answer.startswith("「ないよ」というコマンドはありません") and answer.endswith(see_help)
    assert await ask(client, room, "!数 abc") == (
        t("bot.not_a_number", "ja", arg="数", value="abc", usage="!数 <数>") + "\n" + see_help)
    assert await ask(client, room, "！数") == t("bot.missing_arg", "ja", arg="数", usage="!数 <数>") + "\n" + see_help
    assert (await ask(client, room, "!数 1、2")).startswith(t("bot.too_many_args", "ja", extra="2", usage="!数 <数>"))
    assert (await ask(client, room, "!二つ 「閉じてない")).startswith(t("bot.unclosed_quote", "ja", quote="「"))
    assert await ask(client, room, "!二つ 「甲 乙」、丙") == "1つ目「甲 乙」2つ目「丙」"

    assert await ask(client, room, "!ヘルプ 数") == "\n".join(
        ["!数 <数> — 数を返します", t("bot.help_names", "ja", ja="!数", en="!count")])

    failing = await send_text(client, room, "!失敗")
    assert [r["content"]["body"] for r in await wait_replies(client, room, failing)] == [t("bot.internal_error", "ja")]
    # the admin finds what went wrong, and where, in the (JSON) log
    logged = [json.loads(line) for line in bot.log_text().splitlines() if line.startswith("{")]
    failure = next(line for line in logged if line["msg"] == "event handler failed")
    assert failure["event_id"] == failing and failure["level"] == "ERROR"
    assert "RuntimeError: failing on purpose" in failure["exc"]
    assert await ask(client, room, "!こだま まだ動いています") == "まだ動いています"
    assert bot.running


async def test_notices_from_other_bots_are_never_taken_as_commands(homeserver, login, bot_process):
    """m.notice is what bots send; answering one could make two bots talk to each other forever."""
    bot = started(echo_bot(bot_process))
    client = await login(homeserver.new_user("notice"), "lgwan")
    room = await room_with(client, bot)
    notice = await client.room_send(room, "m.room.message", {"msgtype": "m.notice", "body": "!こだま ループ"})
    await barrier(client, room, bot)
    assert await replies(client, room, notice.event_id) == []


async def test_a_refused_login_is_retried_and_sigterm_still_stops_the_bot(homeserver, login, bot_process):
    bot = echo_bot(bot_process)
    bot.password_file.write_text("wrong password\n", encoding="utf-8")
    bot.start()
    await bot.await_log("login failed", count=2, timeout=30)  # retried, with a pause in between
    lines = [line for line in bot.log_text().splitlines() if "login failed" in line]
    assert "M_FORBIDDEN" in lines[0] and "attempt=2" in lines[1]
    began = time.monotonic()
    bot.stop(timeout=10)
    assert time.monotonic() - began < 5
    assert bot.stored("access_token") is None

    bot.password_file.write_text(bot.password + "\n", encoding="utf-8")  # the admin fixes it
    started(bot)
    assert bot.stored("access_token")


# --- restart safety ---

async def test_messages_sent_while_stopped_are_handled_once_after_restart(homeserver, login, bot_process):
    # The bot's own storage on the same kind of database as the homeserver: both run (CI requires
    # PostgreSQL), with nothing to skip.
    bot = started(echo_bot(bot_process, storage=homeserver.backend))
    client = await login(homeserver.new_user("restart"), "lgwan")
    room = await room_with(client, bot)
    assert await ask(client, room, "!こだま 起動中") == "起動中"
    bot.stop()

    plain = [await send_text(client, room, f"停止中のメッセージ {i}") for i in range(3)]
    commands = {await send_text(client, room, f"!こだま 停止中 {i}"): f"停止中 {i}" for i in range(2)}
    started(bot)
    for event_id, text in commands.items():
        assert [r["content"]["body"] for r in await wait_replies(client, room, event_id, sender=bot.user_id)] == [text]
    await barrier(client, room, bot)
    assert seen(bot) == {event_id: 1 for event_id in plain}

    # Nothing new: another restart handles nothing again.
    bot.stop()
    started(bot)
    await barrier(client, room, bot, "二回目")
    for event_id in commands:
        assert len(await replies(client, room, event_id, sender=bot.user_id)) == 1
    assert seen(bot) == {event_id: 1 for event_id in plain}
    bot.stop()


async def test_more_than_a_sync_page_while_stopped_is_all_handled(homeserver, login, bot_process):
    """The sync timeline stops at 50 events; the rest is fetched from /messages."""
    bot = started(echo_bot(bot_process))
    client = await login(homeserver.new_user("burst"), "lgwan")
    room = await room_with(client, bot)
    bot.stop()
    plain = [await send_text(client, room, f"まとめて {i}") for i in range(70)]
    first = await send_text(client, room, "!こだま 最初から数えて71番目")
    more = [await send_text(client, room, f"まだ {i}") for i in range(5)]
    started(bot)
    await barrier(client, room, bot)
    assert "filled a gap" in bot.log_text(since_start=True)
    assert seen(bot) == {event_id: 1 for event_id in plain + more}
    assert len(await replies(client, room, first, sender=bot.user_id)) == 1


async def test_killed_in_the_middle_of_a_command_answers_it_once_after_restart(homeserver, login, bot_process):
    bot = started(echo_bot(bot_process))
    client = await login(homeserver.new_user("kill"), "lgwan")
    room = await room_with(client, bot)
    slow = await send_text(client, room, "!遅い 4")
    await bot.await_log("slow: started")
    bot.kill()
    assert await replies(client, room, slow) == []
    started(bot)
    await barrier(client, room, bot)
    assert [r["content"]["body"] for r in await replies(client, room, slow)] == ["4 秒待ってから返信しました"]


async def test_killed_after_replying_does_not_reply_twice(homeserver, login, bot_process):
    """Killed after the reply went out but before the event was recorded as handled: after the
    restart the event is handled again and the reply sent again with the same transaction id,
    which Synapse answers with the first event instead of sending a second one."""
    bot = started(echo_bot(bot_process))
    client = await login(homeserver.new_user("linger"), "lgwan")
    room = await room_with(client, bot)
    linger = await send_text(client, room, "!余韻 5")
    await bot.await_log("linger: replied")  # logged once Synapse accepted the reply
    bot.kill()
    assert len(await replies(client, room, linger)) == 1
    started(bot)
    await bot.await_log("linger: replied", since_start=True)  # handled and replied again...
    await barrier(client, room, bot)
    assert [r["content"]["body"] for r in await replies(client, room, linger)] == [
        "返信しました（このあと 5 秒の後処理）"]  # ...and still one reply


async def test_sigterm_during_long_work_stops_quickly_and_the_work_is_done_after_restart(
        homeserver, login, bot_process):
    bot = started(echo_bot(bot_process))
    client = await login(homeserver.new_user("term"), "lgwan")
    room = await room_with(client, bot)
    await send_text(client, room, "!遅い 30")
    await bot.await_log("slow: started")
    began = time.monotonic()
    bot.stop(timeout=10)
    assert time.monotonic() - began < 10
    assert "cancelling the work at hand" in bot.log_text()
    bot.start()  # ("ready" comes once the first sync is handled: 30 s from now)
    await bot.await_log("slow: started", since_start=True)  # not lost: handled again


async def test_synapse_deduplicates_transaction_ids_per_device(homeserver, login):
    """What the runtime relies on: the same transaction id from the same device sends once, also
    with a new access token for that device (a bot that had to log in again), but not from
    another device."""
    user = homeserver.new_user("txn")
    client = await login(user, "lgwan")
    room = (await client.room_create()).room_id
    url = homeserver.url("lgwan")

    def put(token: str, txn: str, body: str) -> str:
        request = urllib.request.Request(
            f"{url}/_matrix/client/v3/rooms/{room}/send/m.room.message/{txn}",
            data=json.dumps({"msgtype": "m.text", "body": body}).encode(), method="PUT")
        request.add_header("Authorization", f"Bearer {token}")
        request.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(request, timeout=30) as r:
            return json.loads(r.read())["event_id"]

    first = put(client.access_token, "lgwan.same", "一回目")
    assert put(client.access_token, "lgwan.same", "二回目") == first
    again = AsyncClient(url, user.user_id, device_id=client.device_id)
    try:
        assert isinstance(await again.login(user.password), LoginResponse)
        assert again.device_id == client.device_id and again.access_token != client.access_token
        assert put(again.access_token, "lgwan.same", "新しいトークン") == first
    finally:
        await again.close()
    other = await login(user, "lgwan", device_name="other")
    assert put(other.access_token, "lgwan.same", "別のデバイス") != first
    bodies = [e["content"].get("body") for e in await room_events(client, room) if e["type"] == "m.room.message"]
    assert bodies == ["一回目", "別のデバイス"]


# --- invitations ---

async def test_invitations_follow_the_policy(homeserver, login, bot_process):
    nobody = started(echo_bot(bot_process, options={"invites": {"from": "none"}}))
    direct_only = started(echo_bot(bot_process, options={"invites": {"from": "local", "rooms": "direct_only"}}))
    client = await login(homeserver.new_user("inviter"), "lgwan")

    group = await client.room_create(name="課の部屋", invite=[nobody.user_id, direct_only.user_id])
    await wait_membership(client, group.room_id, nobody.user_id, "leave")
    await wait_membership(client, group.room_id, direct_only.user_id, "leave")

    dm_nobody = await client.room_create(invite=[nobody.user_id], is_direct=True)
    await wait_membership(client, dm_nobody.room_id, nobody.user_id, "leave")

    dm = await room_with(client, direct_only, direct=True)
    assert await ask(client, dm, "!こだま DM です") == "DM です"


async def test_history_from_before_the_invitation_is_not_acted_on(homeserver, login, bot_process):
    bot = started(echo_bot(bot_process))
    client = await login(homeserver.new_user("early"), "lgwan")
    room = (await client.room_create(name="前からある部屋")).room_id
    before = [await send_text(client, room, "!こだま 招待の前"), await send_text(client, room, "招待の前のメッセージ")]
    assert isinstance(await client.room_invite(room, bot.user_id), RoomInviteResponse)
    await wait_membership(client, room, bot.user_id, "join")
    after = await send_text(client, room, "招待の後のメッセージ")
    await barrier(client, room, bot)
    assert await replies(client, room, before[0]) == []
    assert seen(bot) == {after: 1}


# --- configuration ---

BAD_CONFIG = """\
bots:
  echo:
    homeserver:
      internet: https://chat.example.lg.jp
    zone: lgwan
    password_file: /run/secrets/echo
    storage:
      mysql: /var/lib/echo
    invites:
      form: local
    echo_prefx: "> "
"""


def expected_bad_config_lines(path) -> list[str]:
    return [
        f"{path}:2: bots.echo.user_id: 必須のキー「user_id」がありません / required key 'user_id' is missing",
        f"{path}:5: bots.echo.zone: zone に lgwan を指定していますが、homeserver に lgwan の URL がありません"
        " / zone is lgwan, but homeserver has no URL for lgwan",
        f"{path}:8: bots.echo.storage.mysql: 未知のキー「mysql」です",
        f"{path}:10: bots.echo.invites.form: 未知のキー「form」です（「from」の書き間違いではありませんか）",
        f"{path}:11: bots.echo.echo_prefx: 未知のキー「echo_prefx」です（「echo_prefix」の書き間違いではありませんか）",
    ]


def test_check_config_names_file_line_key_and_problem(tmp_path, capsys, monkeypatch):
    # check-config knows the suite's bots by name (SUITE_BOTS); the echo test bot is not one
    # of them, so it is registered here for this test only.
    monkeypatch.setitem(SUITE_BOTS, "echo", "echo_bot")
    bad = tmp_path / "bots.yaml"
    bad.write_text(BAD_CONFIG, encoding="utf-8")
    assert lgwan_chat(["check-config", str(bad)]) == 1
    err = capsys.readouterr().err.splitlines()
    expected = expected_bad_config_lines(bad)
    for line, start in zip(err, expected, strict=False):
        assert line.startswith(start), (line, start)
    assert "unknown key 'mysql'" in err[2] and "(did you mean 'from'?)" in err[3]
    assert err[len(expected):] == [f"{len(expected)} 件のエラーがあります / {len(expected)} error(s) found"]


def test_a_bot_with_a_bad_config_exits_2_naming_every_problem(tmp_path):
    bad = tmp_path / "bots.yaml"
    bad.write_text(BAD_CONFIG, encoding="utf-8")
    result = subprocess.run([sys.executable, str(ECHO), "--config", str(bad)], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 2, result
    err = result.stderr.splitlines()
    for line, start in zip(err, expected_bad_config_lines(bad), strict=False):
        assert line.startswith(start), (line, start)
    assert len(err) == 5


def test_a_bot_whose_password_file_is_missing_exits_2(tmp_path):
    config = tmp_path / "bots.yaml"
    config.write_text(BAD_CONFIG.replace("      mysql:", "      sqlite:").replace("      form:", "      from:")
                      .replace("echo_prefx", "echo_prefix").replace("zone: lgwan", "zone: internet\n"
                                                                      "    user_id: '@echo-bot:city.example'"),
                      encoding="utf-8")
    result = subprocess.run([sys.executable, str(ECHO), "--config", str(config)], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 2, result
    assert result.stderr.startswith(f"{config}: bots.echo.password_file: パスワードファイルを読めません"
                                    " / cannot read the password file")


def display_name(homeserver, user_id: str) -> str | None:
    status, _, body = http_get(homeserver.url("lgwan") + f"/_matrix/client/v3/profile/{user_id}/displayname")
    return json.loads(body).get("displayname") if status == 200 else None


async def test_the_bot_shows_its_name_and_an_admin_may_rename_or_keep_it(homeserver, bot_process):
    """Without a display name Element shows the user ID's localpart ("echo-bot")."""
    bot = started(echo_bot(bot_process))
    assert display_name(homeserver, bot.user_id) == "こだま"  # the bot's own (EchoBot.display_name)
    bot.stop()
    bot.config["bots"]["echo"]["display_name"] = "庁内こだま"
    bot.write_config()
    started(bot)
    assert display_name(homeserver, bot.user_id) == "庁内こだま"
    bot.stop()
    bot.config["bots"]["echo"]["display_name"] = ""  # "": the profile is left as someone set it
    bot.write_config()
    request = urllib.request.Request(
        homeserver.url("lgwan") + f"/_matrix/client/v3/profile/{bot.user_id}/displayname",
        data=json.dumps({"displayname": "手で付けた名前"}).encode(), method="PUT")
    request.add_header("Authorization", f"Bearer {bot.stored('access_token')}")
    request.add_header("Content-Type", "application/json")
    urllib.request.urlopen(request, timeout=30).close()
    started(bot)
    assert display_name(homeserver, bot.user_id) == "手で付けた名前"


def test_suite_bots_have_japanese_names():
    from bots.memo.app import MemoBot
    from bots.polls.app import PollsBot
    from bots.sanitizer.app import SanitizerBot

    for app in (MemoBot, PollsBot, SanitizerBot):
        assert app.display_name and not app.display_name.isascii(), app
