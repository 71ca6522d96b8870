"""A bot's Prometheus metrics (``lgwan_chat_bot_*``), served on 127.0.0.1:``metrics_port`` when set.

One bot per process (``python -m bots.<name>``): the objects below are created once, at import.
Labels take values from fixed sets only (the bot's name, an outcome of ``Bot._dispatch``, a handler
kind): never a user, room or message.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, start_http_server

#: Loopback only: the port is scraped from the bot's own host, never published.
METRICS_ADDRESS = "127.0.0.1"

#: When the bot last finished handling a sync batch (Unix time). ``time() - this`` is how far
#: behind the bot may be: a healthy bot syncs at least every long-poll timeout (30 s).
LAST_SYNC = Gauge("lgwan_chat_bot_last_sync_timestamp_seconds", "When the bot last completed a sync", ["bot"])
#: Sync requests that failed (network, homeserver refusing) or whose batch was not fully handled.
SYNC_FAILURES = Counter("lgwan_chat_bot_sync_failures", "Failed sync attempts", ["bot"])
#: Events the bot handled, by outcome: ``command:<name>``, ``message``, ``event``, ``error``, ...
EVENTS_HANDLED = Counter("lgwan_chat_bot_events_handled", "Events the bot handled, by outcome",
                         ["bot", "outcome"])
#: Handlers that raised (``event``, ``invite``): the user got an apology, the bot went on.
HANDLER_ERRORS = Counter("lgwan_chat_bot_handler_errors", "Handlers that raised", ["bot", "handler"])


def serve(port: int | None) -> None:
    """Start the metrics listener (a daemon thread) when a port is configured."""
    if port is not None:
        start_http_server(port, addr=METRICS_ADDRESS)
