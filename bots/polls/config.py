"""The polls bot's own keys under ``bots: polls:`` (the shared keys are in bots/runtime/config.py)."""

from __future__ import annotations

from typing import Any

import attrs

from bots.runtime import clock
from bots.runtime import config as runtime
from lgwan_chat.core.configcheck.issues import ConfigIssue
from lgwan_chat.core.configcheck.schema import USER_ID, mapping, string

SCHEMA: dict[str, dict] = {
    # reminders to people who have not answered: mentions in the room, or a DM each
    "remind_via": {"enum": ["mention", "dm"]},
    # automatic reminder this many minutes before a deadline (0: none)
    "remind_before_minutes": {"type": "integer", "minimum": 0, "maximum": 7 * 24 * 60},
    # people mentioned per reminder message (long lists are split)
    "mentions_per_message": {"type": "integer", "minimum": 1, "maximum": 500},
    # the live summary is edited at most this often (seconds)
    "summary_interval_s": {"type": "number", "minimum": 0, "maximum": 60},
    "tasks": mapping({
        # reminders this many hours before and after a task's due time
        "remind_before_hours": {"type": "integer", "minimum": 0, "maximum": 24 * 14},
        "remind_after_hours": {"type": "integer", "minimum": 0, "maximum": 24 * 14},
    }),
    "safety": mapping({
        # who may start a safety check: listed accounts, or this power level in the room
        "starters": {"type": "array", "items": USER_ID},
        "min_power_level": {"type": "integer", "minimum": 0, "maximum": 100},
        # rooms asked when a check is for the whole organisation (IDs or #aliases)
        "rooms": {"type": "array", "items": string()},
        # organisation.yaml, for tallies by department
        "organisation_file": string(),
        # minutes between reminders to those who have not answered (0: none; 0.5 is 30 seconds)
        "remind_every_minutes": {"type": "number", "minimum": 0, "maximum": 24 * 60},
    }),
}


@attrs.frozen
class TaskOptions:
    remind_before_hours: int = 24
    remind_after_hours: int = 24


@attrs.frozen
class SafetyOptions:
    starters: tuple[str, ...] = ()
    min_power_level: int = 50
    rooms: tuple[str, ...] = ()
    organisation_file: str | None = None
    remind_every_minutes: float = 30


@attrs.frozen
class PollsOptions:
    #: the runtime's ``timezone`` (a key every bot shares), copied here for the features' use
    timezone: str = clock.DEFAULT_TIMEZONE
    remind_via: str = "mention"
    remind_before_minutes: int = 60
    mentions_per_message: int = 50
    summary_interval_s: float = 1.0
    tasks: TaskOptions = TaskOptions()
    safety: SafetyOptions = SafetyOptions()


def check(raw: Any) -> list[ConfigIssue]:
    """What ``lgwan-chat check-config`` runs for ``bots: polls:`` (``timezone`` is a shared key)."""
    return runtime.check(raw, SCHEMA)


def options(raw: dict[str, Any], timezone: str = clock.DEFAULT_TIMEZONE) -> PollsOptions:
    safety = dict(raw.get("safety") or {})
    for key in ("starters", "rooms"):
        if key in safety:
            safety[key] = tuple(safety[key])
    plain = {k: v for k, v in raw.items() if k in ("remind_via", "remind_before_minutes",
                                                    "mentions_per_message", "summary_interval_s")}
    return PollsOptions(**plain, timezone=timezone, tasks=TaskOptions(**(raw.get("tasks") or {})),
                        safety=SafetyOptions(**safety))
