"""A calendar file (RFC 5545 iCalendar) for one event: what the polls bot attaches once a date is fixed.

Opens in Outlook, Google Calendar and Apple Calendar: CRLF line endings, lines folded at 75 octets
without splitting a UTF-8 character, text escaped, times with a TZID and its VTIMEZONE.
"""

from __future__ import annotations

import datetime
from zoneinfo import ZoneInfo

MIMETYPE = "text/calendar"
PRODID = "-//lgwan-chat//polls//JA"
DEFAULT_DURATION = datetime.timedelta(hours=1)
_LIMIT = 75  # octets a line, CRLF not counted


def escape_text(value: str) -> str:
    """A TEXT value: backslash, semicolon, comma and newlines escaped (RFC 5545 3.3.11)."""
    value = value.replace("\r\n", "\n").replace("\r", "\n")
    value = value.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,")
    return value.replace("\n", "\\n")


def fold(line: str) -> bytes:
    """One content line, folded: no physical line over 75 octets, no UTF-8 character split."""
    out: list[bytes] = []
    current = b""
    for ch in line:
        encoded = ch.encode("utf-8")
        if len(current) + len(encoded) > _LIMIT:
            out.append(current)
            current = b" "  # a continuation line starts with one space, counted in its 75 octets
        current += encoded
    out.append(current)
    return b"\r\n".join(out) + b"\r\n"


def _offset(delta: datetime.timedelta) -> str:
    seconds = int(delta.total_seconds())
    sign = "+" if seconds >= 0 else "-"
    seconds = abs(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{sign}{hours:02d}{minutes:02d}" + (f"{secs:02d}" if secs else "")


def _fixed_offset(zone: ZoneInfo, around: datetime.datetime) -> tuple[datetime.timedelta, str] | None:
    """The zone's offset and name if it has had no change of offset for the years around ``around``."""
    samples = [datetime.datetime(year, month, 1, 12, tzinfo=zone)
               for year in range(around.year - 2, around.year + 3) for month in (1, 4, 7, 10)]
    offsets = {s.utcoffset() for s in samples}
    if len(offsets) != 1 or any(s.dst() for s in samples):
        return None
    sample = samples[0]
    return sample.utcoffset() or datetime.timedelta(0), sample.tzname() or ""


def _vtimezone(tzid: str, offset: datetime.timedelta, name: str) -> list[str]:
    lines = ["BEGIN:VTIMEZONE", f"TZID:{tzid}", "BEGIN:STANDARD", "DTSTART:19700101T000000",
             f"TZOFFSETFROM:{_offset(offset)}", f"TZOFFSETTO:{_offset(offset)}"]
    if name:
        lines.append(f"TZNAME:{escape_text(name)}")
    return lines + ["END:STANDARD", "END:VTIMEZONE"]


def _utc(dt: datetime.datetime) -> str:
    return dt.astimezone(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")


def event_ics(uid: str, title: str, start: datetime.datetime, end: datetime.datetime | None, all_day: bool,
              description: str = "", location: str = "", now: datetime.datetime | None = None,
              tz: str = "Asia/Tokyo") -> bytes:
    """A VCALENDAR with one VEVENT.

    Timed events are written in ``tz`` (``DTSTART;TZID=Asia/Tokyo:...`` and a VTIMEZONE) when the
    zone has a fixed offset, else in UTC; an event without an end lasts an hour. An all-day event
    has ``VALUE=DATE`` dates; its ``end``, if any, is its last day (inclusive), DTEND the day after.
    Naive datetimes are taken as local time in ``tz``.
    """
    zone = ZoneInfo(tz)
    stamp = now or datetime.datetime.now(datetime.timezone.utc)
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=datetime.timezone.utc)
    start = start.replace(tzinfo=zone) if start.tzinfo is None else start.astimezone(zone)
    if end is not None:
        end = end.replace(tzinfo=zone) if end.tzinfo is None else end.astimezone(zone)
    lines = ["BEGIN:VCALENDAR", f"PRODID:{PRODID}", "VERSION:2.0", "CALSCALE:GREGORIAN", "METHOD:PUBLISH"]
    event = ["BEGIN:VEVENT", f"UID:{escape_text(uid)}", f"DTSTAMP:{_utc(stamp)}"]
    if all_day:
        first = start.date()
        last = end.date() if end is not None and end.date() > first else first
        event += [f"DTSTART;VALUE=DATE:{first:%Y%m%d}",
                  f"DTEND;VALUE=DATE:{last + datetime.timedelta(days=1):%Y%m%d}",
                  "TRANSP:TRANSPARENT"]
    else:
        if end is None or end <= start:
            end = start + DEFAULT_DURATION
        fixed = _fixed_offset(zone, start)
        if fixed is not None:
            lines += _vtimezone(tz, *fixed)
            event += [f"DTSTART;TZID={tz}:{start:%Y%m%dT%H%M%S}", f"DTEND;TZID={tz}:{end:%Y%m%dT%H%M%S}"]
        else:
            event += [f"DTSTART:{_utc(start)}", f"DTEND:{_utc(end)}"]
        event.append("TRANSP:OPAQUE")
    event += [f"SUMMARY:{escape_text(title)}"]
    if description:
        event.append(f"DESCRIPTION:{escape_text(description)}")
    if location:
        event.append(f"LOCATION:{escape_text(location)}")
    event += ["SEQUENCE:0", "STATUS:CONFIRMED", "END:VEVENT"]
    lines += event + ["END:VCALENDAR"]
    return b"".join(fold(line) for line in lines)
