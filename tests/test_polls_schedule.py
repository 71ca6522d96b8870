"""Schedule coordination (日程調整) as staff use it: real Synapse, the real polls bot, real users who
answer ○/△/× the way Element does, a decision announced with a calendar file that is downloaded and
read back."""

from __future__ import annotations

import datetime
import re
from zoneinfo import ZoneInfo

import pytest
from bots_harness import BotProcess, ask, room_events
from harness import download
from test_polls_bot import latest_summary, polls_in, team, vote, wait_for, wait_summary

from bots.polls import events
from bots.polls.schedule import ScheduleError, parse_spec
from bots.polls.schedule import label as candidate_label
from bots.runtime.dates import parse_candidates

BOT = "polls"
TZ = ZoneInfo("Asia/Tokyo")
WEEKDAYS = "月火水木金土日"


@pytest.fixture(scope="module")
def polls_bot(homeserver, tmp_path_factory):
    with BotProcess(homeserver, tmp_path_factory.mktemp("polls-schedule"), BOT, entry=["-m", "bots.polls"],
                    options={"summary_interval_s": 0.2}, zone="lgwan", storage=homeserver.backend) as bot:
        bot.start().wait_ready()
        yield bot
        if bot.running:
            assert bot.stop() == 0


def day(offset: int) -> datetime.date:
    """A date ``offset`` days from today in Tokyo (the dates a test writes never go stale)."""
    return datetime.datetime.now(TZ).date() + datetime.timedelta(days=offset)


def label(d: datetime.date, rest: str) -> str:
    """A candidate as the bot writes it: ``12/3(水) 14:00-15:30`` (the year only when not this one)."""
    year = f"{d.year}/" if d.year != datetime.datetime.now(TZ).year else ""
    return f"{year}{d.month}/{d.day}({WEEKDAYS[d.weekday()]}) {rest}"


def bot_messages(evs: list[dict], bot, needle: str) -> list[dict]:
    return [e for e in evs if e["sender"] == bot.user_id and e["type"] == "m.room.message"
            and needle in e["content"].get("body", "") and "m.new_content" not in e["content"]]


def ics_fields(data: bytes) -> dict[str, str]:
    """An .ics file's content lines (unfolded), name with parameters -> value."""
    text = data.decode("utf-8").replace("\r\n ", "")
    return dict(line.split(":", 1) for line in text.split("\r\n") if ":" in line)


async def test_a_schedule_is_one_poll_per_candidate_ranked_live_then_decided_with_a_calendar_file(
        homeserver, login, polls_bot):
    (chief, a, b), room = await team(homeserver, login, polls_bot)
    d1, d2, d3, deadline = day(10), day(11), day(12), day(8)
    wd2 = WEEKDAYS[d2.weekday()]
    full_width = f"{d3.month}／{d3.day}　１０：００".translate(str.maketrans("0123456789", "０１２３４５６７８９"))
    await chief.room_send(room, "m.room.message", {"msgtype": "m.text", "body": (
        f"!日程調整 課内打ち合わせ\n{d1.month}月{d1.day}日\n{d2.month}/{d2.day}({wd2}) 14:00-15:30\n"
        f"{full_width}、{d3.month}/{d3.day} 15時\n締切 {deadline.month}/{deadline.day} 17時")})
    # the live summary comes after the header and every poll
    await wait_for(chief, room, lambda e: "📅 日程調整 #1「課内打ち合わせ」" in e["content"].get("body", ""))
    evs = await room_events(chief, room)
    polls = polls_in(evs)
    starts = [p["content"][events.START] for p in polls]
    assert [s["question"][events.TEXT] for s in starts] == [
        f"候補1: {label(d1, '終日')}", f"候補2: {label(d2, '14:00-15:30')}",
        f"候補3: {label(d3, '10:00')}", f"候補4: {label(d3, '15:00')}"]
    for s in starts:
        assert s["max_selections"] == 1 and s["kind"] == events.DISCLOSED
        assert [(x["id"], x[events.TEXT]) for x in s["answers"]] == [
            ("ok", "○ 参加できる"), ("maybe", "△ 未定・調整可"), ("ng", "× 参加できない")]
    header = bot_messages(evs, polls_bot, "📅 日程調整 #1: 課内打ち合わせ")
    assert len(header) == 1 and f"締切: {label(deadline, '17:00')}" in header[0]["content"]["body"]
    summary = bot_messages(evs, polls_bot, "📅 日程調整 #1「課内打ち合わせ」")[0]["event_id"]
    c1, c2, c3, c4 = (p["event_id"] for p in polls)

    await vote(a, room, c1, "ok")
    text = await wait_summary(chief, room, summary, f"★ 候補1 {label(d1, '終日')}: ○1 △0 ×0")
    assert "回答 1 人" in text and f"・候補2 {label(d2, '14:00-15:30')}: ○0 △0 ×0" in text
    for voter, poll, answer in [(b, c1, "ng"), (chief, c1, "ng"), (chief, c2, "ok"), (a, c2, "ok"),
                                (b, c2, "ng"), (b, c2, "maybe"),  # changed: the latest counts
                                (chief, c3, "maybe"), (a, c3, "maybe"), (chief, c4, "ok"), (a, c4, "ok"),
                                (b, c4, "ng")]:
        await vote(voter, room, poll, answer)
    text = await wait_summary(chief, room, summary, f"・候補4 {label(d3, '15:00')}: ○2 △0 ×1")
    assert f"★ 候補2 {label(d2, '14:00-15:30')}: ○2 △1 ×0" in text
    assert "回答 3 人" in text and text.count("★") == 1
    # most ○, then most △, then fewest ×
    order = re.findall(r"^[★・] ?(候補\d)", text, re.M)
    assert order == ["候補2", "候補4", "候補1", "候補3"], text

    # b skipped candidate 3: a reminder mentions only b
    await chief.room_send(room, "m.room.message", {"msgtype": "m.text", "body": "!リマインド 1"})
    reminders = await wait_for(chief, room, lambda e: "まだ回答していない" in e["content"].get("body", ""))
    assert reminders[0]["content"]["m.mentions"]["user_ids"] == [b.user_id]

    # a member without rights cannot decide
    assert "作った人と権限レベル 50 以上" in await ask(a, room, "!日程決定 1 2", polls_bot.user_id)
    assert "候補5はありません" in await ask(chief, room, "!日程決定 1 5", polls_bot.user_id)

    await chief.room_send(room, "m.room.message", {"msgtype": "m.text", "body": "!日程決定 1 2"})
    announced = await wait_for(chief, room, lambda e: "に決まりました" in e["content"].get("body", ""))
    assert f"#1「課内打ち合わせ」の日程は {label(d2, '14:00-15:30')} に決まりました" in announced[0]["content"]["body"]
    # everyone who answered ○ or △ for it is mentioned
    assert announced[0]["content"]["m.mentions"]["user_ids"] == sorted([chief.user_id, a.user_id, b.user_id])
    files = await wait_for(chief, room, lambda e: e["content"].get("msgtype") == "m.file")
    info = files[0]["content"]
    assert info["info"]["mimetype"] == "text/calendar" and info["body"].endswith(".ics")
    status, data = await download(homeserver.url("lgwan"), chief, info["url"])
    assert status == 200
    fields = ics_fields(data)
    assert fields["DTSTART;TZID=Asia/Tokyo"] == f"{d2:%Y%m%d}T140000"
    assert fields["DTEND;TZID=Asia/Tokyo"] == f"{d2:%Y%m%d}T153000"
    assert fields["SUMMARY"] == "課内打ち合わせ" and data.startswith(b"BEGIN:VCALENDAR\r\n")
    # the polls are ended, the summary shows the decision and, being disclosed, who answered what
    ends = await wait_for(chief, room, lambda e: e["type"] == events.END)
    assert {e["content"]["m.relates_to"]["event_id"] for e in ends} == {c1, c2, c3, c4}
    text = await wait_summary(chief, room, summary, "✅ 決定: 候補2")
    lines = text.splitlines()
    who = lines[lines.index(f"★ 候補2 {label(d2, '14:00-15:30')}: ○2 △1 ×0") + 1]
    names = {c: (await c.get_displayname()).displayname or c.user_id for c in (chief, a, b)}
    came, maybe, cannot = (part.strip() for part in who.split("／"))
    assert "締切済み" in text and maybe == f"△ {names[b]}" and cannot == "× -"
    assert sorted(came.removeprefix("○ ").split("、")) == sorted([names[chief], names[a]])

    # deciding twice is refused, not announced again
    reply = await ask(chief, room, "!日程決定 1 4", polls_bot.user_id)
    assert f"すでに候補2 {label(d2, '14:00-15:30')} に決まっています" in reply
    evs = await room_events(chief, room)
    assert len([e for e in evs if "に決まりました" in e["content"].get("body", "")]) == 1
    assert len([e for e in evs if e["content"].get("msgtype") == "m.file"]) == 1
    assert "✅ 決定: 候補2" in latest_summary(evs, summary)


async def test_dates_not_understood_and_past_deadlines_are_explained_in_japanese(homeserver, login, polls_bot):
    (chief, _a), room = await team(homeserver, login, polls_bot, size=2)
    d = day(9)
    wrong = WEEKDAYS[(d.weekday() + 1) % 7]
    reply = await ask(chief, room, f"!日程調整 打ち合わせ\n{d.month}/{d.day}({wrong}) 14:00", polls_bot.user_id)
    assert f"{WEEKDAYS[d.weekday()]}曜日です（{wrong}曜日と書かれています）" in reply and "例: !日程調整" in reply
    reply = await ask(chief, room, "!日程調整 打ち合わせ\n来月のどこか", polls_bot.user_id)
    assert "「来月のどこか」を日時として読み取れませんでした" in reply and "例: !日程調整" in reply
    assert "「2/30」という日付・時刻はありません" in await ask(chief, room, "!日程調整 打ち合わせ\n2/30 10時",
                                                           polls_bot.user_id)
    yesterday = day(-1)
    reply = await ask(chief, room, f"!日程調整 打ち合わせ\n{d.month}/{d.day} 10時\n"
                      f"締切 {yesterday.month}/{yesterday.day} 17時", polls_bot.user_id)
    assert "もう過ぎています" in reply
    many = "、".join(f"{d.month}/{d.day} {h}時" for h in range(0, 21))
    assert "候補は20個までです（21個あります）" in await ask(chief, room, f"!日程調整 打ち合わせ\n{many}",
                                                          polls_bot.user_id)
    assert "日時が書かれていません" in await ask(chief, room, "!日程調整 打ち合わせ", polls_bot.user_id)
    assert not polls_in(await room_events(chief, room))  # nothing made of any of them

    # on one line, by its English name, candidates separated by 、
    await chief.room_send(room, "m.room.message", {"msgtype": "m.text",
                                                   "body": f"!schedule 面談 {d.month}/{d.day} 10:00、13時"})
    found = await wait_for(chief, room, lambda e: len(polls_in([e])) and "候補2" in e["content"]["body"])
    assert found[0]["content"][events.START]["question"][events.TEXT] == f"候補2: {label(d, '13:00')}"
    await chief.room_send(room, "m.room.message", {"msgtype": "m.text", "body": "!アンケート 昼食は？ / 弁当 / 外食"})
    await wait_for(chief, room, lambda e: len(polls_in([e])) and "昼食は？" in e["content"]["body"])
    assert "#2 は日程調整ではありません" in await ask(chief, room, "!日程決定 2 1", polls_bot.user_id)


async def test_an_anonymous_schedule_closes_itself_at_its_deadline_with_the_ranking(homeserver, login, polls_bot):
    (chief, a), room = await team(homeserver, login, polls_bot, size=2)
    d = day(5)
    await chief.room_send(room, "m.room.message", {"msgtype": "m.text", "body": (
        f"!日程調整 係会議\n{d.month}/{d.day} 9時半\n{d.month}/{d.day} 午後2時から3時まで\n締切 1分後\n匿名")})
    await wait_for(chief, room, lambda e: "📅 日程調整 #1「係会議」" in e["content"].get("body", ""))
    polls = polls_in(await room_events(chief, room))
    assert [p["content"][events.START]["question"][events.TEXT] for p in polls] == [
        f"候補1: {label(d, '9:30')}", f"候補2: {label(d, '14:00-15:00')}"]
    assert all(p["content"][events.START]["kind"] == events.UNDISCLOSED for p in polls)
    await vote(a, room, polls[1]["event_id"], "ok")
    await vote(a, room, polls[0]["event_id"], "ng")
    await vote(chief, room, polls[1]["event_id"], "maybe")
    final = await wait_for(chief, room, lambda e: "締切になりました" in e["content"].get("body", ""), timeout=100)
    text = final[0]["content"]["body"]
    assert "締切済み" in text and f"★ 候補2 {label(d, '14:00-15:00')}: ○1 △1 ×0" in text
    assert text.index("候補2") < text.index("候補1") and "／" not in text  # anonymous: nobody named
    ends = await wait_for(chief, room, lambda e: e["type"] == events.END)
    assert len(ends) == 2


def test_the_spec_is_a_title_candidates_a_deadline_and_anonymous():
    spec = parse_spec("忘年会\n12/3(水) 18:00\n・12月4日\n締切：12/1 17時\n匿名")
    assert (spec.title, spec.candidates, spec.deadline, spec.anonymous) == (
        "忘年会", "12/3(水) 18:00\n12月4日", "12/1 17時", True)
    spec = parse_spec("面談　12/3 10:00、13時")  # one line, a full-width space after the title
    assert (spec.title, spec.candidates, spec.deadline, spec.anonymous) == ("面談", "12/3 10:00、13時", None, False)
    with pytest.raises(ScheduleError) as raised:
        parse_spec("\n \n")
    assert raised.value.key == "polls.schedule.no_title"


def test_english_rooms_read_the_candidates_in_english():
    d, e = day(10), day(12)
    first, second, third = parse_candidates(f"{d.month}/{d.day} 14:00-15:30、{d.month}月{d.day}日、{d.month}/{d.day}-"
                                            f"{e.month}/{e.day}", datetime.datetime.now(TZ))
    year = f" {d.year}" if d.year != datetime.datetime.now(TZ).year else ""
    assert candidate_label(first, "en") == f"{d:%a} {d.day} {d:%b}{year} 14:00-15:30"
    assert candidate_label(second, "en") == f"{d:%a} {d.day} {d:%b}{year} (all day)"
    assert candidate_label(third, "en").startswith(f"{d:%a} {d.day} {d:%b}") and candidate_label(third, "en").endswith(
        f"{e:%a} {e.day} {e:%b}{year} (all day)")
    assert candidate_label(first, "ja") == label(d, "14:00-15:30")
