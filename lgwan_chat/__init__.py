"""lgwan-chat: a government chat suite on a stock Synapse homeserver.

Two layers live here: ``lgwan_chat.core`` is the bottom every other part imports
(bilingual messages, configuration checking, the organisation file, the suite's routes);
the rest is operations, on top of everything: the ``lgwan-chat`` CLI, the demo,
check-config's registry, provisioning, and the code that renders, starts and stops a
homeserver, nginx and PostgreSQL (used by the demo, the tests and the benchmarks alike).
See docs/architecture.md, "Layers".
"""

__version__ = "0.1.0"
