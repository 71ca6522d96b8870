"""Surveys (アンケート): one native poll; and multiple choice (複数選択): one yes/no poll per option,
because Element cannot vote for several options of one poll (element-meta#2694)."""

from __future__ import annotations

import html
import unicodedata
from collections.abc import Callable, Sequence

import attrs

from bots.runtime import InputError
from lgwan_chat.core.i18n import t

from .events import MAX_ANSWERS, Answer
from .store import Group, Poll
from .tally import Tally

YES, NO = "yes", "no"


class SpecError(InputError):
    """A survey or multiple choice command not understood."""


@attrs.frozen
class Spec:
    """What a survey command asked for."""

    question: str
    options: tuple[str, ...]
    deadline: str | None  # as written; parsed by dates.parse_deadline
    anonymous: bool


_DEADLINE = ("締切", "締め切り", "しめきり", "期限", "deadline", "due")
_ANONYMOUS = ("匿名", "無記名", "anonymous")


def parse_spec(text: str, min_options: int = 2, max_options: int = MAX_ANSWERS) -> Spec:
    """``質問`` then options, one per line (or separated by ``/``), then optional ``締切 12/3 17時`` and
    ``匿名`` lines."""
    text = (text or "").replace("／", "/")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if (len(lines) == 1 and " / " in lines[0]) or (len(lines) == 1 and "/" in lines[0] and lines[0].count("/") >= 2):
        lines = [part.strip() for part in lines[0].split("/") if part.strip()]
    deadline, anonymous = None, False
    rest: list[str] = []
    for line in lines:
        folded = unicodedata.normalize("NFKC", line).casefold()
        word = next((w for w in _DEADLINE if folded.startswith(w)), None)
        if word is not None and rest:
            deadline = unicodedata.normalize("NFKC", line)[len(word):].lstrip(" :：").strip()
        elif folded in _ANONYMOUS and rest:
            anonymous = True
        else:
            rest.append(line.lstrip("・-*•").strip())
    if not rest:
        raise SpecError("polls.no_question")
    question, options = rest[0], tuple(dict.fromkeys(rest[1:]))
    if not min_options <= len(options) <= max_options:
        raise SpecError("polls.option_count", count=len(options), min=min_options, max=max_options)
    if any(len(o) > 200 for o in (question, *options)):
        raise SpecError("polls.too_long")
    return Spec(question, options, deadline or None, anonymous)


def answers_for(options: Sequence[str]) -> list[Answer]:
    return [Answer(f"a{i}", text) for i, text in enumerate(options, 1)]


def yes_no(lang: str) -> list[Answer]:
    return [Answer(YES, t("polls.yes", lang)), Answer(NO, t("polls.no", lang))]


def _header(group: Group, lang: str, voters: int, deadline: str) -> str:
    state = t("polls.state_closed", lang) if not group.open else (
        t("polls.state_deadline", lang, when=deadline) if deadline else t("polls.state_open", lang))
    return t(f"polls.summary_title.{group.kind}", lang, number=group.number, title=group.title, state=state,
             voters=voters)


def _who(group: Group, tally: Tally, answer_id: str, lang: str, names: Callable[[str], str]) -> str:
    """Who chose ``answer_id``: shown once a disclosed poll is closed, never while it is open."""
    if not group.disclosed or group.open:
        return ""
    who = [names(u) for u, chosen in sorted(tally.choices.items()) if answer_id in chosen]
    return t("polls.summary_who", lang, names=("、" if lang == "ja" else ", ").join(who)) if who else ""


@attrs.frozen
class SurveyKind:
    format_deadline: Callable[[Group, str], str]

    def render(self, group: Group, polls: Sequence[Poll], tallies: Sequence[Tally], lang: str,
               names: Callable[[str], str]) -> tuple[str, str]:
        poll, tally = polls[0], tallies[0]
        lines = [_header(group, lang, tally.voters, self.format_deadline(group, lang))]
        for answer_id, text in poll.answers:
            line = t("polls.summary_line", lang, answer=text, votes=tally.counts.get(answer_id, 0),
                     percent=tally.percent(answer_id))
            lines.append(line + _who(group, tally, answer_id, lang, names))
        return "\n".join(lines), "<br>".join(html.escape(line) for line in lines)

    def answered(self, group: Group, polls: Sequence[Poll], tallies: Sequence[Tally]) -> set[str]:
        return set(tallies[0].choices) if tallies else set()


@attrs.frozen
class MultiKind:
    """One yes/no poll per option: the summary counts the yes of each, best first."""

    format_deadline: Callable[[Group, str], str]

    def render(self, group: Group, polls: Sequence[Poll], tallies: Sequence[Tally], lang: str,
               names: Callable[[str], str]) -> tuple[str, str]:
        voters = set().union(*(set(t_.choices) for t_ in tallies)) if tallies else set()
        lines = [_header(group, lang, len(voters), self.format_deadline(group, lang))]
        ranked = sorted(zip(polls, tallies, strict=True), key=lambda pt: (-pt[1].counts.get(YES, 0), pt[0].position))
        for poll, tally in ranked:
            yes = tally.counts.get(YES, 0)
            line = t("polls.summary_line", lang, answer=poll.question, votes=yes,
                     percent=round(100 * yes / len(voters)) if voters else 0)
            lines.append(line + _who(group, tally, YES, lang, names))
        return "\n".join(lines), "<br>".join(html.escape(line) for line in lines)

    def answered(self, group: Group, polls: Sequence[Poll], tallies: Sequence[Tally]) -> set[str]:
        return set().union(*(set(t_.choices) for t_ in tallies)) if tallies else set()
