"""The memo pad bot (メモ帳ボット): a private notepad in a DM, room notes, and bookmarks.

- In a DM with the bot, everything a person sends (text, links, photos, files) is kept as a
  numbered memo; commands list, search, show, tag, delete, export and re-post them.
- In a room, ``!ノート作成`` keeps a longer note the bot posts as an ordinary message (pinned when
  it may): edits become Matrix edits of that message, so any client shows the latest text and
  Element shows the edit history, and the bot keeps every version for ``!ノート履歴``.
- Bookmarks are made by reacting 🔖 anywhere; the bookmarks module (synapse_modules/bookmarks)
  sees every room, the bot only lists them (``!ブックマーク``).
"""

from __future__ import annotations

import html
import re
import time
from collections.abc import Sequence
from typing import Any

from nio import RoomGetStateEventResponse, RoomPutStateResponse

from bots.runtime import Arg, Bot, BotApp, Command, Context
from bots.runtime.fields import typed_get
from bots.runtime.late import Late
from lgwan_chat.core.configcheck.issues import ConfigIssue
from lgwan_chat.core.routes import BOOKMARKS, DEVICE_APPROVALS_BOT, media_status_route

from . import config as memo_config
from .export import build_export
from .store import MIGRATIONS, Memo, MemoStore, Note

_URL = re.compile(r"https?://[^\s<>\"'「」（）()]+")
_FILE_KINDS = {"m.image": "image", "m.file": "file", "m.video": "video", "m.audio": "audio"}
_SEARCH_LIMIT = 20


class MemoBot(BotApp):
    name = "memo"
    display_name = "メモ帳"
    schema = memo_config.MemoOptions
    migrations = MIGRATIONS

    store = Late[MemoStore]()

    def check_config(self, raw: Any) -> list[ConfigIssue]:
        return memo_config.check(raw)

    def __init__(self) -> None:
        self.options = memo_config.MemoOptions()

    async def start(self, bot: Bot) -> None:
        self.bot = bot
        self.store = MemoStore(bot.storage)
        self.options = memo_config.options(bot.config.options)

    def commands(self) -> Sequence[Command]:
        page, number = Arg("page", required=False, kind="int"), Arg("number", kind="int")
        return [
            Command("一覧", "list", "memo.cmd.list", self.list, (page,), "memo.example.list", where="direct"),
            Command("検索", "search", "memo.cmd.search", self.search, (Arg("words", kind="text"),),
                    "memo.example.search", where="direct"),
            Command("表示", "show", "memo.cmd.show", self.show, (number,), "memo.example.show", where="direct"),
            Command("削除", "delete", "memo.cmd.delete", self.delete, (number,), "memo.example.delete",
                    where="direct"),
            Command("タグ", "tag", "memo.cmd.tag", self.tag, (number, Arg("tags", required=False, kind="text")),
                    "memo.example.tag", where="direct"),
            Command("タグ一覧", "tags", "memo.cmd.tags", self.tags, (Arg("tag", required=False),),
                    "memo.example.tags", where="direct"),
            Command("ファイル", "file", "memo.cmd.file", self.repost, (number,), "memo.example.file",
                    where="direct"),
            Command("エクスポート", "export", "memo.cmd.export", self.export, (Arg("format", required=False),),
                    "memo.example.export", where="direct"),
            Command("ブックマーク", "bookmarks", "memo.cmd.bookmarks", self.bookmarks, (page,),
                    "memo.example.bookmarks", where="direct"),
            Command("端末", "devices", "devices.cmd.list", self.devices, (Arg("of_user", required=False),),
                    "devices.example.list", where="direct"),
            Command("端末承認", "approve-device", "devices.cmd.approve", self.approve_device,
                    (Arg("device"), Arg("of_user_device", required=False)), "devices.example.approve",
                    where="direct"),
            Command("端末拒否", "reject-device", "devices.cmd.reject", self.reject_device,
                    (Arg("device"), Arg("of_user_device", required=False)), "devices.example.reject",
                    where="direct"),
            Command("ノート作成", "note-new", "notes.cmd.new", self.note_new,
                    (Arg("title"), Arg("body", kind="text")), "notes.example.new", where="room"),
            Command("ノート編集", "note-edit", "notes.cmd.edit", self.note_edit,
                    (number, Arg("body", kind="text")), "notes.example.edit", where="room"),
            Command("ノート一覧", "notes", "notes.cmd.list", self.note_list, (), "notes.example.list", where="room"),
            Command("ノート", "note", "notes.cmd.show", self.note_show, (number,), "notes.example.show",
                    where="room"),
            Command("ノート履歴", "note-history", "notes.cmd.history", self.note_history, (number,),
                    "notes.example.history", where="room"),
        ]

    # --- memos: whatever is sent in the DM ---

    async def on_message(self, ctx: Context) -> None:
        if not ctx.is_direct:
            return
        content = ctx.content
        msgtype = content.get("msgtype")
        body = typed_get(content, "body", str, "")
        ts = int(ctx.event.get("origin_server_ts") or time.time() * 1000)
        if msgtype in _FILE_KINDS:
            mxc = content.get("url")
            if not isinstance(mxc, str) or not mxc.startswith("mxc://"):
                await ctx.reply("memo.file_unreadable")
                return
            info = typed_get(content, "info", dict, {})
            filename = typed_get(content, "filename", str, body)
            memo = self.store.add(ctx.sender, ctx.event_id, ctx.room_id, _FILE_KINDS[msgtype], body, ts, mxc=mxc,
                                  filename=filename or None, mimetype=info.get("mimetype"),
                                  size=typed_get(info, "size", int, None), info=info)
            note = ctx.t("memo.waits_for_sanitization") if await self.untrusted(mxc) else ""
            await ctx.reply("memo.saved_file", number=memo.number, name=filename or "-", note=note)
            return
        if msgtype not in ("m.text", "m.emote", "m.notice") or not body.strip():
            await ctx.reply("memo.unsupported")
            return
        links = _URL.findall(body)
        memo = self.store.add(ctx.sender, ctx.event_id, ctx.room_id, "link" if links else "text", body, ts)
        if links:
            # The link again as a plain clickable message: opened on whichever device (zone) reads it.
            anchors = "<br>".join(f'<a href="{html.escape(u, quote=True)}">{html.escape(u)}</a>' for u in links)
            await ctx.reply_text(ctx.t("memo.saved_link", number=memo.number, links="\n".join(links)),
                                 html.escape(ctx.t("memo.saved_link", number=memo.number, links="")) + "<br>" + anchors)
        else:
            await ctx.reply("memo.saved", number=memo.number)

    async def on_event(self, ctx: Context) -> None:
        # Deleting (redacting) a message in the DM deletes its memo: what the person expects.
        if ctx.event.get("type") == "m.room.redaction" and ctx.is_direct:
            redacted = ctx.event.get("redacts") or ctx.content.get("redacts")
            if isinstance(redacted, str):
                self.store.delete_by_event(ctx.sender, redacted)

    async def untrusted(self, mxc: str) -> bool:
        """Whether the zone module says the file came from the internet side and waits for
        sanitization (LGWAN devices cannot open it until then)."""
        server, _, media_id = mxc[len("mxc://"):].partition("/")
        status, body = await self.bot.api(media_status_route(server, media_id))
        return status == 200 and isinstance(body, dict) and bool(body.get("untrusted"))

    # --- approved devices (端末認証): the zone module decides, on the strength of the command ---

    async def _devices_call(self, ctx: Context, decision: str, device: str | None = None,
                            user: str | None = None) -> dict | None:
        """Pass the user's command message on to the zone module, which checks it came from the
        user's approved office (LGWAN) device (and, naming another ``user``, that the sender is a
        server admin); its refusal is told to the user as it words it."""
        body = {"room_id": ctx.room_id, "event_id": ctx.event_id, "decision": decision}
        if device is not None:
            body["device_id"] = device
        if user is not None:
            body["user_id"] = user
        status, answer = await self.bot.api(DEVICE_APPROVALS_BOT, method="POST", body=body)
        if status == 200 and isinstance(answer, dict):
            return answer
        messages = answer.get("jp.lgwan.message") if isinstance(answer, dict) else None
        if isinstance(messages, dict) and isinstance(messages.get(ctx.lang), str):
            await ctx.reply_text(messages[ctx.lang])
            return None
        raise RuntimeError(f"device approvals: {status} {answer}")

    async def devices(self, ctx: Context, of_user: str | None) -> None:
        if of_user is not None:
            await self._admin_devices(ctx, of_user)
            return
        answer = await self._devices_call(ctx, "list")
        if answer is None:
            return
        if not answer.get("devices"):
            await ctx.reply("devices.none")
            return
        lines = [ctx.t("devices.ask", name=d.get("display_name") or d["device_id"], device=d["device_id"],
                       when=self.bot.when(d["first_seen_ts"], ctx.lang, with_zone=False))
                 for d in answer["devices"]]
        await ctx.reply_text("\n".join(lines))

    async def approve_device(self, ctx: Context, device: str, of_user_device: str | None) -> None:
        if device.startswith("@") or of_user_device is not None:
            await self._admin_decide(ctx, "approve", device, of_user_device)
        elif await self._devices_call(ctx, "approve", device) is not None:
            await ctx.reply("devices.approved", device=device)

    async def reject_device(self, ctx: Context, device: str, of_user_device: str | None) -> None:
        if device.startswith("@") or of_user_device is not None:
            await self._admin_decide(ctx, "reject", device, of_user_device)
        elif await self._devices_call(ctx, "reject", device) is not None:
            await ctx.reply("devices.rejected", device=device)

    # a server admin, for another user's devices (``device_approval: admin``): ``!端末 @user``,
    # ``!端末承認 @user DEVICE``, ``!端末拒否 @user DEVICE``; the module checks the sender is an admin

    async def _admin_devices(self, ctx: Context, user: str) -> None:
        if not user.startswith("@"):
            await ctx.reply("devices.admin_usage")
            return
        answer = await self._devices_call(ctx, "list", user=user)
        if answer is None:
            return
        if not answer.get("devices"):
            await ctx.reply("devices.cli_none", user=user)
            return
        lines = [ctx.t("devices.admin_line", device=d["device_id"], name=d.get("display_name") or "-",
                       zone=d.get("zone") or "-", state=ctx.t("devices.cli_state_" + d["state"]),
                       when=self.bot.when(d["first_seen_ts"], ctx.lang, with_zone=False)
                       if d.get("first_seen_ts") else "-")
                 for d in answer["devices"]]
        await ctx.reply_text("\n".join(lines))

    async def _admin_decide(self, ctx: Context, decision: str, user: str, device: str | None) -> None:
        if not user.startswith("@") or device is None:
            await ctx.reply("devices.admin_usage")
            return
        if await self._devices_call(ctx, decision, device, user=user) is not None:
            await ctx.reply("devices.cli_approved" if decision == "approve" else "devices.cli_revoked",
                            user=user, device=device)

    # --- memo commands ---

    def _line(self, ctx: Context, memo: Memo) -> str:
        kind = ctx.t(f"memo.kind.{memo.kind}")
        text = (memo.filename or memo.body) if memo.kind in _FILE_KINDS.values() else memo.body
        text = " ".join(text.split())
        if len(text) > 60:
            text = text[:60] + "…"
        tags = " ".join("#" + tag for tag in memo.tags)
        when = ctx.when(memo.created_ts, with_zone=False)  # a list: the zone is said once, in !表示
        return f"#{memo.number} {when} [{kind}] {text}" + (f"  {tags}" if tags else "")

    async def list(self, ctx: Context, page: int | None) -> None:
        page = page or 1
        size = self.options.page_size
        memos, total = self.store.page(ctx.sender, page, size)
        pages = max(1, -(-total // size))
        if not total:
            await ctx.reply("memo.none")
            return
        if not memos:
            await ctx.reply("memo.no_such_page", page=page, pages=pages)
            return
        lines = [ctx.t("memo.list_header", page=page, pages=pages, total=total)]
        lines += [self._line(ctx, m) for m in memos]
        if page < pages:
            lines.append(ctx.t("memo.list_more", next=page + 1))
        await ctx.reply_text("\n".join(lines))

    async def search(self, ctx: Context, words: str) -> None:
        terms = [w for w in re.split(r"[\s\u3000]+", words) if w]
        found = self.store.search(ctx.sender, terms, _SEARCH_LIMIT)
        if not found:
            await ctx.reply("memo.search_none", words=words)
            return
        lines = [ctx.t("memo.search_header", words=words, count=len(found))] + [self._line(ctx, m) for m in found]
        await ctx.reply_text("\n".join(lines))

    async def _memo(self, ctx: Context, number: int) -> Memo | None:
        memo = self.store.get(ctx.sender, number)
        if memo is None:
            await ctx.reply("memo.not_found", number=number)
        return memo

    async def show(self, ctx: Context, number: int) -> None:
        memo = await self._memo(ctx, number)
        if memo is None:
            return
        lines = [ctx.t("memo.show_header", number=memo.number, when=ctx.when(memo.created_ts),
                       kind=ctx.t(f"memo.kind.{memo.kind}"))]
        if memo.kind in _FILE_KINDS.values():
            lines.append(ctx.t("memo.show_file", name=memo.filename or "-", size=memo.size or "-",
                               mimetype=memo.mimetype or "-"))
            if memo.mxc and await self.untrusted(memo.mxc):
                lines.append(ctx.t("memo.waits_for_sanitization"))
        lines.append(memo.body)
        if memo.tags:
            lines.append(ctx.t("memo.show_tags", tags=" ".join("#" + t for t in memo.tags)))
        await ctx.reply_text("\n".join(lines))

    async def delete(self, ctx: Context, number: int) -> None:
        if self.store.delete(ctx.sender, number):
            await ctx.reply("memo.deleted", number=number)
        else:
            await ctx.reply("memo.not_found", number=number)

    async def tag(self, ctx: Context, number: int, tags: str | None) -> None:
        memo = await self._memo(ctx, number)
        if memo is None:
            return
        words = [w.lstrip("#＃") for w in re.split(r"[\s\u3000、，,]+", tags or "") if w.lstrip("#＃-－")]
        remove = [w[1:] for w in words if w[:1] in "-－"]
        add = [w for w in words if w[:1] not in "-－"]
        now = self.store.tag(ctx.sender, number, add, remove) if words else memo.tags
        await ctx.reply("memo.tags_now", number=number,
                        tags=" ".join("#" + t for t in now) or ctx.t("memo.no_tags"))

    async def tags(self, ctx: Context, tag: str | None) -> None:
        if tag:
            memos, total = self.store.page(ctx.sender, 1, 50, tag=tag.lstrip("#＃"))
            if not memos:
                await ctx.reply("memo.tag_empty", tag=tag)
                return
            await ctx.reply_text("\n".join([ctx.t("memo.tag_header", tag=tag, total=total)]
                                           + [self._line(ctx, m) for m in memos]))
            return
        counts = self.store.tag_counts(ctx.sender)
        if not counts:
            await ctx.reply("memo.no_tags_at_all")
            return
        await ctx.reply_text(ctx.t("memo.tags_header") + "\n" + "\n".join(f"#{t} ({n})" for t, n in counts))

    async def repost(self, ctx: Context, number: int) -> None:
        memo = await self._memo(ctx, number)
        if memo is None:
            return
        if memo.kind not in _FILE_KINDS.values():
            await ctx.reply("memo.not_a_file", number=number)
            return
        msgtype = {v: k for k, v in _FILE_KINDS.items()}[memo.kind]
        await ctx.send("m.room.message", {"msgtype": msgtype, "body": memo.filename or memo.body, "url": memo.mxc,
                                          "info": memo.info, **({"filename": memo.filename} if memo.filename else {})})
        note = ctx.t("memo.waits_for_sanitization") if memo.mxc and await self.untrusted(memo.mxc) else ""
        await ctx.reply("memo.reposted", number=number, note=note)

    async def export(self, ctx: Context, format: str | None) -> None:
        chosen = (format or "md").casefold().lstrip(".")
        if chosen not in ("md", "markdown", "csv"):
            await ctx.reply("memo.export_format", value=format)
            return
        memos = self.store.all(ctx.sender)
        if not memos:
            await ctx.reply("memo.none")
            return
        data, skipped = await build_export(self, ctx, memos, "csv" if chosen == "csv" else "md")
        name = f"memo-{self.bot.file_stamp()}.zip"
        mxc = await self.bot.upload(data, "application/zip", name)
        await ctx.send("m.room.message", {"msgtype": "m.file", "body": name, "filename": name, "url": mxc,
                                          "info": {"mimetype": "application/zip", "size": len(data)}})
        await ctx.reply("memo.exported", count=len(memos), skipped=skipped)

    async def bookmarks(self, ctx: Context, page: int | None) -> None:
        # The bookmarks module answers with pages of its own; walk to the asked one.
        size = self.options.page_size
        token: str | None = None
        items: list[dict] = []
        for _ in range(page or 1):
            params = {"user_id": ctx.sender, "limit": str(size)}
            if token:
                params["from"] = token
            status, body = await self.bot.api(BOOKMARKS, params)
            if status != 200 or not isinstance(body, dict):
                raise RuntimeError(f"bookmarks: {status} {body}")
            items, token = body.get("bookmarks") or [], body.get("next")
            if not token:
                break
        if not items:
            await ctx.reply("memo.bookmarks_none")
            return
        lines, anchors = [ctx.t("memo.bookmarks_header", page=page or 1)], []
        for item in items:
            text = item.get("body") or ctx.t(f"memo.bookmark_unavailable.{item.get('unavailable') or 'not_found'}")
            text = " ".join(str(text).split())[:80]
            where = item.get("room_name") or item.get("room_id")
            link = item.get("permalink") or ""  # the module builds it (its permalink_base)
            sender = self.bot.display_name(item["sender"]) if item.get("sender") else ""
            when = ctx.when(item["origin_server_ts"]) if item.get("origin_server_ts") else ""
            lines.append(f"・{where} {when} {sender}: {text}\n  {link}")
            anchors.append(f"・{html.escape(str(where))} {html.escape(text)} "
                           f'<a href="{html.escape(link, quote=True)}">{html.escape(ctx.t("memo.open"))}</a>')
        if token:
            lines.append(ctx.t("memo.bookmarks_more", next=(page or 1) + 1))
        await ctx.reply_text("\n".join(lines), html.escape(lines[0]) + "<br>" + "<br>".join(anchors)
                             + ("<br>" + html.escape(lines[-1]) if token else ""))

    # --- room notes ---

    def _note_message(self, lang_ctx: Context, note: Note) -> tuple[str, str]:
        header = lang_ctx.t("notes.header", number=note.number, title=note.title, version=note.version,
                            editor=self.bot.display_name(note.editor, lang_ctx.room_id),
                            when=lang_ctx.when(note.edited_ts))
        text = f"{header}\n\n{note.body}"
        formatted = f"<h4>{html.escape(header)}</h4><p>{html.escape(note.body).replace(chr(10), '<br>')}</p>"
        return text, formatted

    async def note_new(self, ctx: Context, title: str, body: str) -> None:
        body = body.strip()
        note = self.store.add_note(ctx.room_id, title, body, ctx.sender, int(time.time() * 1000), ctx.event_id)
        text, formatted = self._note_message(ctx, note)
        event_id = note.event_id or await ctx.send("m.room.message", {
            "msgtype": "m.text", "body": text, "format": "org.matrix.custom.html", "formatted_body": formatted,
            "jp.lgwan.note": {"number": note.number}})
        self.store.set_note_event(ctx.room_id, note.number, event_id)
        pinned = await self.pin(ctx.room_id, event_id) if self.options.pin_notes else True
        await ctx.reply("notes.created", number=note.number, title=title,
                        pinned="" if pinned else ctx.t("notes.not_pinned"))

    async def _note(self, ctx: Context, number: int) -> Note | None:
        note = self.store.note(ctx.room_id, number)
        if note is None:
            await ctx.reply("notes.not_found", number=number)
        return note

    async def note_edit(self, ctx: Context, number: int, body: str) -> None:
        if await self._note(ctx, number) is None:
            return
        note = self.store.edit_note(ctx.room_id, number, body.strip(), ctx.sender, int(time.time() * 1000),
                                    ctx.event_id)
        text, formatted = self._note_message(ctx, note)
        new = {"msgtype": "m.text", "body": text, "format": "org.matrix.custom.html", "formatted_body": formatted}
        if note.event_id:  # a Matrix edit: every client shows the new text, Element the history too
            await ctx.send("m.room.message", {**new, "body": "* " + text, "m.new_content": new,
                                              "m.relates_to": {"rel_type": "m.replace", "event_id": note.event_id}})
        await ctx.reply("notes.edited", number=number, version=note.version)

    async def note_list(self, ctx: Context) -> None:
        notes = self.store.notes(ctx.room_id)
        if not notes:
            await ctx.reply("notes.none")
            return
        lines = [ctx.t("notes.list_header", count=len(notes))]
        for note in notes:
            lines.append(ctx.t("notes.list_line", number=note.number, title=note.title, version=note.version,
                               editor=self.bot.display_name(note.editor, ctx.room_id),
                               when=ctx.when(note.edited_ts, with_zone=False)))
        await ctx.reply_text("\n".join(lines))

    async def note_show(self, ctx: Context, number: int) -> None:
        note = await self._note(ctx, number)
        if note is None:
            return
        text, formatted = self._note_message(ctx, note)
        await ctx.reply_text(text, formatted)

    async def note_history(self, ctx: Context, number: int) -> None:
        note = await self._note(ctx, number)
        if note is None:
            return
        lines = [ctx.t("notes.history_header", number=number, title=note.title)]
        for version, editor, ts, body in self.store.note_history(ctx.room_id, number):
            lines.append(ctx.t("notes.history_line", version=version,
                               editor=self.bot.display_name(editor, ctx.room_id), when=ctx.when(ts)))
            lines.append("  " + body.replace("\n", "\n  "))
        await ctx.reply_text("\n".join(lines))

    async def pin(self, room_id: str, event_id: str) -> bool:
        """Add the note to the room's pinned messages (Element lists them at the top of the room)."""
        current = await self.bot.client.room_get_state_event(room_id, "m.room.pinned_events")
        pinned = list(current.content.get("pinned", [])) if isinstance(current, RoomGetStateEventResponse) else []
        if event_id in pinned:
            return True
        answer = await self.bot.client.room_put_state(room_id, "m.room.pinned_events", {"pinned": pinned + [event_id]})
        return isinstance(answer, RoomPutStateResponse)
