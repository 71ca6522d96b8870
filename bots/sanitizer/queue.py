"""Files posted in rooms wait here, not in the runtime's event loop: a 300-page PDF must not hold up
the photo posted after it.

- Each file is a row of ``sanitizer_jobs`` from the moment its event is handled until its reply is
  sent: the runtime records the event as handled right after it is queued, so after a crash or a
  restart the rows are what is left to do (replies carry transaction ids derived from the event, so a
  file half answered before the crash is not answered twice).
- Files posted in rooms and files sent to the bot in a DM wait here alike (a DM is a room of its own
  sender: fair per room is fair per sender there).
- Up to ``concurrency`` files run at once. Which waiting file runs next: rooms with fewer files
  running first (fair per room), then senders with fewer files running, then the smallest file, then
  the oldest. The size is the one the media repository stores (measured by the bot), never the one
  the sender's client claims: a client claiming 1 byte for a 300-page PDF does not jump the line.
- A long document that gives way to short files (engine/lanes.py: low CPU priority, paused while they
  run) leaves its worker to the next file (:meth:`FileQueue.moved`); up to ``concurrency`` such
  documents run besides.
- One room's large files may take all workers but one: the last free worker is kept for small files
  and for rooms with nothing running, so a big batch in one room never holds up another room.
- A file can be cancelled (:meth:`FileQueue.cancel`): a waiting one leaves the queue, a running one's
  task is cancelled (which kills its jailed processes). Its row goes first, so a restart right after
  never takes it up again.
- ``progress_event_id``: the message that shows the file's progress, kept so that after a restart
  the same message goes on being edited.
- ``kind``: what is asked of the file (:data:`JOB_KINDS`): ``file``, a file posted in a room or a DM,
  answered where it was posted; ``editable``, a ``!編集用`` request in a DM for the editable copy of
  a file in a room (``source``: that file's room and event), answered in the DM. A request waits,
  runs, shows its progress and is cancelled like a file: its ``event_id``, room and sender are the
  request's, its size the file's.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, NamedTuple

from bots.runtime.storage import Storage

from .metrics import QUEUE_FILES, QUEUE_OLDEST_WAITING

log = logging.getLogger("lgwan_chat.sanitizer.queue")

MIGRATIONS: list[str] = [
    """CREATE TABLE IF NOT EXISTS sanitizer_jobs (
        event_id TEXT NOT NULL PRIMARY KEY,
        room_id TEXT NOT NULL,
        size BIGINT NOT NULL,
        event TEXT NOT NULL,
        queued_ts BIGINT NOT NULL)""",
]
#: the second migration: the progress message of a running file
PROGRESS_MIGRATION: list[str] = ["ALTER TABLE sanitizer_jobs ADD COLUMN progress_event_id TEXT"]
#: the third: what is asked of the file, and for a request the file it names (rows before it: files)
KIND_MIGRATION: list[str] = ["ALTER TABLE sanitizer_jobs ADD COLUMN kind TEXT NOT NULL DEFAULT 'file'",
                             "ALTER TABLE sanitizer_jobs ADD COLUMN source TEXT"]
#: the kinds of job; the bot refuses a row of any other kind (one written by a newer version)
JOB_KINDS = ("file", "editable")


class Job(NamedTuple):
    event_id: str
    room_id: str
    size: int
    event: dict[str, Any]
    queued_ts: int
    progress_event_id: str | None = None
    kind: str = "file"
    #: ``editable``: the file asked for, ``{"room_id": ..., "event": ...}``
    source: dict[str, Any] | None = None

    @property
    def sender(self) -> str:
        return str(self.event.get("sender", ""))

    @property
    def file_event(self) -> dict[str, Any]:
        """The event of the file sanitized: the job's own, or the one a request names."""
        event = (self.source or {}).get("event")
        return event if isinstance(event, dict) else self.event


#: how often tasks that have not ended yet are cancelled again when the bot stops
RECANCEL_S = 0.5


async def cancel_until_done(tasks: list[asyncio.Task]) -> None:
    """Cancel ``tasks`` and wait for their end, cancelling again those still running: a cancellation
    can be lost (``asyncio.wait_for``, up to Python 3.11, returns a result that came at the same
    moment; the engine uses it throughout), and a file that runs on to its end holds up the bot's exit."""
    while pending := [task for task in tasks if not task.done()]:
        for task in pending:
            task.cancel()
        await asyncio.wait(pending, timeout=RECANCEL_S)
    for task in tasks:  # retrieved: none is logged as never retrieved
        if not task.cancelled():
            task.exception()


def next_job(waiting: list[Job], running: dict[str, int], free: int, concurrency: int,
             small_bytes: int) -> Job | None:
    """The job to start now (None: none may start). ``running``: files running per room and per
    sender (both kinds of key); ``free``: workers free."""
    if free <= 0 or not waiting:
        return None
    candidates = waiting
    if free == 1 and concurrency > 1:
        # the last free worker: not for one more large file of a room that already has one running
        candidates = [j for j in waiting if running.get(j.room_id, 0) == 0 or j.size <= small_bytes]
    if not candidates:
        return None
    return min(candidates, key=lambda j: (running.get(j.room_id, 0), running.get(j.sender, 0), j.size,
                                          j.queued_ts))


class FileQueue:
    """The waiting and running room files, and the workers that run them."""

    def __init__(self, storage: Storage, concurrency: int, small_bytes: int,
                 run: Callable[[Job], Awaitable[None]],
                 cancelled: Callable[[Job], Awaitable[None]] | None = None):
        self.storage = storage
        self.concurrency = concurrency
        self.small_bytes = small_bytes
        self._run = run
        self._waiting: list[Job] = []
        self._running: dict[str, asyncio.Task] = {}
        self._jobs: dict[str, Job] = {}
        self._on_cancelled = cancelled
        self._cancelled: set[str] = set()
        self._background: set[str] = set()  # running long documents that gave their worker up
        # read when Prometheus scrapes (one queue per bot process)
        QUEUE_FILES.labels("waiting").set_function(lambda: len(self._waiting))
        QUEUE_FILES.labels("running").set_function(lambda: len(self._running))
        QUEUE_OLDEST_WAITING.set_function(self.oldest_waiting_seconds)

    def oldest_waiting_seconds(self) -> float:
        """How long the longest-waiting file has waited (0 when nothing waits)."""
        if not self._waiting:
            return 0.0
        return max(0.0, time.time() - min(job.queued_ts for job in self._waiting) / 1000)

    def load(self) -> int:
        """What was queued before a restart and not answered yet."""
        rows = self.storage.all("SELECT event_id, room_id, size, event, queued_ts, progress_event_id, kind, source"
                                " FROM sanitizer_jobs")
        for event_id, room_id, size, event, queued_ts, progress_event_id, kind, source in rows:
            self._waiting.append(Job(event_id, room_id, int(size), json.loads(event), int(queued_ts),
                                     progress_event_id, kind, json.loads(source) if source else None))
        self._start_what_fits()
        return len(rows)

    def add(self, room_id: str, event: dict[str, Any], size: int, kind: str = "file",
            source: dict[str, Any] | None = None) -> None:
        """Queue the file of ``event`` (``kind`` ``file``), or the request ``event`` for the file
        ``source`` (``editable``); ``size``: the file's, as the media repository stores it."""
        event_id = event["event_id"]
        if event_id in self._jobs or any(j.event_id == event_id for j in self._waiting):
            return
        job = Job(event_id, room_id, max(0, size), event, int(time.time() * 1000), kind=kind, source=source)
        if self.storage.one("SELECT 1 FROM sanitizer_jobs WHERE event_id = ?", (event_id,)) is None:
            self.storage.execute("INSERT INTO sanitizer_jobs (event_id, room_id, size, event, queued_ts, kind, source)"
                                 " VALUES (?, ?, ?, ?, ?, ?, ?)",
                                 (event_id, room_id, job.size, json.dumps(event), job.queued_ts, kind,
                                  json.dumps(source) if source is not None else None))
        self._waiting.append(job)
        log.info("file queued", extra={"room_id": room_id, "event_id": event_id, "kind": kind, "size": job.size})
        self._start_what_fits()

    def _running_per_room(self) -> dict[str, int]:
        """Files running per room and per sender."""
        counts: dict[str, int] = {}
        for job in self._jobs.values():
            for key in (job.room_id, job.sender):
                counts[key] = counts.get(key, 0) + 1
        return counts

    def moved(self, event_id: str) -> None:
        """The running file ``event_id`` is a long document that gives way (engine/lanes.py): its
        worker is free for the next file."""
        if event_id in self._running and event_id not in self._background:
            self._background.add(event_id)
            log.info("file gives way", extra={"event_id": event_id})
            self._start_what_fits()

    def _start_what_fits(self) -> None:
        while True:
            free = self.concurrency - (len(self._running) - len(self._background))
            job = next_job(self._waiting, self._running_per_room(), free, self.concurrency, self.small_bytes)
            if job is None:
                return
            self._waiting.remove(job)
            self._jobs[job.event_id] = job
            self._running[job.event_id] = asyncio.ensure_future(self._work(job))

    def find(self, event_id: str) -> Job | None:
        """The waiting or running job of the file ``event_id``."""
        return self._jobs.get(event_id) or next((j for j in self._waiting if j.event_id == event_id), None)

    def set_progress(self, event_id: str, progress_event_id: str) -> None:
        """Remember the file's progress message (edited again after a restart)."""
        self.storage.execute("UPDATE sanitizer_jobs SET progress_event_id = ? WHERE event_id = ?",
                             (progress_event_id, event_id))
        if event_id in self._jobs:
            self._jobs[event_id] = self._jobs[event_id]._replace(progress_event_id=progress_event_id)

    async def cancel(self, event_id: str) -> str | None:
        """Cancel the file: ``"waiting"`` or ``"running"`` (what it was), None when it is neither.
        Returns once a running file's work has stopped; the ``cancelled`` callback has run by then."""
        waiting = next((j for j in self._waiting if j.event_id == event_id), None)
        task = self._running.get(event_id)
        if waiting is None and (task is None or task.done()):
            return None
        # the row first: whatever happens next, a restart does not take the file up again
        self.storage.execute("DELETE FROM sanitizer_jobs WHERE event_id = ?", (event_id,))
        if waiting is not None:
            self._waiting.remove(waiting)
            log.info("file cancelled", extra={"room_id": waiting.room_id, "event_id": event_id, "state": "waiting"})
            await self._tell_cancelled(waiting)
            return "waiting"
        assert task is not None
        self._cancelled.add(event_id)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        return "running"

    async def _tell_cancelled(self, job: Job) -> None:
        if self._on_cancelled is None:
            return
        try:
            await self._on_cancelled(job)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("could not say a file was cancelled", extra={"event_id": job.event_id})

    async def _work(self, job: Job) -> None:
        started = time.monotonic()
        log.info("file started", extra={"room_id": job.room_id, "event_id": job.event_id, "kind": job.kind,
                                        "size": job.size, "waited_ms": int(time.time() * 1000) - job.queued_ts})
        cancelled = answered = False
        try:
            await self._run(job)
            answered = True
        except asyncio.CancelledError:
            if job.event_id not in self._cancelled:
                raise  # stopping: the row stays, the file is done after the restart
            cancelled = True  # by its sender: its row is already gone
            log.info("file cancelled", extra={"room_id": job.room_id, "event_id": job.event_id, "state": "running",
                                              "ms": round(1000 * (time.monotonic() - started))})
        except Exception:
            log.exception("queued file failed", extra={"room_id": job.room_id, "event_id": job.event_id})
        self.storage.execute("DELETE FROM sanitizer_jobs WHERE event_id = ?", (job.event_id,))
        if answered:  # said once its row is gone: nothing of it is left to do
            log.info("file answered", extra={"room_id": job.room_id, "event_id": job.event_id,
                                             "ms": round(1000 * (time.monotonic() - started))})
        job = self._jobs.pop(job.event_id, job)
        self._running.pop(job.event_id, None)
        self._background.discard(job.event_id)
        self._cancelled.discard(job.event_id)
        self._start_what_fits()
        if cancelled:
            await self._tell_cancelled(job)

    async def stop(self) -> None:
        """The bot stops: running files are cancelled (their rows stay: done again after the restart)."""
        await cancel_until_done(list(self._running.values()))
        self._running.clear()
        self._jobs.clear()
        self._background.clear()
