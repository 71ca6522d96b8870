"""What every benchmark script shares: the machine description, running a measured main(),
stopping what it started however it ends, and reading a process's CPU time."""

from __future__ import annotations

import argparse
import asyncio
import atexit
import json
import os
import platform
import signal
import sys
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


def load_average() -> float:
    """The machine's 1-minute load average (other work on a shared machine skews wall times)."""
    try:
        return float(Path("/proc/loadavg").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return float("nan")


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (``/proc/PID/stat``).

    CPU time per unit of work is much less sensitive than wall time to other load on the
    machine: a process that waits for a core is not charged for the wait.
    """
    stat = Path(f"/proc/{pid}/stat").read_text()
    # The command name (field 2) may hold spaces: fields are counted after its closing ')'.
    fields = stat.rsplit(")", 1)[1].split()
    utime, stime = int(fields[11]), int(fields[12])  # fields 14 and 15 of proc(5)
    return (utime + stime) / os.sysconf("SC_CLK_TCK")


_stops: list[Callable[[], Any]] = []


def stop_at_exit(stop: Callable[[], Any]) -> None:
    """Run ``stop`` when the benchmark ends, also on Ctrl-C or SIGTERM (e.g. a timeout).

    The processes a benchmark starts run in their own session: without this, killing the
    benchmark would leave them running, and they would skew every later measurement."""
    if not _stops:
        atexit.register(_run_stops)
    _stops.append(stop)


def _run_stops() -> None:
    while _stops:
        try:
            _stops.pop()()
        except Exception as e:  # one that fails must not keep the others running
            print(f"cleanup: {e}", file=sys.stderr)


def _exit_on_signal(signum: int, _frame: Any) -> None:
    raise SystemExit(128 + signum)  # unwinds finally blocks, then atexit stops the rest


def run(main: Callable[[argparse.Namespace], Coroutine[Any, Any, dict]], parser: argparse.ArgumentParser) -> Any:
    """Parse the arguments (plus ``--json FILE``), run ``main``, keep its summary as JSON if asked."""
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _exit_on_signal)
    summary = asyncio.run(main(args))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(summary, indent=2, ensure_ascii=False))
    return summary
