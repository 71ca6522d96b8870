"""Safety checks (安否確認) as a disaster office uses them: real Synapse, a real polls bot, staff who
tap one answer; the live summary by department, reminders to those who have not answered, a check
across several rooms, the CSV export; and the summary of a 2,000-person check rendered from memory."""

from __future__ import annotations

import asyncio
import csv
import io
import itertools
import time
from pathlib import Path

import pytest
import yaml
from bots_harness import BotProcess, ask, room_events, wait_membership
from harness import download
from nio import RoomCreateResponse
from test_polls_bot import latest_summary, vote, wait_for, wait_summary

from bots.polls import events
from bots.polls.safety import ANSWER_IDS, Directory, SafetyKind, answers, most_urgent
from bots.polls.store import Group, Poll
from bots.polls.tally import Tally

REMIND_EVERY_MINUTES = 0.1  # 6 seconds: long enough to vote in between, short enough to test
DEPARTMENTS = [
    {"id": "soumu", "name": {"ja": "総務課", "en": "General Affairs"},
     "sections": [{"id": "soumu-jinji", "name": {"ja": "人事係", "en": "Personnel"}}]},
    {"id": "doboku", "name": {"ja": "土木課", "en": "Civil Engineering"}},
]
_numbers = itertools.count(1)


class Office:
    """The bot, its organisation file (staff added as the tests make people), its configured rooms."""

    def __init__(self, homeserver, bot: BotProcess, org_path: Path, starter, server: str):
        self.homeserver, self.bot, self.org_path, self.starter, self.server = homeserver, bot, org_path, starter, server
        self.staff: list[dict] = []

    def write_organisation(self) -> None:
        self.org_path.write_text(yaml.safe_dump({"organisation": {
            "municipality": {"id": "test-city", "name": {"ja": "テスト市"}},
            "departments": DEPARTMENTS, "staff": self.staff}}, allow_unicode=True), encoding="utf-8")

    async def person(self, login, name: str, department: str | None):
        """A member of staff (in the organisation file when ``department`` is given)."""
        user = self.homeserver.new_user(localpart=f"safety{next(_numbers)}", displayname=name)
        if department:
            self.staff.append({"localpart": user.localpart, "display_name": name, "department": department})
            self.write_organisation()
        return await login(user, "lgwan")


@pytest.fixture(scope="module")
def office(homeserver, tmp_path_factory):
    folder = tmp_path_factory.mktemp("safety-bot")
    org_path = folder / "organisation.yaml"
    starter = homeserver.new_user(localpart="bousai-starter", displayname="防災 担当")
    with BotProcess(homeserver, folder, "polls", entry=["-m", "bots.polls"], options={"summary_interval_s": 0.2},
                    zone="lgwan", storage=homeserver.backend) as bot:
        server = bot.user_id.split(":", 1)[1]
        bot.config["bots"]["polls"]["safety"] = {
            "starters": [starter.user_id], "min_power_level": 50, "organisation_file": str(org_path),
            "rooms": [f"#safety-a:{server}", f"#safety-b:{server}", f"#safety-none:{server}"],
            "remind_every_minutes": REMIND_EVERY_MINUTES}
        bot.write_config()
        result = Office(homeserver, bot, org_path, starter, server)
        result.write_organisation()
        bot.start().wait_ready()
        yield result
        if bot.running:
            assert bot.stop() == 0


async def room_with(office: Office, creator, others, alias: str | None = None) -> str:
    created = await creator.room_create(name="災害対策", alias=alias,
                                        invite=[office.bot.user_id, *(p.user_id for p in others)])
    assert isinstance(created, RoomCreateResponse), created
    for person in others:
        await person.join(created.room_id)
    await wait_membership(creator, created.room_id, office.bot.user_id, "join")
    return created.room_id


def jst_stamp(seconds: float) -> str:
    return time.strftime("%Y%m%d-%H%M", time.gmtime(seconds + 9 * 3600))


def from_bot(office: Office, e: dict) -> bool:
    return e["sender"] == office.bot.user_id


async def the_poll(office: Office, client, room_id: str) -> dict:
    return (await wait_for(client, room_id, lambda e: e["type"] == events.START and from_bot(office, e)))[-1]


async def the_summary(office: Office, client, room_id: str) -> str:
    found = await wait_for(client, room_id, lambda e: from_bot(office, e) and e["type"] == "m.room.message"
                           and e["content"].get("body", "").startswith("🆘 安否確認 #")
                           and "m.relates_to" not in e["content"] and "回答" in e["content"]["body"])
    return found[-1]["event_id"]


def reminders(office: Office, evs: list[dict]) -> list[dict]:
    return [e for e in evs if from_bot(office, e) and (e["content"].get("m.mentions") or {}).get("user_ids")]


async def test_an_authorised_person_starts_a_check_and_the_summary_counts_by_department(homeserver, login, office):
    chief = await office.person(login, "山田 太郎", "soumu")
    clerk = await office.person(login, "鈴木 花子", "soumu-jinji")
    engineer = await office.person(login, "佐藤 健二", "doboku")
    visitor = await office.person(login, "外部 支援", None)
    room = await room_with(office, chief, [clerk, engineer, visitor])

    refused = await ask(clerk, room, "!安否確認 地震", office.bot.user_id)
    assert "安否確認を始められるのは" in refused and "権限レベル 50 以上" in refused

    await chief.room_send(room, "m.room.message", {"msgtype": "m.text", "body": "!安否確認 震度5強の地震"})
    poll = await the_poll(office, chief, room)
    start = poll["content"][events.START]
    assert start["question"][events.TEXT].startswith("【安否確認】震度5強の地震（")
    assert start["question"][events.TEXT].endswith("）。あなたの状況を選んでください")
    assert [(a["id"], a[events.TEXT]) for a in start["answers"]] == [
        ("safe_ok", "無事（出勤可能）"), ("safe_no", "無事（出勤不可）"), ("minor", "軽傷"), ("serious", "重傷"),
        ("contact", "その他・連絡希望")]
    assert start["kind"] == events.DISCLOSED and start["max_selections"] == 1
    summary = await the_summary(office, chief, room)
    await wait_summary(chief, room, summary, "回答 0 / 4 人・未回答 4 人")

    await vote(clerk, room, poll["event_id"], "safe_ok")
    await vote(engineer, room, poll["event_id"], "minor")
    await vote(engineer, room, poll["event_id"], "serious")  # the latest answer counts
    await vote(visitor, room, poll["event_id"], "contact")
    text = await wait_summary(chief, room, summary, "回答 3 / 4 人・未回答 1 人")
    lines = text.splitlines()
    for line in ("・無事（出勤可能）: 1 人", "・軽傷: 0 人", "・重傷: 1 人", "・その他・連絡希望: 1 人",
                 "⚠️ 要対応（2 人）:",
                 "・佐藤 健二（土木課）: 重傷", "・外部 支援（所属なし）: その他・連絡希望",
                 "・総務課: 回答 0 / 1 人（未回答 1）", "・総務課 人事係: 回答 1 / 1 人（無事（出勤可能） 1）",
                 "・土木課: 回答 1 / 1 人（重傷 1）", "・所属なし: 回答 1 / 1 人（その他・連絡希望 1）"):
        assert line in lines, (line, text)
    assert lines.index("・重傷: 1 人") < lines.index("⚠️ 要対応（2 人）:") < lines.index("部署別:")
    assert lines.index("・佐藤 健二（土木課）: 重傷") < lines.index("・外部 支援（所属なし）: その他・連絡希望")

    status = await ask(chief, room, "!安否状況", office.bot.user_id)
    assert "・土木課: 回答 1 / 1 人（重傷 1）" in status and "回答 3 / 4 人" in status
    assert "このルームの #5 は安否確認ではありません" in await ask(chief, room, "!安否状況 5", office.bot.user_id)

    # The export lists everyone asked: those who did not answer are the ones to follow up.
    asked_at = [jst_stamp(time.time() + d) for d in (-60, 0)]
    await chief.room_send(room, "m.room.message", {"msgtype": "m.text", "body": "!CSV出力 1"})
    files = await wait_for(chief, room, lambda e: e["content"].get("msgtype") == "m.file")
    name = files[0]["content"]["body"]
    assert name in [f"safety-1-{s}.csv" for s in {*asked_at, jst_stamp(time.time())}], name  # Japan time
    status_code, body = await download(homeserver.url("lgwan"), chief, files[0]["content"]["url"])
    assert status_code == 200
    rows = list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))
    assert rows[0][:3] == ["名前", "ユーザー ID", "所属"]
    by_id = {r[1]: r for r in rows[1:]}
    assert by_id[engineer.user_id][2:] == ["土木課", "重傷"]
    assert by_id[clerk.user_id][2:] == ["総務課 人事係", "無事（出勤可能）"]
    assert by_id[visitor.user_id][2:] == ["所属なし", "その他・連絡希望"]
    assert by_id[chief.user_id] == ["山田 太郎", chief.user_id, "総務課", "未回答"]
    assert set(by_id) == {chief.user_id, clerk.user_id, engineer.user_id, visitor.user_id}  # not the bot

    closed = await ask(chief, room, "!締切 1", office.bot.user_id)
    assert "締切済み" in closed and "・重傷: 1 人" in closed
    ends = await wait_for(chief, room, lambda e: e["type"] == events.END)
    assert ends[0]["content"]["m.relates_to"]["event_id"] == poll["event_id"]


async def test_reminders_mention_only_those_who_have_not_answered_each_once(login, office):
    chief = await office.person(login, "高橋 一郎", "doboku")
    quick, slow, last = [await office.person(login, name, "doboku") for name in ("早川 一", "遅野 二", "最後 三")]
    room = await room_with(office, chief, [quick, slow, last])
    await chief.room_send(room, "m.room.message", {"msgtype": "m.text", "body": "!安否確認 大雨"})
    poll = await the_poll(office, chief, room)
    started = time.monotonic()
    await vote(quick, room, poll["event_id"], "safe_ok")

    first = (await wait_for(chief, room, lambda e: bool(reminders(office, [e]))))[0]
    assert time.monotonic() - started > REMIND_EVERY_MINUTES * 60 - 3  # not before its time
    assert sorted(first["content"]["m.mentions"]["user_ids"]) == sorted([chief.user_id, slow.user_id, last.user_id])
    assert "安否確認「大雨」にまだ回答していない方（3 人）" in first["content"]["body"]
    assert "遅野 二" in first["content"]["body"] and "早川 一" not in first["content"]["body"]
    await vote(chief, room, poll["event_id"], "safe_no")
    await vote(slow, room, poll["event_id"], "minor")

    second = (await wait_for(chief, room, lambda e: len(reminders(office, [e])) == 1
                             and e["event_id"] != first["event_id"]))[0]
    assert second["content"]["m.mentions"]["user_ids"] == [last.user_id]
    assert second["origin_server_ts"] - first["origin_server_ts"] >= REMIND_EVERY_MINUTES * 60_000 - 2500
    await vote(last, room, poll["event_id"], "safe_ok")
    await asyncio.sleep(REMIND_EVERY_MINUTES * 60 * 2 + 3)  # everyone answered: no more reminders
    sent = reminders(office, await room_events(chief, room))
    assert [e["event_id"] for e in sent] == [first["event_id"], second["event_id"]], "each reminder once"


async def test_a_check_for_all_rooms_tallies_every_room_in_one_summary(homeserver, login, office):
    chief = await office.person(login, "防災 課長", "soumu")
    starter = await login(office.starter, "lgwan")  # listed in safety.starters, power level 0 here
    hq = await room_with(office, chief, [starter])
    north = [await office.person(login, name, "doboku") for name in ("北 一", "北 二")]
    south = [await office.person(login, name, dept) for name, dept in (("南 一", "soumu"), ("南 二", None))]
    room_a = await room_with(office, north[0], north[1:], alias="safety-a")
    room_b = await room_with(office, south[0], south[1:], alias="safety-b")

    await starter.room_send(hq, "m.room.message", {"msgtype": "m.text", "body": "!安否確認 全体 台風10号"})
    missing = (await wait_for(starter, hq, lambda e: from_bot(office, e)
                              and "次のルームには送れません" in e["content"].get("body", "")))[0]
    assert f"#safety-none:{office.server}" in missing["content"]["body"]
    poll_a = await the_poll(office, north[0], room_a)
    poll_b = await the_poll(office, south[0], room_b)
    assert poll_a["content"][events.START]["question"][events.TEXT].startswith("【安否確認】台風10号（")
    assert not [e for e in await room_events(starter, hq) if e["type"] == events.START]  # HQ asked nobody
    summary = await the_summary(office, starter, hq)
    header = next(e for e in await room_events(starter, hq) if from_bot(office, e)
              and e["content"].get("body", "").startswith("🆘 安否確認 #1: 台風10号"))
    assert "2 個のルームに送りました" in header["content"]["body"]
    await wait_summary(starter, hq, summary, "回答 0 / 4 人・未回答 4 人")

    await vote(north[0], room_a, poll_a["event_id"], "safe_ok")
    await vote(south[0], room_b, poll_b["event_id"], "minor")
    await vote(south[1], room_b, poll_b["event_id"], "serious")
    text = await wait_summary(starter, hq, summary, "回答 3 / 4 人・未回答 1 人")
    lines = text.splitlines()
    for line in ("・無事（出勤可能）: 1 人", "・軽傷: 1 人", "・重傷: 1 人", "・南 二（所属なし）: 重傷",
                 "・総務課: 回答 1 / 1 人（軽傷 1）", "・土木課: 回答 1 / 2 人（無事（出勤可能） 1、未回答 1）"):
        assert line in lines, (line, text)
    newcomer = await office.person(login, "新人 一", None)  # joins room B during the check: one more to ask
    await south[0].room_invite(room_b, newcomer.user_id)
    await newcomer.join(room_b)
    await wait_summary(starter, hq, summary, "回答 3 / 5 人・未回答 2 人")

    # !リマインド reminds each room's own non-responders there, never the office that asked
    await starter.room_send(hq, "m.room.message", {"msgtype": "m.text", "body": "!リマインド 1"})
    reminded = await wait_for(north[0], room_a, lambda e: bool(reminders(office, [e])))
    assert reminded[-1]["content"]["m.mentions"]["user_ids"] == [north[1].user_id]
    await asyncio.sleep(3)
    assert not reminders(office, await room_events(starter, hq))

    closed = await ask(starter, hq, "!締切 1", office.bot.user_id)
    assert "締切済み" in closed and "回答 3 / 5 人" in closed
    for client, room, poll in ((north[0], room_a, poll_a), (south[0], room_b, poll_b)):
        ends = await wait_for(client, room, lambda e: e["type"] == events.END)
        assert ends[0]["content"]["m.relates_to"]["event_id"] == poll["event_id"]
    await vote(north[1], room_a, poll_a["event_id"], "safe_ok")  # after the end: not counted
    await asyncio.sleep(1.5)
    assert latest_summary(await room_events(starter, hq), summary).count("回答 3 / 5 人") == 1

    # The CSV: one column per room asked; 未回答 where a person was asked and gave no answer anywhere.
    await starter.room_send(hq, "m.room.message", {"msgtype": "m.text", "body": "!CSV出力 1"})
    files = await wait_for(starter, hq, lambda e: e["content"].get("msgtype") == "m.file")
    _status_code, body = await download(homeserver.url("lgwan"), starter, files[0]["content"]["url"])
    rows = list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))
    by_id = {r[1]: r[2:] for r in rows[1:]}
    assert by_id == {north[0].user_id: ["土木課", "無事（出勤可能）", ""],
                     north[1].user_id: ["土木課", "未回答", ""],
                     south[0].user_id: ["総務課", "", "軽傷"],
                     south[1].user_id: ["所属なし", "", "重傷"],
                     newcomer.user_id: ["所属なし", "", "未回答"]}, rows


# --- pure: the summary of a large check ---


def big_check(tmp_path: Path, size: int = 2000) -> tuple[SafetyKind, Group, list[Poll], list[Tally], list[str]]:
    """``size`` staff in 20 departments (the last 100 people in none), every fifth not answered."""
    departments = [{"id": f"d{i:02}", "name": {"ja": f"第{i}課"}} for i in range(20)]
    users = [f"@staff{n:04}:city.example" for n in range(size)]
    staff = [{"localpart": f"staff{n:04}", "display_name": f"職員 {n:04}", "department": f"d{n % 20:02}"}
             for n in range(size - 100)]
    path = tmp_path / "organisation.yaml"
    path.write_text(yaml.safe_dump({"organisation": {"municipality": {"id": "big", "name": {"ja": "大きな市"}},
                                                      "departments": departments, "staff": staff}},
                                   allow_unicode=True), encoding="utf-8")
    choices: dict[str, tuple[str, ...]] = {u: (ANSWER_IDS[n % 5],) for n, u in enumerate(users)
                                           if n % 5 != 4 or n % 7 == 0}
    counts = {a: sum(1 for c in choices.values() if c[0] == a) for a in ANSWER_IDS}
    tally = Tally(counts=counts, choices=choices, spoiled=frozenset(), ended_ts=None)
    poll = Poll("$poll", "$group", 0, "!room:city.example", "【安否確認】", [(a.id, a.text) for a in answers("ja")], 1)
    group = Group("$group", "!room:city.example", 1, "safety", "地震", "@chief:city.example", 0, None, True, {},
                  None, None, None, None)
    kind = SafetyKind(Directory(str(path)), lambda rooms: set(users),
                      lambda rooms: lambda u: "職員 " + u[6:10])  # the name a room would know
    return kind, group, [poll], [tally], users


def test_the_summary_of_a_2000_person_check_is_correct_and_fast(tmp_path):
    kind, group, polls, tallies, _users = big_check(tmp_path)
    kind.render(group, polls, tallies, "ja", str)  # reads the organisation file once
    started = time.perf_counter()
    text, formatted = kind.render(group, polls, tallies, "ja", str)
    elapsed = time.perf_counter() - started
    print(f"render of a 2,000-person safety check: {elapsed * 1000:.1f} ms")
    assert elapsed < 0.5
    chosen = tallies[0].choices
    lines = text.splitlines()
    assert lines[0] == f"🆘 安否確認 #1「地震」（受付中）回答 {len(chosen)} / 2000 人・未回答 {2000 - len(chosen)} 人"
    # answers cycle safe_ok..contact by n % 5; those with n % 5 == 4 answered only when n % 7 == 0
    contact = sum(1 for n in range(2000) if n % 5 == 4 and n % 7 == 0)
    assert "・無事（出勤可能）: 400 人" in lines and "・重傷: 400 人" in lines
    assert f"・その他・連絡希望: {contact} 人" in lines and f"⚠️ 要対応（{400 + contact} 人）:" in lines
    urgent = lines[lines.index(f"⚠️ 要対応（{400 + contact} 人）:") + 1:lines.index("部署別:")]
    assert urgent[0] == "・職員 0003（第3課）: 重傷" and urgent[1] == "・職員 0008（第8課）: 重傷"
    assert len(urgent) == 51 and urgent[-1] == f"ほか {400 + contact - 50} 人（全員の一覧は !CSV出力 1）"
    # an edit carries body and HTML twice: the event stays far under Matrix's 64 KiB
    assert 2 * (len(text.encode()) + len(formatted.encode())) < 32_000
    departments = lines[lines.index("部署別:") + 1:-1]
    assert [d.split(":")[0] for d in departments] == [f"・第{i}課" for i in range(20)] + ["・所属なし"]
    # department d03: staff n with n % 20 == 3 (95 of them): n % 5 == 3 -> all answered 重傷
    assert "・第3課: 回答 95 / 95 人（重傷 95）" in departments
    # d04: n % 5 == 4: answered (contact) only when n % 7 == 0
    in_d04 = [n for n in range(1900) if n % 20 == 4]
    answered_d04 = sum(1 for n in in_d04 if n % 7 == 0)
    assert (f"・第4課: 回答 {answered_d04} / 95 人（その他・連絡希望 {answered_d04}、未回答 {95 - answered_d04}）"
            in departments)
    assert formatted.count("<br>") == len(lines) - 1


def test_people_not_in_the_organisation_file_are_named_as_their_room_knows_them(tmp_path):
    kind, group, polls, _, users = big_check(tmp_path)
    tally = Tally({"serious": 1}, {users[1903]: ("serious",)}, frozenset(), None)
    text, _ = kind.render(group, polls, [tally], "en", str)
    assert "- 職員 1903 (Unassigned): Serious injury" not in text  # answers keep the poll's language
    assert "- 職員 1903 (Unassigned): 重傷" in text.splitlines()
    assert "answered 1 / 2000, not answered 1999" in text.splitlines()[0]


def test_a_person_who_answered_in_two_rooms_counts_once_with_the_most_urgent_answer():
    here = Tally({"safe_ok": 1}, {"@a:x": ("safe_ok",), "@b:x": ("safe_ok",)}, frozenset(), None)
    there = Tally({"serious": 1}, {"@a:x": ("serious",), "@c:x": ("contact",)}, frozenset(), None)
    assert most_urgent([here, there]) == {"@a:x": "serious", "@b:x": "safe_ok", "@c:x": "contact"}
