"""Schedule coordination (日程調整): one ○/△/× poll per candidate date, a live summary that ranks the
candidates, and a decision announced with a calendar file (.ics) members can add to Outlook or Google.

One single-choice poll per candidate is what every client renders (Element cannot vote for several
options of one poll, element-meta#2694). The candidates (start, end, all day, label) are kept in the
group's options next to the decision, so the summary and the calendar file need no re-parsing.
"""

from __future__ import annotations

import datetime
import functools
import html
import unicodedata
from collections.abc import Callable, Sequence
from typing import Any

import attrs

from bots.runtime import Arg, Command, Context, InputError
from bots.runtime.dates import MONTHS_EN, WEEKDAYS_EN, Candidate, DateError, parse_candidates
from lgwan_chat.core.i18n import t

from . import ics
from .events import Answer
from .feature import Polls
from .manage import group_named, may_manage
from .store import Group, Poll
from .tally import Tally

KIND = "schedule"
OK, MAYBE, NG = "ok", "maybe", "ng"
MAX_TITLE = 200
_DEADLINE = ("締切", "締め切り", "しめきり", "期限", "deadline", "due")
_ANONYMOUS = ("匿名", "無記名", "anonymous")


class ScheduleError(InputError):
    """A schedule command not understood."""


@attrs.frozen
class Spec:
    title: str
    candidates: str  # as written; read by dates.parse_candidates
    deadline: str | None
    anonymous: bool


def parse_spec(text: str) -> Spec:
    """``件名`` then candidates (one a line, or separated by 、), optional ``締切 ...`` and ``匿名`` lines.
    On one line, the title is the first word and the candidates the rest."""
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    if len(lines) == 1:
        title, _, rest = unicodedata.normalize("NFKC", lines[0]).partition(" ")
        lines = [title, rest.strip()] if rest.strip() else [title]
    if not lines:
        raise ScheduleError("polls.schedule.no_title")
    title, candidates, deadline, anonymous = lines[0], [], None, False
    for line in lines[1:]:
        folded = unicodedata.normalize("NFKC", line).casefold()
        word = next((w for w in _DEADLINE if folded.startswith(w)), None)
        if word is not None:
            deadline = unicodedata.normalize("NFKC", line)[len(word):].lstrip(" :：").strip() or None
        elif folded in _ANONYMOUS:
            anonymous = True
        else:
            candidates.append(line.lstrip("・-*•").strip())
    if len(title) > MAX_TITLE:
        raise ScheduleError("polls.too_long")
    return Spec(title, "\n".join(candidates), deadline, anonymous)


# --- candidates as kept in the group's options ---

def _stored(candidate: Candidate) -> dict[str, Any]:
    return {"start": candidate.start.isoformat(), "end": candidate.end.isoformat() if candidate.end else None,
            "all_day": candidate.all_day, "label": candidate.label}


def _restored(stored: dict[str, Any]) -> Candidate:
    end = stored.get("end")
    return Candidate(datetime.datetime.fromisoformat(stored["start"]),
                     datetime.datetime.fromisoformat(end) if end else None, bool(stored["all_day"]), stored["label"])


def label(candidate: Candidate, lang: str) -> str:
    """ja: the label dates.py wrote (``12/3(水) 14:00-15:30``); en: ``Wed 3 Dec 14:00-15:30``."""
    if lang == "ja":
        return candidate.label

    this_year = datetime.datetime.now(candidate.start.tzinfo).year

    def day(d: datetime.date) -> str:
        year = f" {d.year}" if d.year != this_year else ""
        return f"{WEEKDAYS_EN[d.weekday()]} {d.day} {MONTHS_EN[d.month - 1]}{year}"

    start, end = candidate.start, candidate.end
    if candidate.all_day:
        span = day(start.date()) + (f"-{day(end.date())}" if end is not None and end.date() != start.date() else "")
        return f"{span} (all day)"
    text = f"{day(start.date())} {start.hour}:{start.minute:02d}"
    if end is None:
        return text
    end_time = f"{end.hour}:{end.minute:02d}"
    return f"{text}-{end_time}" if end.date() == start.date() else f"{text}-{day(end.date())} {end_time}"


def answers(lang: str) -> list[Answer]:
    return [Answer(OK, t("polls.schedule.ok", lang)), Answer(MAYBE, t("polls.schedule.maybe", lang)),
            Answer(NG, t("polls.schedule.ng", lang))]


# --- the kind: live summary and who has answered ---

def _ranked(polls: Sequence[Poll], tallies: Sequence[Tally],
            candidates: Sequence[Candidate]) -> list[tuple[Poll, Tally, Candidate]]:
    """Most ○, then most △, then fewest ×, then the earliest date."""
    rows = list(zip(polls, tallies, candidates, strict=True))
    return sorted(rows, key=lambda r: (-r[1].counts.get(OK, 0), -r[1].counts.get(MAYBE, 0), r[1].counts.get(NG, 0),
                                       r[2].start, r[0].position))


def _score(tally: Tally) -> tuple[int, int, int]:
    return tally.counts.get(OK, 0), tally.counts.get(MAYBE, 0), -tally.counts.get(NG, 0)


@attrs.frozen
class ScheduleKind:
    format_deadline: Callable[[Group, str], str]

    def render(self, group: Group, polls: Sequence[Poll], tallies: Sequence[Tally], lang: str,
               names: Callable[[str], str]) -> tuple[str, str]:
        candidates = [_restored(c) for c in group.options.get("candidates", [])]
        voters = set().union(*(set(t_.choices) for t_ in tallies)) if tallies else set()
        deadline = self.format_deadline(group, lang)
        state = t("polls.state_closed", lang) if not group.open else (
            t("polls.state_deadline", lang, when=deadline) if deadline else t("polls.state_open", lang))
        title = t("polls.schedule.summary_title", lang, number=group.number, title=group.title, state=state,
                  voters=len(voters))
        lines: list[tuple[str, bool]] = [(title, False)]
        decided = group.options.get("decided")
        if decided:
            lines.append((t("polls.schedule.summary_decided", lang, index=decided,
                            label=label(candidates[decided - 1], lang)), True))
        ranked = _ranked(polls, tallies, candidates)
        best = _score(ranked[0][1]) if ranked else None
        separator = "、" if lang == "ja" else ", "
        for poll, tally, candidate in ranked:
            starred = best is not None and best[0] + best[1] > 0 and _score(tally) == best
            lines.append((t("polls.schedule.summary_line", lang, mark="★ " if starred else "・",
                            index=poll.position + 1, label=label(candidate, lang), ok=tally.counts.get(OK, 0),
                            maybe=tally.counts.get(MAYBE, 0), ng=tally.counts.get(NG, 0)), starred))
            if group.disclosed and not group.open:
                who = {a: separator.join(names(u) for u, chosen in sorted(tally.choices.items()) if a in chosen)
                       or "-" for a in (OK, MAYBE, NG)}
                lines.append((t("polls.schedule.summary_who", lang, ok=who[OK], maybe=who[MAYBE], ng=who[NG]),
                              False))
        text = "\n".join(line for line, _ in lines)
        formatted = "<br>".join(f"<b>{html.escape(line)}</b>" if bold else html.escape(line) for line, bold in lines)
        return text, formatted

    def answered(self, group: Group, polls: Sequence[Poll], tallies: Sequence[Tally]) -> set[str]:
        """Only people who answered every candidate: a reminder goes to anyone who skipped one."""
        if not tallies:
            return set()
        return set.intersection(*(set(t_.choices) for t_ in tallies))


# --- the feature: commands ---

class Feature:
    def commands(self, app: Polls) -> list[Command]:
        return [
            Command("日程調整", "schedule", "polls.cmd.schedule", functools.partial(self.create, app),
                    (Arg("schedule_spec", kind="text"),), "polls.example.schedule", where="room"),
            Command("日程決定", "decide", "polls.cmd.decide", functools.partial(self.decide, app),
                    (Arg("number", kind="int"), Arg("candidate", kind="int")), "polls.example.decide", where="room"),
        ]

    def attach(self, app: Polls) -> None:
        app.kinds[KIND] = ScheduleKind(app.deadline_text)

    async def on_event(self, app: Polls, ctx: Context) -> None:
        """Answers are counted by the group's life (groups.py): nothing of its own."""

    async def create(self, app: Polls, ctx: Context, schedule_spec: str) -> None:
        try:
            spec = parse_spec(schedule_spec)
            candidates = parse_candidates(spec.candidates, app.now(), app.options.timezone)
            deadline = app.parse_deadline(spec.deadline) if spec.deadline else None
        except (ScheduleError, DateError) as e:
            await ctx.explain(e, "polls.example.schedule")
            return
        group = app.store.create_group(ctx.event_id, ctx.room_id, KIND, spec.title, ctx.sender, deadline,
                                       not spec.anonymous, {"candidates": [_stored(c) for c in candidates]})
        lang = app.bot.language_for("", ctx.room_id)
        polls = [(t("polls.schedule.question", lang, index=i, label=label(c, lang)), answers(lang), 1)
                 for i, c in enumerate(candidates, 1)]
        await app.groups.create(group, app.header_text(group, lang), None, polls, txn=ctx.event_id)
        app.schedule_deadline(group)

    async def decide(self, app: Polls, ctx: Context, number: int, candidate: int) -> None:
        group = await group_named(app.store, ctx, number)
        if group is None:
            return
        if group.kind != KIND:
            await ctx.reply("polls.schedule.not_schedule", number=number)
            return
        if not await may_manage(app.bot, ctx, group):
            return
        candidates = [_restored(c) for c in group.options.get("candidates", [])]
        decided = group.options.get("decided")
        # the same command handled again after a crash goes on (its sends are deduplicated)
        if decided and group.options.get("decided_event") != ctx.event_id:
            await ctx.reply("polls.schedule.already_decided", number=number, index=decided,
                            label=label(candidates[decided - 1], ctx.lang))
            return
        if not 1 <= candidate <= len(candidates):
            await ctx.reply("polls.schedule.no_candidate", number=number, index=candidate, count=len(candidates))
            return
        lang = app.bot.language_for("", ctx.room_id)
        # Closed first, decided then: a summary rendered in between must not show the decision
        # next to 受付中 (Element would keep showing whichever edit came last).
        if group.open:
            group = await app.groups.close(group, lang)
        app.store.set_group(group.group_id, options={**group.options, "decided": candidate, "decided_by": ctx.sender,
                                                     "decided_event": ctx.event_id})
        group = app.store.existing_group(group.group_id)
        await app.groups.refresh(group.group_id)
        chosen = candidates[candidate - 1]
        poll = app.store.polls(group.group_id)[candidate - 1]
        tally = app.groups.tallies(group, [poll])[0]
        coming = sorted(u for u, chosen_ids in tally.choices.items() if OK in chosen_ids or MAYBE in chosen_ids)
        text = t("polls.schedule.decided", lang, number=group.number, title=group.title, label=label(chosen, lang))
        txn = f"{ctx.event_id}/decided"
        if coming:
            await app.groups.mention(group.room_id, coming, text, txn, app.options.mentions_per_message,
                                     app.groups.name_of(group))
        else:
            await app.bot.send(group.room_id, "m.room.message", {"msgtype": "m.text", "body": text,
                                                                 "m.mentions": {}}, txn_key=f"{txn}/0")
        data = ics.event_ics(f"{group.group_id}@lgwan-chat", group.title, chosen.start, chosen.end, chosen.all_day,
                             description=t("polls.schedule.ics_description", lang, number=group.number,
                                           room=app.bot.room_name(group.room_id)),
                             tz=app.options.timezone)
        name = f"schedule-{group.number}-{chosen.start:%Y%m%d}.ics"
        mxc = await app.bot.upload(data, ics.MIMETYPE, name)
        await app.bot.send(group.room_id, "m.room.message", {
            "msgtype": "m.file", "body": name, "filename": name, "url": mxc,
            "info": {"mimetype": ics.MIMETYPE, "size": len(data)}, "m.mentions": {}}, txn_key=f"{txn}/ics")
