"""Bots of the lgwan-chat suite, on one shared matrix-nio runtime.

``AVAILABLE`` names every bot that exists: ``lgwan-chat demo`` registers an
account for each and starts it. The shared runtime and the first bot (memo
pad) come with their own issue; until then the list is empty.
"""

#: bot name -> importable module with a ``main(config_path)`` entry point
AVAILABLE: dict[str, str] = {}
