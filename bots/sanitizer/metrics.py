"""The sanitizer bot's queue on its metrics port: how many room files wait, how long the oldest has.

(The engine's own counters, files by kind and verdict, are in ``engine/metrics.py``.)
"""

from __future__ import annotations

from prometheus_client import Gauge

QUEUE_FILES = Gauge("lgwan_chat_sanitizer_queue_files", "Room files waiting for the sanitizer or being sanitized",
                    ["state"])
QUEUE_OLDEST_WAITING = Gauge("lgwan_chat_sanitizer_queue_oldest_waiting_seconds",
                             "How long the file that has waited longest has been waiting (0: none waits)")
