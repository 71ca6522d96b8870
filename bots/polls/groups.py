"""The life of a poll group: made by a command, answered, summarised live, reminded, closed once.

- **Creating** sends a header message, the native polls, and a summary message, each with a
  transaction id derived from the command (a command handled again after a crash sends nothing
  twice and finds the same events).
- **Answers** are kept as they arrive (``record``); the live summary of a group whose answers
  changed is re-rendered and, when its text changed, edited in place (``m.replace``) at most every
  ``summary_interval_s``.
- **Restart**: answers given while the bot was down arrive through the runtime's gap filling; in
  addition, each open group is re-read from the server's relations of its polls when the bot starts
  and before it closes, so a tally never depends on what the bot happened to see.
- **Deadlines and reminders** are jobs in the database, each run once (``scheduler.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import html
import logging
from collections.abc import Callable, Sequence
from typing import Any, Protocol
from urllib.parse import quote

from bots.runtime import Bot
from lgwan_chat.core.i18n import t

from . import events
from .store import Group, Poll, PollStore, now_ms
from .tally import Tally, count

log = logging.getLogger("lgwan_chat.polls")


class Kind(Protocol):
    """What each kind of group (survey, schedule, safety...) decides for itself."""

    def render(self, group: Group, polls: Sequence[Poll], tallies: Sequence[Tally], lang: str,
               names: Callable[[str], str]) -> tuple[str, str]:
        """The summary as (plain text, HTML)."""

    def answered(self, group: Group, polls: Sequence[Poll], tallies: Sequence[Tally]) -> set[str]:
        """Who counts as having answered (reminders go to the others)."""


def user_link(user_id: str, name: str) -> str:
    return f'<a href="https://matrix.to/#/{quote(user_id)}">{html.escape(name)}</a>'


class Groups:
    def __init__(self, bot: Bot, store: PollStore, kinds: dict[str, Kind], summary_interval_s: float):
        self.bot = bot
        self.store = store
        self.kinds = kinds
        self.interval = summary_interval_s
        self._dirty: set[str] = set()
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None
        # One summary edit at a time per group, rendered inside the lock: an edit rendered before a
        # close but sent after it would leave Element showing 受付中 on a closed group.
        self._summary_locks: dict[str, asyncio.Lock] = {}

    # --- lifecycle ---

    def start(self) -> None:
        self._task = asyncio.ensure_future(self._summaries())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task

    async def resync_open(self) -> None:
        """After a start: every open group re-read from the server (answers given while down)."""
        for group in self.store.open_groups():
            try:
                await self.resync(group)
            except Exception:
                log.exception("could not re-read a poll group", extra={"group": group.group_id})

    # --- creating ---

    async def create(self, group: Group, header: str, header_html: str | None,
                     polls: Sequence[tuple[str, Sequence[events.Answer], int]], txn: str) -> Group:
        """Send the header, each poll (question, answers, max_selections) and the summary."""
        if group.header_event_id is None:
            content: dict[str, Any] = {"msgtype": "m.notice", "body": header, "m.mentions": {}}
            if header_html:
                content.update(format="org.matrix.custom.html", formatted_body=header_html)
            event_id = await self.bot.send(group.room_id, "m.room.message", content, txn_key=f"{txn}/header")
            self.store.set_group(group.group_id, header_event_id=event_id)
        existing = {p.position for p in self.store.polls(group.group_id)}
        for position, (question, answers, max_selections) in enumerate(polls):
            if position in existing:
                continue
            content = events.start_content(question, answers, group.disclosed, max_selections)
            event_id = await self.bot.send(group.room_id, events.START, content, txn_key=f"{txn}/poll/{position}")
            self.store.add_poll(event_id, group.group_id, position, group.room_id, question,
                                [(a.id, a.text) for a in answers], max_selections)
        group = self.store.existing_group(group.group_id)
        if group.summary_event_id is None:
            text, formatted = self.render(group, self.bot.language_for("", group.room_id))
            event_id = await self.bot.send(group.room_id, "m.room.message", {
                "msgtype": "m.notice", "body": text, "format": "org.matrix.custom.html", "formatted_body": formatted,
                "m.mentions": {}}, txn_key=f"{txn}/summary")
            self.store.set_group(group.group_id, summary_event_id=event_id, summary_text=text)
        return self.store.existing_group(group.group_id)

    # --- answers ---

    def record(self, event: dict) -> str | None:
        """A response (or its redaction) to one of our polls: kept; returns the group it changed."""
        poll_id = events.poll_of(event)
        poll = self.store.poll(poll_id) if poll_id else None
        if poll is None:
            return None
        answers = events.response_answers(event)
        if self.store.add_response(event["event_id"], poll.poll_event_id, event.get("sender", ""),
                                   int(event.get("origin_server_ts") or 0), answers):
            self.touch(poll.group_id)
        return poll.group_id

    def forget(self, redacted_event_id: str) -> None:
        poll_id = self.store.forget_response(redacted_event_id)
        poll = self.store.poll(poll_id) if poll_id else None
        if poll is not None:
            self.touch(poll.group_id)

    def touch(self, group_id: str) -> None:
        self._dirty.add(group_id)
        self._wake.set()

    async def resync(self, group: Group) -> None:
        """Every response the server holds for the group's polls (``/relations``), kept."""
        for poll in self.store.polls(group.group_id):
            for event in await self._relations(poll.room_id, poll.poll_event_id):
                if event.get("type") in events.RESPONSE_TYPES:
                    self.record(event)
        self.touch(group.group_id)

    async def _relations(self, room_id: str, event_id: str) -> list[dict]:
        found: list[dict] = []
        params: dict[str, str] = {"limit": "1000"}
        path = f"/_matrix/client/v1/rooms/{quote(room_id)}/relations/{quote(event_id)}/m.reference"
        while True:
            status, page = await self.bot.api(path, params)
            if status != 200 or not isinstance(page, dict):
                raise RuntimeError(f"relations of {event_id}: HTTP {status}")
            found.extend(e for e in page.get("chunk", []) if isinstance(e, dict))
            if not page.get("next_batch"):
                return found
            params["from"] = page["next_batch"]

    # --- tallies and the live summary ---

    def tallies(self, group: Group, polls: Sequence[Poll] | None = None) -> list[Tally]:
        polls = polls if polls is not None else self.store.polls(group.group_id)
        return [count(p.answer_ids, p.max_selections, self.store.responses(p.poll_event_id), group.closed_ts)
                for p in polls]

    def render(self, group: Group, lang: str) -> tuple[str, str]:
        polls = self.store.polls(group.group_id)
        return self.kinds[group.kind].render(group, polls, self.tallies(group, polls), lang, self.name_of(group))

    def name_of(self, group: Group) -> Callable[[str], str]:
        return lambda user_id: self.bot.display_name(user_id, group.room_id)

    async def refresh(self, group_id: str) -> None:
        lock = self._summary_locks.setdefault(group_id, asyncio.Lock())
        async with lock:
            await self._refresh(group_id)

    async def _refresh(self, group_id: str) -> None:
        group = self.store.group(group_id)
        if group is None or group.summary_event_id is None:
            return
        text, formatted = self.render(group, self.bot.language_for("", group.room_id))
        if text == group.summary_text:
            return
        digest = hashlib.sha256(text.encode()).hexdigest()[:16]
        new = {"msgtype": "m.notice", "body": text, "format": "org.matrix.custom.html", "formatted_body": formatted,
               "m.mentions": {}}
        await self.bot.send(group.room_id, "m.room.message", {
            **new, "body": "* " + text, "m.new_content": new,
            "m.relates_to": {"rel_type": "m.replace", "event_id": group.summary_event_id}},
            txn_key=f"{group_id}/summary-edit/{digest}")
        self.store.set_group(group_id, summary_text=text)

    async def _summaries(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._dirty:
                group_id = self._dirty.pop()
                try:
                    await self.refresh(group_id)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("summary update failed", extra={"group": group_id})
                    self._dirty.add(group_id)
                    await asyncio.sleep(5)
            if self.interval:
                await asyncio.sleep(self.interval)

    # --- closing ---

    async def close(self, group: Group, lang: str) -> Group:
        """Re-read the answers, end every poll (end events), mark closed, final summary. Once."""
        if group.open:
            await self.resync(group)
            for poll in self.store.polls(group.group_id):
                await self.bot.send(poll.room_id, events.END, events.end_content(
                    poll.poll_event_id, t("polls.ended", lang)), txn_key=f"{group.group_id}/end/{poll.position}")
            self.store.close_group(group.group_id, now_ms())
            self.store.cancel_jobs(group.group_id)
        group = self.store.existing_group(group.group_id)
        await self.refresh(group.group_id)
        return group

    # --- who has not answered ---

    async def members(self, room_id: str) -> list[str]:
        response = await self.bot.client.joined_members(room_id)
        members = getattr(response, "members", None)
        if members is None:
            raise RuntimeError(f"members of {room_id}: {response}")
        return [m.user_id for m in members if m.user_id != self.bot.config.user_id]

    async def not_answered(self, group: Group) -> list[str]:
        polls = self.store.polls(group.group_id)
        answered = self.kinds[group.kind].answered(group, polls, self.tallies(group, polls))
        return sorted(set(await self.members(group.room_id)) - answered)

    async def mention(self, room_id: str, users: Sequence[str], text: str, txn: str, per_message: int,
                      names: Callable[[str], str]) -> int:
        """``text`` followed by mentions of ``users``, in messages of at most ``per_message`` people."""
        sent = 0
        for start in range(0, len(users), per_message):
            chunk = list(users[start:start + per_message])
            body = text + "\n" + " ".join(names(u) for u in chunk)
            formatted = html.escape(text) + "<br>" + " ".join(user_link(u, names(u)) for u in chunk)
            await self.bot.send(room_id, "m.room.message", {
                "msgtype": "m.text", "body": body, "format": "org.matrix.custom.html", "formatted_body": formatted,
                "m.mentions": {"user_ids": chunk}}, txn_key=f"{txn}/{start}")
            sent += 1
        return sent
