"""lgwan-chat: a government chat suite on a stock Synapse homeserver.

This package holds what the Synapse modules, the bots and the command line
share: bilingual messages, configuration validation, and the code that
renders, starts and stops a homeserver (used by the demo, the tests and the
benchmarks alike).
"""

from pathlib import Path

__version__ = "0.1.0"

#: The source checkout this package runs from (``pip install -e``), which holds
#: ``config/`` templates. ``None`` when installed without the checkout.
_CHECKOUT = Path(__file__).resolve().parent.parent
SOURCE_ROOT: Path | None = _CHECKOUT if (_CHECKOUT / "config" / "homeserver.template.yaml").is_file() else None
