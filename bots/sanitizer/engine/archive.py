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

Names bounded to what extracts on Windows and Linux: a member whose folder name is over 255 bytes
(UTF-8; Linux's limit, and Windows' 255 characters are never fewer bytes), whose path in the new ZIP
would be over ``MAX_PATH_CHARS`` characters (Windows' 260 less room for the folder it is unpacked to)
or more than ``MAX_FOLDERS`` folders deep is skipped with that reason (never renamed: a shortened
name could collide or mislead). File names are shortened anyway by ``filenames.output_name``.

The ZIP itself (its directory, names, members' bytes) is read only inside the sandbox
(:func:`unpack`, run by workers/parse_worker.py); the host gets the members' bytes back and handles
each like a file of its own.

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
from pathlib import PurePosixPath
from typing import TYPE_CHECKING

import attrs

from lgwan_chat.core.i18n import t

from .budgets import inflated_size
from .detect import detect
from .filenames import MAX_STEM, RESERVED, clean, output_name
from .result import Note, Output, Product, Refusal, Result
from .sandbox import SandboxError

if TYPE_CHECKING:
    from .engine import Job

REPORT_NAME = "無害化結果.txt"
#: refusals of a nested archive that refuse the archive around it too
WHOLE = {"sanitizer.refused.zip_bomb", "sanitizer.refused.zip_ratio", "sanitizer.refused.zip_too_many_entries",
         "sanitizer.refused.zip_too_deep", "sanitizer.refused.zip_inconsistent"}
#: already compressed: stored as they are
STORED = {"image/jpeg", "image/png", "application/zip"}
_DRIVE = re.compile(r"^[A-Za-z]:")
#: names listed in the one-line report (the text file inside lists all)
NAMES_IN_REPORT = 5
#: the share of the archive's time kept for packing: a member that runs out of time is refused alone
PACKING_TIME = 0.1
#: what extracts on both Windows and Linux (see the module's docstring)
MAX_NAME_BYTES = 255
MAX_PATH_CHARS = 200
MAX_FOLDERS = 32
#: room kept for the file's own name in a path: output_name's longest stem, " (99)" and an extension
FILE_NAME_ROOM = MAX_STEM + 12
#: member statuses a worker may answer (anything else is a worker gone wrong)
STATUSES = {"ok", "sanitizer.member.unsafe_path", "sanitizer.member.link", "sanitizer.member.unsupported",
            "sanitizer.member.too_deep", "sanitizer.member.name_too_long", "sanitizer.member.path_too_long"}


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
    """A cap was reached while reading (turned into a Refusal)."""


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


def read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int, max_ratio: int,
                archive_size: int) -> bytes:
    """The member's bytes, counted as they come out: the sizes in its header are not trusted."""
    chunks: list[bytes] = []
    try:
        inflated_size(archive, info, limit, max_ratio, archive_size, keep=chunks)
    except OverflowError as e:
        raise _Exceeded("bytes" if str(e) == "size" else "ratio") from None
    return b"".join(chunks)


def path_problem(parts: list[str]) -> str | None:
    """Why a member's cleaned path could not be extracted everywhere (None when it can)."""
    if len(parts) - 1 > MAX_FOLDERS:
        return "sanitizer.member.too_deep"
    if any(len(part.encode("utf-8")) > MAX_NAME_BYTES for part in parts[:-1]):
        return "sanitizer.member.name_too_long"
    # the file's own name is shortened by output_name (at most MAX_STEM characters and an extension)
    if sum(len(part.encode("utf-16-le")) // 2 + 1 for part in parts[:-1]) + FILE_NAME_ROOM > MAX_PATH_CHARS:
        return "sanitizer.member.path_too_long"
    return None


def unpack(data: bytes, bytes_left: int, entries_left: int, max_ratio: int) -> tuple[list[dict], bytes]:
    """Each member (in the sandbox): its name, date and what became of it, and the read members' bytes one
    after another (``size`` says how many are whose). Refusals for the whole archive are raised here."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        infos = archive.infolist()
    except Exception:  # BadZipFile, EOFError, ValueError, NotImplementedError...
        raise Refusal("sanitizer.refused.zip_inconsistent", "sanitizer.instead.rezip") from None
    if len(infos) > entries_left:
        raise Refusal("sanitizer.refused.zip_too_many_entries", "sanitizer.instead.smaller")
    if any(info.flag_bits & 0x1 for info in infos):
        raise Refusal("sanitizer.refused.encrypted", "sanitizer.instead.unencrypted")
    members: list[dict] = []
    blobs: list[bytes] = []
    for info in infos:
        if info.is_dir():
            continue
        name = member_name(info)
        parts = safe_parts(name)
        entry = {"name": shown(name), "date": list(_date(info)), "parts": parts or [], "size": 0, "status": "ok"}
        members.append(entry)
        if parts is None:
            entry["status"] = "sanitizer.member.unsafe_path"
            continue
        entry["name"] = "/".join(parts)[:MAX_PATH_CHARS]
        problem = path_problem(parts) or ("sanitizer.member.link" if is_special(info) else None)
        if problem:
            entry["status"] = problem
            continue
        try:
            member = read_member(archive, info, bytes_left, max_ratio, len(data))
        except _Exceeded as e:
            if str(e) == "ratio":
                raise Refusal("sanitizer.refused.zip_ratio", "sanitizer.instead.smaller", limit=max_ratio) from None
            raise Refusal("sanitizer.refused.zip_bomb", "sanitizer.instead.smaller") from None
        except NotImplementedError:
            entry["status"] = "sanitizer.member.unsupported"
            continue
        except Exception:  # BadZipFile (CRC), EOFError, zlib.error, ...: a broken or doctored archive
            raise Refusal("sanitizer.refused.zip_inconsistent", "sanitizer.instead.rezip") from None
        bytes_left -= len(member)
        entry["size"] = len(member)
        entry["mime"] = detect(member).mime  # here, while the bytes are in the jail anyway
        blobs.append(member)
    return members, b"".join(blobs)


def _limits_of(status: str) -> dict:
    return {"sanitizer.member.too_deep": {"limit": MAX_FOLDERS},
            "sanitizer.member.name_too_long": {"limit": MAX_NAME_BYTES},
            "sanitizer.member.path_too_long": {"limit": MAX_PATH_CHARS}}.get(status, {})


def _unique(path: str, used: set[str]) -> str:
    candidate, n = path, 1
    while candidate.casefold() in used:  # Windows folders ignore case
        n += 1
        p = PurePosixPath(path)
        candidate = str(p.with_name(f"{p.stem} ({n}){p.suffix}"))
    used.add(candidate.casefold())
    return candidate


#: a ZIP member's date and time (year, month, day, hour, minute, second)
ZipDate = tuple[int, int, int, int, int, int]


def _date(info: zipfile.ZipInfo) -> ZipDate:
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


def _pack(members: list[tuple[str, Output, ZipDate]], report: bytes) -> bytes:
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


def _members(answer: dict, blob: bytes) -> list[tuple[dict, int, int]]:
    """The worker's list checked (types, statuses, sizes adding up to the bytes it sent), with where in
    ``blob`` each member's bytes are."""
    members, at = [], 0
    try:
        for entry in answer["members"]:
            name, parts, size, status = str(entry["name"]), entry["parts"], int(entry["size"]), entry["status"]
            date = tuple(int(v) for v in entry["date"])
            if status not in STATUSES or len(date) != 6 or not all(isinstance(p, str) and p for p in parts) \
                    or size < 0 or (status == "ok" and not parts):
                raise ValueError(status)
            mime = entry.get("mime")
            if status == "ok" and not (isinstance(mime, str) and 0 < len(mime) < 200):
                raise ValueError(mime)
            members.append(({"name": name[:MAX_PATH_CHARS], "parts": list(parts), "status": status, "date": date,
                             "mime": mime}, at, size))
            at += size
    except (KeyError, TypeError, ValueError) as e:
        raise SandboxError(f"zip worker answered nonsense: {e!r}"[:300]) from None
    if at != len(blob):
        raise SandboxError("zip worker's sizes do not add up")
    return members


async def _sanitize(job: Job, budget: _Budget) -> Product:
    from . import jail
    limits = job.policies.archive
    try:
        answer, blob = await jail.call(job.engine, "unzip", job.data, job.remaining(), bytes_left=budget.bytes_left,
                                       entries_left=budget.entries_left, max_ratio=limits.max_ratio)
    except Refusal as refusal:  # the worker knows what is left, the limits' figures are told from here
        what = {"sanitizer.refused.zip_too_many_entries": "entries", "sanitizer.refused.zip_bomb": "bytes"}
        if refusal.note.key in what:
            raise _exceeded(job, what[refusal.note.key]) from None
        raise
    members_read = _members(answer, blob)
    budget.entries_left -= len(members_read)
    budget.bytes_left -= len(blob)  # nested archives get what is left
    if budget.entries_left < 0:
        raise _exceeded(job, "entries")
    if budget.bytes_left < 0:
        raise _exceeded(job, "bytes")

    done: list[_Done] = []
    members: list[tuple[str, Output, ZipDate]] = []
    used = {REPORT_NAME.casefold()}
    for entry, at, size in members_read:
        if entry["status"] != "ok":
            done.append(_Done(entry["name"], reason=Note(entry["status"], _limits_of(entry["status"]))))
            continue
        parts = entry["parts"]
        result = await job.engine.sanitize_member(blob[at:at + size], parts[-1], job.depth + 1,
                                                  deadline=job.deadline - PACKING_TIME * job.policies.timeout_s,
                                                  mime=entry["mime"])
        if not result.ok:
            if result.reason is not None and result.reason.key in WHOLE:
                raise Refusal(result.reason.key, result.instead.key if result.instead else None,
                              **result.reason.params)
            done.append(_Done("/".join(parts), result=result))
            continue
        paths = tuple(_unique("/".join([*parts[:-1], o.filename]), used) for o in result.outputs)
        members += [(path, output, entry["date"]) for path, output in zip(paths, result.outputs, strict=True)]
        done.append(_Done("/".join(parts), result=result, paths=paths))

    skipped = [d.name for d in done if not d.paths]
    names = " / ".join(skipped[:NAMES_IN_REPORT]) + (" …" if len(skipped) > NAMES_IN_REPORT else "")
    if not members:
        raise Refusal("sanitizer.refused.zip_nothing_left", "sanitizer.instead.common", names=names or "-")
    data = await asyncio.to_thread(_pack, members, _report(job.filename, done))
    removed = (Note("sanitizer.removed.zip_members", {"count": len(skipped), "names": names}),) if skipped else ()
    return Product(outputs=(Output(data, output_name(job.filename, ".zip"), "application/zip"),),
                   removed=removed, limitations=(Note("sanitizer.limit.zip_report", {"name": REPORT_NAME}),))
