#!/usr/bin/env python3
"""Time-to-reply of a phone photo posted in one room right after large PDFs in another (issue #20).

The real engine (sandbox, default policies, ``concurrency`` 2) and the bot's real queue
(bots/sanitizer/queue.py, SQLite); no homeserver (its part of the reply is the same in every case).
Two text PDFs of ``--pages`` pages go to room A, then a 12 MP JPEG to room B, and the time from the
photo's arrival to its result is measured:

- ``idle``: the photo alone (what it would take on an idle bot);
- ``before``: one file at a time in arrival order (the bot before the queue: the runtime handled one
  event at a time);
- ``fifo``: the queue's workers, but first come first served (the queue without its order);
- ``queue``: the queue's order, but long documents do not give way (the bot before they did);
- ``after``: as shipped: the queue, and long documents give way (engine/lanes.py: their renderers
  at nice 19, paused while a short file runs, their worker left to the next file).

Target: ``after`` within 2 s of ``idle``. ``idle`` is measured first and last in the same run (the
load of a shared machine moves). ``--modes`` chooses the cases (default: idle,queue,after).

    .venv/bin/python bench/sanitize_queue.py --pages 300
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "support"))

import corpus_documents as corpus

from bench.common import load_average, machine, run
from bench.sanitize import photo_jpeg
from bots.runtime.storage import Storage
from bots.sanitizer import queue
from bots.sanitizer.app import MIGRATIONS
from bots.sanitizer.engine import Policies, Sanitizer

FAIR = queue.next_job


def fifo(waiting: list[queue.Job], running: dict[str, int], free: int, concurrency: int,
         small_bytes: int) -> queue.Job | None:
    return min(waiting, key=lambda j: j.queued_ts) if free > 0 and waiting else None


async def scenario(engine: Sanitizer, files: list[tuple[str, str, bytes]], mode: str, folder: Path) -> float:
    """Seconds from the photo's arrival (the last file) to its result."""
    done: dict[str, float] = {}
    blobs = {name: data for _, name, data in files}
    arrived = 0.0

    async def answer(job: queue.Job) -> None:
        name = job.event["content"]["body"]
        result = await engine.sanitize(blobs[name], name, moved=lambda: files_queue.moved(job.event_id))
        if not result.ok:  # e.g. over the time limit on a loaded machine: said, and still counted as answered
            print(f"{mode}: {name} not sanitized: {result.report('en')}", file=sys.stderr)
        done[name] = time.monotonic()

    photo = files[-1][1]
    if mode == "before":  # all posted within a moment; the photo's turn comes after the PDFs
        arrived = time.monotonic() + 0.05 * (len(files) - 1)
        for _, name, data in files:
            await engine.sanitize(data, name)
        return time.monotonic() - arrived
    storage = Storage(sqlite_path=folder / f"{mode}.db")
    storage.migrate("sanitizer", MIGRATIONS)
    queue.next_job = fifo if mode == "fifo" else FAIR
    files_queue = queue.FileQueue(storage, engine.policies.concurrency, 4096 * 1024, answer)
    for number, (room, name, data) in enumerate(files):
        arrived = time.monotonic()
        files_queue.add(room, {"event_id": f"${mode}{number}", "sender": f"@{room[1:]}:x", "content": {"body": name}},
                        len(data))
        await asyncio.sleep(0.05)  # posted one after the other
    while len(done) < len(files):
        await asyncio.sleep(0.02)
    await files_queue.stop()
    storage.close()
    queue.next_job = FAIR
    return done[photo] - arrived


async def main(args: argparse.Namespace) -> dict:
    jpeg = photo_jpeg()
    pdf = corpus.text_pdf(args.pages)
    files = [("!a", "資料1.pdf", pdf), ("!a", "資料2.pdf", pdf), ("!b", "写真.jpg", jpeg)]
    results: dict[str, float] = {}
    modes = args.modes.split(",")
    loads = [load_average()]
    with tempfile.TemporaryDirectory() as folder:
        # ``queue``: an engine where no document is long enough to give way
        async with Sanitizer(Policies(), runtime_dir=Path(folder) / "engine") as shipped, \
                Sanitizer(Policies(background_pages=100_000), runtime_dir=Path(folder) / "old") as old:
            for engine in (shipped, old):
                await engine.warm()
                await engine.sanitize(jpeg, "warm.jpg")
            if "idle" in modes:
                results["idle"] = await scenario(shipped, files[-1:], "idle", Path(folder))
            for mode in ("before", "fifo", "queue", "after"):
                if mode in modes:
                    results[mode] = await scenario(shipped if mode == "after" else old, files, mode, Path(folder))
                    loads.append(load_average())
            if "idle" in modes:
                results["idle (again, at the end)"] = await scenario(shipped, files[-1:], "idle2", Path(folder))
    loads.append(load_average())
    print(f"machine: {machine()}; load average (1 min) along the run: {', '.join(f'{x:.2f}' for x in loads)}; "
          f"2 PDFs of {args.pages} pages ({len(pdf) // 1024} KB), then a 12 MP JPEG ({len(jpeg) // 1024} KB)")
    print("| case | photo answered after (s) |\n|---|---|")
    for mode, seconds in results.items():
        print(f"| {mode} | {seconds:.2f} |")
    return {"pages": args.pages, "load": loads, **results}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=100)
    parser.add_argument("--modes", default="idle,queue,after", help="of idle,before,fifo,queue,after")
    run(main, parser)
