"""Frames between the engine and a warm worker: a JSON header and a byte payload, each length-prefixed.

Used on both sides of the sandbox (so: standard library only). The engine caps what it reads: a
worker's answer is untrusted.
"""

from __future__ import annotations

import json
import struct
from typing import Any, BinaryIO

_HEAD = struct.Struct(">IQ")  # header length, payload length
MAX_HEADER = 1024 * 1024


def encode(header: dict[str, Any], payload: bytes = b"") -> bytes:
    raw = json.dumps(header, ensure_ascii=True).encode()
    return _HEAD.pack(len(raw), len(payload)) + raw + payload


def _decode_header(raw: bytes) -> dict[str, Any]:
    header = json.loads(raw.decode())
    if not isinstance(header, dict):
        raise ValueError("frame header is not an object")
    return header


def read(stream: BinaryIO, max_payload: int) -> tuple[dict[str, Any], bytes] | None:
    """Blocking read (worker side); None at end of input."""
    head = stream.read(_HEAD.size)
    if not head:
        return None
    if len(head) != _HEAD.size:
        raise EOFError("short frame")
    size, payload_size = _HEAD.unpack(head)
    if size > MAX_HEADER or payload_size > max_payload:
        raise ValueError("frame too large")
    header = _decode_header(stream.read(size))
    payload = stream.read(payload_size)
    if len(payload) != payload_size:
        raise EOFError("short payload")
    return header, payload


def write(stream: BinaryIO, header: dict[str, Any], payload: bytes = b"") -> None:
    stream.write(encode(header, payload))
    stream.flush()


async def read_async(reader: Any, max_payload: int) -> tuple[dict[str, Any], bytes]:
    """Engine side (asyncio StreamReader); raises on end of input or oversized frames."""
    head = await reader.readexactly(_HEAD.size)
    size, payload_size = _HEAD.unpack(head)
    if size > MAX_HEADER or payload_size > max_payload:
        raise ValueError(f"worker answer too large ({payload_size} bytes)")
    header = _decode_header(await reader.readexactly(size))
    payload = await reader.readexactly(payload_size) if payload_size else b""
    return header, payload


def add_site() -> None:
    """Make ``--site PATH[:PATH]`` (the host's site-packages, bound read-only) importable: workers
    run with ``python -S`` so nothing else of the host's Python setup is read."""
    import sys

    if "--site" in sys.argv:
        at = sys.argv.index("--site")
        sys.path.extend(p for p in sys.argv[at + 1].split(":") if p)
        del sys.argv[at:at + 2]


def serve(handler: Any, max_payload: int, site: str | None = None) -> None:
    """Worker main loop: say ready, then answer each request with ``handler(header, payload)``.

    A handler raising ``ValueError`` means "bad file, worker fine"; anything else ends the worker.
    """
    import sys

    out = sys.stdout.buffer
    inp = sys.stdin.buffer
    sys.stdout = sys.stderr  # stray prints must never corrupt the frames
    write(out, {"ready": True})
    while True:
        request = read(inp, max_payload)
        if request is None:
            return
        try:
            answer, data = handler(*request)
        except ValueError as e:
            write(out, {"error": str(e)[:500], "worker_ok": True})
            continue
        write(out, answer, data)
