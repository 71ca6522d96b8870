"""Guest account expiry dates, shared by ``lgwan-chat guest`` and the sanitizer bot's guest commands.

The expiry date people give is inclusive, in Japan time: ``2026-12-31`` means usable until
2026-12-31 23:59 JST, stored as the start of the next day in milliseconds.
"""

from __future__ import annotations

import datetime

from lgwan_chat.core.i18n import both

JST = datetime.timezone(datetime.timedelta(hours=9), "JST")


class GuestDateError(ValueError):
    """An expiry date that is unreadable or already past; the message is in ja and en."""


def expires_ts(value: str, now: datetime.datetime | None = None) -> int:
    """The end of that day in Japan time, in milliseconds."""
    try:
        day = datetime.date.fromisoformat(value.strip())
    except ValueError:
        raise GuestDateError(both("guests.cli_bad_date", value=value)) from None
    end = datetime.datetime.combine(day + datetime.timedelta(days=1), datetime.time(), JST)
    if end <= (now or datetime.datetime.now(JST)):
        raise GuestDateError(both("guests.cli_past_date", value=value))
    return int(end.timestamp() * 1000)


def date_of(ts: int) -> str:
    """The last valid day (Japan time) of an expiry in milliseconds."""
    return datetime.datetime.fromtimestamp((ts - 1) / 1000, JST).date().isoformat()
