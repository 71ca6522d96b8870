"""ZIP archives: every member sanitized on its own, only the sanitized copies packed into a new ZIP.

What refuses the WHOLE archive (an attack on the unpacking itself, or nothing can be checked):
  - any encrypted member (password ZIP, "PPAP": its contents cannot be checked);
  - more entries than ``max_entries``, more bytes than ``max_total_mb`` or a member expanding more
    than ``max_ratio`` times (zip bombs), archives nested deeper than ``max_depth``;
  - a member whose bytes do not match its header (CRC, sizes, names): a broken or doctored archive.
  Entries and bytes are counted while reading, never taken from the headers, and the counts run on
  through nested archives: a bomb anywhere inside refuses the outermost ZIP.
What skips ONE member (listed in the report and in ``無害化結果.txt`` inside the new ZIP):
  - a path climbing out (``../``) or starting at a root or drive, a symbolic link or other special
    file, an unsupported compression method, any member the engine refuses (an .exe, a script...).

Names without the UTF-8 flag are read as CP932 (what Japanese Windows writes); the new ZIP has UTF-8
names, cleaned folder by folder, unique, each ending with the extension of what it now is.
"""

from __future__ import annotations

import asyncio
import contextvars
import io
import re
import stat
import unicodedata
import zipfile
import zlib
from pathlib import PurePosixPath
from typing import TYPE_CHECKING

import attrs

from lgwan_chat.i18n import t

from .filenames import RESERVED, clean, output_name
from .result import Note, Output, Product, Refusal, Result

if TYPE_CHECKING:
    from .engine import Job

CHUNK = 1024 * 1024
#: below this a member may expand any number of times (a page of spaces compresses 1000x)
RATIO_FLOOR = 1024 * 1024
REPORT_NAME = "無害化結果.txt"
#: refusals of a nested archive that refuse the archive around it too
WHOLE = {"sanitizer.refused.zip_bomb", "sanitizer.refused.zip_ratio", "sanitizer.refused.zip_too_many_entries",
         "sanitizer.refused.zip_too_deep", "sanitizer.refused.zip_inconsistent"}
#: already compressed: stored as they are
STORED = {"image/jpeg", "image/png", "application/zip"}
_DRIVE = re.compile(r"^[A-Za-z]:")
#: names listed in the one-line report (the text file inside lists all)
NAMES_IN_REPORT = 5


@attrs.define
class _Budget:
    """What is left for the outermost archive and everything nested in it."""

    bytes_left: int
    entries_left: int


#: shared with the nested archives' jobs (their tasks copy this context: the same _Budget object)
_BUDGET: contextvars.ContextVar[_Budget] = contextvars.ContextVar("sanitizer_archive_budget")


def _exceeded(job: Job, what: str) -> Refusal:
    limits = job.policies.archive
    if what == "entries":
        return Refusal("sanitizer.refused.zip_too_many_entries", "sanitizer.instead.smaller",
                       limit=limits.max_entries)
    if what == "ratio":
        return Refusal("sanitizer.refused.zip_ratio", "sanitizer.instead.smaller", limit=limits.max_ratio)
    return Refusal("sanitizer.refused.zip_bomb", "sanitizer.instead.smaller", limit_mb=limits.max_total_mb)


class _Exceeded(Exception):
    """A cap was reached while reading (raised in the reading thread, turned into a Refusal)."""


def member_name(info: zipfile.ZipInfo) -> str:
    """The name as written: CP932 unless the UTF-8 flag says otherwise (zipfile assumed CP437)."""
    if info.flag_bits & 0x800:
        return info.filename
    try:
        return info.filename.encode("cp437").decode("cp932")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return info.filename


def shown(name: str) -> str:
    """A member's name fit for a report: no controls or bidi marks, bounded."""
    name = unicodedata.normalize("NFKC", name)
    return "".join(c for c in name if unicodedata.category(c)[0] != "C")[:200]


def safe_parts(name: str) -> list[str] | None:
    """Cleaned folders and file name; None for a path that starts at a root or climbs out."""
    path = unicodedata.normalize("NFKC", name).replace("\\", "/")  # NFKC first: "‥" is ".."
    if path.startswith("/") or _DRIVE.match(path):
        return None
    parts = [part for part in path.split("/") if part not in ("", ".")]
    if any(part.strip() == ".." for part in parts):
        return None
    cleaned = [c for c in (clean(part) for part in parts) if c]
    # a folder called CON or aux.txt cannot be made on Windows (file names get this from output_name)
    cleaned[:-1] = ["_" + c if c.split(".")[0].upper() in RESERVED else c for c in cleaned[:-1]]
    return cleaned or None


def is_special(info: zipfile.ZipInfo) -> bool:
    """A symbolic link, device, FIFO...: anything with a Unix mode that is not a file or folder."""
    kind = stat.S_IFMT(info.external_attr >> 16)  # 0 when the archiver wrote no Unix mode (Windows)
    return kind not in (0, stat.S_IFREG, stat.S_IFDIR)


def read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, budget: _Budget, max_ratio: int,
                archive_size: int) -> bytes:
    """The member's bytes, counted as they come out: the sizes in its header are not trusted."""
    compressed = max(1, min(info.compress_size, archive_size))  # a header may claim more than there is
    chunks = []
    size = 0
    with archive.open(info) as f:
        while chunk := f.read(CHUNK):
            size += len(chunk)
            budget.bytes_left -= len(chunk)
            if budget.bytes_left < 0:
                raise _Exceeded("bytes")
            if size > RATIO_FLOOR and size > max_ratio * compressed:
                raise _Exceeded("ratio")
            chunks.append(chunk)
    return b"".join(chunks)


def _unique(path: str, used: set[str]) -> str:
    candidate, n = path, 1
    while candidate.casefold() in used:  # Windows folders ignore case
        n += 1
        p = PurePosixPath(path)
        candidate = str(p.with_name(f"{p.stem} ({n}){p.suffix}"))
    used.add(candidate.casefold())
    return candidate


def _date(info: zipfile.ZipInfo) -> tuple[int, ...]:
    return info.date_time if 1980 <= info.date_time[0] <= 2107 else (1980, 1, 1, 0, 0, 0)


@attrs.frozen
class _Done:
    """One member: sanitized into ``outputs`` (paths in the new ZIP), or skipped for ``reason``."""

    name: str
    result: Result | None = None
    reason: Note | None = None
    paths: tuple[str, ...] = ()


def _report(archive_name: str, done: list[_Done]) -> bytes:
    """無害化結果.txt: each member and what became of it, in Japanese then English."""
    lines = []
    for lang in ("ja", "en"):
        lines.append(t("sanitizer.zip_report.title", lang, name=shown(archive_name)))
        for d in done:
            if d.paths:
                what = d.result.report(lang) if d.result else ""
                lines.append(t("sanitizer.zip_report.sanitized", lang, name=d.name, output=", ".join(d.paths),
                               what=what))
            else:
                reason = d.result.report(lang) if d.result else d.reason.text(lang) if d.reason else ""
                lines.append(t("sanitizer.zip_report.skipped", lang, name=d.name, reason=reason))
        lines.append("")
    return "\r\n".join(lines).encode("utf-8-sig")


def _pack(members: list[tuple[str, Output, tuple[int, ...]]], report: bytes) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as new:
        # the report first: libmagic reads the first entry's name (an OOXML or ODF look-alike)
        new.writestr(zipfile.ZipInfo(REPORT_NAME), report, zipfile.ZIP_DEFLATED)
        for path, output, date in members:
            info = zipfile.ZipInfo(path, date_time=date)
            info.external_attr = (stat.S_IFREG | 0o644) << 16
            method = zipfile.ZIP_STORED if output.mimetype in STORED else zipfile.ZIP_DEFLATED
            new.writestr(info, output.data, method)
    return out.getvalue()


async def sanitize(job: Job) -> Product:
    limits = job.policies.archive
    if job.depth > limits.max_depth:
        raise Refusal("sanitizer.refused.zip_too_deep", "sanitizer.instead.flat_zip", limit=limits.max_depth)
    budget = _BUDGET.get(None) if job.depth > 0 else None
    if budget is not None:
        return await _sanitize(job, budget)
    token = _BUDGET.set(_Budget(bytes_left=limits.max_total_mb * 1024 * 1024, entries_left=limits.max_entries))
    try:
        return await _sanitize(job, _BUDGET.get())
    finally:
        _BUDGET.reset(token)


async def _sanitize(job: Job, budget: _Budget) -> Product:
    limits = job.policies.archive
    try:
        archive = zipfile.ZipFile(io.BytesIO(job.data))
        infos = archive.infolist()
    except (zipfile.BadZipFile, EOFError, ValueError, NotImplementedError):
        raise Refusal("sanitizer.refused.zip_inconsistent", "sanitizer.instead.rezip") from None
    budget.entries_left -= len(infos)
    if budget.entries_left < 0:
        raise _exceeded(job, "entries")
    if any(info.flag_bits & 0x1 for info in infos):
        raise Refusal("sanitizer.refused.encrypted", "sanitizer.instead.unencrypted")

    done: list[_Done] = []
    members: list[tuple[str, Output, tuple[int, ...]]] = []
    used = {REPORT_NAME.casefold()}
    for info in infos:
        if info.is_dir():
            continue
        name = member_name(info)
        parts = safe_parts(name)
        if parts is None:
            done.append(_Done(shown(name), reason=Note("sanitizer.member.unsafe_path")))
            continue
        if is_special(info):
            done.append(_Done(shown(name), reason=Note("sanitizer.member.link")))
            continue
        try:
            data = await asyncio.to_thread(read_member, archive, info, budget, limits.max_ratio, len(job.data))
        except _Exceeded as e:
            raise _exceeded(job, str(e)) from None
        except NotImplementedError:
            done.append(_Done(shown(name), reason=Note("sanitizer.member.unsupported")))
            continue
        except (zipfile.BadZipFile, EOFError, zlib.error, ValueError, OSError):
            raise Refusal("sanitizer.refused.zip_inconsistent", "sanitizer.instead.rezip") from None
        result = await job.engine.sanitize_member(data, parts[-1], job.depth + 1)
        if not result.ok:
            if result.reason is not None and result.reason.key in WHOLE:
                raise Refusal(result.reason.key, result.instead.key if result.instead else None,
                              **result.reason.params)
            done.append(_Done("/".join(parts), result=result))
            continue
        paths = tuple(_unique("/".join([*parts[:-1], o.filename]), used) for o in result.outputs)
        members += [(path, output, _date(info)) for path, output in zip(paths, result.outputs)]
        done.append(_Done("/".join(parts), result=result, paths=paths))

    skipped = [d.name for d in done if not d.paths]
    names = " / ".join(skipped[:NAMES_IN_REPORT]) + (" …" if len(skipped) > NAMES_IN_REPORT else "")
    if not members:
        raise Refusal("sanitizer.refused.zip_nothing_left", "sanitizer.instead.common", names=names or "-")
    data = await asyncio.to_thread(_pack, members, _report(job.filename, done))
    removed = (Note("sanitizer.removed.zip_members", {"count": len(skipped), "names": names}),) if skipped else ()
    return Product(outputs=(Output(data, output_name(job.filename, ".zip"), "application/zip"),),
                   removed=removed, limitations=(Note("sanitizer.limit.zip_report", {"name": REPORT_NAME}),))
