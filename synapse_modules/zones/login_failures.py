"""Wrong logins per client address: password spraying (one guess at each of many accounts).

Synapse limits wrong passwords per ACCOUNT (``rc_login.failed_attempts``) and every login attempt per
ADDRESS (``rc_login.address``, sized for a whole office behind one proxy, issue #16). Neither stops
one address from trying one password on thousands of accounts. This counts only FAILED logins per
client address (the address Synapse sees: the PC's, or the proxy's, through nginx): the staff behind
a proxy who type their password right spend nothing. Over the budget, every password login from
that address waits (a right one too: telling it apart would answer the guess).

Per process and in memory, like Synapse's own limits.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from synapse_modules._errors import limit_exceeded
from synapse_modules._synapse_internals import current_request_origin, is_failed_login

from .config import FailedLoginLimit

#: addresses remembered before those whose failures have all drained away are forgotten
PRUNE_AT = 10_000


class AddressBuckets:
    """A leaky bucket per address: each failure adds one, ``per_second`` drain away; an address whose
    bucket holds ``burst_count`` waits. Pure: the clock is given."""

    def __init__(self, limit: FailedLoginLimit, clock: Callable[[], float] = time.monotonic):
        self._limit = limit
        self._clock = clock
        self._levels: dict[str, tuple[float, float]] = {}  # address -> (level, when)
        self._prune_at = PRUNE_AT

    def _level(self, address: str, now: float) -> float:
        level, when = self._levels.get(address, (0.0, now))
        return max(0.0, level - (now - when) * self._limit.per_second)

    def take(self, address: str) -> float | None:
        """Room for one more failure is taken (None), or the seconds until there is."""
        now = self._clock()
        level = self._level(address, now)
        if level + 1 > self._limit.burst_count:
            return (level + 1 - self._limit.burst_count) / self._limit.per_second
        self._levels[address] = (level + 1, now)
        if len(self._levels) > self._prune_at:
            self._prune(now)
        return None

    def give_back(self, address: str) -> None:
        """The attempt did not fail: its room is returned."""
        now = self._clock()
        level = self._level(address, now) - 1
        if level > 0:
            self._levels[address] = (level, now)
        else:
            self._levels.pop(address, None)

    def _prune(self, now: float) -> None:
        self._levels = {a: (lv, t) for a, (lv, t) in self._levels.items() if self._level(a, now) > 0}
        self._prune_at = max(PRUNE_AT, 2 * len(self._levels))


class FailedLoginLimiter:
    """``around`` for ``wrap_login_check``: room is taken before the check (so parallel guesses cannot
    all pass a check made before any of them failed) and given back unless it failed."""

    def __init__(self, limit: FailedLoginLimit, clock: Callable[[], float] = time.monotonic):
        self._buckets = AddressBuckets(limit, clock)

    async def around(self, check: Callable[[], Awaitable[Any]]) -> Any:
        origin = current_request_origin()
        address = origin.ip_address if origin is not None else ""
        if not address:
            return await check()
        wait = self._buckets.take(address)
        if wait is not None:
            seconds = max(1, int(wait + 0.999))
            raise limit_exceeded("failed_logins_from_address", "zones.failed_logins_from_address",
                                 seconds * 1000, seconds=seconds)
        failed = False
        try:
            return await check()
        except BaseException as e:
            failed = is_failed_login(e)
            raise
        finally:
            if not failed:
                self._buckets.give_back(address)
