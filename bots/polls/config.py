"""The polls bot's own keys under ``bots: polls:`` (the shared keys are in bots/runtime/config.py)."""

from __future__ import annotations

from typing import Any

import attrs

from bots.runtime import clock
from bots.runtime import config as runtime
from lgwan_chat.core.configcheck import typed
from lgwan_chat.core.configcheck.issues import ConfigIssue
from lgwan_chat.core.configcheck.schema import USER_ID, string
from lgwan_chat.core.configcheck.typed import key, section


@attrs.frozen
class TaskOptions:
    #: reminders this many hours before and after a task's due time
    remind_before_hours: int = key(24, {"type": "integer", "minimum": 0, "maximum": 24 * 14})
    remind_after_hours: int = key(24, {"type": "integer", "minimum": 0, "maximum": 24 * 14})


@attrs.frozen
class SafetyOptions:
    #: who may start a safety check: listed accounts, or this power level in the room
    starters: tuple[str, ...] = key([], {"type": "array", "items": USER_ID}, convert=tuple)
    min_power_level: int = key(50, {"type": "integer", "minimum": 0, "maximum": 100})
    #: rooms asked when a check is for the whole organisation (IDs or #aliases)
    rooms: tuple[str, ...] = key([], {"type": "array", "items": string()}, convert=tuple)
    #: organisation.yaml, for tallies by department
    organisation_file: str | None = key(None, string())
    #: minutes between reminders to those who have not answered (0: none; 0.5 is 30 seconds)
    remind_every_minutes: float = key(30, {"type": "number", "minimum": 0, "maximum": 24 * 60})


@attrs.frozen
class PollsOptions:
    #: the runtime's ``timezone`` (a key every bot shares), copied here for the features' use
    timezone: str = clock.DEFAULT_TIMEZONE
    #: reminders to people who have not answered: mentions in the room, or a DM each
    remind_via: str = key("mention", {"enum": ["mention", "dm"]})
    #: automatic reminder this many minutes before a deadline (0: none)
    remind_before_minutes: int = key(60, {"type": "integer", "minimum": 0, "maximum": 7 * 24 * 60})
    #: people mentioned per reminder message (long lists are split)
    mentions_per_message: int = key(50, {"type": "integer", "minimum": 1, "maximum": 500})
    #: the live summary is edited at most this often (seconds)
    summary_interval_s: float = key(1.0, {"type": "number", "minimum": 0, "maximum": 60})
    tasks: TaskOptions = section(TaskOptions)
    safety: SafetyOptions = section(SafetyOptions)


def check(raw: Any) -> list[ConfigIssue]:
    """What ``lgwan-chat check-config`` runs for ``bots: polls:`` (``timezone`` is a shared key)."""
    return runtime.check(raw, PollsOptions)


def options(raw: dict[str, Any], timezone: str = clock.DEFAULT_TIMEZONE) -> PollsOptions:
    """The typed options from the bot's own keys (already checked when the bot loaded its config)."""
    return attrs.evolve(typed.build(PollsOptions, raw), timezone=timezone)
