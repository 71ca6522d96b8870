"""Office documents: OOXML (Word/Excel/PowerPoint 2007+), ODF, RTF and legacy binary doc/xls/ppt.

First refused when encrypted (msoffcrypto for OLE and OOXML; ODF's manifest). Then, before any
renderer sees the bytes, OOXML loses its active parts (:mod:`ooxml`) and ODF its macro libraries.

Everything that reads the document's bytes before LibreOffice (:func:`prepare`: budgets, encryption,
stripping) runs in a warm sandboxed worker (jail.py, workers/parse_worker.py), never on the host.

- ``rasterize``: a warm LibreOffice (one per sandboxed worker, at most ``concurrency`` of them)
  converts to PDF, which :func:`pdf.rasterize` turns into pixels and a new PDF. LibreOffice loads with
  macros never executed and links never updated, in a sandbox with no network and no host files.
- ``strip-active``: the stripped OOXML itself (docm → docx) is delivered. Other formats cannot be
  stripped reliably here (binary doc/xls/ppt and xlsb keep macros in streams we do not rewrite;
  Strict OOXML's fields are not read), so they are rasterized, and the person is told so.
- ``both``: the image PDF (rendered from the stripped document) and the stripped document, both
  checked (verify.py: the PDF for active content, the document by the independent ooxml_verify.py).
"""

from __future__ import annotations

import io
import zipfile

import attrs
import msoffcrypto
import olefile

from . import budgets, jail, odf, ooxml, pdf
from .filenames import output_name
from .result import Note, Output, Product, Refusal
from .sandbox import SANDBOX_WORKERS, Limits, SandboxError, WarmWorker, WorkerPool

#: LibreOffice reads its configuration from these (bound read-only into the sandbox)
LIBREOFFICE_PATHS = ("/etc/libreoffice", "/var/lib/libreoffice")
#: the system Python, whose ``uno`` module belongs to the installed LibreOffice
SYSTEM_PYTHON = "/usr/bin/python3"
OLE_MAGIC = bytes.fromhex("d0cf11e0a1b11ae1")
#: legacy binary type (libmagic) -> the extension LibreOffice is given as a hint
OLE_EXTENSIONS = {"application/msword": "doc", "application/vnd.ms-excel": "xls",
                  "application/vnd.ms-powerpoint": "ppt"}
#: streams of an OLE file that hold VBA or Excel 4 macros
OLE_MACRO_STREAMS = ("macros", "_vba_project_cur", "vba", "_vba_project")
#: the policies that deliver the stripped document itself (when it can be stripped)
EDITABLE = ("strip-active", "both")
#: what the worker answers when LibreOffice died before the file reached it (workers/office_worker.py)
RENDERER_GONE = "renderer-gone"


async def warm(engine) -> None:
    """Start LibreOffice before the first file (its cold start takes seconds)."""
    await _pool(engine).warm()


def _pool(engine) -> WorkerPool:
    return engine.pool("office", lambda: WorkerPool(lambda: _worker(engine), engine.policies.concurrency))


def _worker(engine) -> WarmWorker:
    policies = engine.policies
    # CPU time is counted over the whole life of the process: one job's worth per job it may do
    limits = Limits(memory_mb=policies.renderer_memory_mb, cpu_s=policies.timeout_s * policies.office_jobs_per_process,
                    file_mb=max(64, 4 * policies.max_file_mb))
    return WarmWorker(engine.sandbox, [SYSTEM_PYTHON, "-B", f"{SANDBOX_WORKERS}/office_worker.py"], limits=limits,
                      max_jobs=policies.office_jobs_per_process, python=True, extra_ro=LIBREOFFICE_PATHS,
                      env={"SAL_USE_VCLPLUGIN": "svp"})


@attrs.frozen
class Prepared:
    """What :func:`prepare` made of a document, in the sandbox, before any renderer sees it."""

    data: bytes
    extension: str  # the hint LibreOffice is given
    removed: frozenset[str]  # sanitizer.removed.<what>
    deliver: tuple[str, str] | None = None  # (suffix, mimetype) when strip-active delivers it as it is


def prepare(data: bytes, mime: str, policy: str, max_total_bytes: int) -> Prepared:
    """Budgets first, then encryption and active parts out (runs inside the sandbox: parse_worker.py)."""
    limits = ooxml.Limits(max_total_bytes=max_total_bytes)
    if _is_zip(data):
        budgets.check_package(data, max_total_bytes)
    if _is_zip(data) and "[content_types].xml" in {n.lower() for n in _names(data)}:  # OPC: case-insensitive
        stripped = ooxml.strip(data, limits)
        deliver = ooxml.PACKAGE[stripped.kind] if policy in EDITABLE and stripped.deliverable else None
        return Prepared(stripped.data, stripped.kind, frozenset(stripped.removed), deliver)
    if _is_zip(data) and "mimetype" in _names(data):
        data, extension, found = _strip_odf(data, limits)
        return Prepared(data, extension, frozenset(found))
    if data.startswith(OLE_MAGIC):
        _refuse_encrypted_ole(data)
        return Prepared(data, OLE_EXTENSIONS.get(mime, "doc"), frozenset({"macros"} if _ole_has_macros(data) else ()))
    if data.lstrip()[:5] == b"{\\rtf":
        return Prepared(data, "rtf", frozenset())
    raise Refusal("sanitizer.refused.broken", "sanitizer.instead.pdf")


async def sanitize(job) -> Product:
    answer, data = await jail.call(job.engine, "office", job.data, job.remaining(), mime=job.detected.mime,
                                   policy=job.policy, max_total_bytes=job.policies.archive.max_total_mb * 1024 * 1024)
    removed = {str(what) for what in answer.get("removed") or ()}
    if not data or not all(what.isidentifier() for what in removed):
        raise SandboxError(f"office worker answered {answer!r}"[:300])
    deliver = answer.get("deliver")
    if deliver:
        # the worker names one of the known package types, or nothing is delivered (verify.py checks the bytes)
        kind = next((k for k, value in ooxml.PACKAGE.items() if list(value) == list(deliver)), None)
        if kind is None:
            raise SandboxError(f"office worker answered {answer!r}"[:300])
        suffix, mimetype = ooxml.PACKAGE[kind]
        editable = Output(data, output_name(job.filename, suffix), mimetype)
        if job.policy != "both":
            return Product(outputs=(editable,), removed=_notes(removed))
        # the PDF from the same stripped bytes LibreOffice would have had under rasterize
        rendered = await pdf.rasterize(job, await _convert(job, data, kind), removed=_notes(removed), complete=False)
        return attrs.evolve(rendered, outputs=(*rendered.outputs, editable), checks=())
    extension = str(answer.get("extension", ""))
    if not extension.isalnum() or len(extension) > 5:
        raise SandboxError(f"office worker answered {answer!r}"[:300])
    limitations = (Note("sanitizer.limit.rasterized_instead"),) if job.policy in EDITABLE else ()
    converted = await _convert(job, data, extension)
    return await pdf.rasterize(job, converted, removed=_notes(removed), limitations=limitations, complete=False)


def _notes(removed: set[str]) -> tuple[Note, ...]:
    return tuple(Note(f"sanitizer.removed.{what}") for what in sorted(removed))


async def _convert(job, data: bytes, extension: str) -> bytes:
    """PDF from a warm LibreOffice; once more on a fresh one if the warm one had died meanwhile."""
    request = {"ext": extension, "max_pages": job.policies.max_pages + 1}  # one more: pdf.py refuses over the cap
    pool = _pool(job.engine)

    async def call() -> bytes:
        async with pool.worker() as worker:
            return (await worker.call(request, data, job.remaining()))[1]

    try:
        return await call()
    except SandboxError as e:
        if str(e) != RENDERER_GONE:
            raise
    return await call()  # the dead worker was stopped: this starts a fresh one


def _is_zip(data: bytes) -> bool:
    return data[:4] == b"PK\x03\x04"


def _names(data: bytes) -> set[str]:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            return set(z.namelist())
    except zipfile.BadZipFile:
        raise Refusal("sanitizer.refused.broken", "sanitizer.instead.pdf") from None


def _refuse_encrypted_ole(data: bytes) -> None:
    try:
        encrypted = msoffcrypto.OfficeFile(io.BytesIO(data)).is_encrypted()
    except Exception:  # a format msoffcrypto does not know: LibreOffice decides whether it can be read
        return
    if encrypted:
        raise Refusal("sanitizer.refused.encrypted", "sanitizer.instead.unencrypted")


def _ole_has_macros(data: bytes) -> bool:
    try:
        with olefile.OleFileIO(io.BytesIO(data)) as ole:
            return any(part.lower() in OLE_MACRO_STREAMS for entry in ole.listdir(streams=True, storages=True)
                       for part in entry)
    except OSError:
        return False


def _strip_odf(data: bytes, limits: ooxml.Limits) -> tuple[bytes, str, set[str]]:
    """ODF with only what is known inert (:mod:`odf`); refused when encrypted."""
    return odf.strip(data, limits)
