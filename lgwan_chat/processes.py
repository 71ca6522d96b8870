"""What the suite's process controllers (nginx, coturn) share: waiting until a started server
listens, and stopping it."""

from __future__ import annotations

import signal
import socket
import subprocess
import time
from pathlib import Path


def wait_listening(process: subprocess.Popen, host: str, port: int, deadline: float, error: type[Exception],
                   name: str, log: Path) -> None:
    """Until ``process`` accepts TCP connections on ``host:port``; ``error`` if it exits first or the
    monotonic ``deadline`` passes."""
    while True:
        if process.poll() is not None:
            raise error(f"{name} exited with {process.returncode}: {log}")
        with socket.socket() as s:
            if s.connect_ex((host, port)) == 0:
                return
        if time.monotonic() > deadline:
            raise error(f"{name} not listening on {host}:{port}")
        time.sleep(0.05)


def stop(process: subprocess.Popen | None, timeout: float, stop_signal: int = signal.SIGTERM) -> None:
    """Ask a running process to stop with ``stop_signal``; killed if it is still there after ``timeout``."""
    if process is None or process.poll() is not None:
        return
    process.send_signal(stop_signal)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
