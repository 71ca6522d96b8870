"""The sanitization bot (無害化ボット).

- In a room it is in, every file or image posted from an internet-zone device (the zone module
  marks such uploads untrusted: ``media_status``) is sanitized and the sanitized copy posted as a
  reply with a one-line report; a refusal is a reply too. LGWAN devices cannot open the original
  (the media gate) but can open the bot's copy.
- In a DM, any file sent to the bot is sanitized and sent back, or into the room chosen with
  ``!送信先`` (the sender must be a member of it).
- Files of rooms and DMs wait in one queue (queue.py): fair per room and sender, smallest first by
  the size the media repository stores, a progress message for long ones, cancelled by their sender
  (❌ or !キャンセル), taken up again after a restart and answered once.
- ``!編集用`` in a DM asks for the editable copy of an Office document in a room (by policy): the
  request waits in the same queue, with the same progress message, cancelling and restart.
- ``!アップロードURL`` in a room makes a one-time link to the upload page (upload_page/) for an
  outside contractor with no account; what they upload is sanitized and posted into that room.
- ``!ゲスト作成`` / ``!ゲスト一覧`` / ``!ゲスト延長`` / ``!ゲスト取消`` in a DM, for the staff listed in
  ``guest_managers`` only: guest accounts for contractors who need one, through the guests module's
  route (``/_synapse/client/lgwan/v1/guests``; the bot must be in that module's ``managers``). The
  initial password is shown in the DM only.
"""

from __future__ import annotations

import asyncio
import datetime
import html
import logging
import os
import re
import time
import unicodedata
from collections.abc import Awaitable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

from bots.runtime import Arg, Bot, BotApp, Command, Context
from bots.runtime.bot import TooLarge
from bots.runtime.dates import DateError, parse_deadline
from bots.runtime.fields import typed_get
from bots.runtime.late import Late
from lgwan_chat.core.configcheck.issues import ConfigIssue
from lgwan_chat.core.guest_dates import GuestDateError, date_of, expires_ts
from lgwan_chat.core.i18n import t
from lgwan_chat.core.routes import GUESTS_PATH, media_status_route

from . import config as sanitizer_config
from .config import OFFICE_KINDS
from .delivery import deliver, report
from .engine import AuditLog, Result, Sanitizer
from .links import MIGRATIONS as LINK_MIGRATIONS
from .links import LinkStore, TermsError, parse_terms
from .progress import Progress, edit_txn, replacement
from .queue import KIND_MIGRATION, PROGRESS_MIGRATION, FileQueue, Job, cancel_until_done
from .queue import MIGRATIONS as QUEUE_MIGRATIONS

log = logging.getLogger("lgwan_chat.sanitizer")

#: the bot's tables: upload links, then the queue of room files
MIGRATIONS = [*LINK_MIGRATIONS, QUEUE_MIGRATIONS, PROGRESS_MIGRATION, KIND_MIGRATION]

FILE_MSGTYPES = ("m.image", "m.file", "m.video", "m.audio")
_CLEAR = {"解除", "なし", "clear", "none", "off"}
_LOCALPART = re.compile(r"[a-z0-9._=/+-]+")
#: reactions that cancel a file (on the file or on its progress message)
CANCEL_REACTIONS = {"❌", "✖", "❎"}
#: a link to a message: matrix.to (or a client's) ``.../#/!room:server/$event`` or ``#alias:server/$event``
_EVENT_LINK = re.compile(r"([!#][^/?\s]{1,255})/(\$[^/?\s]{1,255})")


class SanitizerBot(BotApp):
    name = "sanitizer"
    display_name = "無害化"
    schema = sanitizer_config.SanitizerOptions
    migrations = MIGRATIONS

    engine = Late[Sanitizer]()
    links = Late[LinkStore]()
    queue = Late[FileQueue]()

    def check_config(self, raw: Any) -> list[ConfigIssue]:
        return sanitizer_config.check(raw)

    def __init__(self) -> None:
        self.options = sanitizer_config.SanitizerOptions()
        self.page: Any = None
        self._warming: asyncio.Task | None = None

    async def start(self, bot: Bot) -> None:
        self.bot = bot
        self.options = sanitizer_config.options(bot.config.options)
        work_dir = Path(self.options.work_dir or self._default_work_dir(bot))
        work_dir.mkdir(mode=0o700, parents=True, exist_ok=True)  # files being sanitized: the bot's only
        audit_path = self.options.engine.audit_log or str(work_dir / "audit.jsonl")
        self.engine = Sanitizer(self.options.engine, runtime_dir=work_dir / "engine", audit=AuditLog(audit_path))
        self.links = LinkStore(bot.storage)
        self.queue = FileQueue(bot.storage, self.options.engine.concurrency, self.options.small_file_kb * 1024,
                               self._answer_queued, self._answer_cancelled)
        self._shown: dict[str, str] = {}  # progress message -> its file (a ❌ on either cancels)
        if left := self.queue.load():
            log.info("files left from before the restart", extra={"files": left})
        self._warming = asyncio.ensure_future(self._warm())
        if self.options.upload.enabled:
            from .upload_page.server import UploadPage

            self.page = UploadPage(self)
            await self.page.start()

    @staticmethod
    def _default_work_dir(bot: Bot) -> Path:
        """Next to the bot's SQLite file; with PostgreSQL storage, in the service's state directory
        (systemd's ``STATE_DIRECTORY``, else ``$XDG_STATE_HOME`` or ``~/.local/state``): never a
        fixed name in the shared temporary folder, which another account could create first."""
        if bot.config.sqlite_path:
            return bot.config.sqlite_path.parent / "sanitizer-work"
        state = (os.environ.get("STATE_DIRECTORY") or os.environ.get("XDG_STATE_HOME")
                 or Path.home() / ".local" / "state")
        return Path(state) / "lgwan-chat" / f"{bot.config.name}-work"

    async def _warm(self) -> None:
        try:
            await self.engine.warm()
            log.info("renderers warm")
        except Exception:  # the first Office file starts LibreOffice instead
            log.exception("could not start the renderers ahead of time")

    async def stop(self) -> None:
        if self._warming is not None:
            # a renderer half started ahead of time is killed before the engine closes
            await cancel_until_done([self._warming])
        if self.page is not None:
            await self.page.stop()
        if SanitizerBot.queue.is_set(self):
            await self.queue.stop()
        if SanitizerBot.engine.is_set(self):
            await self.engine.close()

    def commands(self) -> Sequence[Command]:
        return [
            Command("送信先", "target", "sanitizer.cmd.target", self.target, (Arg("room", required=False),),
                    "sanitizer.example.target", where="direct"),
            Command("アップロードURL", "upload-url", "sanitizer.cmd.upload_url", self.upload_url,
                    (Arg("terms", required=False, kind="text"),), "sanitizer.example.upload_url", where="room"),
            Command("アップロードURL一覧", "upload-urls", "sanitizer.cmd.upload_urls", self.upload_urls, (),
                    "sanitizer.example.upload_urls", where="room"),
            Command("アップロードURL取消", "upload-url-revoke", "sanitizer.cmd.upload_url_revoke", self.revoke,
                    (Arg("number", kind="int"),), "sanitizer.example.upload_url_revoke", where="room"),
            Command("ゲスト作成", "guest-create", "sanitizer.cmd.guest_create", self.guest_create,
                    (Arg("guest_spec", kind="text"),), "sanitizer.example.guest_create", where="direct"),
            Command("ゲスト一覧", "guests", "sanitizer.cmd.guests", self.guest_list, (),
                    "sanitizer.example.guests", where="direct"),
            Command("ゲスト延長", "guest-extend", "sanitizer.cmd.guest_extend", self.guest_extend,
                    (Arg("localpart"), Arg("expiry")), "sanitizer.example.guest_extend", where="direct"),
            Command("ゲスト取消", "guest-revoke", "sanitizer.cmd.guest_revoke", self.guest_revoke,
                    (Arg("localpart"),), "sanitizer.example.guest_revoke", where="direct"),
            Command("キャンセル", "cancel", "sanitizer.cmd.cancel", self.cancel, (), "sanitizer.example.cancel"),
            Command("編集用", "editable", "sanitizer.cmd.editable", self.editable, (Arg("link", required=False),),
                    "sanitizer.example.editable", where="direct"),
        ]

    # --- files in rooms and DMs ---

    async def on_message(self, ctx: Context) -> None:
        if ctx.content.get("msgtype") not in FILE_MSGTYPES:
            return
        mxc = ctx.content.get("url")
        if not isinstance(mxc, str):
            if ctx.is_direct or isinstance(ctx.content.get("file"), dict):
                await ctx.reply("sanitizer.encrypted_media" if ctx.content.get("file") else "sanitizer.no_file")
            return
        if not ctx.is_direct and (not self.options.sanitize_rooms or not await self._untrusted(mxc)):
            return
        # files in DMs and rooms wait in the same queue; it orders them by the size the media repository
        # stores, not the one the sender's client claims (``info.size``: a client may say 1 byte)
        self.queue.add(ctx.room_id, ctx.event, await self._stored_size(mxc))

    async def _stored_size(self, mxc: str) -> int:
        limit = self.options.engine.max_file_mb * 1024 * 1024
        try:
            return await self.bot.media_size(mxc, limit)
        except Exception as e:  # cannot tell: last in line among equals, not first (the download is capped)
            log.warning("media size unavailable", extra={"mxc": mxc, "error": repr(e)})
            return limit + 1

    async def _answer_queued(self, job: Job) -> None:
        """One job from the queue, whatever its kind: run with a progress message (a reply to the job's
        event, edited into the answer at the end), answered in the job's room."""
        # after a restart the queue starts before the first sync: rooms, members and names come with it
        await self.bot.synced_once.wait()
        ctx = Context(self.bot, job.room_id, job.event)
        # per kind (queue.py): what answers it, and how its progress message says to cancel it
        kinds = {"file": (self._answer_file, "sanitizer.progress.how_to_cancel"),
                 "editable": (self._answer_editable, "sanitizer.progress.how_to_cancel_request")}
        if job.kind not in kinds:  # a row this version does not know (written by a newer one): not guessed at
            log.warning("queued job of unknown kind", extra={"event_id": job.event_id, "kind": job.kind})
            await ctx.reply("bot.internal_error")
            return
        work, cancel_hint = kinds[job.kind]
        shown = self.options.progress
        progress = Progress(self.bot, job.room_id, job.event_id, ctx.lang, after_s=shown.after_s, pages=shown.pages,
                            every_s=shown.every_s, shown=job.progress_event_id,
                            posted=lambda event_id: self._posted(job.event_id, event_id),
                            cancel_hint=cancel_hint)
        if job.progress_event_id:
            self._shown[job.progress_event_id] = job.event_id
        progress.start()
        try:
            await work(ctx, job, progress)
        except asyncio.CancelledError:
            await progress.stop()
            raise
        except Exception:
            log.exception("queued file failed", extra={"room_id": job.room_id, "event_id": job.event_id})
            await self._say(ctx, ctx.t("bot.internal_error"), await progress.stop(), "failed")
        finally:
            await progress.stop()
            if progress.event_id:
                self._shown.pop(progress.event_id, None)

    def _sanitize_job(self, job: Job, file: Context, progress: Progress,
                      office_policy: dict[str, str] | None = None) -> Awaitable[Result]:
        """The job's file through the engine, telling the progress message and the queue."""
        return self._sanitize(file, file.content["url"], progress.update, office_policy=office_policy,
                              moved=lambda: self.queue.moved(job.event_id))

    async def _answer_file(self, ctx: Context, job: Job, progress: Progress) -> None:
        """A file posted in a room or a DM: answered where it was posted (a DM: back to the sender, or
        into the room chosen with !送信先)."""
        target = await self._target(ctx) if ctx.is_direct else None
        result = await self._sanitize_job(job, ctx, progress)
        await self._answer(ctx, result, target, await progress.stop())

    async def _say(self, ctx: Context, text: str, edit: str | None, txn: str) -> None:
        """A word about ``ctx``'s job: its progress message ``edit`` is replaced by it if one was shown,
        else a reply (``txn``: what it is, so that a reply repeated after a restart is not sent twice; an
        edit is sent again, to stay the latest after the progress edits of the repeat)."""
        if edit is None:
            await ctx.reply_text(text)
        else:
            await self.bot.send(ctx.room_id, "m.room.message", replacement(edit, text),
                                txn_key=edit_txn(f"{ctx.event_id}/{txn}"))

    async def _answer(self, ctx: Context, result: Result, target: str | None, edit: str | None) -> None:
        """The report (replacing the progress message ``edit`` if there is one) and the sanitized copy:
        into the file's room, or for a DM with a target room, into that room and a word in the DM."""
        said = report(result, ctx.lang)
        if target is None or not result.ok:
            await deliver(self.bot, ctx.room_id, result, said, txn_key=ctx.event_id, reply_to=ctx.event_id, edit=edit)
            return
        room_lang = self.bot.language_for("", target)
        who = self._display_name(ctx.sender, target)
        await deliver(self.bot, target, result, ctx.t("sanitizer.forwarded", who=who) + " " + report(result, room_lang),
                      txn_key=f"{ctx.event_id}/target")
        await self._say(ctx, ctx.t("sanitizer.sent_to_target", room=self.bot.room_name(target), report=said), edit,
                        "report")

    async def _target(self, ctx: Context) -> str | None:
        """Where a file sent in a DM goes (!送信先), if the sender may still post there (else says so)."""
        target = self.bot.storage.setting("user", ctx.sender, "sanitizer_target")
        if target and not await self._may_post(ctx.sender, target):
            await ctx.reply("sanitizer.target_lost", room=self.bot.room_name(target))
            self.bot.storage.set_setting("user", ctx.sender, "sanitizer_target", None)
            return None
        return target or None

    def _posted(self, file_event_id: str, progress_event_id: str) -> None:
        self._shown[progress_event_id] = file_event_id
        self.queue.set_progress(file_event_id, progress_event_id)

    async def _answer_cancelled(self, job: Job) -> None:
        """Say a job was cancelled: its progress message says so, or a reply to its event."""
        ctx = Context(self.bot, job.room_id, job.event)
        text = ctx.t("sanitizer.cancel.done", name=self._file_name(job.file_event))
        if job.progress_event_id:
            self._shown.pop(job.progress_event_id, None)
            await self.bot.send(job.room_id, "m.room.message", replacement(job.progress_event_id, text),
                                txn_key=f"{job.event_id}/cancelled")
        else:
            await self.bot.send(job.room_id, "m.room.message", {
                "msgtype": "m.notice", "body": text, "m.mentions": {},
                "m.relates_to": {"m.in_reply_to": {"event_id": job.event_id}}}, txn_key=f"{job.event_id}/cancelled")

    @staticmethod
    def _file_name(event: dict) -> str:
        content = typed_get(event, "content", dict, {})
        name = typed_get(content, "filename", str, None) or typed_get(content, "body", str, None)
        return name or "file"

    # --- cancelling a file: !キャンセル as a reply to it, or ❌ on it or on its progress message ---

    async def cancel(self, ctx: Context) -> None:
        relation = typed_get(ctx.content, "m.relates_to", dict, {})
        target = typed_get(typed_get(relation, "m.in_reply_to", dict, {}), "event_id", str, None)
        if target is None:
            await ctx.reply("sanitizer.cancel.how")
            return
        target = self._shown.get(target, target)
        if not await self._cancel(ctx, target):
            await ctx.reply("sanitizer.cancel.nothing")

    async def on_event(self, ctx: Context) -> None:
        if ctx.event.get("type") != "m.reaction":
            return
        relation = typed_get(ctx.content, "m.relates_to", dict, {})
        key = typed_get(relation, "key", str, "").replace("\ufe0f", "")
        target = typed_get(relation, "event_id", str, None)
        if relation.get("rel_type") != "m.annotation" or key not in CANCEL_REACTIONS or target is None:
            return
        # a ❌ on any other message is someone's opinion, not a request: no answer
        file_event_id = self._shown.get(target, target)
        if self.queue.find(file_event_id) is not None:
            await self._cancel(ctx, file_event_id, answer_to=target)

    async def _cancel(self, ctx: Context, file_event_id: str, answer_to: str | None = None) -> bool:
        """Cancel the file if ``ctx.sender`` sent it (False: no such file waiting or running). A refusal
        answers ``ctx``'s event, or ``answer_to`` (the message a ❌ was put on)."""
        job = self.queue.find(file_event_id)
        if job is None or job.room_id != ctx.room_id:
            return False
        if job.sender != ctx.sender:
            log.info("cancel refused", extra={"event_id": file_event_id, "sender": ctx.sender})
            text = ctx.t("sanitizer.cancel.not_yours", who=self.bot.display_name(job.sender, ctx.room_id))
            if answer_to is None:
                await ctx.reply_text(text)
            else:
                await self.bot.send(ctx.room_id, "m.room.message", {
                    "msgtype": "m.notice", "body": text, "m.mentions": {},
                    "m.relates_to": {"m.in_reply_to": {"event_id": answer_to}}}, txn_key=f"{ctx.event_id}/refused")
            return True
        await self.queue.cancel(file_event_id)
        return True

    # --- !編集用: the editable copy of an Office document, in a DM ---

    def _editable_policy(self) -> dict[str, str] | None:
        """The engine's Office policy for an editable copy: ``strip-active`` for the kinds whose policy
        allows one, every other kind refused; None when no kind does."""
        office = self.options.office
        engine_office = self.options.engine.policy("office")
        allowed = {kind: "strip-active" for kind in OFFICE_KINDS if office.editable(kind, engine_office)}
        return {**{k: "refuse" for k in (*OFFICE_KINDS, "other")}, **allowed} if allowed else None

    async def editable(self, ctx: Context, link: str | None) -> None:
        """The stripped document itself (macros, external links, active fields, embedded objects out),
        for a file the sender can see: named by a link to its message, or the file this command replies to.
        Checked here, then queued like a file (answered by :meth:`_answer_editable`)."""
        if self._editable_policy() is None:
            await ctx.reply("sanitizer.editable.not_allowed")
            return
        found = await self._linked_file(ctx, link)
        if found is None:
            return
        room_id, event = found
        self.queue.add(ctx.room_id, ctx.event, await self._stored_size(event["content"]["url"]), kind="editable",
                       source={"room_id": room_id, "event": event})

    async def _answer_editable(self, ctx: Context, job: Job, progress: Progress) -> None:
        """A !編集用 request from the queue: the policy and the sender's membership checked again (either
        may have changed while it waited, or across a restart), then the copy, or why not, in the DM."""
        policy = self._editable_policy()
        room_id = typed_get(job.source or {}, "room_id", str, "")
        if policy is None:
            await self._say(ctx, ctx.t("sanitizer.editable.not_allowed"), await progress.stop(), "refused")
            return
        if room_id != ctx.room_id and not await self._may_post(ctx.sender, room_id):
            await self._say(ctx, ctx.t("sanitizer.editable.not_member"), await progress.stop(), "refused")
            return
        file = Context(self.bot, room_id, job.file_event)
        result = await self._sanitize_job(job, file, progress, office_policy=policy)
        edit = await progress.stop()
        if result.kind != "office":
            await self._say(ctx, ctx.t("sanitizer.editable.not_office"), edit, "refused")
        elif not result.ok and result.reason is not None and result.reason.key == "sanitizer.refused.policy":
            await self._say(ctx, ctx.t("sanitizer.editable.not_allowed"), edit, "refused")
        else:
            said = ctx.t("sanitizer.editable.header", name=self._file_name(file.event)) + "\n" \
                + report(result, ctx.lang)
            await deliver(self.bot, ctx.room_id, result, said, txn_key=ctx.event_id, reply_to=ctx.event_id, edit=edit)

    async def _linked_file(self, ctx: Context, link: str | None) -> tuple[str, dict] | None:
        """(room, event) of the file ``link`` names (or the one ``ctx`` replies to), if ``ctx.sender``
        is in that room and it is a file; otherwise says why and None."""
        room_id: str | None = None
        event_id: str | None = None
        if link:
            match = _EVENT_LINK.search(unquote(link))
            if match:
                room_id, event_id = await self.bot.find_room(match[1]), match[2]
        else:
            relation = typed_get(ctx.content, "m.relates_to", dict, {})
            event_id = typed_get(typed_get(relation, "m.in_reply_to", dict, {}), "event_id", str, None)
            room_id = ctx.room_id
        if room_id is None or event_id is None:
            await ctx.reply("sanitizer.editable.how")
            return None
        if room_id != ctx.room_id and not await self._may_post(ctx.sender, room_id):
            await ctx.reply("sanitizer.editable.not_member")
            return None
        response = await self.bot.client.room_get_event(room_id, event_id)
        event = getattr(getattr(response, "event", None), "source", None)
        content = typed_get(event, "content", dict, {}) if isinstance(event, dict) else {}
        if not isinstance(event, dict) or content.get("msgtype") not in FILE_MSGTYPES \
                or not isinstance(content.get("url"), str):
            await ctx.reply("sanitizer.editable.not_a_file")
            return None
        return room_id, event

    async def _untrusted(self, mxc: str) -> bool:
        server, _, media_id = mxc.removeprefix("mxc://").partition("/")
        status, body = await self.bot.api(media_status_route(server, media_id))
        if status != 200 or not isinstance(body, dict):
            # Cannot tell (module off, server trouble): sanitize. A needless copy beats a missed one.
            log.warning("media_status unavailable; sanitizing", extra={"mxc": mxc, "status": status})
            return True
        return bool(body.get("untrusted"))

    async def _sanitize(self, ctx: Context, mxc: str, progress: Any = None,
                        office_policy: dict[str, str] | None = None, moved: Any = None) -> Result:
        content = ctx.content
        name = typed_get(content, "filename", str, content.get("body"))
        name = name if isinstance(name, str) and name else "file"
        claimed = (content.get("info") or {}).get("mimetype") if isinstance(content.get("info"), dict) else None
        limit = self.options.engine.max_file_mb * 1024 * 1024
        try:
            data = await self.bot.download(mxc, limit)
        except TooLarge:
            return self.engine.too_large()
        return await self.engine.sanitize(data, name, claimed if isinstance(claimed, str) else None,
                                          source={"room_id": ctx.room_id, "event_id": ctx.event_id,
                                                  "sender": ctx.sender, "mxc": mxc}, progress=progress,
                                          office_policy=office_policy or self.options.office.policies(), moved=moved)

    # --- !送信先 ---

    async def target(self, ctx: Context, room: str | None) -> None:
        if room is None:
            current = self.bot.storage.setting("user", ctx.sender, "sanitizer_target")
            await ctx.reply("sanitizer.target_now" if current else "sanitizer.target_none",
                            room=self.bot.room_name(current) if current else "")
            return
        if unicodedata.normalize("NFKC", room).casefold() in _CLEAR:
            self.bot.storage.set_setting("user", ctx.sender, "sanitizer_target", None)
            await ctx.reply("sanitizer.target_cleared")
            return
        room_id = await self.bot.find_room(room)
        if room_id is None:
            await ctx.reply("sanitizer.target_unknown", room=room)
            return
        if room_id not in self.bot.client.rooms:
            await ctx.reply("sanitizer.target_bot_not_in", room=room)
            return
        if not await self._may_post(ctx.sender, room_id):
            await ctx.reply("sanitizer.target_not_member", room=room)
            return
        self.bot.storage.set_setting("user", ctx.sender, "sanitizer_target", room_id)
        await ctx.reply("sanitizer.target_set", room=self.bot.room_name(room_id))

    async def _may_post(self, user_id: str, room_id: str) -> bool:
        room = self.bot.client.rooms.get(room_id)
        return room is not None and user_id in room.users

    def _display_name(self, user_id: str, room_id: str) -> str:
        name = self.bot.display_name(user_id, room_id)
        return f"{name} ({user_id})" if name != user_id else user_id

    # --- upload links ---

    async def _may_make_links(self, ctx: Context) -> bool:
        minimum = self.options.upload.min_power_level
        return minimum <= 0 or await self.bot.power_level(ctx.room_id, ctx.sender) >= minimum

    async def upload_url(self, ctx: Context, terms: str | None) -> None:
        upload = self.options.upload
        if not upload.enabled:
            await ctx.reply("sanitizer.upload_disabled")
            return
        if not await self._may_make_links(ctx):
            await ctx.reply("sanitizer.upload_not_allowed", level=upload.min_power_level)
            return
        try:
            chosen = parse_terms(terms, upload.default_hours, upload.max_hours, upload.default_max_mb, upload.max_mb)
        except TermsError as e:
            await ctx.explain(e, "sanitizer.example.upload_url")
            return
        token, link = self.links.create(ctx.room_id, ctx.sender, chosen.hours, chosen.max_uses, chosen.max_mb,
                                        ctx.event_id)
        url = upload.public_url + token
        uses = ctx.t("sanitizer.uses_once") if link.max_uses == 1 else (
            ctx.t("sanitizer.uses_many") if link.max_uses is None else ctx.t("sanitizer.uses_n", n=link.max_uses))
        text = ctx.t("sanitizer.upload_link", number=link.number, url=url, expires=ctx.when(link.expires_ts),
                     uses=uses, max_mb=link.max_mb)
        anchor = f'<a href="{html.escape(url, quote=True)}">{html.escape(url)}</a>'
        await ctx.reply_text(text, html.escape(text).replace(html.escape(url), anchor).replace("\n", "<br>"))

    async def upload_urls(self, ctx: Context) -> None:
        links = self.links.in_room(ctx.room_id)
        if not links:
            await ctx.reply("sanitizer.upload_links_none")
            return
        now = int(time.time() * 1000)
        lines = [ctx.t("sanitizer.upload_links_header")]
        for link in links:
            lines.append(ctx.t("sanitizer.upload_links_line", number=link.number, state=ctx.t(
                f"sanitizer.link_state.{link.state(now)}"), expires=ctx.when(link.expires_ts), uses=link.uses,
                max_uses=link.max_uses if link.max_uses is not None else "∞",
                created_by=self.bot.display_name(link.created_by, ctx.room_id)))
        await ctx.reply_text("\n".join(lines))

    async def revoke(self, ctx: Context, number: int) -> None:
        if not await self._may_make_links(ctx):
            await ctx.reply("sanitizer.upload_not_allowed", level=self.options.upload.min_power_level)
            return
        done = self.links.revoke(ctx.room_id, number)
        await ctx.reply("sanitizer.upload_link_revoked" if done else "sanitizer.upload_link_unknown", number=number)

    # --- guest accounts (DM only, guest_managers only) ---

    async def _guest_manager(self, ctx: Context) -> bool:
        if ctx.sender in self.options.guest_managers:
            return True
        log.info("guest command refused", extra={"sender": ctx.sender})
        await ctx.reply("sanitizer.guest_not_allowed")
        return False

    def _guest_user_id(self, localpart: str) -> str | None:
        if localpart.startswith("@"):
            return localpart
        if not _LOCALPART.fullmatch(localpart):
            return None
        return f"@{localpart}:{self.bot.client.user_id.split(':', 1)[1]}"

    @staticmethod
    def _expiry(text: str) -> int | None:
        """The end of that day in Japan time (ms): 2026-12-31 or 12/31; None if unreadable or past."""
        try:
            day = parse_deadline(text, datetime.datetime.now(datetime.timezone.utc))
            return expires_ts(day.date().isoformat())
        except (DateError, GuestDateError):
            return None

    async def _guest_and_expiry(self, ctx: Context, localpart: str, expiry: str) -> tuple[str, int] | None:
        """The guest's user ID and the expiry (ms), or None once the person was told what is wrong."""
        user_id = self._guest_user_id(localpart)
        if user_id is None:
            await ctx.reply("sanitizer.guest_bad_localpart", localpart=localpart)
            return None
        expires = self._expiry(expiry)
        if expires is None:
            await ctx.reply("sanitizer.guest_bad_date", value=expiry)
            return None
        return user_id, expires

    async def _guests_api(self, ctx: Context, method: str, user_id: str | None = None,
                          body: Any = None, suffix: str = "") -> Any:
        path = GUESTS_PATH + (f"/{quote(user_id, safe='')}" if user_id else "") + suffix
        status, answer = await self.bot.api(path, method=method, body=body)
        if status == 200 and isinstance(answer, dict):
            return answer
        error = answer.get("error") if isinstance(answer, dict) else None
        log.warning("guests route refused", extra={"status": status, "method": method, "path": path})
        await ctx.reply("sanitizer.guest_failed", error=error or f"HTTP {status}")
        return None

    async def guest_create(self, ctx: Context, guest_spec: str) -> None:
        if not await self._guest_manager(ctx):
            return
        words = guest_spec.split()
        rooms: list[str] = []
        while words and words[-1][:1] in ("#", "!"):
            rooms.insert(0, words.pop())
        if len(words) < 3:
            await ctx.reply_text(ctx.t("sanitizer.guest_usage") + "\n" + ctx.t("sanitizer.example.guest_create"))
            return
        localpart, name, expiry = words[0], " ".join(words[1:-1]), words[-1]
        target = await self._guest_and_expiry(ctx, localpart, expiry)
        if target is None:
            return
        user_id, expires = target
        guest = await self._guests_api(ctx, "POST", body={"user_id": user_id, "display_name": name,
                                                          "expires_ts": expires, "rooms": rooms}, suffix="/create")
        if guest is None:
            return
        log.info("guest created", extra={"sender": ctx.sender, "guest": user_id})
        lines = [ctx.t("sanitizer.guest_created", user=user_id, name=guest["display_name"],
                       expires=date_of(expires), password=guest["password"])]
        if guest.get("joined"):
            lines.append(ctx.t("sanitizer.guest_joined", rooms=", ".join(map(self.bot.room_name, guest["joined"]))))
        if guest.get("not_joined"):
            lines.append(ctx.t("sanitizer.guest_not_joined",
                               rooms=", ".join(map(self.bot.room_name, guest["not_joined"]))))
        await ctx.reply_text("\n".join(lines))

    async def guest_list(self, ctx: Context) -> None:
        if not await self._guest_manager(ctx):
            return
        answer = await self._guests_api(ctx, "GET")
        if answer is None:
            return
        if not answer.get("guests"):
            await ctx.reply("sanitizer.guests_none")
            return
        lines = [ctx.t("sanitizer.guests_header")]
        for g in answer["guests"]:
            state = ("active" if g["deactivated_ts"] is None else
                     "expired" if g["deactivated_reason"] == "expired" else "revoked")
            lines.append(ctx.t("sanitizer.guests_line", user=g["user_id"], name=g["display_name"],
                               expires=date_of(g["expires_ts"]), state=ctx.t(f"sanitizer.guest_state.{state}"),
                               rooms=", ".join(map(self.bot.room_name, g["rooms"])) or "-"))
        await ctx.reply_text("\n".join(lines))

    async def guest_extend(self, ctx: Context, localpart: str, expiry: str) -> None:
        if not await self._guest_manager(ctx):
            return
        target = await self._guest_and_expiry(ctx, localpart, expiry)
        if target is None:
            return
        user_id, expires = target
        if await self._guests_api(ctx, "PUT", user_id, {"expires_ts": expires}) is not None:
            log.info("guest extended", extra={"sender": ctx.sender, "guest": user_id})
            await ctx.reply("sanitizer.guest_extended", user=user_id, expires=date_of(expires))

    async def guest_revoke(self, ctx: Context, localpart: str) -> None:
        if not await self._guest_manager(ctx):
            return
        user_id = self._guest_user_id(localpart)
        if user_id is None:
            await ctx.reply("sanitizer.guest_bad_localpart", localpart=localpart)
            return
        if await self._guests_api(ctx, "DELETE", user_id) is not None:
            log.info("guest revoked", extra={"sender": ctx.sender, "guest": user_id})
            await ctx.reply("sanitizer.guest_revoked", user=user_id)

    # --- for the upload page ---

    async def deliver_upload(self, room_id: str, token_key: str, uploader: str, results: list[Result]) -> None:
        """Post what a contractor uploaded into the link's room: one notice naming them, then each
        file (its report, then the sanitized copy) as a reply to that notice."""
        lang = self.bot.language_for("", room_id)
        header = t("sanitizer.upload_arrived", lang, who=uploader, count=len(results),
                   sanitized=sum(1 for r in results if r.ok))
        header_id = await self.bot.send(room_id, "m.room.message", {"msgtype": "m.notice", "body": header,
                                                                     "m.mentions": {}},
                                        txn_key=f"{token_key}/header")
        for index, result in enumerate(results):
            name = result.outputs[0].filename if result.ok else "-"
            await deliver(self.bot, room_id, result, f"{index + 1}. {report(result, lang)}",
                          txn_key=f"{token_key}/{index}", reply_to=header_id)
            log.info("upload delivered", extra={"room_id": room_id, "file": name, "verdict": result.verdict})
