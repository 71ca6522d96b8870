"""Tasks (タスク): a to-do with assignees and a due date, kept as one bot message that shows who is done.

``!タスク 報告書の提出 @山田 @佐藤 期限 12/3 17時`` posts the task mentioning its assignees (Element's
mention pills, or ``@user:server`` typed out; nobody mentioned: the writer). An assignee marks their
part done with a ✅ reaction on the task message (✔️ ☑️ too) or ``!完了 番号``; redacting the
reaction takes it back. Every change edits the task message (m.replace): who is done, and the
state 進行中 / 完了 / 期限切れ. Reminders before and after the due time mention only those not done,
each once (jobs); a complete task's reminders are cancelled.
"""

from __future__ import annotations

import hashlib
import html
import re
import unicodedata
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote

from bots.runtime import Arg, Command, Context, InputError
from bots.runtime.dates import DateError, format_when
from bots.runtime.late import Late

from .feature import Polls
from .groups import user_link
from .manage import MANAGER_POWER_LEVEL, is_manager
from .store import now_ms
from .task_store import Task, TaskStore

#: reaction keys that mean "done" (variation selectors removed before comparing)
DONE_KEYS = {"✅", "✔", "☑"}
MAX_TITLE = 200
MAX_ASSIGNEES = 50
_HOUR_MS = 3_600_000

_PILL = re.compile(r'<a\s[^>]*href="https://matrix\.to/#/([^"?]+)[^"]*"[^>]*>.*?</a>', re.S | re.I)
_USER_ID = re.compile(r"@[A-Za-z0-9._=/+\-]+:[A-Za-z0-9.\-]+(?::\d+)?")
_TAG = re.compile(r"<[^>]+>")
_BREAK = re.compile(r"<br\s*/?>|</p>|</div>", re.I)
_DUE = re.compile(r"(?:^|\s)(?:期限|締め?切り?|〆切り?|due)(?:\s*[:：は]\s*|\s+|$)(?P<when>.*)$", re.I | re.S)
_COMMAND = re.compile(r"^\s*[!！]\S+")
_UNTIL = re.compile(r"まで(?:に)?$")


class TaskSpecError(InputError):
    """A task command not understood."""


def mentioned_text(content: dict, bot_user: str) -> tuple[str, list[str]]:
    """The message's text after the command name with mentions taken out, and the users mentioned
    (in order): pills of the HTML body, ``@user:server`` written out, and ``m.mentions`` unless
    the message is a reply (Element mentions the author of the message replied to)."""
    users: list[str] = []
    formatted = content.get("formatted_body")
    if content.get("format") == "org.matrix.custom.html" and isinstance(formatted, str):
        formatted = re.sub(r"<mx-reply>.*?</mx-reply>", "", formatted, flags=re.S)

        def pill(match: re.Match) -> str:
            target = unquote(match.group(1))
            if target.startswith("@"):
                users.append(target)
                return " "
            return match.group(0)
        text = html.unescape(_TAG.sub("", _BREAK.sub("\n", _PILL.sub(pill, formatted))))
    else:
        text = str(content.get("body") or "")
    text = _COMMAND.sub("", text, count=1)
    users.extend(_USER_ID.findall(text))
    text = _USER_ID.sub(" ", text)
    mentions = content.get("m.mentions")
    is_reply = bool((content.get("m.relates_to") or {}).get("m.in_reply_to"))
    if isinstance(mentions, dict) and isinstance(mentions.get("user_ids"), list) and not is_reply:
        users.extend(u for u in mentions["user_ids"] if isinstance(u, str) and _USER_ID.fullmatch(u))
    unique = [u for i, u in enumerate(users) if u != bot_user and u not in users[:i]]
    return text, unique


def parse_task(text: str, deadline: Callable[[str], int]) -> tuple[str, int | None]:
    """(title, due time in ms or None) from what follows ``!タスク`` with mentions taken out: the due
    time after 期限 / 締切 / due, or written last with まで(に) (``報告書の提出 12/3 17時まで``)."""
    keyword = _DUE.search(text)
    due = None
    if keyword is not None:
        when = " ".join(keyword.group("when").split())
        text = text[:keyword.start()]
        if not when:
            raise TaskSpecError("polls.task.no_due")
        due = deadline(when)
    else:
        text, due = _until(text, deadline)
    title = " ".join(text.split())
    if not title:
        raise TaskSpecError("polls.task.no_title")
    if len(title) > MAX_TITLE:
        raise TaskSpecError("polls.task.too_long", max=MAX_TITLE)
    return title, due


def _until(text: str, deadline: Callable[[str], int]) -> tuple[str, int | None]:
    """A due time as the last words, ending in まで(に): the longest of up to three words that reads
    as one. None of them: part of the title (``月末まで`` is not a date), unless the last word
    alone is a date that is wrong (past, impossible): that is said."""
    words = text.split()
    if not words or not _UNTIL.search(unicodedata.normalize("NFKC", words[-1])):
        return text, None
    last_error = None
    for count in range(min(3, len(words)), 0, -1):
        try:
            return " ".join(words[:-count]), deadline(" ".join(words[-count:]))
        except DateError as e:
            last_error = e
    if last_error is not None and last_error.key != "polls.date.unknown":
        raise last_error
    return text, None


def is_done_key(key: Any) -> bool:
    return isinstance(key, str) and key.replace("\ufe0f", "").replace("\ufe0e", "").strip() in DONE_KEYS


class Feature:
    app: Late[Polls] = Late()
    store = Late[TaskStore]()

    def commands(self, app: Polls) -> list[Command]:
        return [
            Command("タスク", "task", "polls.cmd.task", self.create, (Arg("task", kind="text"),),
                    "polls.example.task", where="room"),
            Command("完了", "done", "polls.cmd.done", self.done, (Arg("number", kind="int"),),
                    "polls.example.done", where="room"),
            Command("タスク一覧", "tasks", "polls.cmd.tasks", self.list_tasks,
                    (Arg("task_filter", required=False, kind="text"),), "polls.example.tasks", where="room"),
        ]

    def attach(self, app: Polls) -> None:
        self.app = app
        self.store = TaskStore(app.bot.storage)
        app.jobs["task_before"] = self._job_before
        app.jobs["task_due"] = self._job_due
        app.jobs["task_after"] = self._job_after

    # --- making a task ---

    async def create(self, ctx: Context, task: str) -> None:
        # read again from the event, not ``task``: a pill's user ID is only in the HTML body
        text, assignees = mentioned_text(ctx.content, self.app.bot.config.user_id)
        try:
            title, due = parse_task(text, self.app.parse_deadline)
        except (TaskSpecError, DateError) as e:
            await ctx.explain(e, "polls.example.task")
            return
        if len(assignees) > MAX_ASSIGNEES:
            await ctx.reply("polls.task.too_many", max=MAX_ASSIGNEES)
            return
        created = self.store.create(ctx.event_id, ctx.room_id, title, ctx.sender, due, assignees or [ctx.sender])
        event_id = created.message_event_id
        if event_id is None:
            text, _, content = self._content(created, mention=True)
            event_id = await self.app.bot.send(ctx.room_id, "m.room.message", content, txn_key=f"{ctx.event_id}/task")
            self.store.set_message(created.task_id, event_id, text)
        # a ✅ already there: one tap in Element marks done
        await self.app.bot.send(ctx.room_id, "m.reaction", {"m.relates_to": {
            "rel_type": "m.annotation", "event_id": event_id, "key": "✅"}}, txn_key=f"{ctx.event_id}/task-react")
        self._schedule(created)
        # a mistyped ID or someone not invited yet: the task is kept, but they cannot see it
        members = set(await self.app.groups.members(ctx.room_id))
        outside = [a.user_id for a in created.assignees if a.user_id not in members]
        if outside:
            await ctx.reply("polls.task.not_in_room", number=created.number, who="、".join(outside))

    def _schedule(self, task: Task) -> None:
        if task.due_ts is None:
            return
        options = self.app.options.tasks
        store = self.app.store
        store.schedule(f"{task.task_id}/due", task.due_ts, "task_due", task.task_id)
        before = options.remind_before_hours * _HOUR_MS
        if before and task.due_ts - before > now_ms():
            store.schedule(f"{task.task_id}/before", task.due_ts - before, "task_before", task.task_id)
        if options.remind_after_hours:
            store.schedule(f"{task.task_id}/after", task.due_ts + options.remind_after_hours * _HOUR_MS,
                           "task_after", task.task_id)

    # --- the task message ---

    def _names(self, room_id: str) -> Callable[[str], str]:
        return lambda user_id: self.app.bot.display_name(user_id, room_id)

    def _state(self, task: Task, lang: str) -> str:
        if task.complete:
            return self.app.t(lang, "polls.task.state_done")
        if task.overdue(now_ms()):
            return self.app.t(lang, "polls.task.state_overdue")
        return self.app.t(lang, "polls.task.state_open")

    def _content(self, task: Task, mention: bool) -> tuple[str, str, dict]:
        """The task message as (text, HTML, content): assignees as pills, who is done, state."""
        lang = self.app.bot.language_for("", task.room_id)
        name = self._names(task.room_id)
        t = self.app.t
        plain, marked = [], []
        for assignee in task.assignees:
            mark = (t(lang, "polls.task.done_mark", when=format_when(assignee.done_ts, lang, self.app.options.timezone))
                    if assignee.done_ts is not None else t(lang, "polls.task.open_mark"))
            plain.append(f"{name(assignee.user_id)} {mark}")
            marked.append(f"{user_link(assignee.user_id, name(assignee.user_id))} {html.escape(mark)}")
        done = sum(1 for a in task.assignees if a.done_ts is not None)
        head = t(lang, "polls.task.title", number=task.number, title=task.title)
        due = (t(lang, "polls.task.due", when=format_when(task.due_ts, lang, self.app.options.timezone))
               if task.due_ts is not None else t(lang, "polls.task.no_due_date"))
        state = t(lang, "polls.task.state", state=self._state(task, lang), done=done, total=len(task.assignees))
        how = t(lang, "polls.task.how", number=task.number) if not task.complete else ""
        label = t(lang, "polls.task.assignees")
        text = "\n".join(line for line in (head, label + "、".join(plain), due, state, how) if line)
        formatted = "<br>".join(line for line in (html.escape(head), html.escape(label) + "、".join(marked),
                                                  html.escape(due), html.escape(state), html.escape(how)) if line)
        content = {"msgtype": "m.text", "body": text, "format": "org.matrix.custom.html",
                   "formatted_body": formatted,
                   "m.mentions": {"user_ids": [a.user_id for a in task.assignees]} if mention else {}}
        return text, formatted, content

    async def refresh(self, task_id: str) -> None:
        """Edit the task message when what it shows changed."""
        task = self.store.task(task_id)
        if task is None or task.message_event_id is None:
            return
        text, _, new = self._content(task, mention=True)
        if text == task.message_text:
            return
        # edits are numbered, not named by their text: a task done, undone and done again shows
        # the same text twice, and a reused transaction id would not be sent again; the edit itself
        # mentions nobody (the assignees were notified by the task)
        await self.app.bot.send(task.room_id, "m.room.message", {
            **new, "body": "* " + text, "m.new_content": new, "m.mentions": {},
            "m.relates_to": {"rel_type": "m.replace", "event_id": task.message_event_id}},
            txn_key=f"{task_id}/task-edit/{task.edits}/{hashlib.sha256(text.encode()).hexdigest()[:12]}")
        self.store.edited(task_id, text)

    # --- done and undone ---

    async def on_event(self, app: Polls, ctx: Context) -> None:
        kind = ctx.event.get("type")
        if kind == "m.reaction":
            relation = ctx.content.get("m.relates_to") or {}
            if relation.get("rel_type") != "m.annotation" or not is_done_key(relation.get("key")):
                return
            task = self.store.by_message(str(relation.get("event_id")))
            if task is None or not task.is_assignee(ctx.sender):
                return  # only an assignee's ✅ marks their part done
            self.store.add_reaction(ctx.event_id, task.task_id, ctx.sender)
            await self._set_done(task, [ctx.sender], int(ctx.event.get("origin_server_ts") or now_ms()))
        elif kind == "m.room.redaction":
            redacted = ctx.event.get("redacts") or ctx.content.get("redacts")
            removed = self.store.remove_reaction(redacted) if isinstance(redacted, str) else None
            if removed is not None:
                task_id, user_id, still_marked = removed
                if not still_marked and self.store.mark_not_done(task_id, user_id):
                    self.store.rearm_jobs(task_id, now_ms())
                    await self.refresh(task_id)

    async def _set_done(self, task: Task, users: list[str], ts: int) -> Task:
        for user_id in users:
            self.store.mark_done(task.task_id, user_id, ts)
        task = self.store.existing_task(task.task_id)
        if task.complete:
            self.app.store.cancel_jobs(task.task_id)
        await self.refresh(task.task_id)
        return task

    async def done(self, ctx: Context, number: int) -> None:
        task = self.store.by_number(ctx.room_id, number)
        if task is None:
            await ctx.reply("polls.task.no_such", number=number)
            return
        if task.complete:
            await ctx.reply("polls.task.already_done", number=number)
            return
        ts = int(ctx.event.get("origin_server_ts") or now_ms())
        if task.is_assignee(ctx.sender):
            task = await self._set_done(task, [ctx.sender], ts)
        elif await is_manager(self.app.bot, ctx, task.created_by):
            task = await self._set_done(task, task.not_done, ts)  # the person who asked closes it all
        else:
            await ctx.reply("polls.task.not_assignee", number=number, level=MANAGER_POWER_LEVEL)
            return
        if task.complete:
            await ctx.reply("polls.task.completed", number=number, title=task.title)
        else:
            await ctx.reply("polls.task.marked", number=number, done=len(task.assignees) - len(task.not_done),
                            total=len(task.assignees))

    # --- listing ---

    async def list_tasks(self, ctx: Context, task_filter: str | None) -> None:
        text, users = mentioned_text(ctx.content, self.app.bot.config.user_id)
        word = unicodedata.normalize("NFKC", " ".join(text.split())).casefold()
        now = now_ms()
        tasks = [task for task in self.store.in_room(ctx.room_id) if not task.complete]
        if users:
            person = users[0]
            tasks = [task for task in tasks if person in task.not_done]
            header = ctx.t("polls.task.list_person", name=self._names(ctx.room_id)(person))
        elif word in ("自分", "じぶん", "私", "mine", "me"):
            tasks = [task for task in tasks if ctx.sender in task.not_done]
            header = ctx.t("polls.task.list_mine")
        elif word in ("期限切れ", "期限超過", "overdue"):
            tasks = [task for task in tasks if task.overdue(now)]
            header = ctx.t("polls.task.list_overdue")
        elif not word:
            header = ctx.t("polls.task.list_open")
        else:
            await ctx.reply("polls.task.bad_filter", value=task_filter or word)
            return
        if not tasks:
            await ctx.reply_text(header + "\n" + ctx.t("polls.task.list_none"))
            return
        # due first (soonest first), then those without a due date
        tasks.sort(key=lambda task: (task.due_ts is None, task.due_ts or 0, task.number))
        name = self._names(ctx.room_id)
        lines = [header]
        for task in tasks[:50]:
            due = (ctx.t("polls.task.due", when=format_when(task.due_ts, ctx.lang, self.app.options.timezone))
                   if task.due_ts is not None else ctx.t("polls.task.no_due_date"))
            if task.overdue(now):
                due = ctx.t("polls.task.overdue_mark") + due
            lines.append(ctx.t("polls.task.list_line", number=task.number, title=task.title, due=due,
                               who="、".join(name(u) for u in task.not_done)))
        await ctx.reply_text("\n".join(lines))

    # --- reminders and the due time ---

    async def _remind(self, task_id: str, job_id: str, key: str) -> None:
        task = self.store.task(task_id)
        if task is None or task.complete or task.due_ts is None:  # no due time: no reminder was set
            return
        lang = self.app.bot.language_for("", task.room_id)
        text = self.app.t(lang, key, number=task.number, title=task.title,
                          when=format_when(task.due_ts, lang, self.app.options.timezone))
        await self.app.groups.mention(task.room_id, task.not_done, text, job_id,
                                      self.app.options.mentions_per_message, self._names(task.room_id))

    async def _job_before(self, task_id: str, job_id: str) -> None:
        await self._remind(task_id, job_id, "polls.task.reminder_before")

    async def _job_after(self, task_id: str, job_id: str) -> None:
        await self.refresh(task_id)
        await self._remind(task_id, job_id, "polls.task.reminder_after")

    async def _job_due(self, task_id: str, job_id: str) -> None:
        await self.refresh(task_id)  # now shows 期限切れ
