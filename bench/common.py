"""What every benchmark script shares: the machine description and running a measured main()."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
from collections.abc import Callable, Coroutine
from importlib.metadata import version
from pathlib import Path
from typing import Any


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, "
            f"matrix-synapse {version('matrix-synapse')}")


def run(main: Callable[[argparse.Namespace], Coroutine[Any, Any, dict]], parser: argparse.ArgumentParser) -> Any:
    """Parse the arguments (plus ``--json FILE``), run ``main``, keep its summary as JSON if asked."""
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    summary = asyncio.run(main(args))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(summary, indent=2, ensure_ascii=False))
    return summary
