"""Counting a poll exactly as Element does (pure: the rules of bots/polls/tally.py)."""

from __future__ import annotations

from bots.polls import events
from bots.polls.tally import Response, count

IDS = ["a1", "a2", "a3"]


def r(sender: str, ts: int, *answers: str, event: str | None = None) -> Response:
    return Response(sender, ts, event or f"${sender}{ts}", tuple(answers) if answers else None)


def test_the_latest_response_of_each_sender_wins_whatever_order_they_arrive_in():
    tally = count(IDS, 1, [r("@b", 5, "a2"), r("@a", 3, "a1"), r("@a", 1, "a3"), r("@b", 2, "a1")])
    assert tally.counts == {"a1": 1, "a2": 1, "a3": 0}
    assert tally.choices == {"@a": ("a1",), "@b": ("a2",)}


def test_a_spoiled_response_replaces_the_earlier_vote_with_no_vote():
    tally = count(IDS, 1, [r("@a", 1, "a1"), r("@a", 2, "nonsense"), r("@b", 1, "a1"), r("@b", 2)])
    assert tally.counts == {"a1": 0, "a2": 0, "a3": 0}
    assert tally.spoiled == {"@a", "@b"} and tally.voters == 0


def test_votes_are_cut_to_max_selections_and_duplicates_count_once():
    assert count(IDS, 1, [r("@a", 1, "a2", "a3")]).choices == {"@a": ("a2",)}
    assert count(IDS, 2, [r("@a", 1, "a3", "a3", "a1", "a2")]).counts == {"a1": 1, "a2": 0, "a3": 1}


def test_responses_after_the_end_are_ignored():
    tally = count(IDS, 1, [r("@a", 1, "a1"), r("@a", 11, "a2"), r("@b", 12, "a3")], ended_ts=10)
    assert tally.counts == {"a1": 1, "a2": 0, "a3": 0} and tally.voters == 1


def test_same_time_responses_are_ordered_by_event_id_so_every_process_agrees():
    first = count(IDS, 1, [r("@a", 1, "a1", event="$x"), r("@a", 1, "a2", event="$y")])
    second = count(IDS, 1, [r("@a", 1, "a2", event="$y"), r("@a", 1, "a1", event="$x")])
    assert first.choices == second.choices == {"@a": ("a2",)}


def test_percentages_are_of_the_voters():
    tally = count(IDS, 1, [r("@a", 1, "a1"), r("@b", 1, "a1"), r("@c", 1, "a2")])
    assert (tally.percent("a1"), tally.percent("a2"), tally.percent("a3")) == (67, 33, 0)


def test_responses_are_read_from_unstable_and_stable_events():
    unstable = {"content": events.response_content("$poll", ["a1"])}
    stable = {"content": {"m.relates_to": {"rel_type": "m.reference", "event_id": "$poll"},
                          "m.selections": ["a2"]}}
    assert events.response_answers(unstable) == ["a1"] and events.poll_of(unstable) == "$poll"
    assert events.response_answers(stable) == ["a2"] and events.poll_of(stable) == "$poll"
    assert events.response_answers({"content": {events.RESPONSE: {"answers": []}}}) is None
    assert events.response_answers({"content": {events.RESPONSE: {"answers": "a1"}}}) is None
    assert events.poll_of({"content": {"m.relates_to": {"rel_type": "m.annotation", "event_id": "$p"}}}) is None


def test_a_2000_voter_poll_is_counted_exactly():
    responses = [r(f"@u{i}", 1, IDS[i % 3]) for i in range(2000)] + [r(f"@u{i}", 2, "a3") for i in range(0, 2000, 10)]
    tally = count(IDS, 1, responses)
    assert tally.voters == 2000
    assert sum(tally.counts.values()) == 2000
    assert tally.counts["a3"] == 2000 // 3 + sum(1 for i in range(0, 2000, 10) if i % 3 != 2)
