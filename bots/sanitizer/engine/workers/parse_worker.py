"""Everything that reads untrusted bytes but is no renderer, run warm inside the sandbox: type detection
(libmagic), text and CSV, the OOXML/ODF/OLE work before LibreOffice (budgets, stripping), ZIP listing
and reading, and the checks of outputs. The host only orchestrates (jail.py).

The engine's pure modules are imported from the project's code, bound read-only at ``--code PATH``
(``bots/`` and ``lgwan_chat/`` only: no configuration, no data). Request header: ``{"op": NAME, ...}``;
the answer is the op's header and bytes, or ``{"refusal": {"key", "instead", "params"}}`` when the file
is refused (worker fine). A crash, a MemoryError under the rlimit or a hang ends this process: the
engine refuses the file and starts a fresh worker for the next one.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import protocol

protocol.add_site()
if "--code" in sys.argv:
    at = sys.argv.index("--code")
    sys.path.insert(0, sys.argv[at + 1])
    del sys.argv[at:at + 2]

from bots.sanitizer.engine import archive, detect, office, text, verify  # noqa: E402
from bots.sanitizer.engine.result import Refusal  # noqa: E402

MAX_PAYLOAD = 2048 * 1024 * 1024


def _notes(notes):
    return [[n.key, n.params] for n in notes]


def op_detect(header, payload):
    found = detect.detect(payload)
    return {"mime": found.mime, "kind": found.kind}, b""


def op_text(header, payload):
    product = text.run(payload, str(header["filename"]), bool(header["csv"]))
    output = product.outputs[0]
    # the output's check in the same request (verify.problem: the engine's own check, not text.py's)
    return {"filename": output.filename, "mimetype": output.mimetype, "removed": _notes(product.removed),
            "limitations": _notes(product.limitations), "check": verify.answer(output.data, output.mimetype)}, \
        output.data


def op_office(header, payload):
    prepared = office.prepare(payload, str(header["mime"]), str(header["policy"]), int(header["max_total_bytes"]))
    return {"extension": prepared.extension, "removed": sorted(prepared.removed),
            "deliver": list(prepared.deliver) if prepared.deliver else None}, prepared.data


def op_unzip(header, payload):
    members, blob = archive.unpack(payload, int(header["bytes_left"]), int(header["entries_left"]),
                                   int(header["max_ratio"]))
    return {"members": members}, blob


def op_verify(header, payload):
    return verify.answer(payload, str(header["mimetype"])), b""


OPS = {"detect": op_detect, "text": op_text, "office": op_office, "unzip": op_unzip, "verify": op_verify}


def handle(header, payload):
    try:
        return OPS[header["op"]](header, payload)
    except Refusal as refusal:
        return {"refusal": {"key": refusal.note.key, "instead": refusal.instead.key if refusal.instead else None,
                            "params": refusal.note.params}}, b""


if __name__ == "__main__":
    protocol.serve(handle, MAX_PAYLOAD)
