#!/usr/bin/env python3
"""File sanitization speed and memory through the real engine (sandbox, warm LibreOffice).

Generates (no downloads) a 12 MP JPEG, a 10-page text PDF, a 5-page PDF of 12 MP photos, a 20-page
Japanese docx, a 5,000-row xlsx and a zip of 100 files; sanitizes each ``--runs`` times with the
default policies (150 dpi) and prints a Markdown table: seconds per file (first run and median), per
page, and peak memory.

Memory: ``engine`` is this process's peak RSS (ru_maxrss: it rebuilds the PDFs from the pixels).
``renderers`` is the peak of the summed RSS of every process below this one (bwrap, pdftoppm, the
probe, the image worker, LibreOffice's workers and soffice.bin), sampled from /proc every 20 ms while
the file is sanitized, less what they held just before it (the idle warm workers, shown on their
own). RUSAGE_CHILDREN would miss them: warm workers are not reaped between files, and soffice.bin is
a grandchild in the sandbox's PID namespace. LibreOffice's cold start (a fresh sandbox and profile)
is reported on its own.
Targets on a 2-core machine: JPEG <= 0.5 s, PDF <= 0.5 s a page, warm Office conversion of 20 pages
<= 3 s.

Then the adversarial corpus of issue #14 (tests/support/corpus_adversarial.py: libmagic's limits, patterns
that backtracked, CPU and memory bombs, CSV directives, ZIP names), each file once through the same
engine: its verdict, its time, and the engine process's own peak RSS while it ran (sampled from
/proc/self, children excluded: everything that parses the file is a jailed child). Targets: every
file ends within ``timeout_s``, bombs are refused in < 1 s, the engine process stays < 500 MB. And
the per-pattern timings of tests/test_sanitizer_patterns.py's worst inputs at 100,000 characters.

    make bench-sanitize
    .venv/bin/python bench/sanitize.py --runs 1
"""

from __future__ import annotations

import argparse
import io
import os
import resource
import statistics
import sys
import threading
import time
import zipfile
from pathlib import Path

import pikepdf
from PIL import Image, ImageDraw

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))  # test_sanitizer_patterns
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "support"))  # the corpora

import attrs
import corpus_adversarial as adversarial
import corpus_documents as corpus

from bench.common import load_average, machine, run
from bots.sanitizer.engine import Policies, Sanitizer, office, pdf

PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


def photo_jpeg() -> bytes:
    """4000x3000 (12 MP) with noise and shapes, so that it compresses like a photo, not like a flat color."""
    noise = Image.effect_noise((4000, 3000), 40)
    image = Image.merge("RGB", (noise, noise.rotate(90, expand=False),
                                noise.transpose(Image.Transpose.FLIP_LEFT_RIGHT)))
    draw = ImageDraw.Draw(image)
    for i in range(0, 4000, 250):
        draw.ellipse((i, i % 3000, i + 400, (i % 3000) + 300), fill=(i % 255, 120, 200))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=90, exif=Image.Exif())
    return buffer.getvalue()


def photo_pdf(jpeg: bytes, pages: int) -> bytes:
    """Each page an A4 landscape holding the 12 MP photo (a scanned or photo-heavy PDF)."""
    pdf = pikepdf.new()
    for _ in range(pages):
        image = pdf.make_stream(jpeg, Type=pikepdf.Name.XObject, Subtype=pikepdf.Name.Image, Width=4000, Height=3000,
                                ColorSpace=pikepdf.Name.DeviceRGB, BitsPerComponent=8, Filter=pikepdf.Name.DCTDecode)
        pdf.pages.append(pikepdf.Page(pikepdf.Dictionary(
            Type=pikepdf.Name.Page, MediaBox=[0, 0, 842, 595], Resources=pikepdf.Dictionary(XObject=pikepdf.Dictionary(
                Photo=image)), Contents=pdf.make_stream(b"q 842 0 0 595 0 0 cm /Photo Do Q"))))
    buffer = io.BytesIO()
    pdf.save(buffer)
    return buffer.getvalue()


def hundred_file_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
        for i in range(100):
            if i % 4 == 0:
                small = Image.new("RGB", (320, 240), (i * 2, 100, 150))
                image = io.BytesIO()
                small.save(image, "PNG")
                z.writestr(f"写真/{i:03d}.png", image.getvalue())
            elif i % 4 == 1:
                z.writestr(f"表/{i:03d}.csv", "番号,金額\n" + "".join(f"{n},{n * 10}\n" for n in range(50)))
            else:
                z.writestr(f"メモ/{i:03d}.txt", f"議事録 {i}\n" + "本日の議題について確認しました。\n" * 20)
    return buffer.getvalue()


def _descendants_rss(root: int) -> int:
    """Summed RSS (bytes) of every process below ``root``."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        children.setdefault(int(stat[1]), []).append(int(entry))
        rss[int(entry)] = int(stat[21]) * PAGE_SIZE
    total, todo = 0, [root]
    while todo:
        for child in children.get(todo.pop(), []):
            total += rss.get(child, 0)
            todo.append(child)
    return total


def _own_rss() -> int:
    return int(Path("/proc/self/statm").read_text().split()[1]) * PAGE_SIZE


class PeakSampler:
    """Peak summed RSS of this process's descendants (``peak``) and of this process alone (``own``)
    while in the ``with`` block."""

    def __init__(self, interval: float = 0.02):
        self.interval = interval
        self.peak = 0
        self.own = 0
        self._stop = threading.Event()

    def __enter__(self) -> PeakSampler:
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, _descendants_rss(os.getpid()))
            self.own = max(self.own, _own_rss())
            self._stop.wait(self.interval)


async def main(args: argparse.Namespace) -> dict:
    print(f"# Sanitization benchmark\n\n{machine()}\n", flush=True)
    if args.only == "text-layer":
        async with Sanitizer(Policies()) as engine:
            await engine.warm()
            return {"machine": machine(), "text_layer": await text_layer_rows(engine, args.runs)}
    jpeg = photo_jpeg()
    files = [
        ("12 MP JPEG", "写真.jpg", jpeg),
        ("10-page PDF (text)", "資料.pdf", corpus.text_pdf(10)),
        ("5-page PDF (12 MP photos)", "現場写真.pdf", photo_pdf(jpeg, 5)),
        ("20-page docx (Japanese)", "申請案内.docx", corpus.japanese_docx(20)),
        ("5,000-row xlsx", "台帳.xlsx", corpus.ledger_xlsx(5000)),
        ("100-file zip", "提出書類.zip", hundred_file_zip()),
    ]
    summary: dict = {"machine": machine(), "dpi": Policies().dpi, "files": []}
    async with Sanitizer(Policies()) as engine:
        started = time.perf_counter()
        await engine.warm()
        summary["libreoffice_cold_start_s"] = round(time.perf_counter() - started, 2)
        summary["libreoffice_idle_rss_mb"] = round(_descendants_rss(os.getpid()) / 2 ** 20)
        print(f"LibreOffice cold start (sandbox, fresh profile, {engine.policies.concurrency} workers): "
              f"{summary['libreoffice_cold_start_s']} s, idle RSS {summary['libreoffice_idle_rss_mb']} MB\n",
              flush=True)

        rows = []
        for label, name, data in files:
            times, peak, result = [], 0, None
            for _ in range(args.runs):
                idle = _descendants_rss(os.getpid())
                with PeakSampler() as sampler:
                    started = time.perf_counter()
                    result = await engine.sanitize(data, name)
                    times.append(time.perf_counter() - started)
                peak = max(peak, sampler.peak - idle)
            assert result is not None
            pages = result.pages or 0
            median = statistics.median(times)
            row: dict = {"file": label, "size_kb": round(len(data) / 1024), "verdict": result.verdict,
                   "report": result.report("en"), "pages": pages, "first_s": round(times[0], 2),
                   "median_s": round(median, 2), "per_page_s": round(median / pages, 3) if pages else None,
                   "renderers_peak_mb": round(peak / 2 ** 20),
                   "output_kb": round(sum(len(o.data) for o in result.outputs) / 1024)}
            rows.append(row)
            print(f"  {label}: {row['median_s']} s ({result.verdict})", flush=True)

        # LibreOffice alone on the 20-page docx (the conversion, without the rasterization after it)
        docx = next(data for label, _, data in files if "docx" in label)
        async with office._pool(engine).worker() as worker:
            conversions = []
            for _ in range(args.runs):
                started = time.perf_counter()
                await worker.call({"ext": "docx"}, docx, 120)
                conversions.append(time.perf_counter() - started)
        summary["libreoffice_docx20_conversion_s"] = round(statistics.median(conversions), 2)
        summary["libreoffice_processes_started"] = office._pool(engine).started

        summary["adversarial"] = await adversarial_rows(engine)
        summary["text_layer"] = await text_layer_rows(engine, args.runs)

    summary["engine_peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    summary["files"] = rows
    summary["patterns"] = pattern_rows()
    print("\n| file | size | result | pages | first run | median | per page "
          "| renderers' peak RSS above idle | output |")
    print("|---|---:|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        per_page = f"{r['per_page_s']:.3f} s" if r["per_page_s"] is not None else "-"
        print(f"| {r['file']} | {r['size_kb']:,} KB | {r['verdict']} | {r['pages'] or '-'} | {r['first_s']:.2f} s "
              f"| {r['median_s']:.2f} s | {per_page} | {r['renderers_peak_mb']} MB | {r['output_kb']:,} KB |")
    print(f"\nLibreOffice: cold start {summary['libreoffice_cold_start_s']} s; warm conversion of the 20-page docx "
          f"to PDF alone {summary['libreoffice_docx20_conversion_s']} s (median of {args.runs}); "
          f"processes started in the whole run: {summary['libreoffice_processes_started']}.")
    print(f"Engine process peak RSS (ru_maxrss): {summary['engine_peak_rss_mb']} MB. Runs per file: {args.runs}, "
          f"{summary['dpi']} dpi.")
    for r in rows:
        print(f"- {r['file']}: {r['report']}")
    print_adversarial(summary["adversarial"], engine.policies.timeout_s)
    print("\n| pattern (worst generated input, 100,000 characters) | one call |\n|---|---:|")
    for name, seconds in summary["patterns"]:
        print(f"| `{name}` | {seconds * 1000:.2f} ms |")
    return summary


async def adversarial_rows(engine: Sanitizer) -> list[dict]:
    rows = []
    for group, files in adversarial.classes().items():
        for name, data in files:
            with PeakSampler() as sampler:
                started = time.perf_counter()
                result = await engine.sanitize(data, name)
                seconds = time.perf_counter() - started
            rows.append({"class": group, "file": name, "size_kb": round(len(data) / 1024, 1),
                         "verdict": result.verdict, "reason": result.reason.key if result.reason else "",
                         "seconds": round(seconds, 3), "engine_rss_mb": round(sampler.own / 2 ** 20),
                         "jail_peak_mb": round(sampler.peak / 2 ** 20)})
            print(f"  {group} / {name}: {result.verdict} {rows[-1]['reason']} {seconds:.2f} s", flush=True)
    return rows


def print_adversarial(rows: list[dict], timeout_s: int) -> None:
    print(f"\nAdversarial corpus: {len(rows)} files, {sum(r['size_kb'] for r in rows) / 1024:.1f} MB; "
          f"{sum(r['verdict'] == 'sanitized' for r in rows)} sanitized, "
          f"{sum(r['verdict'] == 'refused' for r in rows)} refused; timeout_s {timeout_s}.\n")
    print("| class | files | sanitized / refused | worst time | engine process peak RSS | jailed workers' peak RSS |")
    print("|---|---:|---|---:|---:|---:|")
    for group in dict.fromkeys(r["class"] for r in rows):
        mine = [r for r in rows if r["class"] == group]
        print(f"| {group} | {len(mine)} | {sum(r['verdict'] == 'sanitized' for r in mine)} / "
              f"{sum(r['verdict'] == 'refused' for r in mine)} | {max(r['seconds'] for r in mine):.2f} s | "
              f"{max(r['engine_rss_mb'] for r in mine)} MB | {max(r['jail_peak_mb'] for r in mine)} MB |")
    print()
    for r in rows:
        print(f"- {r['class']} / {r['file']} ({r['size_kb']:,} KB): {r['verdict']} {r['reason']} "
              f"in {r['seconds']:.2f} s")


def _cpu() -> float:
    """CPU seconds of this process and of its reaped children (the jailed pdftoppm, probe and words
    worker runs; not the warm LibreOffice, whose work is the same with and without the text layer)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _runs_before(pages: int, cores: int) -> list[tuple[int, int]]:
    """How pdf.py split pages into renderer runs before issue #20: 8 pages a run, the last one short."""
    return [(first, min(first + 7, pages)) for first in range(1, pages + 1, 8)]


async def text_layer_rows(engine: Sanitizer, runs: int) -> list[dict]:
    """Issue #20: each file with the text layer on and off (and OCR on and off for the scan, and the
    photo PDF with the renderer runs split as before and as now), the variants alternating within each
    round so that other load on the machine falls on both alike; ratios of wall and of CPU time."""
    scan = corpus.scanned_pdf([(["住民票の写しの交付申請について", "窓口の受付時間は平日の午前八時三十分から"], []),
                               ([], ["縦書きの案内文です。住民票の写しの交付申請について",
                                     "令和六年度の予算案について説明します"])])
    base = attrs.evolve(engine.policies)
    off = attrs.evolve(base, text_layer=False)
    photo = photo_pdf(photo_jpeg(), 5)
    cases: list[tuple[str, str, bytes, list]] = [
        ("10-page PDF (text)", "資料.pdf", corpus.text_pdf(10), [("on", base, None), ("off", off, None)]),
        ("20-page docx (Japanese)", "申請案内.docx", corpus.japanese_docx(20),
         [("on", base, None), ("off", off, None)]),
        ("5-page PDF (12 MP photos)", "現場写真.pdf", photo,
         [("on", base, None), ("off", off, None), ("off, runs as before", off, _runs_before)]),
        ("2-page scan (OCR)", "スキャン.pdf", scan,
         [("ocr", base, None), ("no ocr", attrs.evolve(base, ocr=False), None)]),
    ]
    rows = []
    print(f"\n## Text layer (issue #20): load average {load_average():.1f} at start", flush=True)
    split = pdf._runs
    try:
        for label, name, data, variants in cases:
            wall: dict[str, list[float]] = {v[0]: [] for v in variants}
            cpu: dict[str, list[float]] = {v[0]: [] for v in variants}
            pages = 0
            for round_ in range(runs + 1):  # round 0 warms up and is not counted
                order = variants if round_ % 2 else variants[::-1]
                for variant, policies, runs_of in order:
                    engine.policies = policies
                    pdf._runs = runs_of or split
                    started_cpu, started = _cpu(), time.perf_counter()
                    result = await engine.sanitize(data, name)
                    if round_:
                        wall[variant].append(time.perf_counter() - started)
                        cpu[variant].append(_cpu() - started_cpu)
                    pages = result.pages or 0
                    assert result.verdict == "sanitized", result.report("en")
            first = variants[0][0]
            row: dict = {"file": label, "pages": pages, "load": load_average(),
                   "variants": {v: {"median_s": round(statistics.median(wall[v]), 3),
                                    "per_page_s": round(statistics.median(wall[v]) / pages, 3),
                                    "cpu_s": round(statistics.median(cpu[v]), 3)} for v in wall},
                   "ratios": {v: {"wall": round(statistics.median(a / b for a, b in zip(wall[first], wall[v],
                                                                                        strict=True)), 3),
                                  "cpu": round(statistics.median(a / b for a, b in zip(cpu[first], cpu[v],
                                                                                       strict=True)), 3)}
                              for v in wall if v != first}}
            rows.append(row)
            print(f"  {label}: {row['variants']} {first} / other: {row['ratios']} (load {row['load']:.1f})",
                  flush=True)
    finally:
        engine.policies, pdf._runs = base, split
    print("\n| file | pages | variant | median | per page | CPU (engine + jailed runs) | first variant / this: "
          "wall, CPU (median of paired rounds) | load |")
    print("|---|---:|---|---:|---:|---:|---|---:|")
    for row in rows:
        for variant, figures in row["variants"].items():
            ratio = row["ratios"].get(variant)
            shown = f"{ratio['wall']:.2f}, {ratio['cpu']:.2f}" if ratio else "-"
            print(f"| {row['file']} | {row['pages']} | {variant} | {figures['median_s']:.2f} s | "
                  f"{figures['per_page_s']:.3f} s | {figures['cpu_s']:.2f} s | {shown} | {row['load']:.1f} |")
    return rows


def pattern_rows() -> list[tuple[str, float]]:
    """One call (search, fullmatch and finditer) of each pattern on the worst of its generated inputs
    made of one repeated character (picked at 20,000 characters, timed at 100,000)."""
    import test_sanitizer_patterns as patterns
    rows = []
    for name, pattern in sorted(patterns.PATTERNS.items()):
        cases = [case for case in patterns.inputs(pattern) if len(case[1]) == 1 and case[2] in ("", "x")
                 and len(case[0]) <= 1]
        prefix, unit, terminator = max(cases, key=lambda case: patterns._work(
            pattern, case[0] + case[1] * 20_000 + case[2], 1))
        text = prefix + unit * 100_000 + terminator
        rows.append((name.replace("|", "\\|"), min(patterns._work(pattern, text, 1) for _ in range(3)) / 1e9))
    return rows


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3, help="sanitizations of each file (first and median shown)")
    parser.add_argument("--only", choices=["text-layer"], help="only the text layer rows (issue #20)")
    run(main, parser)
