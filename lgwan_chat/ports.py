"""Loopback ports for homeservers, nginx and bots that tests and benchmarks start, race-free
across processes.

Binding port 0 and releasing it is not enough when several processes (pytest-xdist workers, a
benchmark, ``lgwan-chat demo`` under test) pick ports at once: two of them can be handed the same
port before either server binds it, and the kernel also hands released ports out again as the
source port of outgoing connections. So a port is taken below the kernel's ephemeral range (never
a connection's source port) and reserved with a byte-range lock at offset ``port`` in one shared
lock file. The lock belongs to the reserving process and ends with it (even on SIGKILL): no stale
reservations. A reserved port is never handed out twice by this module, in any process of this
user, while its reserver lives.
"""

from __future__ import annotations

import fcntl
import os
import random
import socket
import tempfile
import threading
from pathlib import Path

#: Used when the ephemeral range cannot be read or leaves no room below it.
_FALLBACK_RANGE = (20000, 32768)
_RANGE_SIZE = 12000

_lock = threading.Lock()
_reserved: set[int] = set()
_fd: int | None = None
_next: int | None = None


def _port_range() -> tuple[int, int]:
    """[low, high): the ports below the kernel's ephemeral range."""
    try:
        low_ephemeral = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return _FALLBACK_RANGE
    if low_ephemeral - 1024 < 2000:
        return _FALLBACK_RANGE
    return max(1024, low_ephemeral - _RANGE_SIZE), low_ephemeral


def _lock_file() -> int:
    """The lock file shared by this user's processes (opened once: closing any descriptor of it
    would drop this process's locks)."""
    global _fd
    if _fd is None:
        path = Path(tempfile.gettempdir()) / f"lgwan-chat-ports-{os.getuid()}.lock"
        _fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    return _fd


def _bindable(port: int, host: str) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as servers bind: TIME_WAIT is no obstacle
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def reserve_port(port: int, host: str = "127.0.0.1") -> bool:
    """Reserve ``port`` for this process if no process reserved it and it is free now."""
    with _lock:
        return _reserve(port, host)


def _reserve(port: int, host: str) -> bool:
    if port in _reserved or not 0 < port < 65536:
        return False
    try:
        fcntl.lockf(_lock_file(), fcntl.LOCK_EX | fcntl.LOCK_NB, 1, port, os.SEEK_SET)
    except OSError:  # another process holds it
        return False
    if not _bindable(port, host):
        fcntl.lockf(_lock_file(), fcntl.LOCK_UN, 1, port, os.SEEK_SET)
        return False
    _reserved.add(port)
    return True


def free_port(host: str = "127.0.0.1") -> int:
    """A free port, reserved for this process for its lifetime."""
    global _next
    low, high = _port_range()
    with _lock:
        if _next is None:  # processes start at different places: fewer lock collisions
            _next = random.randrange(low, high)
        for _ in range(high - low):
            port, _next = _next, low + (_next + 1 - low) % (high - low)
            if _reserve(port, host):
                return port
    raise RuntimeError(f"no free port left in {low}-{high - 1}")


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        return s.connect_ex((host, port)) == 0
