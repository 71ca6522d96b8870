"""The sanitizer's Prometheus metrics: files by kind and verdict (served by the bot's metrics port).

Labels from fixed sets only (``detect.kind_of`` kinds, ``sanitized`` / ``refused``): never a name.
"""

from __future__ import annotations

from prometheus_client import Counter

FILES = Counter("lgwan_chat_sanitizer_files", "Files the sanitizer checked, by kind and verdict", ["kind", "verdict"])
