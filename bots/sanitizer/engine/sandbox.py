"""Renderers (image decoder, pdftoppm, LibreOffice) and the parse worker (type detection, text, Office
stripping, ZIP reading, output checks: jail.py) run as separate processes in a bubblewrap sandbox.

Inside: no network (own network namespace), no host files but read-only system libraries and the
Python runtime (and for the parse worker the project's ``bots/`` and ``lgwan_chat/`` code), a private
``/tmp``, an unprivileged uid, no capabilities, its own session (no terminal tricks), and rlimits on
memory, CPU time, file size and open files. It dies with us.
Files reach it either through stdin/stdout (warm workers: nothing of the host is writable) or
through a job directory made for one file and deleted afterwards.

What comes back is untrusted: the caller checks sizes, page counts and types.

- :func:`run` runs one command for one job (pdftoppm) with a wall-clock timeout.
- :class:`WarmWorker` keeps one long-lived sandboxed worker (LibreOffice, the image worker) that
  answers framed requests on stdin/stdout; it is replaced after a failure, a timeout or
  ``max_jobs`` requests, so a file that harmed it cannot touch many later ones.
- :class:`WorkerPool` bounds how many of them run at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import resource
import shutil
import signal
import sys
import sysconfig
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import attrs

from .workers import protocol

log = logging.getLogger("lgwan_chat.sanitizer")
_T = TypeVar("_T")

WORKERS_DIR = Path(__file__).resolve().parent / "workers"
#: where the worker scripts are seen inside the sandbox
SANDBOX_WORKERS = "/worker"
#: the project's code a worker may import (parse_worker.py imports the engine's pure modules): only these
#: packages are bound, read-only, never the checkout's configuration or data
PROJECT_CODE = tuple(str(Path(__file__).resolve().parents[3] / name) for name in ("bots", "lgwan_chat"))
SANDBOX_CODE = "/code"
PASSWD = "sandbox:x:65534:65534::/tmp:/bin/sh\n"
GROUP = "sandbox:x:65534:\n"


class SandboxError(Exception):
    """The sandbox could not run, the renderer failed, timed out or answered nonsense."""


class SandboxTimeout(SandboxError):
    pass


#: how long a killed worker's exit is awaited: SIGKILL to its process group ends it at once (bwrap's
#: --die-with-parent takes the jail's own session with it); a stop must never hold up the bot's shutdown
STOP_WAIT_S = 5.0


@attrs.frozen
class Limits:
    memory_mb: int = 2048
    cpu_s: int = 300
    file_mb: int = 1024
    open_files: int = 256


def bwrap_path() -> str:
    found = shutil.which("bwrap")
    if not found:
        raise SandboxError("bubblewrap (bwrap) がありません: apt-get install bubblewrap / "
                           "bubblewrap (bwrap) is not installed")
    return found


def python_paths() -> list[str]:
    """Read-only paths the sandboxed Python needs: its installation and the site-packages."""
    paths = {sys.base_prefix, sys.prefix, sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    return sorted(p for p in paths if p and os.path.isdir(p))


@attrs.frozen
class Sandbox:
    """How renderers are jailed. ``runtime_dir`` holds the fake passwd/group files."""

    runtime_dir: Path
    #: extra read-only paths (LibreOffice's /etc/libreoffice, /var/lib/libreoffice)
    extra_ro: tuple[str, ...] = ()

    def __attrs_post_init__(self) -> None:
        self.runtime_dir.mkdir(parents=True, exist_ok=True)
        for name, text in (("passwd", PASSWD), ("group", GROUP)):
            path = self.runtime_dir / name
            if not path.exists() or path.read_text() != text:
                path.write_text(text)

    def command(self, argv: Sequence[str], job_dir: Path | None = None, *, python: bool = False,
                extra_ro: Sequence[str] = (), env: dict[str, str] | None = None,
                code: Sequence[str] = ()) -> list[str]:
        cmd = [bwrap_path(), "--unshare-all", "--die-with-parent", "--new-session", "--cap-drop", "ALL",
               "--uid", "65534", "--gid", "65534", "--clearenv",
               "--ro-bind", "/usr", "/usr"]
        for link in ("bin", "lib", "lib64", "sbin"):
            if os.path.islink(f"/{link}"):
                cmd += ["--symlink", os.readlink(f"/{link}"), f"/{link}"]
            elif os.path.isdir(f"/{link}"):
                cmd += ["--ro-bind", f"/{link}", f"/{link}"]
        cmd += ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp",
                "--ro-bind", str(self.runtime_dir / "passwd"), "/etc/passwd",
                "--ro-bind", str(self.runtime_dir / "group"), "/etc/group"]
        for path in ("/etc/fonts", "/etc/ld.so.cache", *self.extra_ro, *extra_ro):
            if os.path.exists(path):
                cmd += ["--ro-bind", path, path]
        if python:
            for path in python_paths():
                cmd += ["--ro-bind", path, path]
            cmd += ["--ro-bind", str(WORKERS_DIR), SANDBOX_WORKERS]
        for path in code:
            cmd += ["--ro-bind", path, f"{SANDBOX_CODE}/{Path(path).name}"]
        if job_dir is not None:
            cmd += ["--bind", str(job_dir), "/job", "--chdir", "/job"]
        else:
            cmd += ["--chdir", "/tmp"]
        for key, value in {"HOME": "/tmp", "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "TMPDIR": "/tmp",
                           **(env or {})}.items():
            cmd += ["--setenv", key, value]
        return cmd + ["--", *argv]

    def python_worker(self, script: str, *args: str) -> list[str]:
        """argv for one of ``workers/*.py`` run by this Python, inside the sandbox."""
        site = ":".join(p for p in python_paths() if "site-packages" in p)
        return [sys.executable, "-S", "-B", f"{SANDBOX_WORKERS}/{script}", "--site", site, *args]


#: the CPU priority of a long document's renderers (nice, in the jail's process before bwrap starts):
#: a photo's processes at the normal 0 get about 60 times their CPU share (jail limits unchanged)
BACKGROUND_NICE = 19


def _limit(limits: Limits, nice: int = 0) -> Callable[[], None]:
    def apply() -> None:
        if nice:
            os.nice(nice)  # inherited by bwrap and the renderer; an unprivileged process cannot undo it
        mb = 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limits.memory_mb * mb, limits.memory_mb * mb))
        resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu_s, limits.cpu_s + 5))
        resource.setrlimit(resource.RLIMIT_FSIZE, (limits.file_mb * mb, limits.file_mb * mb))
        resource.setrlimit(resource.RLIMIT_NOFILE, (limits.open_files, limits.open_files))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    return apply


async def _within(awaitable: Awaitable[_T], timeout: float) -> _T:
    """``awaitable``'s result, or asyncio.TimeoutError after ``timeout`` s (it is cancelled then).
    Not ``asyncio.wait_for``: up to Python 3.11 it returns a result that came just as the caller was
    cancelled, and the cancellation is lost (a worker saying it is ready as the bot stops: the file
    would run on to its end and hold up the bot's exit). Here a cancellation always goes on."""
    task = asyncio.ensure_future(awaitable)
    try:
        done, _ = await asyncio.wait({task}, timeout=timeout)
    except BaseException:
        if not task.cancel() and not task.cancelled():
            task.exception()  # it ended just then: retrieved, not logged as lost
        raise
    if not done:
        task.cancel()
        await asyncio.wait({task})
        raise asyncio.TimeoutError
    return task.result()


def _kill(process: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)


@attrs.frozen
class Completed:
    returncode: int
    stdout: bytes
    stderr: bytes


async def run(sandbox: Sandbox, argv: Sequence[str], *, job_dir: Path | None, timeout: float,
              limits: Limits = Limits(), stdin: bytes | None = None, max_output: int = 64 * 1024 * 1024,
              python: bool = False, extra_ro: Sequence[str] = (), nice: int = 0) -> Completed:
    """Run one sandboxed command for one job. Timeout: the whole process group is killed. ``nice``:
    a lower CPU priority for it (a long document's renderers: BACKGROUND_NICE)."""
    process = await asyncio.create_subprocess_exec(
        *sandbox.command(argv, job_dir, python=python, extra_ro=extra_ro),
        stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        start_new_session=True, preexec_fn=_limit(limits, nice))
    try:
        stdout, stderr = await asyncio.wait_for(process.communicate(stdin), timeout)
    except asyncio.TimeoutError:
        _kill(process)
        await process.wait()
        raise SandboxTimeout(f"{argv[0]} timed out after {timeout:.0f} s") from None
    except BaseException:
        _kill(process)
        raise
    if len(stdout) > max_output:
        raise SandboxError(f"{argv[0]} wrote {len(stdout)} bytes, more than {max_output}")
    return Completed(process.returncode or 0, stdout, stderr[-4000:])


class WarmWorker:
    """One long-lived sandboxed worker speaking :mod:`workers.protocol` on stdin/stdout."""

    def __init__(self, sandbox: Sandbox, argv: Sequence[str], *, limits: Limits, max_jobs: int,
                 python: bool = True, extra_ro: Sequence[str] = (), env: dict[str, str] | None = None,
                 max_output: int = 512 * 1024 * 1024, code: Sequence[str] = ()):
        self._command = sandbox.command(argv, None, python=python, extra_ro=extra_ro, env=env, code=code)
        self._limits = limits
        self._max_jobs = max_jobs
        self._max_output = max_output
        #: what the logs call it: its script's name (parse_worker, office_worker, image_worker)
        self.name = next((Path(a).stem for a in argv if a.endswith(".py")), Path(argv[0]).name if argv else "?")
        self._process: asyncio.subprocess.Process | None = None
        self._jobs = 0
        self.started = 0  # how many processes were started (tests and the bench read it)

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.returncode is None

    async def start(self, timeout: float = 120) -> None:
        """Start the process and wait until it says it is ready (LibreOffice's cold start).

        Cancelled meanwhile (the bot stopping, the file cancelled), the half-started process group is
        killed and the cancellation goes on: it is not the file's fault, so never a SandboxError (which
        would refuse the file during a shutdown instead of leaving it queued for the restart)."""
        if self.running:
            return
        self._process = await asyncio.create_subprocess_exec(
            *self._command, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL, start_new_session=True, preexec_fn=_limit(self._limits),
            limit=1024 * 1024)
        self._jobs = 0
        self.started += 1
        log.info("jailed worker starting", extra={"worker": self.name, "pid": self._process.pid})
        try:
            header, _ = await _within(protocol.read_async(self._process.stdout, self._max_output), timeout)
        except (asyncio.CancelledError, KeyboardInterrupt):
            await self.stop()
            raise
        except BaseException as e:
            await self.stop()
            raise SandboxError(f"worker did not start: {e!r}") from e
        if header.get("ready") is not True:
            await self.stop()
            raise SandboxError(f"worker did not start: {header}")

    async def call(self, header: dict[str, Any], payload: bytes, timeout: float) -> tuple[dict[str, Any], bytes]:
        """One request. Any failure or timeout kills the worker (a fresh one starts next time)."""
        if not self.running or self._jobs >= self._max_jobs:
            await self.stop()
            await self.start()
        assert self._process is not None and self._process.stdin is not None
        self._jobs += 1
        process, stdin = self._process, self._process.stdin

        async def exchange() -> tuple[dict[str, Any], bytes]:
            stdin.write(protocol.encode(header, payload))
            await stdin.drain()  # within the deadline too: a stuck worker may stop reading
            return await protocol.read_async(process.stdout, self._max_output)

        try:
            answer, data = await _within(exchange(), timeout)
        except asyncio.TimeoutError:
            await self.stop()
            raise SandboxTimeout(f"worker timed out after {timeout:.0f} s") from None
        except (asyncio.CancelledError, KeyboardInterrupt):
            await self.stop()
            raise
        except BaseException as e:
            await self.stop()
            raise SandboxError(f"worker failed: {e!r}") from e
        if "error" in answer:
            # The worker survived the job but the file was bad: keep it only if it says it is sane.
            if not answer.get("worker_ok", False):
                await self.stop()
            raise SandboxError(str(answer["error"]))
        return answer, data

    async def stop(self) -> None:
        """Kill the process group at once (no await before it: a second cancellation cannot skip it),
        then wait a bounded time for the exit to be reaped. Cancelled while waiting, the kill is done
        and the cancellation goes on."""
        process, self._process = self._process, None
        if process is None:
            return
        _kill(process)
        try:
            await asyncio.wait_for(process.wait(), STOP_WAIT_S)
        except asyncio.TimeoutError:
            log.warning("killed worker has not exited", extra={"worker": self.name, "pid": process.pid})
        except Exception:
            log.exception("killed worker's exit unknown", extra={"worker": self.name, "pid": process.pid})


class WorkerPool:
    """At most ``size`` warm workers, each used by one job at a time."""

    def __init__(self, factory: Callable[[], WarmWorker], size: int):
        self._factory = factory
        self._size = size
        self._idle: asyncio.Queue[WarmWorker] = asyncio.Queue()
        self._all: list[WarmWorker] = []

    async def warm(self, count: int | None = None) -> None:
        """Start workers ahead of the first job (LibreOffice takes seconds to start)."""
        while len(self._all) < min(self._size, count or self._size):
            worker = self._factory()
            self._all.append(worker)
            await worker.start()
            self._idle.put_nowait(worker)

    @property
    def started(self) -> int:
        return sum(w.started for w in self._all)

    @contextlib.asynccontextmanager
    async def worker(self) -> AsyncIterator[WarmWorker]:
        if self._idle.empty() and len(self._all) < self._size:
            worker = self._factory()
            self._all.append(worker)
        else:
            worker = await self._idle.get()
        try:
            yield worker
        finally:
            self._idle.put_nowait(worker)

    async def close(self) -> None:
        for worker in self._all:
            await worker.stop()
