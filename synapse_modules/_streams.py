"""Reading one of Synapse's streams from a position, without missing rows committed out of order.

Two writes that take stream positions at the same moment can commit in the opposite order, so
"everything after the highest position I saw" can skip a row for good. A :class:`Watermark` reads
again from a position that was seen at least ``SETTLE_SECONDS`` earlier (every write that had a
position by then has committed since): such a row shows up at most ``SETTLE_SECONDS`` late and is
never lost. Used by the read status cache (receipts, events) and the bookmarks feed (events).
"""

from __future__ import annotations

from collections import deque

#: Before every stream position (backfilled history has negative positions).
FROM_START = -(2 ** 62)

#: Longer than any receipt or event write stays uncommitted after taking its stream position.
SETTLE_SECONDS = 5.0


class Watermark:
    """Where to read a stream from next, so that no committed row is missed."""

    def __init__(self, seen: int, now: float, safe: int | None = None):
        #: The highest position read so far.
        self.seen = seen
        #: Every row at or below it has been read; None until a complete read proves one (or
        #: given, e.g. a position kept in the database by an earlier process).
        self.safe: int | None = safe
        self._born = now
        #: (when, highest position seen by then), oldest first, at most a few per SETTLE_SECONDS.
        self._history: deque[tuple[float, int]] = deque([(now, seen)])

    def read_from(self, now: float) -> int | None:
        """Exclusive lower bound for the next read; None = read the whole stream again."""
        if self.safe is not None:
            return self.safe
        if now - self._born >= SETTLE_SECONDS:
            return None  # once, to prove a safe position (see after_read)
        return self.seen  # young: rows committing out of order may show up a little late

    def after_read(self, now: float, read_from: int | None, highest: int) -> None:
        complete = read_from is None or (self.safe is not None and read_from == self.safe)
        if complete:
            # Everything at or below what was seen SETTLE_SECONDS ago had committed before this
            # read began, and this read saw everything above its bound: nothing below is missing.
            settled = None
            while self._history and now - self._history[0][0] >= SETTLE_SECONDS:
                settled = self._history.popleft()[1]
            if settled is not None and (self.safe is None or settled > self.safe):
                self.safe = settled
            if self.safe is None and read_from is None:
                self.safe = FROM_START  # whole stream read: from now on, grow from here
        self.seen = max(self.seen, highest)
        if not self._history or now - self._history[-1][0] >= SETTLE_SECONDS / 4:
            self._history.append((now, self.seen))
