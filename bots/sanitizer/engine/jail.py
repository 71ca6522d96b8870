"""The host's side of ``workers/parse_worker.py``: every parse of untrusted bytes that is not rendering
(type detection, text/CSV, OOXML/ODF stripping and budgets, ZIP listing and reading, output checks)
is a request to a warm sandboxed worker, under the renderers' memory limit, a CPU limit and the job's
wall-clock deadline, enforced by killing the process (sandbox.WarmWorker). The host never parses
those bytes itself: it gets back headers it checks and bytes it treats as untrusted.

A worker that crashed, ran out of memory or time is killed and replaced; the file is refused
(``SandboxError``/``SandboxTimeout`` -> a refusal with a reason in engine.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .result import Note, Refusal
from .sandbox import PROJECT_CODE, SANDBOX_CODE, Limits, SandboxError, WarmWorker, WorkerPool

if TYPE_CHECKING:
    from .engine import Sanitizer

#: requests one worker answers before a fresh process replaces it (a file that harmed it meets few others:
#: about 3 requests a file, so some 300 files). Starting one takes about 0.2 s: at 200 requests that was
#: a millisecond on every request, as much as the requests themselves
MAX_JOBS = 1000
#: RLIMIT_CPU counts the whole life of a warm worker; each request also has its wall-clock deadline
CPU_S_PER_JOB = 2
#: what a worker may send back at most (a ZIP's members: the archive budget, plus room for headers)
MIN_OUTPUT_MB = 64


def _pool(engine: Sanitizer) -> WorkerPool:
    policies = engine.policies
    limits = Limits(memory_mb=policies.renderer_memory_mb, cpu_s=MAX_JOBS * CPU_S_PER_JOB,
                    file_mb=max(64, 4 * policies.max_file_mb))
    max_output = max(MIN_OUTPUT_MB, 4 * policies.max_file_mb, policies.archive.max_total_mb + 16) * 1024 * 1024
    argv = engine.sandbox.python_worker("parse_worker.py", "--code", SANDBOX_CODE)

    def worker() -> WarmWorker:
        return WarmWorker(engine.sandbox, argv, limits=limits, max_jobs=MAX_JOBS, extra_ro=(),
                          max_output=max_output, code=PROJECT_CODE)

    return engine.pool("parse", lambda: WorkerPool(worker, size=policies.concurrency))


async def warm(engine: Sanitizer) -> None:
    await _pool(engine).warm(1)


async def call(engine: Sanitizer, op: str, payload: bytes, timeout: float, **header: Any) -> tuple[dict, bytes]:
    """One request to a jailed worker; a refusal it found is raised here as the same Refusal."""
    async with _pool(engine).worker() as worker:
        answer, data = await worker.call({"op": op, **header}, payload, timeout)
    refusal = answer.get("refusal")
    if refusal is not None:
        if not isinstance(refusal, dict) or not str(refusal.get("key", "")).startswith("sanitizer."):
            raise SandboxError(f"parse worker answered {answer!r}"[:300])
        instead = refusal.get("instead")
        raise Refusal(str(refusal["key"]), str(instead) if instead else None, **dict(refusal.get("params") or {}))
    return answer, data


def notes(raw: Any) -> tuple[Note, ...]:
    """Notes named by a worker: only ``sanitizer.*`` keys with plain parameters are taken."""
    found = []
    for item in raw or ():
        key, params = item
        if not (isinstance(key, str) and key.startswith("sanitizer.") and isinstance(params, dict)):
            raise SandboxError(f"parse worker named a note {item!r}"[:300])
        found.append(Note(key, {str(k): v for k, v in params.items() if isinstance(v, (str, int, float))}))
    return tuple(found)
