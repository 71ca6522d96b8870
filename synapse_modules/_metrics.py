"""The suite's own Prometheus metrics in Synapse (``lgwan_chat_*``).

Created once per process at import and registered in prometheus_client's default registry,
which Synapse's ``metrics`` listener serves: every worker reports what it did itself, and
Prometheus adds them up. Labels take values from fixed sets only (refusal reasons, listener
tags, verdicts): never a user, room or path.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from prometheus_client import Counter, Gauge, Histogram

#: Every refusal a person gets from the suite (``_errors.refusal_fields``), by its machine-readable
#: reason and the zone of the request (``lgwan``/``internet``, as the zone module decides it: by
#: listener or by client address); ``unmatched`` for a request no zone rule places, ``none`` for work
#: outside a client request (events arriving over federation, background jobs).
REFUSALS = Counter("lgwan_chat_refusals", "Requests and events the suite refused, by reason and zone",
                   ["reason", "zone"])

#: nginx's media gate (``auth_request``): ``allowed``, a refusal's reason, or ``error`` (an exception:
#: nginx then refuses the fetch).
MEDIA_GATE_VERDICTS = Counter("lgwan_chat_media_gate_verdicts", "Media gate verdicts", ["verdict"])

#: Time to answer a read-status request (``one`` event, or ``many`` events of a room).
READ_STATUS_SECONDS = Histogram("lgwan_chat_read_status_request_seconds", "Read-status request latency",
                                ["request"], buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0))

#: How late a bookmark appears: from a 🔖 reaction being sent (its ``origin_server_ts``) to the
#: bookmarks feed storing it. Observed once per reaction, by the process whose write added it (a
#: re-read, or another process reading the same rows, adds nothing).
BOOKMARKS_FEED_LAG_SECONDS = Histogram("lgwan_chat_bookmarks_feed_lag_seconds",
                                       "Delay from a bookmark reaction to its bookmark being stored",
                                       buckets=(0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0))

#: When the bookmarks feed's background loop last finished a catch-up (Unix time), on the process
#: running background tasks; 0 elsewhere. ``time() - this`` growing means the feed has stopped.
BOOKMARKS_FEED_LAST_CATCH_UP = Gauge("lgwan_chat_bookmarks_feed_last_catch_up_timestamp_seconds",
                                     "When the bookmarks feed's background loop last caught up")

#: A legal hold, retention period or LGWAN-only marker another server put into a room's state
#: (``zones/state_keeper.py``), by ``state`` (``legal_hold``, ``retention``, ``zone_marker``):
#: ``restored`` (our last value sent again), ``failed`` (could not be: see Synapse's log).
PROTECTED_STATE_RESTORED = Counter("lgwan_chat_protected_state_restored",
                                   "Legal holds, retention periods and LGWAN-only markers changed by another"
                                   " server and restored", ["state", "outcome"])

#: the ``zone`` of a refusal outside a client request
NO_REQUEST = "none"
#: the ``zone`` of a client request no zone rule places (or made with no zone module loaded)
UNMATCHED = "unmatched"
#: the zone module's own decision (``set_zone_of_request``): request origin -> zone or None
_zone_of_request: Callable[[Any], str | None] | None = None


def set_zone_of_request(zone_of: Callable[[Any], str | None]) -> None:
    """The zone module says how it decides a request's zone (modules below it cannot import it)."""
    global _zone_of_request
    _zone_of_request = zone_of


def zone_label(origin: Any) -> str:
    """The ``zone`` label of a refusal made while handling ``origin`` (a RequestOrigin or None)."""
    if origin is None:
        return NO_REQUEST
    return (_zone_of_request(origin) if _zone_of_request is not None else None) or UNMATCHED
