"""The polls bot (投票ボット) as staff use it: real Synapse, a real bot process, real nio users who vote
the way Element does (poll response events), and a restart in the middle of a poll."""

from __future__ import annotations

import asyncio
import csv
import io
import time

import pytest
from bots_harness import BotProcess, ask, room_events, wait_membership
from harness import download
from nio import RoomSendResponse

from bots.polls import events

BOT = "polls"


@pytest.fixture(scope="module")
def polls_bot(homeserver, tmp_path_factory):
    with BotProcess(homeserver, tmp_path_factory.mktemp("polls-bot"), BOT, entry=["-m", "bots.polls"],
                    options={"summary_interval_s": 0.2}, zone="lgwan", storage=homeserver.backend) as bot:
        bot.start().wait_ready()
        yield bot
        if bot.running:
            assert bot.stop() == 0


async def team(homeserver, login, bot, size: int = 3):
    """A section chief and ``size - 1`` members in a room with the bot."""
    people = [await login(homeserver.new_user("staff"), "lgwan") for _ in range(size)]
    room = await people[0].room_create(name="総務課", invite=[bot.user_id, *(p.user_id for p in people[1:])])
    for person in people[1:]:
        await person.join(room.room_id)
    await wait_membership(people[0], room.room_id, bot.user_id, "join")
    return people, room.room_id


async def wait_for(client, room_id: str, predicate, timeout: float = 30) -> list[dict]:
    """Until some events of the room satisfy ``predicate``; those events."""
    deadline = time.monotonic() + timeout
    while True:
        found = [e for e in await room_events(client, room_id) if predicate(e)]
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError("not seen in time")
        await asyncio.sleep(0.3)


def polls_in(evs: list[dict]) -> list[dict]:
    return [e for e in evs if e["type"] == events.START]


async def vote(client, room_id: str, poll_id: str, *answers: str, stable: bool = False) -> str:
    content = events.response_content(poll_id, answers)
    if stable:
        content = {"m.relates_to": content["m.relates_to"], "m.selections": list(answers)}
    sent = await client.room_send(room_id, "m.poll.response" if stable else events.RESPONSE, content)
    assert isinstance(sent, RoomSendResponse), sent
    return sent.event_id


def latest_summary(evs: list[dict], summary_id: str) -> str:
    """The summary as a client shows it: the original, or its latest edit."""
    text = next(e["content"]["body"] for e in evs if e["event_id"] == summary_id)
    for e in evs:
        relates = e["content"].get("m.relates_to") or {}
        if relates.get("rel_type") == "m.replace" and relates.get("event_id") == summary_id:
            text = e["content"]["m.new_content"]["body"]
    return text


async def wait_summary(client, room_id: str, summary_id: str, wanted: str, timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    while True:
        text = latest_summary(await room_events(client, room_id), summary_id)
        if wanted in text:
            return text
        if time.monotonic() > deadline:
            raise AssertionError(f"summary never showed {wanted!r}; last: {text}")
        await asyncio.sleep(0.3)


async def make_survey(chief, room_id: str, bot, text: str) -> tuple[dict, str]:
    sent = await chief.room_send(room_id, "m.room.message", {"msgtype": "m.text", "body": text})
    await wait_for(chief, room_id, lambda e: e["type"] == events.START
                   and e["sender"] == bot.user_id and e["event_id"] not in SEEN)
    await asyncio.sleep(0.5)
    evs = await room_events(chief, room_id)
    new_polls = [e for e in polls_in(evs) if e["event_id"] not in SEEN]
    SEEN.update(e["event_id"] for e in new_polls)
    summary = [e for e in evs if e["sender"] == bot.user_id and e["type"] == "m.room.message"
               and "回答" in e["content"].get("body", "") and "m.relates_to" not in e["content"]][-1]
    assert sent
    return new_polls[0], summary["event_id"]


SEEN: set[str] = set()


async def test_a_survey_is_a_native_poll_counted_like_element_and_closed_with_names(homeserver, login,
                                                                                     polls_bot):
    (chief, a, b), room = await team(homeserver, login, polls_bot)
    poll, summary = await make_survey(chief, room, polls_bot,
                                      "!アンケート 忘年会の会場は？\n居酒屋さくら\nホテル東\nどちらでも")
    start = poll["content"][events.START]
    assert start["kind"] == events.DISCLOSED and start["max_selections"] == 1
    assert start["question"][events.TEXT] == "忘年会の会場は？"
    assert [x[events.TEXT] for x in start["answers"]] == ["居酒屋さくら", "ホテル東", "どちらでも"]
    ids = [x["id"] for x in start["answers"]]
    await vote(a, room, poll["event_id"], ids[0])
    await vote(b, room, poll["event_id"], ids[1])
    await vote(a, room, poll["event_id"], ids[1])  # changed mind: the latest counts
    await vote(chief, room, poll["event_id"], "nonsense")  # spoiled: no vote
    text = await wait_summary(chief, room, summary, "・ホテル東: 2 票（100%）")
    assert "回答 2 人" in text and "・居酒屋さくら: 0 票（0%）" in text
    # stable m.poll.response (other clients) counts too
    await vote(chief, room, poll["event_id"], ids[2], stable=True)
    await wait_summary(chief, room, summary, "回答 3 人")
    reply = await ask(chief, room, "!締切 1", polls_bot.user_id)
    assert "締切済み" in reply and "・ホテル東: 2 票（67%）" in reply
    ends = await wait_for(chief, room, lambda e: e["type"] == events.END)
    assert ends[0]["content"]["m.relates_to"]["event_id"] == poll["event_id"]
    # disclosed: who voted for what, once closed
    assert a.user_id in reply or "staff" in reply
    # a vote after the end does not count
    await vote(b, room, poll["event_id"], ids[0])
    await asyncio.sleep(1.5)
    assert "・ホテル東: 2 票（67%）" in await ask(chief, room, "!結果 1", polls_bot.user_id)
    # a member who did not make it may not close or export it
    assert "作った人と権限レベル 50 以上" in await ask(a, room, "!CSV出力 1", polls_bot.user_id)


async def test_anonymous_multiple_choice_and_csv_export(homeserver, login, polls_bot):
    (chief, a, b), room = await team(homeserver, login, polls_bot)
    body = "!複数選択 参加できる研修 / 情報セキュリティ / 文書管理 / 匿名"
    sent = await chief.room_send(room, "m.room.message", {"msgtype": "m.text", "body": body})
    assert isinstance(sent, RoomSendResponse)
    await wait_for(chief, room, lambda e: e["type"] == events.START and e["sender"] == polls_bot.user_id)
    await asyncio.sleep(1)
    found = polls_in(await room_events(chief, room))
    assert [p["content"][events.START]["question"][events.TEXT] for p in found] == ["情報セキュリティ", "文書管理"]
    assert all(p["content"][events.START]["kind"] == events.UNDISCLOSED for p in found)
    for poll in found:
        await vote(a, room, poll["event_id"], "yes")
    await vote(b, room, found[1]["event_id"], "yes")
    await vote(b, room, found[0]["event_id"], "no")
    deadline = time.monotonic() + 30
    while "・文書管理: 2 票" not in (text := await ask(chief, room, "!結果 1", polls_bot.user_id)):
        assert time.monotonic() < deadline, text
        await asyncio.sleep(0.5)
    assert text.index("文書管理") < text.index("情報セキュリティ")  # best first
    await chief.room_send(room, "m.room.message", {"msgtype": "m.text", "body": "!CSV出力 1"})
    files = await wait_for(chief, room, lambda e: e["content"].get("msgtype") == "m.file")
    status, data = await download(homeserver.url("lgwan"), chief, files[0]["content"]["url"])
    assert status == 200 and data.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    assert rows[0] == ["質問", "選択肢", "票数"]  # anonymous: counts only, no names
    assert ["文書管理", "はい", "2"] in rows and not any(a.user_id in ",".join(r) for r in rows)


async def test_votes_cast_while_the_bot_is_down_are_counted_after_it_comes_back(homeserver, login, polls_bot):
    (chief, a, b), room = await team(homeserver, login, polls_bot)
    poll, summary = await make_survey(chief, room, polls_bot, "!アンケート 研修の希望 / 午前 / 午後")
    ids = [x["id"] for x in poll["content"][events.START]["answers"]]
    await vote(a, room, poll["event_id"], ids[0])
    await wait_summary(chief, room, summary, "回答 1 人")
    polls_bot.kill()  # in the middle of the poll
    await vote(b, room, poll["event_id"], ids[1])
    await vote(chief, room, poll["event_id"], ids[1])
    polls_bot.start().wait_ready()
    text = await wait_summary(chief, room, summary, "回答 3 人")
    assert "・午後: 2 票（67%）" in text
    edits = [e for e in await room_events(chief, room)
             if (e["content"].get("m.relates_to") or {}).get("event_id") == summary]
    assert len({e["content"]["m.new_content"]["body"] for e in edits}) == len(edits), "no summary sent twice"


async def test_before_the_deadline_those_who_have_not_answered_get_a_dm_once(homeserver, login, tmp_path):
    with BotProcess(homeserver, tmp_path, BOT, entry=["-m", "bots.polls"], localpart="polls-dm-bot",
                    options={"summary_interval_s": 0.2, "remind_via": "dm", "remind_before_minutes": 60},
                    zone="lgwan", storage=homeserver.backend) as bot:
        bot.start().wait_ready()
        (chief, a, b), room = await team(homeserver, login, bot)
        poll, summary = await make_survey(chief, room, bot, "!アンケート 研修の出欠 / 出席 / 欠席 / 締切 3日後")
        assert "締切" in poll["content"][events.START]["question"][events.TEXT]  # written into the question
        await vote(a, room, poll["event_id"], poll["content"][events.START]["answers"][0]["id"])
        await wait_summary(chief, room, summary, "回答 1 人")
        # an hour before the deadline: time passing, as the bot's job table sees it
        assert bot.execute("UPDATE poll_jobs SET due_ts = 0 WHERE kind = 'remind'") == 1
        deadline = time.monotonic() + 30
        while True:
            invites = [r for r in (await b.sync(timeout=1000)).rooms.invite]
            if invites or time.monotonic() > deadline:
                break
        assert invites, "the member who did not answer gets a DM"
        await b.join(invites[0])
        dm = await wait_for(b, invites[0], lambda e: "まだ回答していません" in e["content"].get("body", ""))
        assert "研修の出欠" in dm[0]["content"]["body"]
        await asyncio.sleep(3)  # the job ran once: no second reminder, and none for the one who answered
        assert len([e for e in await room_events(b, invites[0]) if "まだ回答していません" in
                    e["content"].get("body", "")]) == 1
        assert not (await a.sync(timeout=1000)).rooms.invite
        bot.stop()
