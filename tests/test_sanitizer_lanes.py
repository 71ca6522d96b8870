"""Long documents give way to short files (engine/lanes.py) and the queue hands their worker on
(queue.py): the rules alone, on the real queue with SQLite storage. Through the real bot and jail:
tests/test_sanitizer_progress.py; the time a photo takes: bench/sanitize_queue.py."""

from __future__ import annotations

import asyncio
import contextlib

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


async def settle() -> None:
    """Let every task that is ready run (the queue decides what starts synchronously, when told)."""
    for _ in range(20):
        await asyncio.sleep(0)


async def test_a_long_document_leaves_its_slot_and_waits_while_a_short_file_runs():
    slots = lanes.Lanes(concurrency=1)
    moved = []
    async with slots.lane(lambda: moved.append("long")) as long:
        assert long.to_background() and moved == ["long"]
        assert not long.to_background()  # once
        # its foreground slot is free: a short file gets it at once
        short_done = asyncio.Event()

        async def short_file() -> None:
            async with slots.lane() as short:
                assert not short.background and slots.in_front == 1
                # only one background slot per worker: a second long document stays in the foreground
                assert not short.to_background()
                await short_done.wait()

        short = asyncio.ensure_future(short_file())
        await settle()
        assert slots.in_front == 1
        # a short file runs: the long document waits before its next render run ...
        waiting = asyncio.ensure_future(long.give_way(time_limit_s=180))
        await settle()
        assert not waiting.done()
        # ... until it is done
        short_done.set()
        await short
        await waiting
        paused = long.paused_s
        assert paused > 0
        await long.give_way(time_limit_s=180)  # nothing in front: no wait
        assert long.paused_s == paused
    async with slots.lane() as again:  # both slots back
        assert again.to_background()


async def test_waiting_is_bounded_by_a_pause_and_a_share_of_the_time_limit(monkeypatch):
    monkeypatch.setattr(lanes, "PAUSE_S", 0.05)
    slots = lanes.Lanes(concurrency=1)
    async with slots.lane() as long:
        long.to_background()
        async with slots.lane():
            # a short file runs all along: each wait ends by itself (PAUSE_S) ...
            await long.give_way(time_limit_s=1)
            assert slots.in_front == 1 and long.paused_s > 0
            # ... and once a quarter of the file's time limit went by in waiting, it waits no more
            for _ in range(20):
                before = long.paused_s
                await long.give_way(time_limit_s=1)
                if long.paused_s == before:
                    break
            assert long.paused_s == before, long.paused_s
            assert long.paused_s >= lanes.PAUSE_SHARE * 1 - 0.01  # it did wait its share first


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
    await settle()
    assert started == ["$long"]
    queue.moved("$long")
    queue.moved("$long")  # said twice: one worker freed, not two
    queue.add("!c:x", {"event_id": "$third", "sender": "@c:x", "content": {}}, 5000)
    await settle()
    assert started == ["$long", "$photo"]
    release.set()
    await settle()
    assert started == ["$long", "$photo", "$third"]
    await settle()
    assert storage.all("SELECT event_id FROM sanitizer_jobs") == []
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


async def test_stopping_cancels_again_a_file_whose_cancellation_was_lost():
    storage = Storage()
    storage.migrate("runtime", RUNTIME_MIGRATIONS)
    storage.migrate("sanitizer", SanitizerBot.migrations)

    async def run(job: Job) -> None:
        with contextlib.suppress(asyncio.CancelledError):  # lost on the way (as asyncio.wait_for may lose it)
            await asyncio.Event().wait()
        await asyncio.Event().wait()  # the file would run on

    queue = FileQueue(storage, concurrency=1, small_bytes=0, run=run)
    queue.add("!a:x", {"event_id": "$file", "sender": "@a:x", "content": {}}, 10)
    await settle()
    await asyncio.wait_for(queue.stop(), 60)  # only a bound for a broken stop, which would wait for ever
    # stopped, not answered: the file is done again after the restart
    assert storage.all("SELECT event_id FROM sanitizer_jobs") == [("$file",)]
