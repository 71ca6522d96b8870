"""Dates and times as people write them in a chat: candidates for a schedule, deadlines, display.

Pure functions, standard library only. Everything is read after NFKC normalisation, so
full-width digits, colons, slashes, parentheses and tildes (１２／３（水）１４：００～) read as
their ASCII forms.

A candidate (``parse_candidates``) is a date, a time, or both, optionally a range::

    12/3(水) 14:00   12/3 14:00   12/3（水）14時   12月3日   12月3日(水) 14時30分   14時半
    2026/12/3 14:00   2026-12-03 14:00   2026年12月3日
    12/3(水) 14:00-15:30   14:00〜15:30   14時～16時   14時から16時まで   12/3 14:00-12/4 10:00
    22:00-2:00 (ends the next day)   12/3-12/5 (all days)   12/3 終日
    午前10時   午後2時   正午   今日 / 本日 / 明日 / 明後日   水曜   来週水曜   今週金曜   再来週の月曜

A date without a year is its next occurrence on or after today; a weekday is the one on or after
today (``来週``: in next week, Monday to Sunday; ``今週``: in this week). A time without a date takes
the date of the candidate before it (``12/3 10:00、14:00`` is two candidates on 12/3).
"""

from __future__ import annotations

import datetime
import re
import unicodedata
from typing import Any
from zoneinfo import ZoneInfo

import attrs

from bots.runtime import clock

WEEKDAYS_JA = "月火水木金土日"
WEEKDAYS_EN = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
MONTHS_EN = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
MAX_CANDIDATES = 20
OVERNIGHT_HOURS = 12  # 22:00-2:00 ends the next day; 14:00-13:00 is a mistake, not 23 hours
_RECENT_DAYS = 31  # a deadline "11/20" written on 11/21 is a mistake, not next year's 11/20


@attrs.frozen
class Candidate:
    start: datetime.datetime  # timezone-aware, in tz
    end: datetime.datetime | None  # None when no end given; for all-day ranges: 00:00 of the last day
    all_day: bool  # True when no time was given ("12月3日")
    label: str  # normalised Japanese: "12/3(水) 14:00-15:30", "12/3(水) 終日"


class DateError(ValueError):
    """What was not understood, as a message key and its parameters (shown to the user)."""

    def __init__(self, key: str, **params: Any):
        super().__init__(key, params)
        self.key = key
        self.params = params

    def __str__(self) -> str:
        return f"{self.key} {self.params}"


# --- the grammar -----------------------------------------------------------------------------

_WD_EN = {w.lower(): i for i, w in enumerate(WEEKDAYS_EN)}
_PAREN_WD = r"\s*\(\s*(?P<pwd>[月火水木金土日]|mon|tue|wed|thu|fri|sat|sun)[a-z]*\.?\s*(?:曜日?)?\s*\)"
_DATE = re.compile(
    r"(?:(?P<y1>\d{4})[/\-.](?P<m1>\d{1,2})[/\-.](?P<d1>\d{1,2})"
    r"|(?:(?P<y2>\d{4})年\s*)?(?P<m2>\d{1,2})月\s*(?P<d2>\d{1,2})日"
    r"|(?P<m3>\d{1,2})/(?P<d3>\d{1,2}))"
    r"(?:" + _PAREN_WD + r"|\s*(?P<bwd>[月火水木金土日])曜日?)?",
    re.IGNORECASE)
_REL = re.compile(r"(?P<rel>今日|本日|きょう|明後日|あさって|明日|あした|あす)")
_WEEKDAY = re.compile(r"(?:(?P<wk>再来週|来週|今週|次の|今度の)\s*の?\s*)?(?P<wd>[月火水木金土日])曜日?")
_TIME = re.compile(
    r"(?P<ampm>午前|午後|am|pm|a\.m\.|p\.m\.)?\s*"
    r"(?:(?P<h1>\d{1,2}):(?P<mi1>\d{2})|(?P<h2>\d{1,2})時(?:\s*(?P<mi2>\d{1,2})分|(?P<half>半))?|(?P<noon>正午)"
    r"|(?P<h3>\d{1,2})(?=\s*(?:am|pm|a\.m\.|p\.m\.)(?![a-z]))"
    r"|(?P<h4>\d{1,2})(?=\s*(?:-|~|〜|ー|−|–|—|から)\s*(?:午前|午後)?\s*\d{1,2}時))"  # 14-16時
    r"(?:\s*(?P<ampm2>am|pm|a\.m\.|p\.m\.)(?![a-z]))?",
    re.IGNORECASE)
_ALL_DAY = re.compile(r"\s*(?:終日|一日中|all[\s-]?day)", re.IGNORECASE)
_OF = re.compile(r"\s*(?:の|T)?\s*")
_RANGE = re.compile(r"\s*(?:-|~|〜|~|ー|−|–|—|から)\s*")
_UNTIL = re.compile(r"\s*まで")
_SPLIT = re.compile(r"[\n\r;、,・]+| / ")
_SPACE = re.compile(r"\s+")
_BULLET = re.compile(r"\s*(?:[-*•●○◯◎□■・>]\s+|\d{1,2}[.)]\s+|\(\d{1,2}\)\s*)")  # "- 12/3", "1. 12/3", "(1) 12/3"


@attrs.frozen
class _When:
    date: datetime.date | None
    time: tuple[int, int] | None  # (hour, minute); (24, 0) is the end of the day
    text: str  # as written, for error messages
    all_day_word: bool = False
    ampm: str = ""  # "午後", "pm", ... as written before or after the time


class _Reader:
    def __init__(self, text: str, now: datetime.datetime):
        self.now = now
        today = now.date()
        year = today.year
        self.text = text
        self.pos = 0
        self.today = today
        self.year = year  # the current year, for labels
        self.recently_past: datetime.date | None = None  # a date without year read as next year's
        self.ampm = ""  # of the last time read

    def rest(self) -> str:
        return self.text[self.pos:]

    def skip(self, pattern: re.Pattern[str]) -> bool:
        m = pattern.match(self.text, self.pos)
        if m and m.end() > self.pos:
            self.pos = m.end()
            return True
        return False

    def when(self, on_or_after: datetime.date) -> _When | None:
        """A date and/or a time at the current position, or None (position unchanged)."""
        start = self.pos
        date = self._date(on_or_after)
        time = None
        all_day = False
        self.ampm = ""
        if date is not None:
            before = self.pos
            self.skip(_OF)
            time = self._time()
            if time is None:
                self.pos = before
                if self.skip(_ALL_DAY):
                    all_day = True
        else:
            time = self._time()
        if date is None and time is None:
            self.pos = start
            return None
        return _When(date, time, self.text[start:self.pos].strip(), all_day, self.ampm)

    def _date(self, on_or_after: datetime.date) -> datetime.date | None:
        m = _DATE.match(self.text, self.pos)
        if m:
            written = m.group(0)
            year = m.group("y1") or m.group("y2")
            month = int(m.group("m1") or m.group("m2") or m.group("m3"))
            day = int(m.group("d1") or m.group("d2") or m.group("d3"))
            if year:
                try:
                    date = datetime.date(int(year), month, day)
                except ValueError:
                    raise DateError("polls.date.invalid", text=written.strip()) from None
            else:
                date = _next_occurrence(month, day, on_or_after, written)
                if date.year > on_or_after.year:
                    try:
                        this_year = datetime.date(on_or_after.year, month, day)
                    except ValueError:
                        this_year = None
                    if this_year is not None and (on_or_after - this_year).days <= _RECENT_DAYS:
                        self.recently_past = this_year
            given = m.group("pwd") or m.group("bwd")
            if given:
                wd = WEEKDAYS_JA.index(given) if given in WEEKDAYS_JA else _WD_EN[given[:3].lower()]
                if wd != date.weekday():
                    raise DateError("polls.date.weekday", date=_date_label(date, self.year),
                                    given=WEEKDAYS_JA[wd], actual=WEEKDAYS_JA[date.weekday()])
            self.pos = m.end()
            return date
        m = _REL.match(self.text, self.pos)
        if m:
            offset = {"今日": 0, "本日": 0, "きょう": 0, "明日": 1, "あした": 1, "あす": 1,
                      "明後日": 2, "あさって": 2}[m.group("rel")]
            self.pos = m.end()
            return self.today + datetime.timedelta(days=offset)
        m = _WEEKDAY.match(self.text, self.pos)
        if m:
            wd = WEEKDAYS_JA.index(m.group("wd"))
            week = m.group("wk")
            monday = self.today - datetime.timedelta(days=self.today.weekday())
            if week in ("今週", "来週", "再来週"):
                weeks = {"今週": 0, "来週": 1, "再来週": 2}[week]
                date = monday + datetime.timedelta(days=7 * weeks + wd)
            else:  # 水曜, 次の水曜, 今度の水曜: on or after today
                date = self.today + datetime.timedelta(days=(wd - self.today.weekday()) % 7)
            self.pos = m.end()
            return date
        return None

    def _time(self) -> tuple[int, int] | None:
        m = _TIME.match(self.text, self.pos)
        if not m:
            return None
        written = m.group(0).strip()
        if m.group("noon"):
            hour, minute = 12, 0
        else:
            hour = int(m.group("h1") or m.group("h2") or m.group("h3") or m.group("h4"))
            minute = 30 if m.group("half") else int(m.group("mi1") or m.group("mi2") or 0)
        ampm = (m.group("ampm") or m.group("ampm2") or "").lower().replace(".", "")
        self.ampm = ampm
        if ampm and not m.group("noon"):
            if hour > 12:
                raise DateError("polls.date.invalid", text=written)
            if ampm in ("午後", "pm") and hour < 12:
                hour += 12
            elif ampm in ("午前", "am") and hour == 12:
                hour = 0
        if minute > 59 or hour > 24 or (hour == 24 and minute):
            raise DateError("polls.date.invalid", text=written)
        self.pos = m.end()
        return hour, minute


def _next_occurrence(month: int, day: int, on_or_after: datetime.date, written: str) -> datetime.date:
    try:
        datetime.date(2000, month, day)  # a leap year: a day that is never valid is invalid
    except ValueError:
        raise DateError("polls.date.invalid", text=written.strip()) from None
    for year in range(on_or_after.year, on_or_after.year + 9):
        try:
            date = datetime.date(year, month, day)
        except ValueError:  # 2/29
            continue
        if date >= on_or_after:
            return date
    raise DateError("polls.date.invalid", text=written.strip())  # pragma: no cover


def _zone(tz: str) -> ZoneInfo:
    return clock.zone(tz)


def _local_now(now: datetime.datetime, zone: ZoneInfo) -> datetime.datetime:
    return now.replace(tzinfo=zone) if now.tzinfo is None else now.astimezone(zone)


def _at(date: datetime.date, time: tuple[int, int], zone: ZoneInfo) -> datetime.datetime:
    hour, minute = time
    if hour == 24:
        return datetime.datetime.combine(date + datetime.timedelta(days=1), datetime.time(0, 0), tzinfo=zone)
    return datetime.datetime.combine(date, datetime.time(hour, minute), tzinfo=zone)


# --- labels ----------------------------------------------------------------------------------

def _date_label(date: datetime.date, year: int) -> str:
    prefix = f"{date.year}/" if date.year != year else ""
    return f"{prefix}{date.month}/{date.day}({WEEKDAYS_JA[date.weekday()]})"


def _time_label(dt: datetime.datetime) -> str:
    return f"{dt.hour}:{dt.minute:02d}"


def _label(start: datetime.datetime, end: datetime.datetime | None, all_day: bool, year: int) -> str:
    if all_day:
        if end is not None and end.date() != start.date():
            return f"{_date_label(start.date(), year)}-{_date_label(end.date(), year)} 終日"
        return f"{_date_label(start.date(), year)} 終日"
    text = f"{_date_label(start.date(), year)} {_time_label(start)}"
    if end is None:
        return text
    if end.date() == start.date():
        return f"{text}-{_time_label(end)}"
    return f"{text}-{_date_label(end.date(), year)} {_time_label(end)}"


# --- candidates ------------------------------------------------------------------------------

def _normalise(text: str) -> str:
    text = unicodedata.normalize("NFKC", text)
    return text.replace("\u3000", " ")


def _excerpt(text: str) -> str:
    text = text.strip()
    return text if len(text) <= 30 else text[:29] + "…"


def parse_candidates(text: str, now: datetime.datetime, tz: str = "Asia/Tokyo") -> list[Candidate]:
    """Candidates separated by newlines, 、, ，, ;, ・ or ' / ' (or spaces between whole candidates).

    Raises DateError (key ``polls.date.*``) for anything not understood, an impossible date or
    time, a weekday that contradicts its date, an end before its start, none or too many candidates.
    """
    zone = _zone(tz)
    local = _local_now(now, zone)
    today = local.date()
    out: list[Candidate] = []
    seen: set[tuple[Any, ...]] = set()
    previous_date: datetime.date | None = None
    for segment in _SPLIT.split(_normalise(text)):
        reader = _Reader(segment.strip(), local)
        reader.skip(_BULLET)
        while True:
            reader.skip(_SPACE)
            if reader.pos >= len(reader.text):
                break
            candidate, previous_date = _candidate(reader, today, previous_date, zone)
            key = (candidate.start, candidate.end, candidate.all_day)
            if key not in seen:
                seen.add(key)
                out.append(candidate)
    if not out:
        raise DateError("polls.date.empty")
    if len(out) > MAX_CANDIDATES:
        raise DateError("polls.date.too_many", max=MAX_CANDIDATES, count=len(out))
    return out


def _candidate(reader: _Reader, today: datetime.date, previous_date: datetime.date | None,
               zone: ZoneInfo) -> tuple[Candidate, datetime.date | None]:
    begin = reader.pos
    first = reader.when(today)
    if first is None:
        raise DateError("polls.date.unknown", text=_excerpt(reader.rest()))
    date = first.date if first.date is not None else previous_date
    if date is None:  # a time alone, first: today, or tomorrow if that time has passed
        assert first.time is not None
        date = today if _at(today, first.time, zone) > reader.now else today + datetime.timedelta(days=1)
    if date < today:  # 今週月曜 on a Wednesday
        raise DateError("polls.date.past", when=_date_label(date, reader.year))
    end_when: _When | None = None
    if reader.skip(_RANGE):
        end_when = reader.when(date)
        if end_when is None and reader.rest().strip():  # "14:00〜" alone is a start
            raise DateError("polls.date.unknown", text=_excerpt(reader.text[begin:]))
        elif end_when is not None:
            reader.skip(_UNTIL)
    written = reader.text[begin:reader.pos].strip()
    year = reader.year
    if first.time is None:  # all day
        if end_when is not None and (end_when.time is not None or end_when.date is None):
            raise DateError("polls.date.unknown", text=_excerpt(written))
        start = datetime.datetime.combine(date, datetime.time(0, 0), tzinfo=zone)
        end = None
        if end_when is not None:
            assert end_when.date is not None
            if end_when.date < date:
                raise DateError("polls.date.end_before_start", text=_excerpt(written))
            if end_when.date != date:
                end = datetime.datetime.combine(end_when.date, datetime.time(0, 0), tzinfo=zone)
        return Candidate(start, end, True, _label(start, end, True, year)), date
    start = _at(date, first.time, zone)
    end = None
    if end_when is not None:
        if end_when.time is None:
            raise DateError("polls.date.unknown", text=_excerpt(written))
        if end_when.date is not None:
            end = _at(end_when.date, end_when.time, zone)
            if end <= start:
                raise DateError("polls.date.end_before_start", text=_excerpt(written))
        else:
            end_time = end_when.time
            if first.ampm in ("午後", "pm") and not end_when.ampm and end_time[0] < 12 \
                    and (end_time[0] + 12, end_time[1]) > first.time:  # 午後2時〜4時: 16:00
                end_time = (end_time[0] + 12, end_time[1])
            end = _at(start.date(), end_time, zone)
            if end == start:
                raise DateError("polls.date.end_before_start", text=_excerpt(written))
            if end < start:  # 22:00-2:00: ends the next day
                end = _at(start.date() + datetime.timedelta(days=1), end_time, zone)
                if end - start > datetime.timedelta(hours=OVERNIGHT_HOURS):
                    raise DateError("polls.date.end_before_start", text=_excerpt(written))
    return Candidate(start, end, False, _label(start, end, False, year)), date


# --- deadlines -------------------------------------------------------------------------------

_DURATION = re.compile(r"(?P<n>\d+)\s*(?P<unit>分|時間半|時間|日|週間|週)\s*後")
_WITHIN = re.compile(r"(?P<what>今日|本日|明日|明後日|今週|来週)\s*中")
_DEADLINE_HEAD = re.compile(r"^(?:締め?切り?|〆切?|期限)\s*(?:[:は]|日時)?\s*")
_DEADLINE_TAIL = re.compile(r"(?:\s*(?:まで(?:に)?|締め?切り?|〆切?|。|\.))+$")
_END_OF_DAY = datetime.time(23, 59)


def parse_deadline(text: str, now: datetime.datetime, tz: str = "Asia/Tokyo") -> datetime.datetime:
    """One point in time, in the future.

    The candidate formats (one date/time, no range), plus ``17時`` (today, or tomorrow if that is
    past), ``今日17時``, ``今日中`` / ``明日中`` (23:59), ``今週中`` / ``来週中`` (Sunday 23:59), durations
    ``30分後`` ``2時間後`` ``1時間半後`` ``3日後`` ``1週間後``; a date without a time is 23:59 of that day.
    A leading ``締切:`` and a trailing ``まで`` / ``までに`` / ``締切`` are ignored.
    """
    zone = _zone(tz)
    local = _local_now(now, zone)
    today = local.date()
    s = _DEADLINE_TAIL.sub("", _DEADLINE_HEAD.sub("", _normalise(text).strip())).strip()
    if not s:
        raise DateError("polls.date.empty")
    m = _DURATION.fullmatch(s)
    if m:
        n, unit = int(m.group("n")), m.group("unit")
        delta = {"分": datetime.timedelta(minutes=n), "時間": datetime.timedelta(hours=n),
                 "時間半": datetime.timedelta(hours=n, minutes=30), "日": datetime.timedelta(days=n),
                 "週間": datetime.timedelta(weeks=n), "週": datetime.timedelta(weeks=n)}[unit]
        if not delta:
            raise DateError("polls.date.past", when=_excerpt(text))
        return (local + delta).replace(microsecond=0)
    m = _WITHIN.fullmatch(s)
    if m:
        what = m.group("what")
        if what in ("今週", "来週"):
            sunday = today + datetime.timedelta(days=6 - today.weekday() + (7 if what == "来週" else 0))
            return _check_future(datetime.datetime.combine(sunday, _END_OF_DAY, tzinfo=zone), local, text)
        days = {"今日": 0, "本日": 0, "明日": 1, "明後日": 2}[what]
        day = today + datetime.timedelta(days=days)
        return _check_future(datetime.datetime.combine(day, _END_OF_DAY, tzinfo=zone), local, text)
    body = s[:-1].strip() if s.endswith("中") else s  # 12/3中
    reader = _Reader(body, local)
    when = reader.when(today)
    if when is None or reader.pos < len(reader.text):
        raise DateError("polls.date.unknown", text=_excerpt(body if when is None else reader.rest()))
    if reader.recently_past is not None:
        raise DateError("polls.date.past", when=_date_label(reader.recently_past, today.year))
    if when.date is None:
        assert when.time is not None
        result = _at(today, when.time, zone)
        if result <= local:  # 17時 after five: tomorrow
            result = _at(today + datetime.timedelta(days=1), when.time, zone)
        return result
    if when.time is None:
        return _check_future(datetime.datetime.combine(when.date, _END_OF_DAY, tzinfo=zone), local, text)
    return _check_future(_at(when.date, when.time, zone), local, text)


def _check_future(when: datetime.datetime, now: datetime.datetime, written: str) -> datetime.datetime:
    if when <= now:
        raise DateError("polls.date.past", when=_label(when, None, False, now.year))
    return when


# --- display ---------------------------------------------------------------------------------

def format_when(ts_ms: int, lang: str, tz: str = "Asia/Tokyo", now: datetime.datetime | None = None) -> str:
    """ja: ``12/3(水) 14:00``; en: ``Wed 3 Dec 14:00``. The year only when it is not the current one."""
    zone = _zone(tz)
    dt = datetime.datetime.fromtimestamp(ts_ms / 1000, zone)
    year = _local_now(now, zone).year if now is not None else datetime.datetime.now(zone).year
    if lang == "en":
        y = f" {dt.year}" if dt.year != year else ""
        return f"{WEEKDAYS_EN[dt.weekday()]} {dt.day} {MONTHS_EN[dt.month - 1]}{y} {dt.hour}:{dt.minute:02d}"
    return f"{_date_label(dt.date(), year)} {_time_label(dt)}"
