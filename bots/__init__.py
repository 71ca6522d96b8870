"""Bots of the lgwan-chat suite, on one shared matrix-nio runtime (``bots/runtime``).

``AVAILABLE`` names every bot that exists: ``lgwan-chat demo`` registers an
account for each, writes its configuration (config/bots.template.yaml) and
starts it.
"""

#: bot name -> importable module run as ``python -m MODULE --config bots.yaml``
AVAILABLE: dict[str, str] = {"memo": "bots.memo", "sanitizer": "bots.sanitizer", "polls": "bots.polls"}
