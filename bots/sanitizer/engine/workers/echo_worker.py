"""A worker that answers what it is sent: the sandbox's own tests use it (and prove what it cannot reach)."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import protocol


def handle(header, payload):
    if header.get("fail"):
        raise ValueError("asked to fail")
    if header.get("crash"):
        os._exit(3)
    if header.get("sleep"):
        import time
        time.sleep(header["sleep"])
    if header.get("probe"):  # what can the sandbox see? (tests assert: nothing of the host)
        result: dict[str, object] = {}
        for path in header["probe"]:
            try:
                with open(path, "rb") as f:
                    result[path] = f.read(64).decode("latin-1")
            except OSError as e:
                result[path] = f"error:{e.errno}"
        import socket
        s = socket.socket()
        s.settimeout(2)
        result["network"] = s.connect_ex(("127.0.0.1", int(header.get("port", 5432))))
        return {"seen": result, "uid": os.getuid()}, b""
    return {"echo": header, "pid": os.getpid()}, payload


if __name__ == "__main__":
    protocol.serve(handle, 64 * 1024 * 1024)
