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
    receipts = [Receipt(u, rng.choice([None, MAIN, *roots]), rng.randrange(400), f'{{"ts": {1000 + n}}}')
                for n, u in enumerate(rng.sample(sorted(members) + ["@gone:x"], 8))]
    sent = [Sent(e.sender, e.thread_id, e.stream_ordering) for e in events if rng.random() < 0.3]
    reads = build(members, receipts, sent)
    asked = rng.sample(events, 15)
    counter = Counter(reads, asked)
    for event in asked:
        answer = status(reads, event)
        assert counter.counts(event) == (len(answer.read), len(answer.unread)), event
        assert "@gone:x" not in {u for u, _ in answer.read} | set(answer.unread)


def test_receipt_time_is_read_from_synapse_json():
    assert Receipt("@a:x", None, 1, '{"ts": 1700000000123}').ts == 1700000000123
    assert Receipt("@a:x", None, 1, '{"ts":5,"x":1}').ts == 5
    assert Receipt("@a:x", None, 1, "not json").ts == 0
    assert Receipt("@a:x", None, 1, None).ts == 0
