"""Long documents give way to short files (engine/lanes.py) and the queue hands their worker on
(queue.py): the rules alone, on the real queue with SQLite storage. Through the real bot and jail:
tests/test_sanitizer_progress.py; the time a photo takes: bench/sanitize_queue.py."""

from __future__ import annotations

import asyncio
import time

from bots.runtime.storage import RUNTIME_MIGRATIONS, Storage
from bots.sanitizer.app import SanitizerBot
from bots.sanitizer.engine import lanes
from bots.sanitizer.queue import FileQueue, Job, next_job


def job(event_id: str, room: str, sender: str, size: int, ts: int) -> Job:
    return Job(event_id, room, size, {"event_id": event_id, "sender": sender, "content": {}}, ts)


def test_rooms_then_senders_with_fewer_files_running_go_first_then_the_smaller_file():
    waiting = [job("$a", "!r1:x", "@busy:x", 10, 1), job("$b", "!r2:x", "@busy:x", 10, 2),
               job("$c", "!r3:x", "@idle:x", 50, 3)]
    # rooms r2 and r3 have nothing running; the sender of $b already has a file running elsewhere
    running = {"!r1:x": 1, "@busy:x": 1}
    assert next_job(waiting, running, free=2, concurrency=2, small_bytes=0) == waiting[2]
    assert next_job(waiting, {}, free=2, concurrency=2, small_bytes=0) == waiting[0]


async def test_a_long_document_leaves_its_slot_and_waits_while_a_short_file_runs(monkeypatch):
    monkeypatch.setattr(lanes, "PAUSE_S", 0.3)
    slots = lanes.Lanes(concurrency=1)
    moved = []
    async with slots.lane(lambda: moved.append("long")) as long:
        assert long.to_background() and moved == ["long"]
        assert not long.to_background()  # once
        # its foreground slot is free: a short file gets it at once
        async with slots.lane() as short:
            assert not short.background and slots.in_front == 1
            started = time.monotonic()
            await long.give_way(time_limit_s=180)  # a short file runs: wait, at most PAUSE_S
            assert 0.25 <= time.monotonic() - started < 1
            # only one background slot per worker: a second long document stays in the foreground
            assert not short.to_background()
        started = time.monotonic()
        await long.give_way(time_limit_s=180)  # nothing in front: no wait
        assert time.monotonic() - started < 0.05
    async with slots.lane() as again:  # both slots back
        assert again.to_background()


async def test_waiting_is_bounded_by_a_share_of_the_time_limit(monkeypatch):
    monkeypatch.setattr(lanes, "PAUSE_S", 0.2)
    slots = lanes.Lanes(concurrency=1)
    async with slots.lane() as long:
        long.to_background()
        async with slots.lane():
            started = time.monotonic()
            for _ in range(5):  # a quarter of a 1 s limit: 0.25 s in all, not 5 x 0.2 s
                await long.give_way(time_limit_s=1)
            assert time.monotonic() - started < 0.5


async def test_the_queue_starts_the_next_file_when_a_running_one_gives_way():
    storage = Storage()
    storage.migrate("runtime", RUNTIME_MIGRATIONS)
    storage.migrate("sanitizer", SanitizerBot.migrations)
    started: list[str] = []
    release = asyncio.Event()

    async def run(job: Job) -> None:
        started.append(job.event_id)
        await release.wait()

    queue = FileQueue(storage, concurrency=1, small_bytes=1000, run=run)
    queue.add("!a:x", {"event_id": "$long", "sender": "@a:x", "content": {}}, 5000)
    queue.add("!b:x", {"event_id": "$photo", "sender": "@b:x", "content": {}}, 5000)
    await asyncio.sleep(0.05)
    assert started == ["$long"]
    queue.moved("$long")
    queue.moved("$long")  # said twice: one worker freed, not two
    queue.add("!c:x", {"event_id": "$third", "sender": "@c:x", "content": {}}, 5000)
    await asyncio.sleep(0.05)
    assert started == ["$long", "$photo"]
    release.set()
    for _ in range(50):
        if len(started) == 3 and not storage.all("SELECT event_id FROM sanitizer_jobs"):
            break
        await asyncio.sleep(0.02)
    assert started == ["$long", "$photo", "$third"]
    await queue.stop()


async def test_a_request_keeps_its_kind_and_its_file_across_a_restart_and_older_rows_are_files():
    storage = Storage()
    storage.migrate("runtime", RUNTIME_MIGRATIONS)
    before = SanitizerBot.migrations[:-1]  # the queue as it was before requests were queued
    storage.migrate("sanitizer", before)
    storage.execute("INSERT INTO sanitizer_jobs (event_id, room_id, size, event, queued_ts) VALUES (?, ?, ?, ?, ?)",
                    ("$old", "!r:x", 10, '{"event_id": "$old", "sender": "@a:x", "content": {}}', 1))
    storage.migrate("sanitizer", SanitizerBot.migrations)
    release = asyncio.Event()

    async def run(job: Job) -> None:
        await release.wait()

    file = {"event_id": "$file", "sender": "@b:x", "content": {"filename": "仕様書.docx"}}
    queue = FileQueue(storage, concurrency=1, small_bytes=0, run=run)
    queue.add("!dm:x", {"event_id": "$ask", "sender": "@a:x", "content": {}}, 5000, kind="editable",
              source={"room_id": "!r:x", "event": file})
    await queue.stop()  # a restart: the rows are what is left to do
    again = FileQueue(storage, concurrency=0, small_bytes=0, run=run)
    assert again.load() == 2
    old, ask = again.find("$old"), again.find("$ask")
    assert old is not None and old.kind == "file" and old.file_event == old.event
    assert ask is not None and ask.kind == "editable" and ask.room_id == "!dm:x" and ask.sender == "@a:x"
    assert ask.source == {"room_id": "!r:x", "event": file} and ask.file_event == file
