"""PDF → pixels → a new PDF (the dangerzone way), also the last step of every Office conversion.

1. A sandboxed probe (pikepdf) says whether a password is needed, how many pages and how large the
   largest page is, and which active parts the file carries (named to the person as removed).
2. pdftoppm renders the pages in the sandbox, a few pages per run and two runs at a time (two cores),
   as raw PPM: the host reads nothing but a three-number header and pixels, and checks both.
3. The host compresses each page from the raw pixels and writes a new PDF with pikepdf holding one
   image per page and nothing else, each page as large as the original.
4. With ``text_layer`` (the default), meanwhile a sandboxed worker (workers/pdf_words.py) reads the
   words and their boxes from the same file (pdftotext); then, with ``ocr``, from the page images of
   pages without text that look like text (few mid-tones: a scan, not a photo) (Tesseract, in the same
   worker); the host writes them as invisible text over each page image (textlayer.py): search, copy
   and screen readers work, and nothing else of the original survives.

Compression: a page with no color (most municipal documents) is kept lossless, 8-bit gray with
Flate: for a dense text page at 150 dpi ~280 KB, half of JPEG quality 85 and without JPEG's smudges
around letters. A page with color is JPEG quality 85 with full chroma (colored text stays sharp):
~450-550 KB for a dense text page, 5-10x smaller than lossless for photos, encoded in ~20 ms.
Nothing the renderer wrote but pixel values reaches the new file.
"""

from __future__ import annotations

import asyncio
import io
import json
import math
import os
import re
import threading
import zlib
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import attrs
import pikepdf
from PIL import Image

from . import sandbox, textlayer
from .filenames import output_name
from .result import Note, Output, Product, Refusal

#: a side of a rendered page, in pixels, never exceeds this (as dangerzone)
MAX_SIDE = 10_000
#: below this the page would be unreadable: refuse instead
MIN_DPI = 36
PAGES_PER_RUN = 8
JPEG_QUALITY = 85
MAX_TEXT_BYTES = 16 * 1024 * 1024
#: what the words worker may answer at most (JSON: boxes and text of every page)
MAX_WORDS_BYTES = 64 * 1024 * 1024
#: pages without text are rendered at this resolution for OCR (Tesseract wants letters ~20+ px high)
OCR_DPI = 300
#: OCR may use this share of the time left (the rest: assembling and checking the output)
OCR_SHARE = 0.6
#: a page with more of its pixels in the mid-tones (64-191 of 255) than this is a photo, not text: no OCR
TEXT_MAX_MIDTONES = 0.25
_PPM_HEADER = re.compile(rb"P6\s(\d{1,5})\s(\d{1,5})\s255\s")
_DIGITS = re.compile(r"\D")
UNTRUSTED_PATTERNS = (_PPM_HEADER, _DIGITS)
#: an image inside a PDF may have this many times the pixels of a rendered page (the renderer scales it
#: down, but decodes it whole first): 200 MP with the default 50 MP
IMAGE_PIXELS_FACTOR = 4
#: what the probe's budget check may answer (workers/pdf_probe.py) -> reason
BUDGET_REFUSALS = {"stream_ratio": "sanitizer.refused.pdf_stream_bomb",
                   "inflated_total": "sanitizer.refused.pdf_stream_bomb",
                   "image_pixels": "sanitizer.refused.pdf_image_too_large"}


_T = TypeVar("_T")
_background_threads: ThreadPoolExecutor | None = None


def _lower_priority() -> None:
    os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), sandbox.BACKGROUND_NICE)  # this thread only


async def _in_thread(job, work: Callable[..., _T], *args: Any) -> _T:
    """``work`` in a thread; for a long document that gives way (lanes.py), a low-priority one."""
    global _background_threads
    if not job.background:
        return await asyncio.to_thread(work, *args)
    if _background_threads is None:
        _background_threads = ThreadPoolExecutor(2, "sanitizer-background", initializer=_lower_priority)
    return await asyncio.get_running_loop().run_in_executor(_background_threads, work, *args)


def _nice(job) -> int:
    return sandbox.BACKGROUND_NICE if job.background else 0


@attrs.frozen
class Page:
    width: int
    height: int
    data: bytes  # Flate-compressed 8-bit gray, or JPEG
    gray: bool
    text_like: bool = True  # few mid-tones: text or line art (a scan of a document), not a photo


async def sanitize(job) -> Product:
    return await rasterize(job, job.data)


async def rasterize(job, pdf: bytes, *, removed: Iterable[Note] = (), limitations: Iterable[Note] = (),
                    complete: bool = True) -> Product:
    """The image PDF of ``pdf`` (and its text as a .txt when the policy asks), for ``job``.

    ``complete=False``: ``pdf`` holds only the first pages of a longer document (LibreOffice is asked
    for one page over the cap), so its page count is not the document's."""
    workdir = job.workdir / "pdf"
    (workdir / "out").mkdir(parents=True)
    (workdir / "in.pdf").write_bytes(pdf)
    info = await _probe(job, workdir)
    if info.get("password"):
        raise Refusal("sanitizer.refused.encrypted", "sanitizer.instead.unencrypted")
    pages = int(info["pages"])
    if pages < 1:
        raise Refusal("sanitizer.refused.empty")
    if pages > job.policies.max_pages and not complete:
        raise Refusal("sanitizer.refused.over_page_limit", "sanitizer.instead.smaller", limit=job.policies.max_pages)
    if pages > job.policies.max_pages:
        raise Refusal("sanitizer.refused.too_many_pages", "sanitizer.instead.smaller",
                      pages=pages, limit=job.policies.max_pages)
    job.long_document(pages)
    dpi = _dpi(job.policies.dpi, job.policies.max_megapixels, float(info["width_pt"]), float(info["height_pt"]))
    notes = list(limitations)
    if dpi < job.policies.dpi:
        notes.append(Note("sanitizer.limit.resolution_reduced", {"dpi": dpi}))
    words_task = asyncio.ensure_future(_words(job, workdir, pages, ["--text"])) if job.policies.text_layer else None
    try:
        images = await _render(job, workdir, pages, dpi)
        words = await words_task if words_task is not None else None
    finally:
        if words_task is not None and not words_task.done():
            words_task.cancel()
            await asyncio.gather(words_task, return_exceptions=True)
    if words is not None and job.policies.ocr:
        await _ocr(job, workdir, words, images, info)
    layer = [page["runs"] for page in words["pages"]] if words else None
    await job.give_way()  # the rebuild holds this process's interpreter lock for a while: not during a short file
    outputs = [Output(await _in_thread(job, _assemble, images, dpi, layer), output_name(job.filename, ".pdf"),
                      "application/pdf", pages=pages)]
    if job.policies.text_companion:
        text = await _text(job, workdir, pages)
        if text.strip():
            outputs.append(Output(text.encode(), output_name(job.filename, ".txt"), "text/plain"))
            notes.append(Note("sanitizer.limit.text_companion"))
    if layer and any(layer):
        notes.insert(0, Note("sanitizer.limit.text_layer"))
        ocr = sum(1 for page in words["pages"] if page["ocr"] and page["runs"]) if words else 0
        if ocr:
            notes.append(Note("sanitizer.limit.text_ocr", {"pages": ocr}))
    else:
        notes.insert(0, Note("sanitizer.limit.text_not_selectable"))
    if words and words["ocr_skipped"]:
        notes.append(Note("sanitizer.limit.ocr_skipped", {"pages": words["ocr_skipped"]}))
    found = [Note(f"sanitizer.removed.{name}") for name in info.get("active", [])]
    return Product(outputs=tuple(outputs), removed=(*removed, *found), limitations=tuple(notes), pages=pages)


async def _probe(job, workdir: Path) -> dict:
    max_image_pixels = str(IMAGE_PIXELS_FACTOR * job.policies.max_megapixels * 1_000_000)
    done = await sandbox.run(job.sandbox, job.sandbox.python_worker("pdf_probe.py", "/job/in.pdf", max_image_pixels),
                             job_dir=workdir,
                             timeout=job.remaining(), limits=job.limits(), python=True, max_output=1024 * 1024)
    if done.returncode != 0:
        raise Refusal("sanitizer.refused.broken", "sanitizer.instead.pdf")
    try:
        info = json.loads(done.stdout)
        over = info.get("over_budget")
        if over in BUDGET_REFUSALS:
            raise Refusal(BUDGET_REFUSALS[over], "sanitizer.instead.smaller")
        if not info["password"]:
            int(info["pages"]), float(info["width_pt"]), float(info["height_pt"])
    except (ValueError, KeyError, TypeError):
        raise Refusal("sanitizer.refused.broken", "sanitizer.instead.pdf") from None
    return info


def _dpi(wanted: int, max_megapixels: int, width_pt: float, height_pt: float) -> int:
    """The policy's dpi, lowered so that the largest page stays within the pixel caps."""
    width_in, height_in = max(width_pt, 1) / 72, max(height_pt, 1) / 72
    fits = min(MAX_SIDE / width_in, MAX_SIDE / height_in, math.sqrt(max_megapixels * 1e6 / (width_in * height_in)))
    dpi = min(wanted, int(fits))
    if dpi < MIN_DPI:
        raise Refusal("sanitizer.refused.page_too_large", "sanitizer.instead.smaller")
    return dpi


async def _render(job, workdir: Path, pages: int, dpi: int) -> list[Page]:
    """Each page compressed, rendered a few pages per sandboxed run, two runs at a time."""
    cores = max(1, min(2, os.cpu_count() or 1))
    runs = _runs(pages, cores)
    parallel = asyncio.Semaphore(cores)

    async def run(first: int, last: int) -> list[Page]:
        async with parallel:
            await job.give_way()
            out = workdir / "out" / f"{first}"
            out.mkdir()
            argv = ["pdftoppm", "-cropbox", "-r", str(dpi), "-f", str(first), "-l", str(last),
                    "/job/in.pdf", f"/job/out/{first}/p"]
            done = await sandbox.run(job.sandbox, argv, job_dir=workdir, timeout=job.remaining(), limits=job.limits(),
                                     nice=_nice(job))
            if done.returncode != 0:
                raise Refusal("sanitizer.refused.broken", "sanitizer.instead.pdf")
            files = sorted(out.iterdir(), key=lambda p: int(_DIGITS.sub("", p.name) or 0))
            if len(files) != last - first + 1:
                raise Refusal("sanitizer.refused.broken", "sanitizer.instead.pdf")
            compressed = await _in_thread(job, _compress, files, job.policies.max_megapixels)
            received[0] += len(compressed)  # pages received from the jail and checked: the file's progress
            job.report_progress(received[0], pages)
            return compressed

    received = [0]
    job.report_progress(0, pages)
    tasks = [asyncio.ensure_future(run(first, last)) for first, last in runs]
    try:
        chunks = await asyncio.gather(*tasks)
    except BaseException:
        # one run failed or the job was cancelled: stop the others before the job's folder goes
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
    return [page for chunk in chunks for page in chunk]


def _runs(pages: int, cores: int) -> list[tuple[int, int]]:
    """Pages split into runs of at most PAGES_PER_RUN, at least one per core, of even sizes: a 5-page
    PDF is rendered as 3 + 2 pages on two cores, not 5 on one (rendering a photo page takes ~0.23 s of
    CPU, ten times its compression), and 10 pages as 5 + 5, not 8 + 2."""
    count = min(pages, max(cores, math.ceil(pages / PAGES_PER_RUN)))
    size, extra = divmod(pages, count)
    runs, first = [], 1
    for n in range(count):
        last = first + size + (1 if n < extra else 0) - 1
        runs.append((first, last))
        first = last + 1
    return runs


def _compress(files: list[Path], max_megapixels: int) -> list[Page]:
    """Each raw PPM page compressed, each file checked and deleted once read (untrusted renderer output)."""
    pages = []
    for path in files:
        raw = path.read_bytes()
        path.unlink()
        header = _PPM_HEADER.match(raw)
        if not header:
            raise Refusal("sanitizer.refused.broken", "sanitizer.instead.pdf")
        width, height = int(header[1]), int(header[2])
        if not (0 < width <= MAX_SIDE and 0 < height <= MAX_SIDE) or width * height > max_megapixels * 1_000_000 \
                or len(raw) != header.end() + width * height * 3:
            raise Refusal("sanitizer.refused.broken", "sanitizer.instead.pdf")
        # Pillow reads any buffer (no copy of the pixels); its annotation names bytes and arrays only.
        pixels = memoryview(raw)[header.end():]
        image = Image.frombuffer("RGB", (width, height), pixels, "raw", "RGB", 0, 1)  # type: ignore[arg-type]
        red, green, blue = (band.tobytes() for band in image.split())
        gray = red == green == blue
        histogram = (Image.frombuffer("L", (width, height), red, "raw", "L", 0, 1) if gray
                     else image.convert("L")).histogram()
        text_like = sum(histogram[64:192]) <= TEXT_MAX_MIDTONES * width * height
        if gray:
            pages.append(Page(width, height, zlib.compress(red, 6), gray=True, text_like=text_like))
        else:
            buffer = io.BytesIO()
            image.save(buffer, "JPEG", quality=JPEG_QUALITY, subsampling=0)
            pages.append(Page(width, height, buffer.getvalue(), gray=False, text_like=text_like))
    return pages


async def _ocr(job, workdir: Path, words: dict, images: list[Page], info: dict) -> None:
    """OCR (in the jail) of the pages without text that look like text, at most ``ocr_max_pages``; their
    runs go into ``words``, and the pages left unread are counted in ``words["ocr_skipped"]``."""
    policies = job.policies
    wanted = [n for n, page in enumerate(words["pages"]) if not page["runs"] and images[n].text_like]
    todo, words["ocr_skipped"] = wanted[:policies.ocr_max_pages], max(0, len(wanted) - policies.ocr_max_pages)
    try:
        ocr_dpi = _dpi(OCR_DPI, policies.max_megapixels, float(info["width_pt"]), float(info["height_pt"]))
    except Refusal:
        todo, words["ocr_skipped"] = [], len(wanted)
    if not todo:
        return
    argv = ["--ocr", policies.ocr_languages, "--ocr-pages", ",".join(str(n + 1) for n in todo),
            "--dpi", str(ocr_dpi), "--seconds", str(int(job.remaining() * OCR_SHARE))]
    read = await _words(job, workdir, len(words["pages"]), argv)
    if read is None:
        words["ocr_skipped"] += len(todo)
        return
    for n in todo:
        if read["pages"][n]["runs"]:
            words["pages"][n] = {"runs": read["pages"][n]["runs"], "ocr": True}
        else:
            words["ocr_skipped"] += 1 if read["pages"][n]["failed"] else 0
    words["ocr_skipped"] = min(words["ocr_skipped"], len(wanted))


async def _words(job, workdir: Path, pages: int, argv: list[str]) -> dict | None:
    """Words and boxes of each page from the jail (workers/pdf_words.py), checked; None: no text layer
    (the worker failed: the image PDF goes out without one, as before)."""
    argv = [str(pages), *argv]
    try:
        done = await sandbox.run(job.sandbox, job.sandbox.python_worker("pdf_words.py", "/job/in.pdf", *argv),
                                 job_dir=workdir, timeout=job.remaining(), limits=job.limits(), python=True,
                                 max_output=MAX_WORDS_BYTES, nice=_nice(job))
    except sandbox.SandboxError:
        return None
    if done.returncode != 0:
        return None
    try:
        raw = json.loads(done.stdout)
        found = [{"runs": textlayer.runs(page.get("runs")), "ocr": False, "failed": page.get("failed") is True}
                 for page in raw["pages"]]
    except (ValueError, KeyError, TypeError, AttributeError):
        return None
    if len(found) != pages:
        return None
    return {"pages": found, "ocr_skipped": 0}


def _assemble(pages: list[Page], dpi: int, words: list[list[textlayer.Run]] | None = None) -> bytes:
    """A new PDF: one image per page, the page as large as the pixels at ``dpi``, and over it the invisible
    text of ``words`` (one list of runs per page), nothing else."""
    pdf = pikepdf.new()
    layer, with_text = textlayer.Layer(), []
    for number, page in enumerate(pages):
        image = pdf.make_stream(page.data, Type=pikepdf.Name.XObject, Subtype=pikepdf.Name.Image, Width=page.width,
                                Height=page.height, BitsPerComponent=8,
                                ColorSpace=pikepdf.Name.DeviceGray if page.gray else pikepdf.Name.DeviceRGB,
                                Filter=pikepdf.Name.FlateDecode if page.gray else pikepdf.Name.DCTDecode)
        w, h = round(page.width * 72 / dpi, 3), round(page.height * 72 / dpi, 3)
        text = layer.content(words[number], w, h) if words and number < len(words) else b""
        content = pikepdf.Dictionary(Type=pikepdf.Name.Page, MediaBox=[0, 0, w, h],
                                     Resources=pikepdf.Dictionary(XObject=pikepdf.Dictionary(Im0=image)),
                                     Contents=pdf.make_stream(f"q {w} 0 0 {h} 0 0 cm /Im0 Do Q".encode() + text))
        pdf.pages.append(pikepdf.Page(content))
        if text:
            with_text.append(number)
    if with_text:
        font = layer.font(pdf)
        for number in with_text:
            pdf.pages[number].obj.Resources.Font = pikepdf.Dictionary(F0=font)
    buffer = io.BytesIO()
    pdf.save(buffer, compress_streams=True)
    return buffer.getvalue()


async def _text(job, workdir: Path, pages: int) -> str:
    """The text layer (pdftotext in the sandbox), without control characters but line breaks."""
    argv = ["pdftotext", "-enc", "UTF-8", "-l", str(pages), "/job/in.pdf", "-"]
    done = await sandbox.run(job.sandbox, argv, job_dir=workdir, timeout=job.remaining(), limits=job.limits(),
                             max_output=MAX_TEXT_BYTES, nice=_nice(job))
    if done.returncode != 0:
        return ""
    text = done.stdout.decode("utf-8", errors="replace").replace("\f", "\n\n")
    return "".join(c for c in text if c in "\n\t" or (c >= " " and c != "\x7f"))
