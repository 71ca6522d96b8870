"""The suite's bottom layer: what the Synapse modules, the bots and the operations tools share.

Nothing here imports the rest of the suite (``bots``, ``synapse_modules`` or the
operations modules of ``lgwan_chat``): ``tests/test_layers.py`` checks it.
"""

from pathlib import Path

#: The source checkout this package runs from (``pip install -e``), which holds
#: ``config/`` templates. ``None`` when installed without the checkout.
_CHECKOUT = Path(__file__).resolve().parent.parent.parent
SOURCE_ROOT: Path | None = _CHECKOUT if (_CHECKOUT / "config" / "homeserver.template.yaml").is_file() else None
