"""Dates and times as people write them (bots/runtime/dates.py) and calendar files (bots/polls/ics.py)."""

from __future__ import annotations

import datetime
import re
from zoneinfo import ZoneInfo

import pytest

from bots.polls.ics import event_ics, fold
from bots.runtime.dates import (
    MAX_CANDIDATES,
    WEEKDAYS_JA,
    Candidate,
    DateError,
    format_when,
    parse_candidates,
    parse_deadline,
)
from lgwan_chat.core.i18n import catalogue

JST = ZoneInfo("Asia/Tokyo")
# Wednesday 18 November 2026, 10:00 in Tokyo. 12/3/2026 is a Thursday (木).
NOW = datetime.datetime(2026, 11, 18, 10, 0, tzinfo=JST)


def at(month: int, day: int, hour: int = 0, minute: int = 0, year: int = 2026) -> datetime.datetime:
    return datetime.datetime(year, month, day, hour, minute, tzinfo=JST)


def labels(text: str, now: datetime.datetime = NOW) -> list[str]:
    return [c.label for c in parse_candidates(text, now)]


def one(text: str, now: datetime.datetime = NOW) -> Candidate:
    found = parse_candidates(text, now)
    assert len(found) == 1, found
    return found[0]


def error(text: str, now: datetime.datetime = NOW, deadline: bool = False) -> DateError:
    with pytest.raises(DateError) as info:
        (parse_deadline if deadline else parse_candidates)(text, now)
    assert info.value.key in catalogue("ja"), info.value.key
    return info.value


# --- candidates: formats ---------------------------------------------------------------------

@pytest.mark.parametrize("text", [
    "12/3(木) 14:00", "12/3 14:00", "12/3（木）14時", "12月3日(木) 14時", "12月3日 14時00分", "2026/12/3 14:00",
    "2026-12-03 14:00", "2026-12-03T14:00", "2026年12月3日 14:00", "12/3(木曜) 14:00", "12/3(木曜日)14:00",
    "12月3日木曜日 14時", "12/3の14時", "12/3 午後2時", "12/3 2pm", "12/3 (Thu) 14:00", "１２／３（木）１４：００",
    "12/3 ㈭ 14:00",
])
def test_one_time_in_every_format(text):
    c = one(text)
    assert c == Candidate(at(12, 3, 14), None, False, "12/3(木) 14:00")
    assert c.start.tzinfo is not None and c.start.utcoffset() == datetime.timedelta(hours=9)


def test_minutes_half_and_noon():
    assert one("12月3日(木) 14時30分").start == at(12, 3, 14, 30)
    assert one("12/3 14時半").start == at(12, 3, 14, 30)
    assert one("12/3 正午").start == at(12, 3, 12)
    assert one("12/3 午前10時").start == at(12, 3, 10)
    assert one("12/3 午後2時30分").start == at(12, 3, 14, 30)
    assert one("12/3 午前12時").start == at(12, 3, 0)
    assert one("12/3 午後0時").start == at(12, 3, 12)
    assert one("12/3 9:05").label == "12/3(木) 9:05"


def test_a_date_alone_is_all_day():
    c = one("12月3日")
    assert c == Candidate(at(12, 3), None, True, "12/3(木) 終日")
    assert one("12/3(木)") == c
    assert one("12/3 終日") == c


def test_ranges():
    assert one("12/3(木) 14:00-15:30") == Candidate(at(12, 3, 14), at(12, 3, 15, 30), False, "12/3(木) 14:00-15:30")
    assert one("12/3 14:00〜15:30").end == at(12, 3, 15, 30)
    assert one("12/3 14時～16時").end == at(12, 3, 16)
    assert one("12/3 14時から16時まで").end == at(12, 3, 16)
    assert one("12/3 14:00 ~ 15:00").end == at(12, 3, 15)
    assert one("12/3 午前10時-正午").end == at(12, 3, 12)
    assert one("１２／３（木）１４：００〜１５：００") == Candidate(at(12, 3, 14), at(12, 3, 15), False,
                                                             "12/3(木) 14:00-15:00")


def test_range_shorthands():
    assert one("12/3 14-16時").end == at(12, 3, 16)
    assert one("12/3 午後2-4時") == one("12/3 午後2時〜4時") == one("12/3 2pm-4pm") == one("12/3 14:00-16:00")
    assert one("12/3 午前10時〜午後1時").end == at(12, 3, 13)
    assert one("12/3 午後11時-1時").end == at(12, 4, 1)
    # an open end: only a start
    assert labels("12/3 14:00〜、12/4 10時から") == ["12/3(木) 14:00", "12/4(金) 10:00"]


def test_list_markers_are_skipped():
    assert labels("- 12/3 14:00\n- 12/4 15:00") == ["12/3(木) 14:00", "12/4(金) 15:00"]
    assert labels("1. 12/3\n2) 12/4\n(3) 12/5\n・12/6") == ["12/3(木) 終日", "12/4(金) 終日", "12/5(土) 終日",
                                                             "12/6(日) 終日"]


def test_ranges_over_midnight_and_days():
    c = one("12/3 14:00-12/4 10:00")
    assert (c.start, c.end, c.label) == (at(12, 3, 14), at(12, 4, 10), "12/3(木) 14:00-12/4(金) 10:00")
    c = one("12/3 22:00-2:00")  # overnight: ends the next day
    assert (c.start, c.end, c.label) == (at(12, 3, 22), at(12, 4, 2), "12/3(木) 22:00-12/4(金) 2:00")
    assert one("12/3 20:00-24:00").end == at(12, 4, 0)
    c = one("12/3-12/5")
    assert (c.start, c.end, c.all_day, c.label) == (at(12, 3), at(12, 5), True, "12/3(木)-12/5(土) 終日")
    c = one("12/30 10:00-1/2 10:00")  # the end's year follows the start
    assert (c.start, c.end) == (at(12, 30, 10), at(1, 2, 10, year=2027))


def test_relative_days():
    # NOW is Wednesday 11/18
    assert one("今日 15:00").start == at(11, 18, 15)
    assert one("明日").label == "11/19(木) 終日"
    assert one("明日 10時").start == at(11, 19, 10)
    assert one("明後日の14時").start == at(11, 20, 14)
    assert one("来週水曜").start == at(11, 25)
    assert one("来週の水曜日 14:00").start == at(11, 25, 14)
    assert one("今週金曜 15:00-16:00").end == at(11, 20, 16)
    assert one("再来週月曜").start == at(11, 30)
    assert one("金曜").start == at(11, 20)
    assert one("水曜 14:00").start == at(11, 18, 14)  # today is a Wednesday
    assert error("今週月曜").key == "polls.date.past"


def test_year_rollover():
    late = datetime.datetime(2026, 12, 20, 9, 0, tzinfo=JST)
    assert one("12/3 14:00", late).start == at(12, 3, 14, year=2027)
    assert one("12/3 14:00", late).label == "2027/12/3(金) 14:00"  # other years are shown
    assert one("12/20", late).start == at(12, 20, year=2026)  # today is on or after today
    assert one("1/5", late).label == "2027/1/5(火) 終日"
    assert error("12/3(木)", late).key == "polls.date.weekday"  # 2027/12/3 is a Friday
    assert one("2/29", late).start == at(2, 29, year=2028)


def test_time_without_a_date_takes_the_one_before():
    assert labels("12/3(木) 10:00、14:00、16:00-17:00") == [
        "12/3(木) 10:00", "12/3(木) 14:00", "12/3(木) 16:00-17:00"]
    # a time alone at first: today, or tomorrow once it has passed
    assert one("午後3時").start == at(11, 18, 15)
    assert one("9:00").start == at(11, 19, 9)


def test_separators_and_duplicates():
    expected = ["12/3(木) 14:00", "12/4(金) 10:00", "12/5(土) 終日"]
    for sep in ("\n", "、", "，", ",", ";", " / ", "・", " ", "\n\n  "):
        assert labels(sep.join(["12/3 14:00", "12/4 10時", "12月5日"])) == expected, sep
    assert labels("12/3 14:00\n12/3(木) 14時\n12月3日 14:00、12/4") == ["12/3(木) 14:00", "12/4(金) 終日"]
    assert labels(" \n12/3 14:00\n\n") == ["12/3(木) 14:00"]


def test_weekday_mismatch_names_it():
    e = error("12/3(火) 14:00")
    assert e.key == "polls.date.weekday"
    assert e.params == {"date": "12/3(木)", "given": "火", "actual": "木"}
    assert error("12/4、12/3(水)").params["given"] == "水"
    assert error("12/3 (Tue)").params["given"] == "火"


@pytest.mark.parametrize("text, bad", [
    ("2/30", "2/30"), ("2月30日", "2月30日"), ("13/1", "13/1"), ("2026/2/29", "2026/2/29"),
    ("12/3 25:00", "25:00"), ("12/3 14:60", "14:60"), ("12/3 午後13時", "午後13時"), ("12/3 24:30", "24:30"),
])
def test_invalid_dates_and_times(text, bad):
    e = error(text)
    assert (e.key, e.params) == ("polls.date.invalid", {"text": bad})


def test_not_understood():
    assert error("来月のどこか").key == "polls.date.unknown"
    e = error("12/3 14:00、そのうち")
    assert (e.key, e.params) == ("polls.date.unknown", {"text": "そのうち"})
    assert error("12/3 14:00-ランチ").key == "polls.date.unknown"
    assert error("").key == "polls.date.empty"
    assert error(" 、\n").key == "polls.date.empty"
    assert error("12/3 15:00-14:00").key == "polls.date.end_before_start"  # 23 hours is a typo
    assert error("12/3 14:00-12/3 13:00").key == "polls.date.end_before_start"
    assert error("12/3 14:00-14:00").key == "polls.date.end_before_start"


def test_at_most_twenty_candidates():
    days = [f"12/{d}" for d in range(1, 32)]
    assert len(parse_candidates("\n".join(days[:MAX_CANDIDATES]), NOW)) == MAX_CANDIDATES
    e = error("\n".join(days[:MAX_CANDIDATES + 1]))
    assert (e.key, e.params) == ("polls.date.too_many", {"max": 20, "count": 21})
    # duplicates do not count
    assert len(parse_candidates("\n".join(days[:MAX_CANDIDATES] * 2), NOW)) == MAX_CANDIDATES


def test_other_time_zone():
    c = parse_candidates("12/3 14:00", NOW, tz="UTC")[0]
    assert c.start == datetime.datetime(2026, 12, 3, 14, tzinfo=ZoneInfo("UTC"))


# --- deadlines -------------------------------------------------------------------------------

def deadline(text: str, now: datetime.datetime = NOW) -> datetime.datetime:
    return parse_deadline(text, now)


def test_deadline_formats():
    assert deadline("12/3 17:00") == at(12, 3, 17)
    assert deadline("12/3(木) 17時まで") == at(12, 3, 17)
    assert deadline("２０２６年１２月３日　１７時") == at(12, 3, 17)
    assert deadline("17時") == at(11, 18, 17)  # today
    assert deadline("9時") == at(11, 19, 9)  # past today: tomorrow
    assert deadline("今日17時") == at(11, 18, 17)
    assert deadline("明日の午後5時") == at(11, 19, 17)
    assert deadline("来週水曜 12:00") == at(11, 25, 12)


def test_deadline_without_time_is_the_end_of_that_day():
    assert deadline("12/3") == at(12, 3, 23, 59)
    assert deadline("12月3日までに") == at(12, 3, 23, 59)
    assert deadline("明日") == at(11, 19, 23, 59)
    assert deadline("明日中") == at(11, 19, 23, 59)
    assert deadline("今日中") == at(11, 18, 23, 59)
    assert deadline("今週中") == at(11, 22, 23, 59)  # Sunday
    assert deadline("来週中") == at(11, 29, 23, 59)
    assert deadline("金曜") == at(11, 20, 23, 59)
    assert deadline("明日中まで") == at(11, 19, 23, 59)
    assert deadline("締切: 12/3中") == at(12, 3, 23, 59)
    assert deadline("12/3(木)17時締切") == at(12, 3, 17)
    assert deadline("30分後まで。") == at(11, 18, 10, 30)


def test_deadline_durations():
    assert deadline("30分後") == at(11, 18, 10, 30)
    assert deadline("2時間後") == at(11, 18, 12)
    assert deadline("１時間半後") == at(11, 18, 11, 30)
    assert deadline("3日後") == at(11, 21, 10)
    assert deadline("1週間後") == at(11, 25, 10)


def test_deadline_in_the_past():
    e = error("今日9時", deadline=True)
    assert (e.key, e.params) == ("polls.date.past", {"when": "11/18(水) 9:00"})
    assert error("11/17", deadline=True).key == "polls.date.past"  # yesterday: a mistake, not next year
    assert deadline("11/17 ", datetime.datetime(2026, 11, 18, 10, tzinfo=JST) + datetime.timedelta(days=60)) \
        == at(11, 17, 23, 59, year=2027)
    assert error("2026/11/1 10:00", deadline=True).key == "polls.date.past"
    assert error("0分後", deadline=True).key == "polls.date.past"


def test_deadline_errors():
    assert error("12/3 14:00-15:00", deadline=True).key == "polls.date.unknown"
    assert error("そのうち", deadline=True).key == "polls.date.unknown"
    assert error("2/30", deadline=True).key == "polls.date.invalid"
    assert error("12/3(火)", deadline=True).key == "polls.date.weekday"
    assert error("", deadline=True).key == "polls.date.empty"


def test_naive_now_is_local_time():
    assert parse_deadline("17時", NOW.replace(tzinfo=None)) == at(11, 18, 17)


# --- display ---------------------------------------------------------------------------------

def ms(dt: datetime.datetime) -> int:
    return int(dt.timestamp() * 1000)


def test_format_when():
    assert WEEKDAYS_JA == "月火水木金土日"
    assert format_when(ms(at(12, 3, 14)), "ja", now=NOW) == "12/3(木) 14:00"
    assert format_when(ms(at(12, 3, 14)), "en", now=NOW) == "Thu 3 Dec 14:00"
    assert format_when(ms(at(1, 5, 9, 5, year=2027)), "ja", now=NOW) == "2027/1/5(火) 9:05"
    assert format_when(ms(at(1, 5, 9, 5, year=2027)), "en", now=NOW) == "Tue 5 Jan 2027 9:05"
    # the time zone decides the day
    assert format_when(ms(at(12, 3, 8)), "en", "UTC", now=NOW) == "Wed 2 Dec 23:00"
    this_year = datetime.datetime.now(JST).replace(month=6, day=1, hour=12, minute=0)
    assert format_when(ms(this_year), "ja").startswith("6/1(")


def test_messages_exist_in_both_languages():
    for lang in ("ja", "en"):
        text = catalogue(lang)["polls.date.weekday"].format(date="12/3(木)", given="火", actual="木")
        assert "12/3(木)" in text and "火" in text


# --- calendar files --------------------------------------------------------------------------

def physical_lines(data: bytes) -> list[bytes]:
    assert data.endswith(b"\r\n")
    lines = data.split(b"\r\n")[:-1]
    assert b"\n" not in b"".join(lines) and b"\r" not in b"".join(lines)  # every line ends with CRLF
    return lines


def unescape(value: str) -> str:
    return re.sub(r"\\(.)", lambda m: "\n" if m.group(1) in "nN" else m.group(1), value)


def parse_ics(data: bytes) -> list[tuple[str, dict[str, str], str]]:
    """Content lines as (name, parameters, raw value), after unfolding."""
    text = data.decode("utf-8")  # also proves no character was split
    unfolded = re.sub(r"\r\n[ \t]", "", text)
    out = []
    for line in unfolded.split("\r\n")[:-1]:
        head, _, value = line.partition(":")  # our parameter values hold no colon
        name, *params = head.split(";")
        out.append((name, dict(p.split("=", 1) for p in params), value))
    return out


def event(data: bytes) -> dict[str, tuple[dict[str, str], str]]:
    lines = parse_ics(data)
    begin = next(i for i, (n, _, v) in enumerate(lines) if (n, v) == ("BEGIN", "VEVENT"))
    end = next(i for i, (n, _, v) in enumerate(lines) if (n, v) == ("END", "VEVENT"))
    return {n: (p, v) for n, p, v in lines[begin + 1:end]}


STAMP = datetime.datetime(2026, 11, 18, 1, 2, 3, tzinfo=datetime.timezone.utc)


def test_ics_timed_event():
    data = event_ics("poll-1@lgwan-chat", "定例会議", at(12, 3, 14), at(12, 3, 15, 30), False, now=STAMP)
    lines = parse_ics(data)
    assert lines[:5] == [("BEGIN", {}, "VCALENDAR"), ("PRODID", {}, "-//lgwan-chat//polls//JA"),
                         ("VERSION", {}, "2.0"), ("CALSCALE", {}, "GREGORIAN"), ("METHOD", {}, "PUBLISH")]
    assert lines[-1] == ("END", {}, "VCALENDAR")
    tz = [(n, v) for n, _, v in lines[lines.index(("BEGIN", {}, "VTIMEZONE")):]][:9]
    assert tz == [("BEGIN", "VTIMEZONE"), ("TZID", "Asia/Tokyo"), ("BEGIN", "STANDARD"),
                  ("DTSTART", "19700101T000000"), ("TZOFFSETFROM", "+0900"), ("TZOFFSETTO", "+0900"),
                  ("TZNAME", "JST"), ("END", "STANDARD"), ("END", "VTIMEZONE")]
    ev = event(data)
    assert ev["UID"] == ({}, "poll-1@lgwan-chat")
    assert ev["DTSTAMP"] == ({}, "20261118T010203Z")
    assert ev["DTSTART"] == ({"TZID": "Asia/Tokyo"}, "20261203T140000")
    assert ev["DTEND"] == ({"TZID": "Asia/Tokyo"}, "20261203T153000")
    assert ev["SUMMARY"] == ({}, "定例会議")
    assert "DESCRIPTION" not in ev and "LOCATION" not in ev


def test_ics_default_duration_and_other_zones():
    ev = event(event_ics("u", "t", at(12, 3, 23, 30), None, False, now=STAMP))
    assert ev["DTEND"] == ({"TZID": "Asia/Tokyo"}, "20261204T003000")
    utc_start = datetime.datetime(2026, 12, 3, 5, tzinfo=datetime.timezone.utc)  # 14:00 in Tokyo
    assert event(event_ics("u", "t", utc_start, None, False, now=STAMP))["DTSTART"][1] == "20261203T140000"
    # a zone with summer time: UTC times, no VTIMEZONE
    data = event_ics("u", "t", at(7, 1, 14), None, False, now=STAMP, tz="Europe/Berlin")
    assert b"VTIMEZONE" not in data
    assert event(data)["DTSTART"] == ({}, "20260701T050000Z")


def test_ics_all_day():
    ev = event(event_ics("u", "研修", at(12, 3), None, True, now=STAMP))
    assert ev["DTSTART"] == ({"VALUE": "DATE"}, "20261203")
    assert ev["DTEND"] == ({"VALUE": "DATE"}, "20261204")
    # a range of days: the end is the last day
    c = one("12/3-12/5")
    ev = event(event_ics("u", "研修", c.start, c.end, c.all_day, now=STAMP))
    assert (ev["DTSTART"][1], ev["DTEND"][1]) == ("20261203", "20261206")
    assert b"VTIMEZONE" not in event_ics("u", "研修", at(12, 3), None, True, now=STAMP)


def test_ics_escaping():
    title = "予算; 決算, 監査\\報告"
    description = "1行目\n2行目\r\n3行目, 以上; 終わり"
    data = event_ics("u", title, at(12, 3, 14), None, False, description=description, location="本庁舎 3階, 第1会議室",
                     now=STAMP)
    ev = event(data)
    assert ev["SUMMARY"][1] == "予算\\; 決算\\, 監査\\\\報告"
    assert unescape(ev["SUMMARY"][1]) == title
    assert unescape(ev["DESCRIPTION"][1]) == "1行目\n2行目\n3行目, 以上; 終わり"
    assert unescape(ev["LOCATION"][1]) == "本庁舎 3階, 第1会議室"


def test_ics_folds_long_japanese_lines_at_75_octets():
    title = "令和8年度第3回〇〇市地域防災計画見直し検討委員会（拡大会議・オンライン併用）🗾" * 4
    description = "議題: " + "あ" * 200 + "\n" + "x" * 300
    data = event_ics("u" * 120, title, at(12, 3, 14), None, False, description=description, now=STAMP)
    lines = physical_lines(data)
    assert max(len(line) for line in lines) == 75
    for line in lines:
        assert len(line) <= 75
        line.decode("utf-8")  # no multi-byte character split across lines
    assert sum(line.startswith(b" ") for line in lines) > 10
    ev = event(data)
    assert unescape(ev["SUMMARY"][1]) == title
    assert unescape(ev["DESCRIPTION"][1]) == description
    assert ev["UID"][1] == "u" * 120


@pytest.mark.parametrize("width", [1, 2, 3, 4])
def test_fold_never_splits_a_character(width):
    ch = {1: "a", 2: "é", 3: "あ", 4: "🗾"}[width]
    for n in range(60, 200):
        folded = fold("SUMMARY:" + ch * n)
        for line in folded.split(b"\r\n")[:-1]:
            assert len(line) <= 75
            line.decode("utf-8")
        assert folded.replace(b"\r\n ", b"").decode() == "SUMMARY:" + ch * n + "\r\n"
