"""Times as people read them: always in the configured time zone (``timezone``, Asia/Tokyo unless
set), never the host's. A server runs on UTC; staff and contractors read Japanese time, so every
time a bot shows, and every export file name, goes through here with the zone said explicitly."""

from __future__ import annotations

import datetime
import functools
from zoneinfo import ZoneInfo

from lgwan_chat.core.i18n import t

DEFAULT_TIMEZONE = "Asia/Tokyo"
#: zones with a name people use (日本時間 rather than JST); others are shown by their abbreviation
_NAMED = {"Asia/Tokyo": "bot.zone_name.japan", "Japan": "bot.zone_name.japan"}


@functools.cache
def zone(name: str = DEFAULT_TIMEZONE) -> ZoneInfo:
    return ZoneInfo(name)


def local(ts_ms: int, tz: str = DEFAULT_TIMEZONE) -> datetime.datetime:
    """A Matrix timestamp (ms since the epoch) as a time in ``tz``."""
    return datetime.datetime.fromtimestamp(ts_ms / 1000, zone(tz))


def now(tz: str = DEFAULT_TIMEZONE) -> datetime.datetime:
    return datetime.datetime.now(zone(tz))


def zone_label(tz: str, lang: str, at: datetime.datetime | None = None) -> str:
    """日本時間 / Japan time, or the zone's abbreviation (``UTC``, ``CET``) for others."""
    key = _NAMED.get(tz)
    if key:
        return t(key, lang)
    return (at or now(tz)).tzname() or tz


def when(ts_ms: int, tz: str, lang: str, with_zone: bool = True) -> str:
    """``2026-12-05 21:15（日本時間）`` / ``2026-12-05 21:15 (Japan time)``."""
    dt = local(ts_ms, tz)
    text = dt.strftime("%Y-%m-%d %H:%M")
    return t("bot.time_in_zone", lang, time=text, zone=zone_label(tz, lang, dt)) if with_zone else text


def file_stamp(tz: str, at: datetime.datetime | None = None) -> str:
    """``20261205-2115`` in ``tz``, for export file names."""
    return (at.astimezone(zone(tz)) if at else now(tz)).strftime("%Y%m%d-%H%M")
