"""Images: decoded and re-encoded from the pixels alone by a warm sandboxed worker (workers/image_worker.py).

Whatever rides along with the pixels (EXIF with GPS, XMP, ICC profiles, PNG text chunks, bytes or a
whole ZIP after the image's end) is left behind; the report names what was there. JPEG stays JPEG,
every other format becomes PNG; of an animated GIF/WebP only the first frame is kept.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .filenames import output_name
from .result import Note, Output, Product, Refusal
from .sandbox import SandboxError, SandboxTimeout, WarmWorker, WorkerPool

if TYPE_CHECKING:
    from .engine import Job

#: images one worker decodes before a fresh process replaces it
MAX_JOBS = 100
#: RLIMIT_CPU counts the whole life of a warm worker, not one job (each job has its wall-clock timeout)
CPU_S_PER_JOB = 10
MIMETYPES = {"JPEG": "image/jpeg", "PNG": "image/png"}
EXTENSIONS = {"JPEG": ".jpg", "PNG": ".png"}
#: formats delivered as PNG (named in the report)
CONVERTED = ("GIF", "WEBP", "BMP", "TIFF")
#: what the worker may say it found -> message (anything else it says is ignored)
FOUND = {"exif": "sanitizer.removed.exif", "gps": "sanitizer.removed.gps", "xmp": "sanitizer.removed.xmp",
         "icc": "sanitizer.removed.icc", "iptc": "sanitizer.removed.iptc", "text": "sanitizer.removed.image_text"}


def _pool(job: Job) -> WorkerPool:
    sandbox, limits = job.sandbox, job.limits(cpu_s=MAX_JOBS * CPU_S_PER_JOB)
    return job.engine.pool("image", lambda: WorkerPool(
        lambda: WarmWorker(sandbox, sandbox.python_worker("image_worker.py"), limits=limits, max_jobs=MAX_JOBS),
        size=job.policies.concurrency))


def _notes(answer: dict) -> tuple[tuple[Note, ...], tuple[Note, ...]]:
    removed = [Note(FOUND[name]) for name in answer["found"] if name in FOUND]
    trailing, frames = int(answer["trailing"]), int(answer["frames"])
    if answer["appended_zip"]:
        removed.append(Note("sanitizer.removed.appended_zip", {"bytes": trailing}))
    elif trailing:
        removed.append(Note("sanitizer.removed.trailing_data", {"bytes": trailing}))
    limitations = []
    if frames > 1:
        limitations.append(Note("sanitizer.limit.first_frame_only", {"frames": frames}))
    if answer["format"] != answer["source"] and answer["source"] in CONVERTED:
        limitations.append(Note("sanitizer.limit.converted_to_png", {"source": answer["source"]}))
    return tuple(removed), tuple(limitations)


async def sanitize(job: Job) -> Product:
    max_pixels = job.policies.max_megapixels * 1_000_000
    async with _pool(job).worker() as worker:
        try:
            answer, data = await worker.call({"max_pixels": max_pixels}, job.data, job.remaining())
        except SandboxTimeout:
            raise
        except SandboxError:
            if worker.running:  # the worker said "bad file" and stayed sane (it is killed otherwise)
                raise Refusal("sanitizer.refused.image_broken", "sanitizer.instead.image") from None
            raise
    if answer.get("refused") == "jpeg_too_many_scans":
        raise Refusal("sanitizer.refused.jpeg_too_many_scans", "sanitizer.instead.image",
                      limit=int(answer.get("limit", 0)))
    if answer.get("refused") == "image_too_large":
        raise Refusal("sanitizer.refused.image_too_large", "sanitizer.instead.smaller_image",
                      limit_mp=job.policies.max_megapixels)
    # the worker is untrusted too: only a JPEG/PNG of the allowed size is accepted back
    fmt = answer.get("format")
    if fmt not in MIMETYPES or not data or int(answer["width"]) * int(answer["height"]) > max_pixels:
        raise SandboxError(f"image worker answered {answer!r}")
    removed, limitations = _notes(answer)
    return Product(outputs=(Output(data, output_name(job.filename, EXTENSIONS[fmt]), MIMETYPES[fmt]),),
                   removed=removed, limitations=limitations)
