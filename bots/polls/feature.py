"""The contract between the polls bot and its features (schedule coordination, tasks, safety
checks, read reminders): what a feature gives the bot (:class:`Feature`) and the only part of the
bot a feature may use (:class:`Polls`). Features import this, never ``app.py``."""

from __future__ import annotations

import datetime
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

from bots.runtime import Bot, Command, Context

from .config import PollsOptions
from .groups import Groups, Kind
from .store import Group, PollStore

#: a scheduled job's handler: (what it is about, the job's id: the key of its sends' txn ids)
Job = Callable[[str, str], Awaitable[None]]


class Polls(Protocol):
    """What the polls bot offers its features."""

    bot: Bot
    options: PollsOptions
    store: PollStore
    groups: Groups
    #: kind of group -> how it renders and counts; a feature adds its own in attach()
    kinds: dict[str, Kind]
    #: job kind -> handler; a feature adds its own in attach()
    jobs: dict[str, Job]

    def now(self) -> datetime.datetime:
        """Now, in the configured time zone."""

    def deadline_text(self, group: Group, lang: str) -> str:
        """The group's deadline as people read it ("" when it has none)."""

    def parse_deadline(self, text: str) -> int:
        """A deadline as written in a command, in ms since the epoch; ValueError when unreadable."""

    def header_text(self, group: Group, lang: str) -> str:
        """The first message of a group: its number, title, deadline, anonymity."""

    def schedule_deadline(self, group: Group) -> None:
        """Close (and remind before) at the group's deadline."""

    def t(self, lang: str, key: str, **params: Any) -> str:
        """A message in ``lang``."""

    async def direct_room(self, user_id: str) -> str:
        """The bot's DM with ``user_id``, made once."""


class Feature(Protocol):
    """One feature of the polls bot: its commands, then (at start) its kinds and jobs, and what it
    does with every event the bot sees."""

    def commands(self, app: Polls) -> Sequence[Command]:
        """Its commands (asked before start, so that the help lists them)."""

    def attach(self, app: Polls) -> None:
        """At start: add its kinds of group and jobs to ``app``."""

    async def on_event(self, app: Polls, ctx: Context) -> None:
        """Every event the bot sees, after the bot's own handling."""
