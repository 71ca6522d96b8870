"""Counting exactly as Element counts a poll.

- each sender's latest response (by ``origin_server_ts``; the event id breaks ties) wins;
- a response with no valid answer list, or with an answer id the poll does not have, is "spoiled":
  it replaces that sender's earlier vote with no vote;
- a vote is cut to the poll's ``max_selections`` (the first ones);
- responses after the poll ended are ignored; only an end sent by the poll's creator counts (the
  bot creates every poll, so the end is the time the bot closed the group).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import attrs


@attrs.frozen
class Response:
    sender: str
    ts: int
    event_id: str
    answers: tuple[str, ...] | None  # None: spoiled


@attrs.frozen
class Tally:
    counts: dict[str, int]  # answer id -> votes
    choices: dict[str, tuple[str, ...]]  # sender -> answer ids (valid votes only)
    spoiled: frozenset[str]  # senders whose latest response is not a valid vote
    ended_ts: int | None

    @property
    def voters(self) -> int:
        return len(self.choices)

    def percent(self, answer_id: str) -> int:
        return round(100 * self.counts.get(answer_id, 0) / self.voters) if self.voters else 0


def count(answer_ids: Sequence[str], max_selections: int, responses: Iterable[Response],
          ended_ts: int | None = None) -> Tally:
    valid = set(answer_ids)
    latest: dict[str, Response] = {}
    for response in responses:
        if ended_ts is not None and response.ts > ended_ts:
            continue
        current = latest.get(response.sender)
        if current is None or (response.ts, response.event_id) > (current.ts, current.event_id):
            latest[response.sender] = response
    counts = {a: 0 for a in answer_ids}
    choices: dict[str, tuple[str, ...]] = {}
    spoiled = set()
    for sender, response in latest.items():
        answers = response.answers
        if answers is None or not answers or any(a not in valid for a in answers):
            spoiled.add(sender)
            continue
        chosen = tuple(dict.fromkeys(answers))[:max(1, max_selections)]
        choices[sender] = chosen
        for a in chosen:
            counts[a] += 1
    return Tally(counts=counts, choices=choices, spoiled=frozenset(spoiled), ended_ts=ended_ts)
