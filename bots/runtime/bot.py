"""The runtime every bot of the suite runs on: session, sync loop, dispatch, replies, invites.

A bot (memo pad, sanitizer, polls) is a :class:`BotApp`: its commands, what it does with other
messages and events, its tables. The runtime does the rest the same way for all of them:

- logs in once, keeps the access token and device id, restores them on restart (the device keeps
  its zone binding) and never logs out;
- keeps the sync position after each batch and resumes from it; the first sync after a start asks
  for full state; a timeline cut short ("limited") is filled from ``/messages`` back to the previous
  position, so nothing sent while the bot was down is skipped;
- handles each event once: its id is recorded after handling, and replies carry a transaction id
  derived from the event, so an event handled again after a crash does not reply twice;
- retries with backoff on rate limits, server errors and network loss; a failing handler is
  logged and answered with an apology, never the end of the bot;
- acts only on what happened after it joined a room (not on the history it can read there), and
  answers commands only in ``m.text`` (``m.notice`` is what bots send: never answered);
- on SIGTERM, gives the event at hand a few seconds, then cancels it: not recorded as handled, it
  is handled again after the restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import html
import io
import itertools
import logging
import random
import time
import unicodedata
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, ClassVar
from urllib.parse import quote, unquote

import aiohttp
from nio import (
    AsyncClient,
    AsyncClientConfig,
    ErrorResponse,
    LoginResponse,
    MessageDirection,
    ProfileGetDisplayNameResponse,
    ProfileSetDisplayNameResponse,
    RoomMessagesResponse,
    RoomResolveAliasResponse,
    SyncResponse,
    UploadResponse,
    WhoamiResponse,
)

from lgwan_chat.core.configcheck.issues import ConfigIssue
from lgwan_chat.core.i18n import LANGUAGES, t

from . import clock
from .commands import Arg, Command, CommandSet, ParseError, split_prefix
from .config import RuntimeConfig
from .config import check as check_section
from .fields import typed_get
from .late import Late
from .metrics import EVENTS_HANDLED, HANDLER_ERRORS, LAST_SYNC, SYNC_FAILURES
from .storage import RUNTIME_MIGRATIONS, Storage

log = logging.getLogger("lgwan_chat.bots")

SYNC_TIMEOUT_MS = 30_000
MAX_BACKOFF_S = 60.0
#: after SIGTERM, how long the event being handled may take to finish; then it is cancelled (not
#: recorded as handled, so handled again after the restart, its replies deduplicated by txn id)
STOP_GRACE_S = 3.0
HANDLED_KEPT_MS = 14 * 24 * 3600 * 1000
#: room versions where the creator is an ordinary power level (12 and later: creators outrank all)
PRE_CREATOR_POWER_VERSIONS = {str(v) for v in range(1, 12)}


class TooLarge(Exception):
    """A download went past the size the bot accepts."""


def without_reply_fallback(body: str) -> str:
    """A reply's body without the quote of the message replied to that clients before MSC2781
    (Element among them) put first: ``> <@user:server> text`` lines, then a blank line."""
    lines = body.split("\n")
    quoted = 0
    while quoted < len(lines) and lines[quoted].startswith(">"):
        quoted += 1
    if quoted and (quoted == len(lines) or not lines[quoted].strip()):
        return "\n".join(lines[quoted + 1:])
    return body


class BotApp:
    """What a bot adds to the runtime. Override what the bot needs."""

    name = "bot"
    #: the display name staff see (the account's profile), unless the config's ``display_name``
    #: says otherwise; None: the runtime leaves the profile alone
    display_name: ClassVar[str | None] = None
    #: the bot's own config keys, validated with the runtime's: a config class
    #: (core/configcheck/typed.py), or a JSON schema per key
    schema: ClassVar[type | dict[str, dict]] = {}
    #: the bot's tables, as numbered lists of statements (see Storage.migrate)
    migrations: ClassVar[list[list[str]]] = []
    #: the runtime, for a bot that keeps it in ``start``
    bot: Late[Bot] = Late()

    def check_config(self, raw: Any) -> list[ConfigIssue]:
        """The rules of this bot's ``bots: <name>:`` section, the ones check-config runs too
        (default: the runtime's keys and ``schema``). Checked at start on this section only."""
        return check_section(raw, self.schema)

    def commands(self) -> Sequence[Command]:
        return ()

    async def start(self, bot: Bot) -> None:
        """Called once logged in, before the first sync."""

    async def on_message(self, ctx: Context) -> None:
        """A message that is not a command (text, image, file...) in a room the bot is in."""

    async def on_event(self, ctx: Context) -> None:
        """Any other room event (reactions, redactions, state)."""

    async def on_joined(self, bot: Bot, room_id: str, inviter: str, direct: bool) -> None:
        """The bot accepted an invitation."""

    async def stop(self) -> None:
        """The bot is stopping: close what ``start`` opened (servers, worker processes)."""


class Context:
    """One event being handled: who, where, in which language, and how to answer."""

    def __init__(self, bot: Bot, room_id: str, event: dict):
        self.bot = bot
        self.room_id = room_id
        self.event = event
        self.event_id: str = event.get("event_id", "")
        self.sender: str = event.get("sender", "")
        self.content: dict = typed_get(event, "content", dict, {})
        self.lang = bot.language_for(self.sender, room_id)
        self._replies = 0

    @property
    def is_direct(self) -> bool:
        return self.bot.is_direct(self.room_id)

    def t(self, key: str, /, **params: Any) -> str:
        return t(key, self.lang, **params)

    def when(self, ts_ms: int, with_zone: bool = True) -> str:
        """A time for this reader in the configured zone, the zone said (not in lines of a list)."""
        return self.bot.when(ts_ms, self.lang, with_zone)

    async def explain(self, error: Exception, example_key: str) -> None:
        """Answer bad input: what is wrong (an :class:`InputError`'s message, in the reader's
        language), then an example of the command (``example_key``)."""
        key = getattr(error, "key", None)
        params = getattr(error, "params", None) or {}
        message = self.t(key, **params) if key else str(error)
        await self.reply_text(message + "\n" + self.t(example_key))

    async def reply(self, key: str, /, html_text: str | None = None, **params: Any) -> str | None:
        """Answer in the sender's language, as a reply to the event."""
        return await self.reply_text(self.t(key, **params), html_text)

    async def reply_text(self, text: str, html_text: str | None = None, extra: dict | None = None) -> str | None:
        self._replies += 1
        content: dict[str, Any] = {"msgtype": "m.notice", "body": text,
                                   "m.relates_to": {"m.in_reply_to": {"event_id": self.event_id}},
                                   "m.mentions": {}}
        content["format"] = "org.matrix.custom.html"
        content["formatted_body"] = html_text if html_text is not None else html.escape(text).replace("\n", "<br>")
        if extra:
            content.update(extra)
        return await self.bot.send(self.room_id, "m.room.message", content,
                                   txn_key=f"{self.event_id}/{self._replies}")

    async def send(self, event_type: str, content: dict) -> str:
        """Another event in this room, also sent at most once for this event."""
        self._replies += 1
        return await self.bot.send(self.room_id, event_type, content, txn_key=f"{self.event_id}/{self._replies}")


class Bot:
    def __init__(self, config: RuntimeConfig, app: BotApp, storage: Storage | None = None):
        self.config = config
        self.app = app
        self.storage = storage or Storage(config.sqlite_path, config.postgres_dsn)
        self.storage.migrate("runtime", RUNTIME_MIGRATIONS)
        if app.migrations:
            self.storage.migrate(app.name, app.migrations)
        self.client = AsyncClient(config.homeserver_url, config.user_id, config=AsyncClientConfig(
            store_sync_tokens=False, encryption_enabled=False, request_timeout=SYNC_TIMEOUT_MS / 1000 + 30,
            max_timeout_retry_wait_time=MAX_BACKOFF_S))
        builtin = [
            Command("ヘルプ", "help", "bot.cmd.help", self._help, (Arg("command", required=False),)),
            Command("言語", "language", "bot.cmd.language", self._language,
                    (Arg("language", required=False), Arg("scope", required=False)), "bot.example.language"),
        ]
        self.commands = CommandSet([*app.commands(), *builtin])
        self._http: aiohttp.ClientSession | None = None
        self._stopping = asyncio.Event()
        self.synced_once = asyncio.Event()

    # --- lifecycle ---

    async def run(self) -> None:
        work = asyncio.ensure_future(self._run())
        stopping = asyncio.ensure_future(self._stopping.wait())
        try:
            await asyncio.wait({work, stopping}, return_when=asyncio.FIRST_COMPLETED)
            if not work.done():  # stop asked: a short grace for the event at hand, then cancel
                await asyncio.wait({work}, timeout=STOP_GRACE_S)
                if not work.done():
                    log.info("stopping: cancelling the work at hand; it is done again after the restart")
                    work.cancel()
            try:
                await work
            except asyncio.CancelledError:
                if not self._stopping.is_set():
                    raise
        finally:
            stopping.cancel()
            if not work.done():
                work.cancel()
            try:
                await self.app.stop()
            except Exception:
                log.exception("the bot's own stop failed")
            if self._http is not None:
                await self._http.close()
            await self.client.close()  # the session only: never log out, the device stays bound
            self.storage.close()

    def stop(self) -> None:
        self._stopping.set()

    async def _run(self) -> None:
        await self._login()
        await self._set_display_name()
        await self.app.start(self)
        await self._sync_forever()

    async def _login(self) -> None:
        token, device = self.storage.get("access_token"), self.storage.get("device_id")
        if token and device:
            self.client.restore_login(self.config.user_id, device, token)
            whoami = await self.client.whoami()
            if isinstance(whoami, WhoamiResponse):
                log.info("session restored", extra={"device_id": device})
                return
            log.warning("stored session refused, logging in again", extra={"device_id": device,
                                                                           "error": str(whoami)})
        if not self.config.password:
            raise RuntimeError(f"{self.config.user_id}: パスワードがありません / no password to log in with")
        for attempt in itertools.count(1):
            # The same device id again if there was one: it keeps its zone binding.
            if device:
                self.client.device_id = device
            response = await self.client.login(self.config.password, device_name=self.config.device_name)
            if isinstance(response, LoginResponse):
                self.storage.put("access_token", response.access_token)
                self.storage.put("device_id", response.device_id)
                log.info("logged in", extra={"device_id": response.device_id})
                return
            log.error("login failed", extra={"error": str(response), "attempt": attempt})
            await self._backoff(attempt, response)
            if self._stopping.is_set():
                raise asyncio.CancelledError  # stopped before ever logging in

    async def _set_display_name(self) -> None:
        """Give the account the bot's name (without it Element shows ``sanitizer`` from the user ID)."""
        wanted = self.config.display_name if self.config.display_name is not None else self.app.display_name
        if not wanted:
            return
        current = await self.client.get_displayname()
        if isinstance(current, ProfileGetDisplayNameResponse) and current.displayname == wanted:
            return
        answer = await self.client.set_displayname(wanted)
        if not isinstance(answer, ProfileSetDisplayNameResponse):  # the bot works without it
            log.warning("display name not set", extra={"error": str(answer)})

    # --- sync ---

    async def _sync_forever(self) -> None:
        since = self.storage.get("next_batch")
        first = True
        failures = 0
        while not self._stopping.is_set():
            try:
                response = await self._sync(since, full_state=first)
                if response is None:  # stopping
                    break
            except asyncio.CancelledError:
                raise
            except Exception as e:  # network loss, server down: try again later
                failures += 1
                log.warning("sync failed", extra={"error": repr(e), "attempt": failures})
                SYNC_FAILURES.labels(self.config.name).inc()
                await self._backoff(failures)
                continue
            if not isinstance(response, SyncResponse):
                failures += 1
                log.warning("sync refused", extra={"error": str(response), "attempt": failures})
                SYNC_FAILURES.labels(self.config.name).inc()
                await self._backoff(failures, response)
                continue
            try:
                await self._handle_sync(response, since)
            except asyncio.CancelledError:
                raise
            except Exception as e:  # e.g. a gap not filled: the same batch again (handled events are skipped)
                failures += 1
                log.warning("sync batch not fully handled", extra={"error": repr(e), "attempt": failures})
                SYNC_FAILURES.labels(self.config.name).inc()
                await self._backoff(failures)
                continue
            failures = 0
            LAST_SYNC.labels(self.config.name).set_to_current_time()
            since = response.next_batch
            self.storage.put("next_batch", since)
            if first:
                self.storage.forget_handled_before(int(time.time() * 1000) - HANDLED_KEPT_MS)
                log.info("ready", extra={"user_id": self.config.user_id, "device_id": self.client.device_id})
            first = False
            self.synced_once.set()

    async def _sync(self, since: str | None, full_state: bool) -> Any:
        stop = asyncio.ensure_future(self._stopping.wait())
        sync = asyncio.ensure_future(self.client.sync(
            timeout=0 if full_state else SYNC_TIMEOUT_MS, since=since, full_state=full_state,
            sync_filter={"room": {"timeline": {"limit": 50}}}))
        done, _ = await asyncio.wait({stop, sync}, return_when=asyncio.FIRST_COMPLETED)
        if sync not in done:
            sync.cancel()
            return None
        stop.cancel()
        return sync.result()

    async def _backoff(self, attempt: int, response: Any = None) -> None:
        retry_ms = getattr(response, "retry_after_ms", None)
        delay = retry_ms / 1000 if retry_ms else min(MAX_BACKOFF_S, 2 ** min(attempt, 6)) * random.uniform(0.5, 1.0)
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), delay)

    async def _handle_sync(self, response: SyncResponse, since: str | None) -> None:
        for event in response.account_data_events:
            content = getattr(event, "content", None)
            if getattr(event, "type", None) == "m.direct" and isinstance(content, dict):
                self._learn_direct(content)
        for room_id, invite in response.rooms.invite.items():
            await self._guard(self._on_invite(room_id, invite), what="invite", room_id=room_id)
        if since is None:
            return  # the very first sync: history from before the bot existed is not acted on
        for room_id, room in response.rooms.join.items():
            events = [e.source for e in room.timeline.events]
            after_join = self._after_own_join(events)
            if after_join is not None:
                events = after_join  # joined in this batch: what came before is the room's history
            elif room.timeline.limited and room.timeline.prev_batch:
                missed = await self._missed(room_id, room.timeline.prev_batch, since)
                after_join = self._after_own_join(missed)
                events = (missed if after_join is None else after_join) + events
            for event in events:
                await self._handle_event(room_id, event)

    def _after_own_join(self, events: list[dict]) -> list[dict] | None:
        """The events after the bot's own join among ``events``; None when it did not join there."""
        for index in range(len(events) - 1, -1, -1):
            event = events[index]
            if (event.get("type") == "m.room.member" and event.get("state_key") == self.config.user_id
                    and (event.get("content") or {}).get("membership") == "join"
                    and ((event.get("unsigned") or {}).get("prev_content") or {}).get("membership") != "join"):
                return events[index + 1:]
        return None

    async def _missed(self, room_id: str, before: str, since: str) -> list[dict]:
        """The events of a cut-short timeline between the previous sync and the shown part."""
        missed: list[dict] = []
        start = before
        while True:
            page = await self.client.room_messages(room_id, start=start, end=since,
                                                   direction=MessageDirection.back, limit=100)
            if not isinstance(page, RoomMessagesResponse):  # never skip what could not be fetched
                raise RuntimeError(f"filling a gap in {room_id}: {page}")
            if not page.chunk:
                break
            missed.extend(e.source for e in page.chunk)
            if not page.end or page.end == start:
                break
            start = page.end
        log.info("filled a gap", extra={"room_id": room_id, "events": len(missed)})
        return list(reversed(missed))

    # --- events ---

    async def _handle_event(self, room_id: str, event: dict) -> None:
        event_id = event.get("event_id")
        if not event_id or event.get("sender") == self.config.user_id or self.storage.was_handled(event_id):
            return
        started = time.monotonic()
        ctx = Context(self, room_id, event)
        outcome = await self._guard(self._dispatch(ctx), what="event", room_id=room_id, event_id=event_id, ctx=ctx)
        self.storage.mark_handled(event_id)
        EVENTS_HANDLED.labels(self.config.name, outcome).inc()
        log.info("handled", extra={"room_id": room_id, "event_id": event_id, "type": event.get("type"),
                                   "outcome": outcome, "ms": round(1000 * (time.monotonic() - started), 1)})

    async def _guard(self, work: Awaitable[Any], what: str, ctx: Context | None = None, **fields: Any) -> str:
        """Run one handler; whatever goes wrong stays with this event."""
        try:
            result = await work
            return result if isinstance(result, str) else "ok"
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception(f"{what} handler failed", extra=fields)
            HANDLER_ERRORS.labels(self.config.name, what).inc()
            if ctx is not None:
                try:
                    await ctx.reply("bot.internal_error")
                except Exception:
                    log.exception("could not apologise", extra=fields)
            return "error"

    async def _dispatch(self, ctx: Context) -> str:
        event = ctx.event
        if event.get("type") == "m.room.message" and "state_key" not in event:
            body = ctx.content.get("body")
            relation = ctx.content.get("m.relates_to") or {}
            if relation.get("rel_type") == "m.replace":
                return "edit-ignored"  # an edit is not a new command or memo
            if isinstance(body, str) and "m.in_reply_to" in relation:
                body = without_reply_fallback(body)  # a command sent as a reply is still a command
            after = split_prefix(body, self.config.command_prefixes) if isinstance(body, str) else None
            # m.notice is what bots send and must never be answered (two bots would loop)
            if after is not None and ctx.content.get("msgtype") == "m.text":
                return await self._command(ctx, after)
            await self.app.on_message(ctx)
            return "message"
        await self.app.on_event(ctx)
        return "event"

    async def _command(self, ctx: Context, after_prefix: str) -> str:
        prefix = self.config.command_prefixes[0]
        try:
            invocation = self.commands.parse(after_prefix)
        except ParseError as e:
            if e.key == "bot.unknown_command" and not e.suggestions and not ctx.is_direct:
                # Rooms often hold several bots: a command none of ours resembles is another bot's.
                return "not-mine"
            await ctx.reply_text(e.message(ctx.lang, prefix) + "\n" + ctx.t("bot.see_help", help=f"{prefix}"
                                 + ("ヘルプ" if ctx.lang == "ja" else "help")))
            return "bad-command"
        command = invocation.command
        if command.where == "direct" and not ctx.is_direct:
            await ctx.reply("bot.direct_only", command=prefix + (command.ja if ctx.lang == "ja" else command.en))
            return "wrong-room"
        if command.where == "room" and ctx.is_direct:
            await ctx.reply("bot.room_only", command=prefix + (command.ja if ctx.lang == "ja" else command.en))
            return "wrong-room"
        await command.handler(ctx, **invocation.args)
        return f"command:{command.en}"

    async def _help(self, ctx: Context, command: str | None) -> None:
        prefix = self.config.command_prefixes[0]
        if command:
            found = self.commands.find(command.lstrip("!！"))
            if found is None:
                await ctx.reply("bot.unknown_command", name=command, suggestion="-")
                return
            await ctx.reply_text(self.commands.help_for(found, ctx.lang, prefix))
            return
        await ctx.reply_text(self.commands.help(ctx.lang, prefix))

    async def _language(self, ctx: Context, language: str | None, scope: str | None) -> None:
        """Per person by default; ``ルーム`` / ``room`` sets the room's default (for everyone in it
        who has not chosen a language of their own)."""
        aliases = {"ja": "ja", "日本語": "ja", "japanese": "ja", "en": "en", "english": "en", "英語": "en"}
        if language is None:
            await ctx.reply("bot.language_now", language=ctx.t(f"bot.language_name.{ctx.lang}"))
            return
        chosen = aliases.get(unicodedata.normalize("NFKC", language).casefold())
        if chosen is None:
            await ctx.reply("bot.language_unknown", value=language)
            return
        for_room = scope is not None and unicodedata.normalize("NFKC", scope).casefold() in ("room", "ルーム", "部屋")
        if scope is not None and not for_room:
            await ctx.reply("bot.language_scope_unknown", value=scope)
            return
        if for_room:
            self.storage.set_setting("room", ctx.room_id, "lang", chosen)
            ctx.lang = self.language_for(ctx.sender, ctx.room_id)
            await ctx.reply("bot.language_set_room", language=ctx.t(f"bot.language_name.{chosen}"))
            return
        self.storage.set_setting("user", ctx.sender, "lang", chosen)
        ctx.lang = chosen
        await ctx.reply("bot.language_set", language=ctx.t(f"bot.language_name.{chosen}"))

    # --- invites ---

    async def _on_invite(self, room_id: str, invite: Any) -> str:
        inviter, direct = None, False
        for event in invite.invite_state:
            source = getattr(event, "source", {}) or {}
            if source.get("type") == "m.room.member" and source.get("state_key") == self.config.user_id:
                inviter = source.get("sender")
                # nio moves the content of invite-state member events out of .source
                content = getattr(event, "content", None) or source.get("content") or {}
                direct = bool(content.get("is_direct"))
        policy = self.config.invites
        server = self.config.server_name
        accept = inviter is not None and (
            policy.accept_from == "any" or (policy.accept_from == "local" and inviter.endswith(":" + server)))
        if accept and policy.rooms == "direct_only":
            accept = direct
        if accept and policy.rooms == "allowed_only":
            accept = room_id in policy.allowed_rooms
        if inviter is None or not accept:
            await self.client.room_leave(room_id)
            log.info("invite declined", extra={"room_id": room_id, "inviter": inviter})
            return "declined"
        joined = await self.client.join(room_id)
        if isinstance(joined, ErrorResponse):
            raise RuntimeError(f"join {room_id}: {joined}")
        if direct:
            await self.mark_direct(room_id, inviter)
        log.info("invite accepted", extra={"room_id": room_id, "inviter": inviter, "direct": direct})
        await self.app.on_joined(self, room_id, inviter, direct)
        return "joined"

    # --- helpers for bots ---

    def is_direct(self, room_id: str) -> bool:
        """A DM with the bot: a room marked as one, i.e. the bot was invited with ``is_direct`` (what
        a client sets when it starts a DM and records in its ``m.direct``), or the bot made it as a
        DM. Never the member count: a new room with one colleague and the bot is a room, and a DM
        stays a DM when someone else is invited."""
        return bool(self.storage.setting("room", room_id, "direct_with"))

    async def mark_direct(self, room_id: str, user_id: str) -> None:
        """``room_id`` is the bot's DM with ``user_id``: kept in the bot's storage and in its own
        ``m.direct`` account data, as clients keep theirs (on the server, it outlives the storage:
        read back at the next start)."""
        self.storage.set_setting("room", room_id, "direct_with", user_id)
        try:
            await self._record_direct(room_id, user_id)
        except Exception:  # the storage has it: the copy in m.direct is a safeguard, not a reason to fail
            log.warning("could not record the DM in m.direct", extra={"room_id": room_id}, exc_info=True)

    async def _record_direct(self, room_id: str, user_id: str) -> None:
        path = f"/_matrix/client/v3/user/{quote(self.config.user_id)}/account_data/m.direct"
        status, current = await self.api(path)
        current = current if status == 200 and isinstance(current, dict) else {}
        rooms = typed_get(current, user_id, list, [])
        if room_id in rooms:
            return
        status, _ = await self.api(path, method="PUT", body={**current, user_id: [*rooms, room_id]})
        if status != 200:
            raise RuntimeError(f"m.direct: HTTP {status}")

    def _learn_direct(self, content: dict) -> None:
        """The bot's own ``m.direct`` (from sync): its DMs, also those its storage does not know."""
        for user_id, rooms in content.items():
            for room_id in rooms if isinstance(rooms, list) else ():
                if isinstance(room_id, str) and not self.storage.setting("room", room_id, "direct_with"):
                    self.storage.set_setting("room", room_id, "direct_with", user_id)

    def display_name(self, user_id: str, room_id: str | None = None) -> str:
        """How clients show ``user_id``: the display name in ``room_id`` (or any room the bot shares
        with them), from the synced room state; the user ID when there is none."""
        rooms = [self.client.rooms.get(room_id)] if room_id else []
        for room in rooms + list(self.client.rooms.values()):
            user = room.users.get(user_id) if room is not None else None
            if user is not None and user.display_name:
                return user.display_name
        return user_id

    def joined_members(self, room_id: str) -> set[str]:
        """Who has joined ``room_id`` as the bot's sync holds it (no request, any size); not the bot,
        not those only invited."""
        room = self.client.rooms.get(room_id)
        if room is None:
            return set()
        return {u for u in room.users if u not in room.invited_users and u != self.config.user_id}

    def room_name(self, room_id: str) -> str:
        """How clients name the room (its name, alias or members), from the synced state; the room
        ID when the bot does not know it."""
        room = self.client.rooms.get(room_id)
        return room.display_name if room is not None and room.display_name else room_id

    async def find_room(self, text: str) -> str | None:
        """The room ``text`` names: a room ID, a ``#alias:server`` (asked of the server), a
        matrix.to link to either, or the name of exactly one room the bot is in. None when none."""
        text = text.strip().strip("<>")
        if "matrix.to/#/" in text:
            text = unquote(text.split("matrix.to/#/", 1)[1].split("?", 1)[0])
        if text.startswith("!") and len(text) > 1:  # room version 12 IDs have no ":server" part
            return text
        if text.startswith("#") and ":" in text:
            response = await self.client.room_resolve_alias(text)
            return response.room_id if isinstance(response, RoomResolveAliasResponse) else None
        matches = [r.room_id for r in self.client.rooms.values()
                   if (r.display_name or "").casefold() == text.casefold()]
        return matches[0] if len(matches) == 1 else None

    # --- times, in the configured time zone (clock.py) ---

    def when(self, ts_ms: int, lang: str, with_zone: bool = True) -> str:
        """``2026-12-05 21:15（日本時間）``."""
        return clock.when(ts_ms, self.config.timezone, lang, with_zone)

    def file_stamp(self) -> str:
        """``20261205-2115`` now in the configured zone, for export file names."""
        return clock.file_stamp(self.config.timezone)

    def language_for(self, user_id: str, room_id: str | None = None) -> str:
        for scope, key in (("user", user_id), ("room", room_id)):
            if key:
                chosen = self.storage.setting(scope, key, "lang")
                if chosen in LANGUAGES:
                    return chosen
        return self.config.language

    @property
    def http(self) -> aiohttp.ClientSession:
        if self._http is None:
            self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=300))
        return self._http

    async def power_level(self, room_id: str, user_id: str) -> float:
        """``user_id``'s power level in the room, asked of the server (current, not cached).
        Creators in room version 12 and later have no number: they outrank everyone (inf)."""
        create = await self._state_event(room_id, "m.room.create") or {}
        created = typed_get(create, "content", dict, {})
        creators = [create.get("sender")]
        if str(created.get("room_version", "1")) not in PRE_CREATOR_POWER_VERSIONS:
            extra = created.get("additional_creators")
            if user_id in creators + (extra if isinstance(extra, list) else []):
                return float("inf")
        levels = (await self._state_event(room_id, "m.room.power_levels") or {}).get("content")
        if not isinstance(levels, dict):  # no power levels event: the creator 100, others 0
            return 100 if user_id in creators else 0
        users = typed_get(levels, "users", dict, {})
        level = users.get(user_id, levels.get("users_default", 0))
        return level if isinstance(level, int) else 0

    async def _state_event(self, room_id: str, event_type: str, state_key: str = "") -> dict | None:
        """A whole state event (sender included), or None when there is none or it cannot be read."""
        status, body = await self.api(f"/_matrix/client/v3/rooms/{quote(room_id)}/state/"
                                      f"{quote(event_type)}/{quote(state_key)}", {"format": "event"})
        return body if status == 200 and isinstance(body, dict) else None

    def request(self, path: str, params: dict | None = None, method: str = "GET",
                body: Any = None) -> Any:
        """One request to the homeserver as the bot (its access token): ``path`` from the server's
        root (``/_matrix/...``, ``/_synapse/...``), ``body`` sent as JSON when not None. Used as
        ``async with bot.request(...) as response``, for answers read as a stream."""
        return self.http.request(method, self.config.homeserver_url + path, params=params or {}, json=body,
                                 headers={"Authorization": f"Bearer {self.client.access_token}"})

    async def api(self, path: str, params: dict | None = None, method: str = "GET",
                  body: Any = None) -> tuple[int, Any]:
        """:meth:`request`, answered with the HTTP status and the decoded JSON (None when not JSON):
        the Matrix APIs nio lacks and the suite's module routes (``/_synapse/client/lgwan/v1/...``)."""
        async with self.request(path, params, method, body) as response:
            try:
                answer = await response.json(content_type=None)
            except ValueError:
                answer = None
            return response.status, answer

    async def download(self, mxc: str, max_bytes: int) -> bytes:
        """The bytes of ``mxc://server/id`` (authenticated media); ``TooLarge`` past ``max_bytes``,
        counted while reading (a size claimed by the sender is not trusted): no more than that is
        read from the server."""
        async with self.request(_download_path(mxc)) as response:
            if response.status != 200:
                raise RuntimeError(f"download {mxc}: HTTP {response.status}")
            data = bytearray()
            async for chunk in response.content.iter_chunked(64 * 1024):
                data += chunk
                if len(data) > max_bytes:
                    raise TooLarge(mxc)
            return bytes(data)

    async def media_size(self, mxc: str, max_bytes: int) -> int:
        """The size of ``mxc://server/id`` as the media repository stores it (its download's
        Content-Length, the body left unread), never the size a sender's client claims; without that
        header the body is counted, up to ``max_bytes`` + 1. Nothing of the bytes is looked at."""
        async with self.request(_download_path(mxc)) as response:
            if response.status != 200:
                raise RuntimeError(f"download {mxc}: HTTP {response.status}")
            if response.content_length is not None:
                return response.content_length
            size = 0
            async for chunk in response.content.iter_chunked(64 * 1024):
                size += len(chunk)
                if size > max_bytes:
                    break
            return size

    async def upload(self, data: bytes, content_type: str, filename: str) -> str:
        """Upload to the media repository; returns the ``mxc://`` URI."""
        uploaded, _ = await self.client.upload(lambda *_: io.BytesIO(data), content_type=content_type,
                                               filename=filename, filesize=len(data))
        if not isinstance(uploaded, UploadResponse):
            raise RuntimeError(f"upload of {filename} failed: {uploaded}")
        return uploaded.content_uri

    async def send(self, room_id: str, event_type: str, content: dict, txn_key: str | None = None) -> str:
        """Send an event; with ``txn_key`` the same key never sends twice (Synapse deduplicates
        transaction ids per device). Server errors are retried a few times."""
        tx_id = "lgwan." + hashlib.sha256(txn_key.encode()).hexdigest()[:32] if txn_key else None
        for attempt in range(1, 6):
            response = await self.client.room_send(room_id, event_type, content, tx_id=tx_id,
                                                   ignore_unverified_devices=True)
            if not isinstance(response, ErrorResponse):
                return response.event_id
            status = getattr(getattr(response, "transport_response", None), "status", 0) or 0
            if status < 500:
                raise RuntimeError(f"send to {room_id} refused: {response}")
            await self._backoff(attempt)
        raise RuntimeError(f"send to {room_id} failed after retries")


Handler = Callable[..., Awaitable[None]]


def _download_path(mxc: str) -> str:
    """The authenticated-media download path of ``mxc://server/id``; ValueError for anything else."""
    server, _, media_id = mxc.removeprefix("mxc://").partition("/")
    if not mxc.startswith("mxc://") or not server or not media_id or "/" in media_id:
        raise ValueError(f"not a media URI: {mxc!r}")
    return f"/_matrix/client/v1/media/download/{quote(server)}/{quote(media_id)}"
