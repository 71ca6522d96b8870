"""Long documents give way to short files (issue #20): a photo posted while a 300-page PDF is being
sanitized is answered about as fast as on an idle bot.

Every file starts in one of ``concurrency`` foreground slots. Once a PDF or Office document turns out
to have ``background_pages`` pages or more (its page count, from the jailed probe), it moves to one of
``concurrency`` background slots, when one is free, and its foreground slot goes to the next file (the
bot's queue is told, ``moved``). In the background:

- its renderers run at the lowest CPU priority (nice 19), its pages are compressed by low-priority
  threads: a short file's processes win the CPU;
- before each render run it waits while a foreground file is running, at most ``PAUSE_S`` each time
  and ``PAUSE_SHARE`` of its time limit in all: it still has to finish within ``timeout_s`` (enforced
  by killing, as for every file), and a stream of photos cannot hold it back for ever.

At most ``2 x concurrency`` files run at once, half of them long documents that yield.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable

log = logging.getLogger("lgwan_chat.sanitizer")

#: a long document waits at most this long for short files before each render run
PAUSE_S = 2.0
#: ... and at most this share of its time limit in all
PAUSE_SHARE = 0.25


class Lanes:
    """The foreground and background slots of one engine."""

    def __init__(self, concurrency: int):
        self._foreground = asyncio.Semaphore(concurrency)
        self._background_free = concurrency
        self._in_front = 0
        self._front_idle = asyncio.Event()
        self._front_idle.set()

    @property
    def in_front(self) -> int:
        """Files running in a foreground slot."""
        return self._in_front

    @contextlib.asynccontextmanager
    async def lane(self, moved: Callable[[], None] | None = None) -> AsyncIterator[Lane]:
        """A foreground slot for one file (waits for one), released at the end whichever it holds then."""
        await self._foreground.acquire()
        lane = Lane(self, moved)
        self._enter_front()
        try:
            yield lane
        finally:
            if lane.background:
                self._background_free += 1
            else:
                self._leave_front()
                self._foreground.release()

    def _enter_front(self) -> None:
        self._in_front += 1
        self._front_idle.clear()

    def _leave_front(self) -> None:
        self._in_front -= 1
        if self._in_front == 0:
            self._front_idle.set()


class Lane:
    """One file's slot."""

    def __init__(self, lanes: Lanes, moved: Callable[[], None] | None):
        self._lanes = lanes
        self._moved = moved
        self.background = False
        self.paused_s = 0.0

    def to_background(self) -> bool:
        """Move to a background slot if one is free (False: stays in the foreground)."""
        lanes = self._lanes
        if self.background or lanes._background_free <= 0:
            return False
        lanes._background_free -= 1
        self.background = True
        lanes._leave_front()
        lanes._foreground.release()
        if self._moved is not None:
            try:
                self._moved()
            except Exception:  # telling the caller must never fail the file
                log.exception("moved callback failed")
        return True

    async def give_way(self, time_limit_s: float) -> None:
        """In the background: wait while foreground files run (bounded, see the module's notes)."""
        if not self.background:
            return
        wait = min(PAUSE_S, PAUSE_SHARE * time_limit_s - self.paused_s)
        if wait <= 0 or self._lanes._front_idle.is_set():
            return
        started = time.monotonic()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._lanes._front_idle.wait(), wait)
        self.paused_s += time.monotonic() - started
