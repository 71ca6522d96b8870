"""The batch counter agrees with the per-event answer on random rooms (pure logic, no homeserver)."""

from __future__ import annotations

import random

import pytest

from synapse_modules.read_status.status import MAIN, Counter, build, status
from synapse_modules.read_status.synapse_tables import EventPosition, Receipt, Sent


@pytest.mark.parametrize("seed", range(30))
def test_counter_matches_status(seed):
    rng = random.Random(seed)
    roots = [f"$root{i}" for i in range(3)]
    events = [EventPosition(f"$e{i}", i * 10, f"@u{rng.randrange(8)}:x", i, rng.choice([None, None, *roots]))
              for i in range(1, 40)]
    members = {f"@u{i}:x": rng.choice([0, 0, 0, rng.randrange(400)]) for i in range(12)}
    # up to one receipt per user and timeline (as Synapse keeps them), several timelines per user
    keys = rng.sample([(u, t) for u in sorted(members) + ["@gone:x"] for t in [None, MAIN, *roots]], 20)
    receipts = [Receipt(u, t, rng.randrange(400), f'{{"ts": {1000 + rng.randrange(500)}}}') for u, t in keys]
    sent = [Sent(e.sender, e.thread_id, e.stream_ordering) for e in events if rng.random() < 0.3]
    reads = build(members, receipts, sent)
    asked = rng.sample(events, 15)
    counter = Counter(reads, asked)
    for event in asked:
        answer = status(reads, event)
        assert counter.counts(event) == (len(answer.read), len(answer.unread)), event
        assert "@gone:x" not in {u for u, _ in answer.read} | set(answer.unread)
        # Each reader's time: the earliest of their receipts that reach the event (brute force).
        timeline = event.thread_id or MAIN
        for user, ts in answer.read:
            reaching = [r.ts for r in receipts if r.user_id == user and r.thread_id in (None, timeline)
                        and r.stream_ordering >= event.stream_ordering]
            assert ts == (min(reaching) if reaching else None), (user, event)


def test_receipt_time_is_read_from_synapse_json():
    assert Receipt("@a:x", None, 1, '{"ts": 1700000000123}').ts == 1700000000123
    assert Receipt("@a:x", None, 1, '{"ts":5,"x":1}').ts == 5
    assert Receipt("@a:x", None, 1, "not json").ts == 0
    assert Receipt("@a:x", None, 1, None).ts == 0


def test_a_receipt_committed_out_of_order_is_picked_up_once_settled():
    """Two receipts written at once: stream id 11 commits before 10. Reading "after the highest
    seen" would skip 10 for ever; the watermark reads again from a settled position."""
    from synapse_modules._streams import SETTLE_SECONDS, Watermark

    committed = {5}  # stream ids visible in the database
    incorporated: set[int] = set()
    now = 0.0
    mark = Watermark(seen=5, now=now)
    incorporated |= committed

    def read(at: float) -> None:
        bound = mark.read_from(at)
        rows = {i for i in committed if bound is None or i > bound}
        incorporated.update(rows)
        mark.after_read(at, bound, max(rows, default=-1))

    committed.add(11)
    now += 0.1
    read(now)
    assert 11 in incorporated and mark.seen == 11
    committed.add(10)  # commits late, below what was already seen
    for step in range(1, 40):
        read(now + step * SETTLE_SECONDS / 10)
    assert 10 in incorporated
    assert mark.safe is not None and mark.safe >= 5  # from here on, reads start at a settled position
    committed.add(12)
    read(now + 10 * SETTLE_SECONDS)
    assert 12 in incorporated
    # Settled: the same race now costs nothing, the next read already starts below it.
    later = now + 11 * SETTLE_SECONDS
    committed.add(14)
    read(later)
    committed.add(13)
    read(later + 0.01)
    assert 13 in incorporated


@pytest.mark.parametrize("seed", range(30))
def test_a_room_moved_on_answers_as_one_read_from_scratch(seed):
    """The cache keeps a room's sorted indexes and moves only the members who changed
    (receipts, messages, joins, leaves): every answer must equal a room read from scratch."""
    from synapse_modules.read_status.status import advance

    rng = random.Random(seed)
    roots = [f"$root{i}" for i in range(3)]
    events = [EventPosition(f"$e{i}", i * 10, f"@u{rng.randrange(8)}:x", i, rng.choice([None, None, *roots]))
              for i in range(1, 40)]
    users = [f"@u{i}:x" for i in range(14)]
    members = {u: rng.choice([0, 0, rng.randrange(400)]) for u in users[:10]}
    latest: dict[tuple[str, str | None], Receipt] = {}
    sent: list[Sent] = []

    def receipts_now(n: int) -> list[Receipt]:
        made = []
        for u, t in rng.sample([(u, t) for u in users for t in [None, MAIN, *roots]], n):
            old = latest.get((u, t))
            position = max(old.stream_ordering if old else 0, rng.randrange(400))  # never backwards
            latest[(u, t)] = Receipt(u, t, position, f'{{"ts": {rng.randrange(9999)}}}')
            made.append(latest[(u, t)])
        return made

    reads = build(members, receipts_now(12), sent)
    for _ in range(4):
        for event in rng.sample(events, 10):  # builds main and thread indexes, which advance() carries on
            status(reads, event)
        membership = {u: (None if u in members and rng.random() < 0.5 else rng.randrange(400))
                      for u in rng.sample(users, 3)}
        for u, joined in membership.items():
            members.pop(u, None) if joined is None else members.__setitem__(u, joined)
        new_sent = [Sent(e.sender, e.thread_id, e.stream_ordering) for e in rng.sample(events, 3)]
        sent += new_sent
        reads = advance(reads, membership, receipts_now(4), new_sent)
        fresh = build(members, latest.values(), sent)
        for event in events:
            moved, scratch = status(reads, event), status(fresh, event)
            assert sorted(moved.read) == sorted(scratch.read) and moved.unread == scratch.unread, event
