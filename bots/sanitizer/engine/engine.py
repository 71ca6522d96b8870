"""The sanitization engine: bytes in, a checked sanitized copy (or a reasoned refusal) out.

    engine = Sanitizer(Policies(), runtime_dir=Path("var/sanitizer"))
    result = await engine.sanitize(data, "見積書.docx")
    result.outputs[0].data  # the image PDF; result.report("ja") says what was done

The type is decided by the bytes (libmagic), the policy by the type. Every error, timeout or check
that fails refuses the file: the original is never what comes out. Outputs are checked once more
(type re-detected, PDFs scanned for active content) whatever the handler did.

This process only orchestrates: every parse of untrusted bytes (detection, text, Office stripping,
ZIP reading, image decoding, PDF probing and rendering, the output checks) runs in a sandboxed process
under memory, CPU and wall-clock limits (jail.py, sandbox.py). ``timeout_s`` is enforced by killing
those processes; no thread here runs long on a file's bytes. A crash, hang or blow-up of any of them
ends as a refusal with a reason, an audit record, and the next file.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import shutil
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import attrs

from . import jail
from .audit import AuditLog
from .detect import SCRIPT_EXTENSIONS, Detected, kind_of
from .filenames import clean
from .lanes import Lane, Lanes
from .metrics import FILES
from .policy import Policies
from .result import Note, Product, Refusal, Result
from .sandbox import Limits, Sandbox, SandboxError, SandboxTimeout, WorkerPool
from .verify import verify

log = logging.getLogger("lgwan_chat.sanitizer")

#: refused kinds -> (reason, what to send instead)
REFUSED_KINDS: dict[str, tuple[str, str]] = {
    "executable": ("sanitizer.refused.executable", "sanitizer.instead.document"),
    "script": ("sanitizer.refused.script", "sanitizer.instead.text"),
    "html": ("sanitizer.refused.html", "sanitizer.instead.pdf"),
    "encrypted": ("sanitizer.refused.encrypted", "sanitizer.instead.unencrypted"),
    "media": ("sanitizer.refused.media", "sanitizer.instead.media"),
    "unknown": ("sanitizer.refused.unknown", "sanitizer.instead.common"),
}


#: what type detection is sent of a file that is no ZIP (more than libmagic's own bytes_max, 7 MiB)
DETECT_BYTES = 8 * 1024 * 1024
#: a renderer failing with less than this left of its deadline has run out of time (its own
#: timer, a fraction of the deadline, fired first)
OUT_OF_TIME_S = 1.0


@attrs.frozen
class Job:
    """One file (or one member of an archive) being sanitized."""

    data: bytes = attrs.field(repr=lambda d: f"<{len(d)} bytes>")
    filename: str
    detected: Detected
    policy: str
    engine: Sanitizer
    workdir: Path  # made for this file only, deleted afterwards
    deadline: float  # event loop time by which the job must be done
    depth: int = 0  # 0 for a file, 1 for a member of an archive, ...
    #: told (pages done, pages in all) as the host receives and checks rendered pages (a file only)
    progress: Progress | None = None
    #: the file's slot (a file only: an archive's members run in the archive's)
    lane: Lane | None = None

    @property
    def background(self) -> bool:
        """A long document that gives way to short files (lanes.py)."""
        return self.lane is not None and self.lane.background

    def long_document(self, pages: int) -> None:
        """Told the page count of a PDF or Office document: a long one moves to the background."""
        if self.lane is not None and self.depth == 0 and pages >= self.policies.background_pages:
            self.lane.to_background()

    async def give_way(self) -> None:
        """Before a render run of a long document: let short files run first (lanes.py)."""
        if self.lane is not None:
            await self.lane.give_way(self.policies.timeout_s)

    def report_progress(self, done: int, total: int) -> None:
        if self.progress is not None and self.depth == 0:
            try:
                self.progress(done, total)
            except Exception:  # telling must never fail the file
                log.exception("progress callback failed")

    @property
    def policies(self) -> Policies:
        return self.engine.policies

    @property
    def sandbox(self) -> Sandbox:
        return self.engine.sandbox

    def remaining(self) -> float:
        left = self.deadline - asyncio.get_running_loop().time()
        if left <= 0:
            raise SandboxTimeout("no time left")
        return left

    def limits(self, **overrides: Any) -> Limits:
        values = {"memory_mb": self.policies.renderer_memory_mb, "cpu_s": self.policies.timeout_s,
                  "file_mb": max(64, 4 * self.policies.max_file_mb)}
        values.update(overrides)
        return Limits(**values)


Handler = Callable[[Job], Awaitable[Product]]
#: what the engine tells a caller while a file runs: pages checked so far, pages in all
Progress = Callable[[int, int], None]


def _handlers() -> dict[str, Handler]:
    from . import archive, images, office, pdf, text
    return {"image": images.sanitize, "pdf": pdf.sanitize, "office": office.sanitize,
            "text": text.sanitize, "csv": text.sanitize, "archive": archive.sanitize}


#: words in a detected Office MIME type -> the kind of document (a per-kind policy: office_policy)
OFFICE_FAMILIES = (("word", ("wordprocessingml", "msword", "ms-word", "opendocument.text", "rtf")),
                   ("excel", ("spreadsheetml", "ms-excel", "opendocument.spreadsheet")),
                   ("powerpoint", ("presentationml", "ms-powerpoint", "opendocument.presentation")))


def office_family(mime: str) -> str:
    """``word``, ``excel``, ``powerpoint``, or ``other`` for an Office type detected by libmagic."""
    for family, words in OFFICE_FAMILIES:
        if any(word in mime for word in words):
            return family
    return "other"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class Sanitizer:
    def __init__(self, policies: Policies | None = None, *, runtime_dir: Path | str | None = None,
                 audit: AuditLog | None = None):
        self.policies = policies or Policies()
        self._own_runtime = runtime_dir is None
        self.runtime_dir = Path(runtime_dir or tempfile.mkdtemp(prefix="lgwan-sanitizer-"))
        self.sandbox = Sandbox(self.runtime_dir / "sandbox")
        self.audit = audit or (AuditLog(self.policies.audit_log) if self.policies.audit_log else None)
        self.lanes = Lanes(self.policies.concurrency)
        self._pools: dict[str, WorkerPool] = {}
        self._handlers = _handlers()

    # --- resources shared by the handlers ---

    def pool(self, name: str, factory: Callable[[], WorkerPool]) -> WorkerPool:
        """A pool of warm workers made once per engine (the image worker, LibreOffice)."""
        if name not in self._pools:
            self._pools[name] = factory()
        return self._pools[name]

    async def warm(self) -> None:
        """Start what is slow to start (LibreOffice, the parse worker) before the first file arrives."""
        from . import office
        await jail.warm(self)
        await office.warm(self)

    async def close(self) -> None:
        for pool in self._pools.values():
            await pool.close()
        self._pools.clear()
        if self._own_runtime:
            shutil.rmtree(self.runtime_dir, ignore_errors=True)

    async def __aenter__(self) -> Sanitizer:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    # --- sanitizing ---

    async def sanitize(self, data: bytes, filename: str, claimed_mimetype: str | None = None, *,
                       source: dict[str, Any] | None = None, progress: Progress | None = None,
                       office_policy: dict[str, str] | None = None,
                       moved: Callable[[], None] | None = None) -> Result:
        """Sanitize one file. Never raises for a bad file: the Result says refused, and why.

        ``progress(done, total)`` is called as rendered pages come back checked from the jail.
        ``office_policy``: the policy per kind of Office document (``word``, ``excel``, ``powerpoint``,
        see :func:`office_family`) instead of the ``office`` policy; a policy of ``refuse`` for
        ``office`` still refuses. Cancelling the call kills the file's jailed processes (their process
        groups) and leaves an audit record saying so. ``moved()`` is called when the file turns out to be
        a long document that gives way to short files and leaves its slot to the next file (lanes.py)."""
        started = time.monotonic()
        async with self.lanes.lane(moved) as lane:
            try:
                result = await self._sanitize(data, filename, depth=0, progress=progress, office_policy=office_policy,
                                              lane=lane)
            except asyncio.CancelledError:
                if self.audit is not None:
                    self.audit.write({"verdict": "cancelled", "filename": clean(filename),
                                      "original": {"sha256": sha256(data), "size": len(data)},
                                      "duration_s": round(time.monotonic() - started, 3),
                                      **({"source": source} if source else {})})
                raise
            except Exception:  # the promise: never raises for a file (a bug here refuses it, and says so)
                log.exception("sanitizer failed")
                result = self._refused(Detected("", "unknown"), "refuse", Refusal("sanitizer.refused.error"))
        result = attrs.evolve(result, duration_s=round(time.monotonic() - started, 3), original_sha256=sha256(data))
        self._audit(result, data, filename, claimed_mimetype, source)
        FILES.labels(result.kind, result.verdict).inc()
        return result

    async def sanitize_member(self, data: bytes, filename: str, depth: int, deadline: float | None = None,
                              mime: str | None = None) -> Result:
        """A member of an archive: the same rules, within the archive's own slot, and done by ``deadline``
        (earlier than the archive's: a member that takes too long is refused alone). ``mime``: its type
        as detected by the jailed worker that unpacked it (saves asking again)."""
        return await self._sanitize(data, filename, depth=depth, deadline=deadline, mime=mime)

    async def _detect(self, data: bytes, timeout: float, mime: str | None = None) -> Detected:
        """libmagic in the sandbox; whatever goes wrong there, the type is unknown (and refused)."""
        if mime is None:
            # libmagic reads no more of a buffer than its bytes_max (7 MiB): the rest need not cross the pipe,
            # but a ZIP's directory is at its end (OOXML and ODF are told apart by their members' names)
            head = data if data[:2] == b"PK" else data[:DETECT_BYTES]
            try:
                answer, _ = await jail.call(self, "detect", head, timeout)
                mime = answer.get("mime")
            except (Refusal, SandboxError) as e:
                log.warning("type detection failed", extra={"error": str(e)})
        if not isinstance(mime, str) or not 0 < len(mime) < 200:
            return Detected("application/octet-stream", "unknown")
        return Detected(mime, kind_of(mime))

    async def _sanitize(self, data: bytes, filename: str, depth: int, deadline: float | None = None,
                        mime: str | None = None, progress: Progress | None = None,
                        office_policy: dict[str, str] | None = None, lane: Lane | None = None) -> Result:
        if len(data) > self.policies.max_file_mb * 1024 * 1024:
            return self._refused(Detected("", "file"), "refuse", Refusal("sanitizer.refused.too_large",
                                                                         "sanitizer.instead.smaller",
                                                                         limit_mb=self.policies.max_file_mb))
        loop = asyncio.get_running_loop()
        # detection, the work and the checks: all within it
        deadline = min(loop.time() + self.policies.timeout_s, deadline or float("inf"))
        detected = await self._detect(data, max(0.1, deadline - loop.time()), mime)
        kind = detected.kind
        if kind in ("text", "csv") and Path(clean(filename)).suffix.lower() in SCRIPT_EXTENSIONS:
            kind = "script"  # libmagic calls a .bat or .ps1 plain text; its name says what it is for
        if kind in ("text",) and Path(clean(filename)).suffix.lower() in (".csv", ".tsv"):
            kind = "csv"  # the name only chooses the stricter of two text policies
        detected = attrs.evolve(detected, kind=kind)
        if kind in REFUSED_KINDS:
            reason, instead = REFUSED_KINDS[kind]
            return self._refused(detected, "refuse", Refusal(reason, instead, mime=detected.mime))
        policy = self.policies.policy(kind)
        if kind == "office" and office_policy and policy != "refuse":
            policy = office_policy.get(office_family(detected.mime), policy)
        if policy == "refuse":
            return self._refused(detected, policy, Refusal("sanitizer.refused.policy", "sanitizer.instead.common"))
        workdir = Path(tempfile.mkdtemp(prefix="job-", dir=self.runtime_dir))
        job = Job(data=data, filename=filename, detected=detected, policy=policy, engine=self, workdir=workdir,
                  deadline=deadline, depth=depth, progress=progress, lane=lane)
        try:
            product = await asyncio.wait_for(self._handlers[kind](job), job.remaining())
            if not product.outputs:
                raise Refusal("sanitizer.refused.empty")
            for at, output in enumerate(product.outputs):
                await verify(self, output, job.remaining(), product.checks[at] if at < len(product.checks) else None)
        except Refusal as refusal:
            return self._refused(detected, policy, refusal)
        except (asyncio.TimeoutError, SandboxTimeout):
            return self._refused(detected, policy, Refusal("sanitizer.refused.timeout", "sanitizer.instead.smaller",
                                                           seconds=self.policies.timeout_s))
        except SandboxError as e:
            if job.remaining() < OUT_OF_TIME_S:
                # a renderer stopped by its own share of the deadline (LibreOffice's, a worker's)
                # reports a failure, but what the person must hear is that the file took too long
                return self._refused(detected, policy, Refusal("sanitizer.refused.timeout", "sanitizer.instead.smaller",
                                                               seconds=self.policies.timeout_s))
            log.warning("renderer failed", extra={"kind": kind, "mime": detected.mime, "error": str(e)})
            instead = {"image": "sanitizer.instead.image", "pdf": "sanitizer.instead.pdf",
                       "office": "sanitizer.instead.pdf"}.get(kind, "sanitizer.instead.common")
            return self._refused(detected, policy, Refusal("sanitizer.refused.broken", instead))
        except Exception:
            log.exception("sanitizer failed", extra={"kind": kind, "mime": detected.mime})
            return self._refused(detected, policy, Refusal("sanitizer.refused.error"))
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        return Result(verdict="sanitized", detected=detected.mime, kind=kind, policy=policy,
                      outputs=product.outputs, removed=product.removed, limitations=product.limitations,
                      pages=product.pages)

    def too_large(self) -> Result:
        """The refusal for a file not even read in full because it is over ``max_file_mb``."""
        return Result(verdict="refused", detected="", kind="file", policy="refuse",
                      reason=Note("sanitizer.refused.too_large", {"limit_mb": self.policies.max_file_mb}),
                      instead=Note("sanitizer.instead.smaller"))

    @staticmethod
    def _refused(detected: Detected, policy: str, refusal: Refusal) -> Result:
        return Result(verdict="refused", detected=detected.mime, kind=detected.kind, policy=policy,
                      reason=refusal.note, instead=refusal.instead)

    def _audit(self, result: Result, data: bytes, filename: str, claimed: str | None,
               source: dict[str, Any] | None) -> None:
        if self.audit is None:
            return
        note = lambda n: {"key": n.key, **({"params": n.params} if n.params else {})}  # noqa: E731
        self.audit.write({
            "verdict": result.verdict, "filename": clean(filename), "claimed_mimetype": claimed,
            "original": {"sha256": result.original_sha256, "size": len(data)},
            "detected": result.detected, "kind": result.kind, "policy": result.policy,
            "outputs": [{"sha256": sha256(o.data), "size": len(o.data), "mimetype": o.mimetype,
                         "filename": o.filename} for o in result.outputs],
            "removed": [note(n) for n in result.removed], "limitations": [note(n) for n in result.limitations],
            "reason": note(result.reason) if result.reason else None, "pages": result.pages,
            "duration_s": result.duration_s, **({"source": source} if source else {}),
        })
