"""Read reminders (既読確認): who has read a message, and a mention for those who have not.

Used as a reply to the message in question: ``!既読`` lists who has and has not read it,
``!未読リマインド`` mentions those who have not, with a link to it. Who has read what comes from
the read status module (synapse_modules/read_status), asked as the bot: a joined member may ask
about any event of its room. The bot itself and the message's author are left out of both lists.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import aiohttp
from nio import RoomGetEventResponse

from bots.runtime import Command, Context
from bots.runtime.bot import without_reply_fallback
from bots.runtime.fields import typed_get
from bots.runtime.late import Late
from lgwan_chat.core.routes import room_route

from .feature import Polls
from .groups import user_link
from .manage import MANAGER_POWER_LEVEL, is_manager

log = logging.getLogger("lgwan_chat.polls")
#: names listed per list before "and N more"
NAMES_SHOWN = 30
EXCERPT_CHARS = 30


class ReadStatusUnavailable(Exception):
    """The read status module did not answer (not installed, or an error)."""


class MessageNotFound(Exception):
    """The message replied to is not in the room (as the read status module knows it)."""


def reply_target(content: dict) -> str | None:
    """The event a message replies to; None when it is not a reply, or only a thread's fallback
    (a message in a thread points at the thread's latest event without replying to it)."""
    relation = content.get("m.relates_to")
    if not isinstance(relation, dict) or relation.get("is_falling_back") is True:
        return None
    target = (relation.get("m.in_reply_to") or {}).get("event_id") if isinstance(
        relation.get("m.in_reply_to"), dict) else None
    return target if isinstance(target, str) and target.startswith("$") else None


def name_list(names: list[str], more_text: Callable[[int], str]) -> str:
    """At most NAMES_SHOWN names, then "and N more"."""
    shown = "、".join(names[:NAMES_SHOWN])
    return shown + (more_text(len(names) - NAMES_SHOWN) if len(names) > NAMES_SHOWN else "")


class Feature:
    app: Late[Polls] = Late()

    def commands(self, app: Polls) -> list[Command]:
        self.app = app
        return [
            Command("既読", "reads", "polls.cmd.reads", self.reads, (), "polls.example.reads", where="room"),
            Command("未読リマインド", "remind-unread", "polls.cmd.remind_unread", self.remind_unread, (),
                    "polls.example.remind_unread", where="room"),
        ]

    def attach(self, app: Polls) -> None:
        self.app = app

    async def on_event(self, app: Polls, ctx: Context) -> None:
        """Read status is asked of the server when a command needs it: nothing to keep."""

    # --- commands ---

    async def reads(self, ctx: Context) -> None:
        found = await self._status(ctx, "polls.example.reads")
        if found is None:
            return
        _target, author, excerpt, read, unread = found
        names = self._names(ctx.room_id)

        def listed(users: list[str]) -> str:
            return name_list(sorted((names(u) for u in users), key=str.casefold),
                             lambda more: ctx.t("polls.reads.more", count=more)) or ctx.t("polls.reads.nobody")

        lines = [ctx.t("polls.reads.header", message=self._described(ctx.lang, author, excerpt, names)),
                 ctx.t("polls.reads.read", count=len(read), names=listed(read)),
                 ctx.t("polls.reads.unread", count=len(unread), names=listed(unread))]
        await ctx.reply_text("\n".join(lines))

    async def remind_unread(self, ctx: Context) -> None:
        found = await self._status(ctx, "polls.example.remind_unread")
        if found is None:
            return
        target, author, excerpt, _, unread = found
        if not await is_manager(self.app.bot, ctx, author):
            await ctx.reply("polls.reads.not_yours", level=MANAGER_POWER_LEVEL)
            return
        if not unread:
            await ctx.reply("polls.reads.everyone_read")
            return
        await self._mention(ctx.room_id, target, author, excerpt, unread, f"{ctx.event_id}/unread")

    async def _mention(self, room_id: str, target: str, author: str | None, excerpt: str, users: list[str],
                       txn: str) -> None:
        """Mentions of ``users`` as replies to the message, with a link to it, ``per_message`` a time."""
        lang = self.app.bot.language_for("", room_id)
        names = self._names(room_id)
        link = f"https://matrix.to/#/{quote(room_id, safe='!:')}/{quote(target, safe='$:')}"
        text = self.app.t(lang, "polls.reads.reminder", message=self._described(lang, author, excerpt, names))
        per_message = self.app.options.mentions_per_message
        for start in range(0, len(users), per_message):
            chunk = users[start:start + per_message]
            body = f"{text}\n{link}\n" + " ".join(names(u) for u in chunk)
            formatted = (f'{html.escape(text)}<br><a href="{html.escape(link)}">{html.escape(link)}</a><br>'
                         + " ".join(user_link(u, names(u)) for u in chunk))
            await self.app.bot.send(room_id, "m.room.message", {
                "msgtype": "m.text", "body": body, "format": "org.matrix.custom.html", "formatted_body": formatted,
                "m.relates_to": {"m.in_reply_to": {"event_id": target}},
                "m.mentions": {"user_ids": chunk}}, txn_key=f"{txn}/{start}")

    # --- read status ---

    async def _status(self, ctx: Context, example_key: str) -> tuple[str, str | None, str, list[str], list[str]] | None:
        """(message, its author, an excerpt, who read it, who did not), or None once the asker was
        told why not (not a reply, message unknown, read status not available)."""
        target = reply_target(ctx.content)
        if target is None:
            await ctx.reply_text(ctx.t("polls.reads.usage") + "\n" + ctx.t(example_key))
            return None
        try:
            read, unread = await self.read_status(ctx.room_id, target)
        except MessageNotFound:
            await ctx.reply("polls.reads.not_found")
            return None
        except ReadStatusUnavailable as e:
            log.warning("read status not available", extra={"room_id": ctx.room_id, "error": str(e)})
            await ctx.reply("polls.reads.unavailable")
            return None
        author, excerpt = await self._message(ctx.room_id, target)
        left_out = {self.app.bot.config.user_id, author}
        return (target, author, excerpt, [u for u in read if u not in left_out],
                [u for u in unread if u not in left_out])

    async def read_status(self, room_id: str, event_id: str) -> tuple[list[str], list[str]]:
        """Who has read ``event_id`` and who has not, as the read status module answers."""
        path = room_route(room_id, "read_status", event_id)
        try:
            status, body = await self.app.bot.api(path)
        except (aiohttp.ClientError, TimeoutError) as e:
            raise ReadStatusUnavailable(repr(e)) from e
        if status == 404 and isinstance(body, dict) and body.get("errcode") == "M_NOT_FOUND":
            raise MessageNotFound(event_id)
        if status != 200 or not isinstance(body, dict):
            raise ReadStatusUnavailable(f"HTTP {status}: {str(body)[:200]}")
        read, unread = body.get("read"), body.get("unread")
        if not isinstance(read, list) or not isinstance(unread, list):
            raise ReadStatusUnavailable(f"unexpected answer: {str(body)[:200]}")
        return ([r["user_id"] for r in read if isinstance(r, dict) and isinstance(r.get("user_id"), str)],
                [u for u in unread if isinstance(u, str)])

    async def _message(self, room_id: str, event_id: str) -> tuple[str | None, str]:
        """The message's author and the start of its text (what the answers name it by)."""
        response = await self.app.bot.client.room_get_event(room_id, event_id)
        if not isinstance(response, RoomGetEventResponse):
            return None, ""
        source: dict[str, Any] = response.event.source
        content = typed_get(source, "content", dict, {})
        body = typed_get(content, "body", str, "")
        if "m.in_reply_to" in (content.get("m.relates_to") or {}):
            body = without_reply_fallback(body)
        first = next((line.strip() for line in body.splitlines() if line.strip()), "")
        excerpt = first[:EXCERPT_CHARS] + ("…" if len(first) > EXCERPT_CHARS or body.strip() != first else "")
        return source.get("sender"), excerpt

    def _described(self, lang: str, author: str | None, excerpt: str, names: Callable[[str], str]) -> str:
        """How the answers name the message: its author and first words, when the bot could read it."""
        if author is None:
            return self.app.t(lang, "polls.reads.that_message")
        return self.app.t(lang, "polls.reads.message", author=names(author), excerpt=excerpt)

    def _names(self, room_id: str) -> Callable[[str], str]:
        room = self.app.bot.client.rooms.get(room_id)

        def name(user_id: str) -> str:
            # two people with the same display name are told apart by their IDs
            return (room.user_name(user_id) if room is not None else None) or user_id
        return name
