"""The polls bot (投票ボット): native polls Element renders, with what Element lacks around them.

Every kind of poll group (survey, multiple choice, schedule, safety check) shares the same life
(groups.py): created by a command, answered by tapping in the client, summarised live in one
message that is edited, reminded, closed once by command or at its deadline, exported as CSV.
Tallies are always computed from the response events kept, exactly as Element counts.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
from collections.abc import Sequence
from typing import Any

from bots.runtime import Arg, Bot, BotApp, Command, Context, clock
from bots.runtime.dates import format_when, parse_deadline
from bots.runtime.excel import excel_csv, text_cell
from bots.runtime.late import Late
from lgwan_chat.core.configcheck.issues import ConfigIssue
from lgwan_chat.core.i18n import t

from . import config as polls_config
from . import events, reads, safety, schedule, tasks
from .feature import Feature, Job
from .groups import Groups, Kind
from .manage import group_named, may_manage
from .store import MIGRATIONS, Group, PollStore, now_ms
from .survey import MultiKind, SpecError, SurveyKind, answers_for, parse_spec, yes_no

log = logging.getLogger("lgwan_chat.polls")
SCHEDULER_TICK_S = 2.0


class PollsBot(BotApp):
    """The bot's own kinds (survey, multiple choice) and commands on any group; the features
    (feature.py) see it as a :class:`~.feature.Polls`."""

    name = "polls"
    display_name = "アンケート・日程調整"
    schema = polls_config.PollsOptions
    migrations = MIGRATIONS

    store = Late[PollStore]()
    groups = Late[Groups]()

    def check_config(self, raw: Any) -> list[ConfigIssue]:
        return polls_config.check(raw)

    def __init__(self) -> None:
        self.options = polls_config.PollsOptions()
        self.kinds: dict[str, Kind] = {}
        #: job kind -> handler(ref, job_id); features add theirs
        self.jobs: dict[str, Job] = {}
        self._scheduler: asyncio.Task | None = None
        #: schedule coordination, tasks, safety checks, read reminders: each a module with a Feature
        #: (its commands, kinds of group, jobs, events), made here so the help lists their commands
        self._features: list[Feature] = [schedule.Feature(), tasks.Feature(), safety.Feature(), reads.Feature()]

    # --- lifecycle ---

    async def start(self, bot: Bot) -> None:
        self.bot = bot
        self.options = polls_config.options(bot.config.options, bot.config.timezone)
        self.store = PollStore(bot.storage)
        self.kinds = {"survey": SurveyKind(self.deadline_text), "multi": MultiKind(self.deadline_text)}
        self.jobs = {"close": self._job_close, "remind": self._job_remind}
        for feature in self._features:
            feature.attach(self)
        self.groups = Groups(bot, self.store, self.kinds, self.options.summary_interval_s)
        self.groups.start()
        await self.groups.resync_open()
        self._scheduler = asyncio.ensure_future(self._run_jobs())

    async def stop(self) -> None:
        if self._scheduler is not None:
            self._scheduler.cancel()
        if PollsBot.groups.is_set(self):
            await self.groups.stop()

    def commands(self) -> Sequence[Command]:
        number = Arg("number", kind="int")
        spec = Arg("spec", kind="text")
        own = [
            Command("アンケート", "survey", "polls.cmd.survey", self.survey, (spec,), "polls.example.survey",
                    where="room"),
            Command("複数選択", "multi", "polls.cmd.multi", self.multi, (spec,), "polls.example.multi", where="room"),
            Command("投票一覧", "polls", "polls.cmd.list", self.list_groups, (), "polls.example.list", where="room"),
            Command("結果", "results", "polls.cmd.results", self.results, (number,), "polls.example.results",
                    where="room"),
            Command("締切", "close", "polls.cmd.close", self.close, (number,), "polls.example.close", where="room"),
            Command("リマインド", "remind", "polls.cmd.remind", self.remind, (number,), "polls.example.remind",
                    where="room"),
            Command("CSV出力", "export", "polls.cmd.csv", self.export, (number,), "polls.example.csv", where="room"),
        ]
        return own + [c for feature in self._features for c in feature.commands(self)]

    # --- time ---

    def now(self) -> datetime.datetime:
        return clock.now(self.options.timezone)

    def deadline_text(self, group: Group, lang: str) -> str:
        if group.deadline_ts is None:
            return ""
        return format_when(group.deadline_ts, lang, self.options.timezone)

    def parse_deadline(self, text: str) -> int:
        return int(parse_deadline(text, self.now(), self.options.timezone).timestamp() * 1000)

    # --- events ---

    async def on_event(self, ctx: Context) -> None:
        kind = ctx.event.get("type")
        if kind in events.RESPONSE_TYPES:
            self.groups.record(ctx.event)
        elif kind == "m.room.redaction":
            redacted = ctx.event.get("redacts") or ctx.content.get("redacts")
            if isinstance(redacted, str):
                self.groups.forget(redacted)
        for feature in self._features:
            await feature.on_event(self, ctx)

    # --- making groups ---

    async def survey(self, ctx: Context, spec: str) -> None:
        await self._make(ctx, spec, "survey")

    async def multi(self, ctx: Context, spec: str) -> None:
        await self._make(ctx, spec, "multi")

    async def _make(self, ctx: Context, text: str, kind: str) -> None:
        try:
            spec = parse_spec(text, min_options=2 if kind == "survey" else 1)
            deadline = self.parse_deadline(spec.deadline) if spec.deadline else None
        except (SpecError, ValueError) as e:
            await ctx.explain(e, f"polls.example.{kind}")
            return
        group = self.store.create_group(ctx.event_id, ctx.room_id, kind, spec.question, ctx.sender, deadline,
                                        not spec.anonymous, {})
        lang = self.bot.language_for("", ctx.room_id)
        if kind == "survey":
            polls = [(self.question_text(group, spec.question, lang), answers_for(spec.options), 1)]
        else:
            polls = [(option, yes_no(lang), 1) for option in spec.options]
        header = self.header_text(group, lang)
        await self.groups.create(group, header, None, polls, txn=ctx.event_id)
        self.schedule_deadline(group)

    def question_text(self, group: Group, question: str, lang: str) -> str:
        """The deadline is written into the question: polls have no deadline field."""
        deadline = self.deadline_text(group, lang)
        return question + (self.t(lang, "polls.question_deadline", when=deadline) if deadline else "")

    def header_text(self, group: Group, lang: str) -> str:
        deadline = self.deadline_text(group, lang)
        lines = [self.t(lang, f"polls.header.{group.kind}", number=group.number, title=group.title)]
        if deadline:
            lines.append(self.t(lang, "polls.header_deadline", when=deadline))
        lines.append(self.t(lang, "polls.header_anonymous" if not group.disclosed else "polls.header_disclosed"))
        return "\n".join(lines)

    def schedule_deadline(self, group: Group) -> None:
        if group.deadline_ts is None:
            return
        self.store.schedule(f"{group.group_id}/close", group.deadline_ts, "close", group.group_id)
        before = self.options.remind_before_minutes * 60_000
        if before and group.deadline_ts - before > now_ms():
            self.store.schedule(f"{group.group_id}/remind", group.deadline_ts - before, "remind", group.group_id)

    @staticmethod
    def t(lang: str, key: str, **params: Any) -> str:
        return t(key, lang, **params)

    # --- commands on any group ---

    async def list_groups(self, ctx: Context) -> None:
        groups = self.store.groups_in_room(ctx.room_id)
        if not groups:
            await ctx.reply("polls.none")
            return
        lines = [ctx.t("polls.list_header")]
        for group in groups[-30:]:
            state = ctx.t("polls.state_closed") if not group.open else (
                ctx.t("polls.state_deadline", when=self.deadline_text(group, ctx.lang)) if group.deadline_ts
                else ctx.t("polls.state_open"))
            lines.append(ctx.t("polls.list_line", number=group.number, kind=ctx.t(f"polls.kind.{group.kind}"),
                               title=group.title, state=state))
        await ctx.reply_text("\n".join(lines))

    async def results(self, ctx: Context, number: int) -> None:
        group = await group_named(self.store, ctx, number)
        if group is not None:
            text, formatted = self.groups.render(group, ctx.lang)
            await ctx.reply_text(text, formatted)

    async def _open_to_manage(self, ctx: Context, number: int) -> Group | None:
        """Group ``number``, when it is open and the sender may manage it (told why not otherwise)."""
        group = await group_named(self.store, ctx, number)
        if group is None or not await may_manage(self.bot, ctx, group):
            return None
        if not group.open:
            await ctx.reply("polls.already_closed", number=number)
            return None
        return group

    async def close(self, ctx: Context, number: int) -> None:
        group = await self._open_to_manage(ctx, number)
        if group is not None:
            group = await self.groups.close(group, self.bot.language_for("", ctx.room_id))
            text, formatted = self.groups.render(group, ctx.lang)
            await ctx.reply_text(text, formatted)

    async def remind(self, ctx: Context, number: int) -> None:
        group = await self._open_to_manage(ctx, number)
        if group is not None and not await self.send_reminder(group, f"{ctx.event_id}/remind"):
            await ctx.reply("polls.everyone_answered", number=number)

    async def send_reminder(self, group: Group, txn: str) -> list[str]:
        """Mention (or DM) everyone in the room who has not answered; returns who they were."""
        own = getattr(self.kinds[group.kind], "remind", None)
        if own is not None:  # a kind whose polls are in several rooms reminds each room itself
            return await own(group, txn)
        missing = await self.groups.not_answered(group)
        if not missing:
            return []
        lang = self.bot.language_for("", group.room_id)
        deadline = self.deadline_text(group, lang)
        text = self.t(lang, "polls.reminder", number=group.number, title=group.title, count=len(missing)) + (
            self.t(lang, "polls.reminder_deadline", when=deadline) if deadline else "")
        names = self.groups.name_of(group)
        if self.options.remind_via == "dm":
            for user in missing:
                room = await self.direct_room(user)
                await self.bot.send(room, "m.room.message", {"msgtype": "m.text", "body": self.t(
                    self.bot.language_for(user), "polls.reminder_dm", number=group.number, title=group.title,
                    room=self.bot.room_name(group.room_id)), "m.mentions": {}}, txn_key=f"{txn}/dm/{user}")
        else:
            await self.groups.mention(group.room_id, missing, text, txn, self.options.mentions_per_message, names)
        return missing

    async def direct_room(self, user_id: str) -> str:
        """The bot's DM with ``user_id``, made once."""
        known = self.bot.storage.setting("user", user_id, "polls_dm")
        if known:
            return known
        response = await self.bot.client.room_create(is_direct=True, invite=[user_id])
        room_id = getattr(response, "room_id", None)
        if not room_id:
            raise RuntimeError(f"DM with {user_id}: {response}")
        self.bot.storage.set_setting("user", user_id, "polls_dm", room_id)
        await self.bot.mark_direct(room_id, user_id)
        return room_id

    async def export(self, ctx: Context, number: int) -> None:
        group = await group_named(self.store, ctx, number)
        if group is None or not await may_manage(self.bot, ctx, group):
            return
        data = self.csv_bytes(group, ctx.lang)
        name = f"{group.kind}-{group.number}-{self.bot.file_stamp()}.csv"
        mxc = await self.bot.upload(data, "text/csv", name)
        await ctx.send("m.room.message", {"msgtype": "m.file", "body": name, "filename": name, "url": mxc,
                                          "info": {"mimetype": "text/csv", "size": len(data)}, "m.mentions": {}})

    def csv_bytes(self, group: Group, lang: str) -> bytes:
        """UTF-8 with a BOM (Excel opens Japanese correctly); one row per person asked (those who
        did not answer marked 未回答: they are the ones to follow up), or only the counts when the
        poll is anonymous."""
        polls = self.store.polls(group.group_id)
        tallies = self.groups.tallies(group, polls)
        column = getattr(self.kinds[group.kind], "csv_extra", None)
        rows: list[list[Any]] = []
        if not group.disclosed:
            rows.append([self.t(lang, "polls.csv.question"), self.t(lang, "polls.csv.answer"),
                         self.t(lang, "polls.csv.votes")])
            for poll, tally in zip(polls, tallies, strict=True):
                for answer_id, text in poll.answers:
                    rows.append([text_cell(poll.question), text_cell(text), tally.counts.get(answer_id, 0)])
        else:
            names = self.groups.name_of(group)
            answered = set().union(*(set(t_.choices) for t_ in tallies)) if tallies else set()
            asked = {p.room_id: self.bot.joined_members(p.room_id) for p in polls}
            people = sorted(answered.union(*asked.values()))
            missing = self.t(lang, "polls.csv.not_answered")
            rows.append([self.t(lang, "polls.csv.name"), self.t(lang, "polls.csv.user_id"),
                         *(column.header(lang) if column else ()), *(text_cell(p.question) for p in polls)])
            for person in people:
                answers = ["、".join(p.answer_text(a) for a in tally.choices.get(person, ()))
                           or (missing if person not in answered and person in asked[p.room_id] else "")
                           for p, tally in zip(polls, tallies, strict=True)]
                rows.append([text_cell(names(person)), person, *(column.values(person) if column else ()),
                             *(text_cell(a) for a in answers)])
        return excel_csv(rows)

    # --- scheduled jobs ---

    async def _run_jobs(self) -> None:
        while True:
            try:
                await self.run_due_jobs()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("scheduled jobs failed")
            await asyncio.sleep(SCHEDULER_TICK_S)

    async def run_due_jobs(self) -> None:
        for job_id, kind, ref in self.store.due_jobs(now_ms()):
            handler = self.jobs.get(kind)
            if handler is None:
                log.warning("unknown job kind", extra={"job": job_id, "kind": kind})
                self.store.job_done(job_id)
                continue
            await handler(ref, job_id)  # sends use txn ids from job_id: a crash here repeats nothing
            self.store.job_done(job_id)
            log.info("job done", extra={"job": job_id, "kind": kind})

    async def _job_close(self, group_id: str, job_id: str) -> None:
        group = self.store.group(group_id)
        if group is not None and group.open:
            await self.groups.close(group, self.bot.language_for("", group.room_id))
            lang = self.bot.language_for("", group.room_id)
            text, formatted = self.groups.render(self.store.existing_group(group_id), lang)
            await self.bot.send(group.room_id, "m.room.message", {
                "msgtype": "m.notice", "body": self.t(lang, "polls.closed_at_deadline") + "\n" + text,
                "format": "org.matrix.custom.html", "m.mentions": {},
                "formatted_body": self.t(lang, "polls.closed_at_deadline") + "<br>" + formatted},
                txn_key=f"{job_id}/final")

    async def _job_remind(self, group_id: str, job_id: str) -> None:
        group = self.store.group(group_id)
        if group is not None and group.open:
            await self.send_reminder(group, job_id)

