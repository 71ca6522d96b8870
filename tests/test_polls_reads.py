"""Read reminders (既読確認) of the polls bot as staff use them: real Synapse with the read status
module, a real bot process, real nio users who read (public read receipts) or do not, and commands
sent as Element sends replies (the quoted fallback first)."""

from __future__ import annotations

import asyncio
import time
from typing import Any
from urllib.parse import quote

import pytest
from bots_harness import BotProcess, answer, room_events, wait_membership
from nio import RoomReadMarkersResponse, RoomSendResponse

from bots.polls.reads import Feature, name_list, reply_target
from bots.runtime.bot import without_reply_fallback

BOT = "polls"
PER_MESSAGE = 2


@pytest.fixture(scope="module")
def reads_bot(homeserver, tmp_path_factory):
    with BotProcess(homeserver, tmp_path_factory.mktemp("polls-reads-bot"), BOT, entry=["-m", "bots.polls"],
                    options={"mentions_per_message": PER_MESSAGE}, zone="lgwan",
                    storage=homeserver.backend) as bot:
        bot.start().wait_ready()
        yield bot
        if bot.running:
            assert bot.stop() == 0


async def team(homeserver, login, bot, names: list[str]):
    """The first person made the room; everyone (and the bot) in it, with Japanese display names."""
    people = [await login(homeserver.new_user("staff", displayname=name), "lgwan") for name in names]
    room = await people[0].room_create(name="総務課", invite=[bot.user_id, *(p.user_id for p in people[1:])])
    for person in people[1:]:
        await person.join(room.room_id)
    await wait_membership(people[0], room.room_id, bot.user_id, "join")
    for person in people[1:]:
        await wait_membership(people[0], room.room_id, person.user_id, "join")
    return people, room.room_id


async def post(client, room_id: str, body: str) -> str:
    sent = await client.room_send(room_id, "m.room.message", {"msgtype": "m.text", "body": body})
    assert isinstance(sent, RoomSendResponse), sent
    return sent.event_id


async def read(client, room_id: str, event_id: str) -> None:
    """A public read receipt, as Element sends when the message is on screen."""
    response = await client.room_read_markers(room_id, event_id, event_id)
    assert isinstance(response, RoomReadMarkersResponse), response


def element_reply(command: str, target: str, author: str, quoted: str, room_id: str) -> dict:
    """A reply as Element sent it before MSC2781: the quote first in body and formatted_body."""
    return {"msgtype": "m.text", "body": f"> <{author}> {quoted}\n\n{command}",
            "format": "org.matrix.custom.html",
            "formatted_body": (f'<mx-reply><blockquote><a href="https://matrix.to/#/{room_id}/{target}">In reply to</a>'
                               f' <a href="https://matrix.to/#/{author}">{author}</a><br>{quoted}</blockquote>'
                               f"</mx-reply>{command}"),
            "m.relates_to": {"m.in_reply_to": {"event_id": target}}}


def plain_reply(command: str, target: str) -> dict:
    """A reply as current clients send it: no fallback."""
    return {"msgtype": "m.text", "body": command, "m.relates_to": {"m.in_reply_to": {"event_id": target}}}


def reminders_for(evs: list[dict], target: str, bot_id: str) -> list[dict]:
    return [e for e in evs if e["sender"] == bot_id and e["content"].get("msgtype") == "m.text"
            and ((e["content"].get("m.relates_to") or {}).get("m.in_reply_to") or {}).get("event_id") == target]


async def test_reads_lists_who_read_and_who_did_not_for_a_reply_sent_by_element(homeserver, login, reads_bot):
    (chief, sato, suzuki), room = await team(homeserver, login, reads_bot, ["課長 山本", "佐藤 花子", "鈴木 一郎"])
    message = await post(chief, room, "明日の会議は 10 時から第 2 会議室です。資料を読んでおいてください")
    await read(sato, room, message)
    reply = await answer(chief, room, element_reply("!既読", message, chief.user_id, "明日の会議は", room),
                         reads_bot.user_id)
    lines = reply["body"].splitlines()
    header = "📖 既読確認: 課長 山本 さんのメッセージ「明日の会議は 10 時から第 2 会議室です。資料を読んでお…」"
    assert lines[0] == header
    # the author and the bot are in neither list
    assert lines[1:] == ["既読 1 人: 佐藤 花子", "未読 1 人: 鈴木 一郎"]
    assert reply["msgtype"] == "m.notice" and reply["m.mentions"] == {}  # listing names pings nobody
    # a reply without the fallback (current Element), the English name: the same answer
    await read(suzuki, room, message)
    reply = await answer(sato, room, plain_reply("!reads", message), reads_bot.user_id)
    assert reply["body"].splitlines()[1:] == ["既読 2 人: 佐藤 花子、鈴木 一郎", "未読 0 人: なし"]


async def test_remind_unread_mentions_each_non_reader_once_with_a_link(homeserver, login, reads_bot):
    names = ["係長 田中", "伊藤", "渡辺", "小林", "加藤"]
    (chief, ito, watanabe, kobayashi, kato), room = await team(homeserver, login, reads_bot, names)
    message = await post(chief, room, "年末調整の書類は金曜までに提出してください")
    await read(ito, room, message)
    # someone who neither wrote it nor manages the room may not ping everyone (writing after a
    # message counts as having read it: a reader is asked here, not to change who has not)
    refused = await answer(ito, room, element_reply("!未読リマインド", message, chief.user_id, "年末調整", room),
                           reads_bot.user_id)
    assert "投稿した人か権限レベル 50 以上" in refused["body"]
    command = await chief.room_send(room, "m.room.message",
                                    element_reply("!未読リマインド", message, chief.user_id, "年末調整", room))
    assert isinstance(command, RoomSendResponse)
    unread = sorted([watanabe.user_id, kobayashi.user_id, kato.user_id])
    deadline = time.monotonic() + 30
    while len(sent := reminders_for(await room_events(chief, room), message, reads_bot.user_id)) < 2:
        assert time.monotonic() < deadline, sent
        await asyncio.sleep(0.3)
    await asyncio.sleep(2)  # nothing more comes
    sent = reminders_for(await room_events(chief, room), message, reads_bot.user_id)
    mentioned = [u for e in sent for u in e["content"]["m.mentions"]["user_ids"]]
    assert sorted(mentioned) == unread and len(mentioned) == len(set(mentioned))  # each non-reader once
    assert [len(e["content"]["m.mentions"]["user_ids"]) for e in sent] == [PER_MESSAGE, 1]
    link = f"https://matrix.to/#/{room}/{message}"
    for event in sent:
        content = event["content"]
        notice = "📣 係長 田中 さんのメッセージ「年末調整の書類は金曜までに提出してください」をまだ読んでいない方へ"
        assert content["body"].startswith(notice)
        assert link in content["body"] and f'href="{link}"' in content["formatted_body"]
        for user in content["m.mentions"]["user_ids"]:
            assert f'href="https://matrix.to/#/{quote(user)}"' in content["formatted_body"]  # a pill
    assert ito.user_id not in str([e["content"] for e in sent]) and chief.user_id not in str(
        [e["content"]["m.mentions"] for e in sent])
    # once everyone has read it, nobody is pinged
    for person in (watanabe, kobayashi, kato):
        await read(person, room, message)
    done = await answer(chief, room, plain_reply("!未読リマインド", message), reads_bot.user_id)
    assert done["body"] == "全員がこのメッセージを読んでいます。未読の人はいません"
    assert len(reminders_for(await room_events(chief, room), message, reads_bot.user_id)) == len(sent)


async def test_without_a_reply_target_the_bot_says_how_to_use_it(homeserver, login, reads_bot):
    (chief, _), room = await team(homeserver, login, reads_bot, ["課長", "職員"])
    reply = await answer(chief, room, "!既読", reads_bot.user_id)
    assert "「返信」" in reply["body"] and "!既読" in reply["body"]
    reply = await answer(chief, room, "!未読リマインド", reads_bot.user_id)
    assert "「返信」" in reply["body"] and "!未読リマインド" in reply["body"]
    # a reply to an event the room does not have
    reply = await answer(chief, room, plain_reply("!既読", "$nosuchevent"), reads_bot.user_id)
    assert reply["body"] == "返信先のメッセージがこのルームに見つかりません"


async def test_two_people_with_the_same_name_are_told_apart(homeserver, login, reads_bot):
    (chief, first, second), room = await team(homeserver, login, reads_bot, ["課長", "佐藤", "佐藤"])
    message = await post(chief, room, "回覧です")
    reply = await answer(chief, room, plain_reply("!既読", message), reads_bot.user_id)
    assert reply["body"].splitlines()[2] == "未読 2 人: " + "、".join(
        sorted(f"佐藤 ({p.user_id})" for p in (first, second)))


# --- without a homeserver ---


def test_a_reply_fallback_is_not_part_of_the_command():
    assert without_reply_fallback("> <@a:x> 会議は\n> 10 時から\n\n!既読") == "!既読"
    assert without_reply_fallback("> <@a:x> 会議は\n\n!既読 1\n2 行目") == "!既読 1\n2 行目"
    assert without_reply_fallback("!既読") == "!既読"
    # a quote the sender wrote, not followed by a blank line, is kept
    assert without_reply_fallback("> 引用\n!既読") == "> 引用\n!既読"


def test_only_a_real_reply_has_a_target():
    assert reply_target({"m.relates_to": {"m.in_reply_to": {"event_id": "$a"}}}) == "$a"
    assert reply_target({"body": "!既読"}) is None
    # in a thread, clients point at the thread's latest event without replying to it
    assert reply_target({"m.relates_to": {"rel_type": "m.thread", "event_id": "$root", "is_falling_back": True,
                                          "m.in_reply_to": {"event_id": "$latest"}}}) is None


def test_long_name_lists_are_cut_with_a_count():
    names = [f"職員{i}" for i in range(45)]
    text = name_list(names, lambda more: f"、ほか {more} 人")
    assert text.startswith("職員0、職員1") and text.count("、") == 30 and text.endswith("職員29、ほか 15 人")
    assert name_list(names[:3], lambda more: "never") == "職員0、職員1、職員2"


class _Bot:
    def __init__(self, answer):
        self.answer = answer

    async def api(self, path, params=None):
        return self.answer


class _App:
    def __init__(self, answer):
        self.bot = _Bot(answer)


class _Ctx:
    room_id = "!room:x"

    def __init__(self):
        self.content = {"body": "!既読", "m.relates_to": {"m.in_reply_to": {"event_id": "$a"}}}
        self.said: list[str] = []

    def t(self, key, **params):
        from lgwan_chat.core.i18n import t
        return t(key, "ja", **params)

    async def reply(self, key, **params):
        self.said.append(self.t(key, **params))

    async def reply_text(self, text, html_text=None):
        self.said.append(text)


@pytest.mark.parametrize("answer", [(404, {"errcode": "M_UNRECOGNIZED", "error": "Unrecognized request"}),
                                    (500, None), (200, {"unexpected": True})])
async def test_without_the_read_status_module_the_bot_says_so(answer):
    feature = Feature()
    app: Any = _App(answer)  # answers the read status route as the test says, and says what it is told
    feature.app = app
    ctx: Any = _Ctx()
    await feature.reads(ctx)
    assert ctx.said == ["既読状況を確認できませんでした"
                        "（既読状況の機能がサーバーで有効になっていないか、一時的なエラーです）。"
                        "しばらくしてからもう一度試すか、管理者に確認してください"]
