"""Safety checks (安否確認): after an earthquake or a flood, staff tap one answer on their phone and
the disaster office sees, live, who is safe, who is hurt, and who has not answered, by department.

One group of kind "safety" per check, started in the room where it was asked (its summary lives
there). Its polls are one native poll per room asked: this room, or with 全体 every room in
``safety.rooms``. Responses arrive in whichever room they were cast in and are kept against the
poll, so one summary tallies every room; a person who answered in two rooms counts once, with their
most urgent answer (nobody hurt is hidden behind a "safe" given elsewhere).

Members come from the bot's synced room state (no request per member), so the summary of a
2,000-person check is rendered from memory. Reminders ask the server for the current members.
"""

from __future__ import annotations

import html
import logging
import unicodedata
from collections.abc import Awaitable, Callable, Sequence

from bots.runtime import Arg, Command, Context
from bots.runtime.dates import format_when
from bots.runtime.late import Late
from lgwan_chat.core import organisation as org
from lgwan_chat.core.i18n import t

from . import events
from .events import Answer
from .feature import Polls
from .store import Group, Poll, now_ms
from .tally import Tally

log = logging.getLogger("lgwan_chat.polls")

KIND = "safety"
JOB = "safety_remind"
#: the answers, least urgent first (a person's most urgent answer across rooms is theirs)
ANSWER_IDS = ("safe_ok", "safe_no", "minor", "serious", "contact")
URGENT = ("serious", "contact")
#: names listed in the summary; the rest are counted (an event must stay under 64 KiB, and an edit
#: carries the text four times: body, HTML, and both again as the new content)
URGENT_SHOWN = 50
_ALL = ("全体", "全庁", "all")


def answers(lang: str) -> list[Answer]:
    return [Answer(a, t(f"polls.safety.answer.{a}", lang)) for a in ANSWER_IDS]


def localpart(user_id: str) -> str:
    return user_id[1:].split(":", 1)[0]


class Directory:
    """Staff localpart -> (department id, display name), from the organisation file; read again
    when the file changes (an admin fixes a department without restarting the bot)."""

    def __init__(self, path: str | None):
        self.file = org.OrganisationFile(path) if path else None
        self.organisation: org.Organisation | None = None
        self.staff: dict[str, org.StaffMember] = {}
        self.order: list[str] = []  # department ids as the file lists them
        self._labels: dict[tuple[str, str], str] = {}

    def refresh(self) -> None:
        if self.file is None:
            return
        try:
            if not self.file.refresh():
                return
        except OSError:
            log.warning("organisation file missing", extra={"path": self.file.path})
            return
        except Exception:
            log.exception("organisation file unreadable: tallies without departments", extra={"path": self.file.path})
            return
        parsed = self.file.organisation
        assert parsed is not None  # refresh() returned True: a version was loaded
        self.organisation = parsed
        self.staff = {m.localpart: m for m in parsed.staff}
        self.order = [d.id for d in parsed.all_departments()]
        self._labels = {}

    def department(self, user_id: str) -> str | None:
        member = self.staff.get(localpart(user_id))
        return member.department if member is not None else None

    def label(self, dept_id: str | None, lang: str) -> str:
        """``総務課 人事係`` for a section; 所属なし for people not in the file."""
        if dept_id is None or self.organisation is None:
            return t("polls.safety.unassigned", lang)
        key = (dept_id, lang)
        if key not in self._labels:
            dept = self.organisation.department(dept_id)
            parts = [dept.name.get(lang)]
            while dept.parent is not None:
                dept = self.organisation.department(dept.parent)
                parts.insert(0, dept.name.get(lang))
            self._labels[key] = " ".join(parts)
        return self._labels[key]

    def name(self, user_id: str) -> str | None:
        member = self.staff.get(localpart(user_id))
        return member.display_name if member is not None else None


def most_urgent(tallies: Sequence[Tally]) -> dict[str, str]:
    """Each voter's answer; across rooms, the most urgent one."""
    rank = {a: i for i, a in enumerate(ANSWER_IDS)}
    chosen: dict[str, str] = {}
    for tally in tallies:
        for user, picked in tally.choices.items():
            answer = picked[0]
            if user not in chosen or rank.get(answer, -1) > rank.get(chosen[user], -1):
                chosen[user] = answer
    return chosen


class SafetyKind:
    """Live summary: totals, answered / not answered, urgent people by name, departments."""

    def __init__(self, directory: Directory, members: Callable[[Sequence[str]], set[str]],
                 names_in: Callable[[Sequence[str]], Callable[[str], str]],
                 remind: Callable[[Group, str], Awaitable[list[str]]] | None = None):
        self.directory = directory
        self.members = members
        self.names_in = names_in
        #: app.send_reminder (!リマインド) asks the kind: each room's own non-responders, in that room
        self.remind = remind
        self._csv_lang = "ja"

    def render(self, group: Group, polls: Sequence[Poll], tallies: Sequence[Tally], lang: str,
               names: Callable[[str], str]) -> tuple[str, str]:
        self.directory.refresh()
        chosen = most_urgent(tallies)
        rooms = [p.room_id for p in polls]
        people = self.members(rooms) | set(chosen)
        names = self.names_in(rooms)  # the group's room alone does not know the other rooms' people
        texts = dict(polls[0].answers) if polls else {a.id: a.text for a in answers(lang)}
        counts = {a: 0 for a in ANSWER_IDS}
        for answer in chosen.values():
            counts[answer] += 1
        state = t("polls.state_closed" if not group.open else "polls.state_open", lang)
        lines = [t("polls.safety.summary_title", lang, number=group.number, title=group.title, state=state,
                   answered=len(chosen), total=len(people), missing=len(people) - len(chosen))]
        html_lines = [f"<b>{html.escape(lines[0])}</b>"]
        for answer in ANSWER_IDS:
            line = t("polls.safety.summary_line", lang, answer=texts.get(answer, answer), count=counts[answer])
            lines.append(line)
            html_lines.append(html.escape(line))

        sep = "、" if lang == "ja" else ", "
        urgent = sorted((u for u, a in chosen.items() if a in URGENT),
                        key=lambda u: (URGENT.index(chosen[u]), names(u)))
        if urgent:
            head = t("polls.safety.urgent_title", lang, count=len(urgent))
            lines.append(head)
            html_lines.append(f"<b>{html.escape(head)}</b>")
            for user in urgent[:URGENT_SHOWN]:
                line = t("polls.safety.urgent_line", lang, name=names(user),
                         department=self.directory.label(self.directory.department(user), lang),
                         answer=texts.get(chosen[user], chosen[user]))
                lines.append(line)
                html_lines.append(html.escape(line))
            if len(urgent) > URGENT_SHOWN:
                line = t("polls.safety.urgent_more", lang, count=len(urgent) - URGENT_SHOWN, number=group.number)
                lines.append(line)
                html_lines.append(html.escape(line))

        by_department: dict[str | None, list[str]] = {}
        for user in people:
            by_department.setdefault(self.directory.department(user), []).append(user)
        order: dict[str | None, int] = {d: i for i, d in enumerate(self.directory.order)}
        head = t("polls.safety.departments_title", lang)
        lines.append(head)
        html_lines.append(f"<b>{html.escape(head)}</b>")
        for dept in sorted(by_department, key=lambda d: (d is None, order.get(d, len(order)), d or "")):
            members = by_department[dept]
            tally = {a: 0 for a in ANSWER_IDS}
            for user in members:
                if user in chosen:
                    tally[chosen[user]] += 1
            done = sum(tally.values())
            parts = [f"{texts.get(a, a)} {n}" for a, n in tally.items() if n]
            if done < len(members):
                parts.append(t("polls.safety.not_answered", lang, count=len(members) - done))
            line = t("polls.safety.department_line", lang, department=self.directory.label(dept, lang),
                     answered=done, total=len(members), detail=sep.join(parts))
            lines.append(line)
            html_lines.append(html.escape(line))
        if group.open:
            footer = t("polls.safety.summary_footer", lang, number=group.number)
            lines.append(footer)
            html_lines.append(html.escape(footer))
        return "\n".join(lines), "<br>".join(html_lines)

    def answered(self, group: Group, polls: Sequence[Poll], tallies: Sequence[Tally]) -> set[str]:
        return set(most_urgent(tallies))

    # the CSV export's department column (app.csv_bytes calls header(lang), then values per row)
    @property
    def csv_extra(self) -> SafetyKind:
        return self

    def header(self, lang: str) -> list[str]:
        self.directory.refresh()
        self._csv_lang = lang  # values() has no language: the rows follow their header's
        return [t("polls.safety.csv_department", lang)]

    def values(self, user_id: str) -> list[str]:
        return [self.directory.label(self.directory.department(user_id), self._csv_lang)]


class Feature:
    app: Late[Polls] = Late()
    kind = Late[SafetyKind]()

    def commands(self, app: Polls) -> list[Command]:
        return [
            Command("安否確認", "safety", "polls.cmd.safety", self.start,
                    (Arg("safety_scope", required=False, kind="text"),), "polls.example.safety", where="room"),
            Command("安否状況", "safety-status", "polls.cmd.safety_status", self.status,
                    (Arg("number", required=False, kind="int"),), "polls.example.safety_status", where="room"),
        ]

    def attach(self, app: Polls) -> None:
        self.app = app
        self.kind = SafetyKind(Directory(app.options.safety.organisation_file), self._synced_members,
                               self._names, self.remind)
        app.kinds[KIND] = self.kind
        app.jobs[JOB] = self._job_remind

    async def on_event(self, app: Polls, ctx: Context) -> None:
        """Someone joined or left a room a safety check asked: its not-answered count changed."""
        if ctx.event.get("type") != "m.room.member":
            return
        for group in app.store.open_groups():
            if group.kind == KIND and ctx.room_id in group.options.get("rooms", ()):
                app.groups.touch(group.group_id)

    # --- members ---

    def _synced_members(self, room_ids: Sequence[str]) -> set[str]:
        """Joined members of the rooms as the bot's sync holds them: no request, any size."""
        people: set[str] = set()
        for room_id in dict.fromkeys(room_ids):
            people |= self.app.bot.joined_members(room_id)
        return people

    def _names(self, room_ids: Sequence[str]) -> Callable[[str], str]:
        """Display names from the organisation, then as the rooms know them."""
        first = room_ids[0] if room_ids else None

        def name(user_id: str) -> str:
            return self.kind.directory.name(user_id) or self.app.bot.display_name(user_id, first)
        return name

    # --- starting ---

    async def _may_start(self, ctx: Context) -> bool:
        options = self.app.options.safety
        if ctx.sender in options.starters:
            return True
        return await self.app.bot.power_level(ctx.room_id, ctx.sender) >= options.min_power_level

    async def _resolve(self, rooms: Sequence[str]) -> tuple[list[str], list[str]]:
        """Room IDs the bot is in, and the entries that are not (unknown alias, not joined)."""
        found, missing = [], []
        bot = self.app.bot
        for entry in rooms:
            room_id = await bot.find_room(entry)
            if room_id and room_id in bot.client.rooms:
                found.append(room_id)
            else:
                missing.append(entry)
        return list(dict.fromkeys(found)), missing

    async def start(self, ctx: Context, safety_scope: str | None) -> None:
        app = self.app
        if not await self._may_start(ctx):
            await ctx.reply("polls.safety.not_allowed", level=app.options.safety.min_power_level)
            return
        words = (safety_scope or "").split(maxsplit=1)
        everywhere = bool(words) and unicodedata.normalize("NFKC", words[0]).casefold() in _ALL
        title = (words[1] if everywhere and len(words) > 1 else "" if everywhere else safety_scope or "").strip()
        if len(title) > 100:
            await ctx.reply("polls.safety.title_too_long")
            return
        group = app.store.group(ctx.event_id)  # handled again after a crash: the rooms chosen then
        if group is None:
            if everywhere:
                if not app.options.safety.rooms:
                    await ctx.reply("polls.safety.no_rooms")
                    return
                rooms, missing = await self._resolve(app.options.safety.rooms)
                if missing:
                    await ctx.reply("polls.safety.rooms_missing", rooms="、".join(missing))
                if not rooms:
                    return
                if ctx.room_id in rooms:  # the poll here goes first, between the header and the summary
                    rooms.remove(ctx.room_id)
                    rooms.insert(0, ctx.room_id)
            else:
                rooms = [ctx.room_id]
            lang = app.bot.language_for("", ctx.room_id)
            when = format_when(now_ms(), lang, app.options.timezone)
            group = app.store.create_group(ctx.event_id, ctx.room_id, KIND,
                                           title or t("polls.safety.untitled", lang, when=when), ctx.sender,
                                           None, True, {"rooms": rooms, "asked": when, "titled": bool(title)})
        await self._send(group, ctx.event_id)
        every = app.options.safety.remind_every_minutes
        if every:
            app.store.schedule(f"{group.group_id}/{JOB}/1", now_ms() + int(every * 60_000), JOB, group.group_id)

    def _question(self, group: Group, lang: str) -> str:
        if group.options.get("titled"):
            return t("polls.safety.question", lang, title=group.title, when=group.options["asked"])
        return t("polls.safety.question_untitled", lang, when=group.options["asked"])

    async def _send(self, group: Group, txn: str) -> None:
        """The header and poll in every room (this room's through Groups.create, with the summary)."""
        app = self.app
        rooms: list[str] = group.options["rooms"]
        lang = app.bot.language_for("", group.room_id)
        here = rooms[0] == group.room_id
        names = [app.bot.room_name(r) for r in rooms]
        header = t("polls.safety.header", lang, number=group.number, title=group.title) + "\n" + (
            t("polls.safety.header_here", lang) if rooms == [group.room_id]
            else t("polls.safety.header_rooms", lang, count=len(rooms), rooms="、".join(names)))
        polls = [(self._question(group, lang), answers(lang), 1)] if here else []
        await app.groups.create(group, header, None, polls, txn=txn)
        existing = {p.position for p in app.store.polls(group.group_id)}
        for position, room_id in enumerate(rooms):
            if position in existing:
                continue
            room_lang = app.bot.language_for("", room_id)
            notice = t("polls.safety.header_elsewhere", room_lang, title=group.title)
            await app.bot.send(room_id, "m.room.message", {"msgtype": "m.text", "body": notice, "m.mentions": {}},
                               txn_key=f"{txn}/safety/{position}/header")
            question, room_answers = self._question(group, room_lang), answers(room_lang)
            event_id = await app.bot.send(room_id, events.START, events.start_content(question, room_answers, True, 1),
                                          txn_key=f"{txn}/safety/{position}/poll")
            app.store.add_poll(event_id, group.group_id, position, room_id, question,
                               [(a.id, a.text) for a in room_answers], 1)
        app.groups.touch(group.group_id)  # the summary counts the members of the rooms added

    # --- status ---

    async def status(self, ctx: Context, number: int | None) -> None:
        app = self.app
        if number is None:
            found = app.store.groups_in_room(ctx.room_id, kind=KIND)
            group = found[-1] if found else None
            if group is None:
                await ctx.reply("polls.safety.none")
                return
        else:
            group = app.store.group_by_number(ctx.room_id, number)
            if group is None or group.kind != KIND:
                await ctx.reply("polls.safety.not_safety", number=number)
                return
        text, formatted = app.groups.render(group, ctx.lang)
        await ctx.reply_text(text, formatted)

    # --- reminders: each job fires once, then schedules the next ---

    async def _job_remind(self, group_id: str, job_id: str) -> None:
        group = self.app.store.group(group_id)
        if group is None or not group.open:
            return
        every = self.app.options.safety.remind_every_minutes
        if await self.remind(group, job_id) and every:
            n = int(job_id.rsplit("/", 1)[1]) + 1
            self.app.store.schedule(f"{group_id}/{JOB}/{n}", now_ms() + int(every * 60_000), JOB, group_id)

    async def remind(self, group: Group, txn: str) -> list[str]:
        """Each room's members who have not answered, mentioned there (or a DM each); who they were.
        Someone in two rooms is reminded once."""
        app = self.app
        polls = app.store.polls(group.group_id)
        done = self.kind.answered(group, polls, app.groups.tallies(group, polls))
        names = self._names([p.room_id for p in polls])
        reminded: set[str] = set()
        for poll in polls:
            missing = sorted(set(await app.groups.members(poll.room_id)) - done - reminded)
            reminded.update(missing)
            if not missing:
                continue
            if app.options.remind_via == "dm":
                for user in missing:
                    await app.bot.send(await app.direct_room(user), "m.room.message", {
                        "msgtype": "m.text", "m.mentions": {}, "body": t(
                            "polls.safety.reminder_dm", app.bot.language_for(user), title=group.title,
                            room=app.bot.room_name(poll.room_id))}, txn_key=f"{txn}/dm/{user}")
            else:
                lang = app.bot.language_for("", poll.room_id)
                text = t("polls.safety.reminder", lang, title=group.title, count=len(missing))
                await app.groups.mention(poll.room_id, missing, text, f"{txn}/{poll.position}",
                                         app.options.mentions_per_message, names)
        return sorted(reminded)
