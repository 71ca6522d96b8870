"""Tasks (タスク) in the polls bot as staff use them: real Synapse, the bot as a process, real nio users
who mention assignees with Element's pills, react ✅, take the reaction back, and wait for reminders."""

from __future__ import annotations

import asyncio
import datetime
import html
import time
from urllib.parse import quote
from zoneinfo import ZoneInfo

import pytest
from bots_harness import BotProcess, answer, ask, room_events, wait_membership, wait_replies
from nio import RoomSendResponse
from test_polls_bot import latest_summary, wait_for

BOT = "polls"
HOUR_MS = 3_600_000


@pytest.fixture(scope="module")
def polls_bot(homeserver, tmp_path_factory):
    with BotProcess(homeserver, tmp_path_factory.mktemp("polls-tasks-bot"), BOT, entry=["-m", "bots.polls"],
                    options={"tasks": {"remind_before_hours": 24, "remind_after_hours": 2}},
                    zone="lgwan", storage=homeserver.backend) as bot:
        bot.start().wait_ready()
        yield bot
        if bot.running:
            assert bot.stop() == 0


async def team(homeserver, login, bot, names=("課長", "山田", "佐藤", "鈴木")):
    """People with Japanese display names in a room with the bot: the first made the room."""
    people = [await login(homeserver.new_user("staff", displayname=name), "lgwan") for name in names]
    room = await people[0].room_create(name="総務課", invite=[bot.user_id, *(p.user_id for p in people[1:])])
    for person in people[1:]:
        await person.join(room.room_id)
    await wait_membership(people[0], room.room_id, bot.user_id, "join")
    await asyncio.sleep(1)  # the bot's sync has seen everyone's display name
    return people, room.room_id


def with_pills(*parts) -> dict:
    """A message as Element sends it: text, and people (nio clients) as mention pills."""
    body, formatted, mentioned = [], [], []
    for part in parts:
        if isinstance(part, str):
            body.append(part)
            formatted.append(html.escape(part))
        else:
            name = NAMES[part.user_id]
            body.append(name)
            formatted.append(f'<a href="https://matrix.to/#/{part.user_id}">{html.escape(name)}</a>')
            mentioned.append(part.user_id)
    return {"msgtype": "m.text", "body": " ".join(body), "format": "org.matrix.custom.html",
            "formatted_body": " ".join(formatted), "m.mentions": {"user_ids": mentioned}}


NAMES: dict[str, str] = {}


async def send(client, room_id: str, content: dict | str) -> str:
    if isinstance(content, str):
        content = {"msgtype": "m.text", "body": content}
    sent = await client.room_send(room_id, "m.room.message", content)
    assert isinstance(sent, RoomSendResponse), sent
    return sent.event_id


async def react(client, room_id: str, event_id: str, key: str = "✅") -> str:
    sent = await client.room_send(room_id, "m.reaction", {"m.relates_to": {
        "rel_type": "m.annotation", "event_id": event_id, "key": key}})
    assert isinstance(sent, RoomSendResponse), sent
    return sent.event_id


async def make_task(client, room_id: str, bot, content: dict | str, number: int) -> tuple[str, dict]:
    """Send a !タスク command; (its event id, the bot's task message)."""
    command = await send(client, room_id, content)
    found = await wait_for(client, room_id, lambda e: e["sender"] == bot.user_id and e["type"] == "m.room.message"
                           and e["content"].get("body", "").startswith(f"📝 タスク #{number}:"))
    return command, found[0]


async def wait_task(client, room_id: str, message_id: str, wanted: str, timeout: float = 30) -> str:
    """Until the task message (or its latest edit) shows ``wanted``; its text."""
    deadline = time.monotonic() + timeout
    while True:
        text = latest_summary(await room_events(client, room_id), message_id)
        if wanted in text:
            return text
        if time.monotonic() > deadline:
            raise AssertionError(f"task never showed {wanted!r}; last: {text}")
        await asyncio.sleep(0.3)


async def settled(client, room_id: str, bot) -> None:
    """Until the bot has handled everything sent so far (it handles events in order)."""
    assert "このルーム" in await ask(client, room_id, "!タスク一覧", bot.user_id)


def reminders(evs: list[dict], bot, number: int) -> list[dict]:
    return [e for e in evs if e["sender"] == bot.user_id and e["type"] == "m.room.message"
            and f"タスク #{number}「" in e["content"].get("body", "")
            and e["content"]["body"].startswith(("🔔", "⚠️"))]


async def test_assignees_mark_a_task_done_by_reaction_and_command_and_a_redacted_reaction_reopens_it(
        homeserver, login, polls_bot):
    (chief, yamada, sato, suzuki), room = await team(homeserver, login, polls_bot)
    NAMES.update({yamada.user_id: "山田", sato.user_id: "佐藤"})
    _, message = await make_task(chief, room, polls_bot,
                                 with_pills("!タスク 報告書の提出", yamada, sato, "期限 3日後"), 1)
    content = message["content"]
    assert content["body"].splitlines()[:2] == ["📝 タスク #1: 報告書の提出", "担当: 山田 ⬜ 未完了、佐藤 ⬜ 未完了"]
    assert "状態: 進行中（0/2 人完了）" in content["body"] and "期限 " in content["body"]
    # the assignees are mentioned (notified), as pills
    assert content["m.mentions"] == {"user_ids": [yamada.user_id, sato.user_id]}
    assert all(f"https://matrix.to/#/{quote(p.user_id)}" in content["formatted_body"] for p in (yamada, sato))
    task_id = message["event_id"]

    mark = await react(yamada, room, task_id, "✔️")
    text = await wait_task(chief, room, task_id, "状態: 進行中（1/2 人完了）")
    assert "山田 ✅ 完了" in text and "佐藤 ⬜ 未完了" in text

    await react(suzuki, room, task_id)  # not an assignee: does not count
    await react(chief, room, task_id)  # the author neither
    await settled(chief, room, polls_bot)
    assert "（1/2 人完了）" in latest_summary(await room_events(chief, room), task_id)

    assert "1 を完了にできるのは" in await ask(suzuki, room, "!完了 1", polls_bot.user_id)
    reply = await ask(sato, room, "!完了 1", polls_bot.user_id)
    assert "タスク #1「報告書の提出」が完了しました" in reply
    text = await wait_task(chief, room, task_id, "状態: 完了（2/2 人完了）")
    assert "佐藤 ✅ 完了" in text and "!完了 1 と送って" not in text  # nothing left to do

    await yamada.room_redact(room, mark)  # took the ✅ back
    text = await wait_task(chief, room, task_id, "状態: 進行中（1/2 人完了）")
    assert "山田 ⬜ 未完了" in text and "佐藤 ✅ 完了" in text
    # the edits notify nobody again
    edits = [e for e in await room_events(chief, room)
             if (e["content"].get("m.relates_to") or {}).get("rel_type") == "m.replace"]
    assert len(edits) == 3 and all(e["content"]["m.mentions"] == {} for e in edits)
    await react(yamada, room, task_id)  # done again: the same text as before, edited again
    await wait_task(chief, room, task_id, "状態: 完了（2/2 人完了）")


async def test_open_tasks_listed_per_person_and_overdue_with_due_dates(homeserver, login, polls_bot):
    (chief, yamada, sato, _), room = await team(homeserver, login, polls_bot)
    NAMES.update({yamada.user_id: "山田", sato.user_id: "佐藤"})
    await make_task(chief, room, polls_bot, with_pills("!タスク 予算資料の作成", yamada, "締切 3日後"), 1)
    await make_task(chief, room, polls_bot, with_pills("!タスク 議事録", sato, yamada, "期限 2日後"), 2)
    await make_task(chief, room, polls_bot, "!タスク 備品の発注", 3)  # nobody mentioned: the author's
    _, done = await make_task(chief, room, polls_bot, f"!task 名札の準備 {sato.user_id}", 4)  # typed out
    await react(sato, room, done["event_id"])
    await wait_task(chief, room, done["event_id"], "状態: 完了")
    # the minutes' due time has passed
    assert polls_bot.execute("UPDATE poll_tasks SET due_ts = ? WHERE room_id = ? AND number = 2",
                             int(time.time() * 1000) - HOUR_MS, room) == 1

    every = await ask(chief, room, "!タスク一覧", polls_bot.user_id)
    lines = every.splitlines()
    assert lines[0] == "このルームの終わっていないタスク:" and len(lines) == 4
    assert lines[1].startswith("#2「議事録」⚠️ 期限切れ 期限 ") and lines[1].endswith("未完了: 佐藤、山田")
    assert lines[2].startswith("#1「予算資料の作成」期限 ") and lines[3] == "#3「備品の発注」期限なし 未完了: 課長"

    mine = await ask(chief, room, "!タスク一覧 自分", polls_bot.user_id)
    assert "備品の発注" in mine and "議事録" not in mine and "予算資料" not in mine
    sato_s = (await answer(chief, room, with_pills("!タスク一覧", sato), polls_bot.user_id))["body"]
    assert sato_s.startswith("佐藤 さんが担当している") and "議事録" in sato_s and "予算資料" not in sato_s
    assert "名札" not in sato_s  # done
    yamada_s = await ask(yamada, room, "!tasks mine", polls_bot.user_id)
    assert "議事録" in yamada_s and "予算資料の作成" in yamada_s and "備品" not in yamada_s
    overdue = await ask(chief, room, "!タスク一覧 期限切れ", polls_bot.user_id)
    assert overdue.splitlines()[0] == "期限を過ぎたタスク:" and len(overdue.splitlines()) == 2
    assert "#2「議事録」⚠️ 期限切れ" in overdue
    assert "絞り込めません" in await ask(chief, room, "!タスク一覧 来週", polls_bot.user_id)


async def test_reminders_mention_only_those_not_done_once_each_and_stop_when_done(homeserver, login, polls_bot):
    (chief, yamada, sato, _), room = await team(homeserver, login, polls_bot)
    NAMES.update({yamada.user_id: "山田", sato.user_id: "佐藤"})
    command, message = await make_task(chief, room, polls_bot,
                                       with_pills("!タスク 研修の申込", yamada, sato, "期限 3日後"), 1)
    task_id = message["event_id"]
    jobs = dict(polls_bot.query("SELECT kind, due_ts FROM poll_jobs WHERE ref = ?", command))
    assert set(jobs) == {"task_before", "task_due", "task_after"}
    assert jobs["task_due"] - jobs["task_before"] == 24 * HOUR_MS
    assert jobs["task_after"] - jobs["task_due"] == 2 * HOUR_MS
    await react(yamada, room, task_id)
    await wait_task(chief, room, task_id, "1/2 人完了")

    polls_bot.execute("UPDATE poll_jobs SET due_ts = 0 WHERE ref = ? AND kind = 'task_before'", command)
    found = await wait_for(chief, room, lambda e: bool(reminders([e], polls_bot, 1)))
    assert found[0]["content"]["body"].startswith("🔔 タスク #1「研修の申込」の期限は ")
    assert found[0]["content"]["m.mentions"] == {"user_ids": [sato.user_id]}  # 山田 is done
    assert found[0]["content"]["body"].splitlines()[-1] == "佐藤"

    # the due time passes: the message says so, and the reminder after it comes once too
    past = int(time.time() * 1000) - 3 * HOUR_MS
    polls_bot.execute("UPDATE poll_tasks SET due_ts = ? WHERE task_id = ?", past, command)
    polls_bot.execute("UPDATE poll_jobs SET due_ts = 0 WHERE ref = ? AND kind IN ('task_due', 'task_after')", command)
    await wait_task(chief, room, task_id, "状態: 期限切れ（1/2 人完了）")
    await wait_for(chief, room, lambda e: e["content"].get("body", "").startswith("⚠️ タスク #1「研修の申込」の期限（"))
    await asyncio.sleep(6)  # three scheduler ticks
    sent = reminders(await room_events(chief, room), polls_bot, 1)
    assert [e["content"]["body"][0] for e in sent] == ["🔔", "⚠"]

    # a task done before its reminder: none comes
    command, message = await make_task(chief, room, polls_bot, with_pills("!タスク 名簿の確認", sato, "期限 3日後"), 2)
    await react(sato, room, message["event_id"])
    await wait_task(chief, room, message["event_id"], "状態: 完了")
    polls_bot.execute("UPDATE poll_jobs SET due_ts = 0 WHERE ref = ?", command)
    await asyncio.sleep(6)
    assert reminders(await room_events(chief, room), polls_bot, 2) == []
    assert "状態: 完了" in latest_summary(await room_events(chief, room), message["event_id"])


async def test_bad_task_input_is_explained_in_japanese_and_a_due_time_written_last_needs_no_keyword(
        homeserver, login, polls_bot):
    (chief, yamada), room = await team(homeserver, login, polls_bot, names=("課長", "山田"))
    NAMES[yamada.user_id] = "山田"
    reply = (await answer(chief, room, with_pills("!タスク", yamada, "期限 明日17時"), polls_bot.user_id))["body"]
    assert reply.startswith("タスクの件名を書いてください") and "例: !タスク" in reply
    reply = await ask(chief, room, "!タスク 報告書 期限 そのうち", polls_bot.user_id)
    assert "「そのうち」を日時として読み取れませんでした" in reply
    assert "期限」の後に日時を書いてください" in await ask(chief, room, "!タスク 報告書 期限", polls_bot.user_id)
    yesterday = datetime.datetime.now(ZoneInfo("Asia/Tokyo")) - datetime.timedelta(days=1)
    reply = await ask(chief, room, f"!タスク 報告書 {yesterday.month}/{yesterday.day}まで", polls_bot.user_id)
    assert "はもう過ぎています" in reply
    assert "!タスク" in await ask(chief, room, "!タスク", polls_bot.user_id)  # no argument at all
    assert "タスク #7 はありません" in await ask(chief, room, "!完了 7", polls_bot.user_id)
    await asyncio.sleep(1)
    assert not [e for e in await room_events(chief, room)
                if e["content"].get("body", "").startswith("📝")], "no task was made"
    # a due time written last with まで(に) needs no 期限; words that are no date stay in the title
    _, message = await make_task(chief, room, polls_bot,
                                 with_pills("!タスク 会議室の予約", yamada, "明日 17時までに"), 1)
    lines = message["content"]["body"].splitlines()
    assert lines[0] == "📝 タスク #1: 会議室の予約" and lines[2].startswith("期限 ") and lines[2].endswith(" 17:00")
    _, message = await make_task(chief, room, polls_bot, "!タスク 報告書の確認 月末まで", 2)
    assert message["content"]["body"].splitlines()[0] == "📝 タスク #2: 報告書の確認 月末まで"
    assert "期限なし" in message["content"]["body"]
    # someone not in the room: the task is made, and the author told
    stranger = homeserver.new_user("staff").user_id
    command = await send(chief, room, f"!タスク 書類の回収 {stranger}")
    reply = (await wait_replies(chief, room, command, sender=polls_bot.user_id))[0]["content"]["body"]
    assert reply == f"{stranger} はこのルームに参加していないため、タスク #3 が見えません。招待してください"


async def test_a_reaction_and_its_redaction_while_the_bot_is_down_count_after_it_comes_back(homeserver, login,
                                                                                               polls_bot):
    (chief, yamada, sato), room = await team(homeserver, login, polls_bot, names=("課長", "山田", "佐藤"))
    NAMES.update({yamada.user_id: "山田", sato.user_id: "佐藤"})
    _, message = await make_task(chief, room, polls_bot, with_pills("!タスク 契約書の確認", yamada, sato), 1)
    assert "期限なし" in message["content"]["body"]
    task_id = message["event_id"]
    mark = await react(sato, room, task_id)
    await wait_task(chief, room, task_id, "（1/2 人完了）")
    polls_bot.kill()
    await react(yamada, room, task_id, "☑️")
    await sato.room_redact(room, mark)
    polls_bot.start().wait_ready()
    text = await wait_task(chief, room, task_id, "山田 ✅ 完了")
    assert "佐藤 ⬜ 未完了" in text and "（1/2 人完了）" in text
    edits = [e["content"]["m.new_content"]["body"] for e in await room_events(chief, room)
             if (e["content"].get("m.relates_to") or {}) == {"rel_type": "m.replace", "event_id": task_id}]
    # one edit for each change (佐藤 done; 山田 done, complete; 佐藤 not done), none sent twice
    assert len(edits) == 3 and "状態: 完了（2/2 人完了）" in edits[1], edits
