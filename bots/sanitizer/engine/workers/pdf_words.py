"""Words and their boxes of a PDF, inside the sandbox: what the host needs to write the invisible text
layer over the page images (textlayer.py), and nothing else.

- Pages with text: ``pdftotext -bbox-layout`` (poppler, the same renderer family as pdftoppm) gives
  each word's box; a block of single CJK characters stacked in tight columns (Japanese vertical
  writing as LibreOffice and Word lay it out: one positioned glyph each, which poppler reads across
  the columns) is regrouped into columns, right to left, each read top to bottom.
- Pages without text (scans), as the host asks once it has seen their pixels: rendered here (pdftoppm,
  gray) and read by Tesseract (``--ocr LANGS --ocr-pages 1,3``), two at a time, each Tesseract run
  killed and the page given up once ``--seconds`` are used up.

Prints JSON: ``{"pages": [{"runs": [[x0, y0, x1, y1, vertical, text], ...], "failed": bool}, ...]}``
with boxes as fractions of the page (origin top left). The host checks every value
(textlayer.runs). Usage: ``pdf_words.py FILE PAGES --text`` or
``pdf_words.py FILE PAGES --ocr LANGS --ocr-pages LIST --dpi D --seconds S``."""

import concurrent.futures
import itertools
import json
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import protocol

protocol.add_site()

from defusedxml import ElementTree  # noqa: E402

NS = "{http://www.w3.org/1999/xhtml}"
LANGS = re.compile(r"[a-z_]{3,16}(\+[a-z_]{3,16}){0,4}")
#: vertical lines of the second reading (jpn_vert) with a lower mean confidence are left out
VERTICAL_MIN_CONFIDENCE = 50
#: words read with less confidence are left out
MIN_CONFIDENCE = 10


def _cjk(c):
    return ord(c) >= 0x2E80


def _box(el):
    return [float(el.get(k)) for k in ("xMin", "yMin", "xMax", "yMax")]


def _vertical_columns(words):
    """Runs of a block laid out vertically ([box, text] of single characters), or None if it is not so."""
    if len(words) < 2 or not all(len(t) == 1 and _cjk(t) for _, t in words):
        return None
    heights = sorted(b[3] - b[1] for b, _ in words)
    h = heights[len(heights) // 2]
    columns: list = []
    for box, text in sorted(words, key=lambda w: (-w[0][0], w[0][1])):
        if columns and abs(columns[-1][-1][0][0] - box[0]) < 0.3 * h:
            columns[-1].append((box, text))
        else:
            columns.append([(box, text)])
    runs, gaps = [], []
    for column in columns:
        column.sort(key=lambda w: w[0][1])
        current = [column[0]]
        for prev, word in itertools.pairwise(column):
            gap = word[0][1] - prev[0][3]
            gaps.append(gap)
            if gap < 0.25 * h:
                current.append(word)
            else:
                runs.append(current)
                current = [word]
        runs.append(current)
    stacked = sorted(gaps)[len(gaps) // 2] if gaps else h
    if stacked >= 0.25 * h:  # lines with the usual leading between them: horizontal text
        return None
    # and the columns further apart than the characters in a column (horizontal text set on a grid with
    # tight leading has its characters as close side by side as above each other)
    spacing = sorted(min(b[0] for b, _ in right) - max(b[2] for b, _ in left)
                     for right, left in itertools.pairwise(columns))
    if spacing and spacing[len(spacing) // 2] < stacked + 0.1 * h:
        return None
    return [[min(b[0] for b, _ in r), min(b[1] for b, _ in r), max(b[2] for b, _ in r), max(b[3] for b, _ in r),
             True, "".join(t for _, t in r)] for r in runs]


def text_pages(path, pages):
    done = subprocess.run(["pdftotext", "-bbox-layout", "-cropbox", "-enc", "UTF-8", "-l", str(pages), path, "-"],
                          capture_output=True, check=False)
    if done.returncode != 0:
        return []
    found = []
    xml = re.sub(rb"[\x00-\x08\x0b\x0c\x0e-\x1f]", b" ", done.stdout)
    for page in ElementTree.fromstring(xml).iter(NS + "page"):
        width, height = float(page.get("width", 0)), float(page.get("height", 0))
        runs = []
        for block in page.iter(NS + "block"):
            words = [(_box(w), w.text or "") for w in block.iter(NS + "word") if (w.text or "").strip()]
            vertical = _vertical_columns(words)
            if vertical is None:
                vertical = [[*box, len(text) > 1 and box[3] - box[1] > 2 * (box[2] - box[0]), text]
                            for box, text in words]
            runs += vertical
        found.append({"runs": [[r[0] / width, r[1] / height, r[2] / width, r[3] / height, r[4], r[5]]
                               for r in runs if width > 0 and height > 0], "failed": False})
    return found


def _join(words):
    """Words of one OCR line as text: CJK neighbours without a space between them."""
    text = ""
    for word in words:
        if text and not (_cjk(text[-1]) and _cjk(word[4][0])):
            text += " "
        text += word[4]
    return text


def _tesseract(image, langs, deadline):
    """Tesseract's lines of one image: [(words, mean confidence)], each word (x0, y0, x1, y1, text)."""
    done = subprocess.run(["tesseract", image, "stdout", "-l", langs, "--psm", "3", "tsv"],
                          capture_output=True, check=False, env={**os.environ, "OMP_THREAD_LIMIT": "1"},
                          timeout=max(0.1, deadline - time.monotonic()))
    lines: dict = {}
    for row in done.stdout.decode("utf-8", "replace").splitlines()[1:]:
        cells = row.split("\t")
        if len(cells) != 12 or cells[0] != "5" or not cells[11].strip():
            continue
        left, top, w, h = (int(v) for v in cells[6:10])
        lines.setdefault(tuple(cells[1:5]), []).append((left, top, left + w, top + h, cells[11].strip(),
                                                         float(cells[10])))
    return [(words, sum(w[5] for w in words) / len(words)) for words in lines.values()]


def _is_vertical(words):
    x0, y0 = min(w[0] for w in words), min(w[1] for w in words)
    x1, y1 = max(w[2] for w in words), max(w[3] for w in words)
    return sum(len(w[4]) for w in words) > 1 and y1 - y0 > 1.5 * (x1 - x0)


def ocr_page(path, number, langs, dpi, deadline):
    """One page rendered in gray and read by Tesseract: its runs (fractions of the page).

    Tesseract's ``jpn`` reads horizontal lines only; vertical Japanese needs ``jpn_vert``, which misreads
    horizontal lines. When ``jpn`` is asked and Tesseract found vertical lines, the page is read again
    with ``jpn_vert`` alone (with other languages it reads worse): horizontal lines are taken from the
    first reading, vertical ones from the second."""
    out = f"/tmp/ocr-{number}"
    subprocess.run(["pdftoppm", "-cropbox", "-gray", "-r", str(dpi), "-f", str(number), "-l", str(number),
                    "-singlefile", path, out], check=True, capture_output=True,
                   timeout=max(0.1, deadline - time.monotonic()))
    image = out + ".pgm"
    with open(image, "rb") as f:
        header = f.read(32).split()
    width, height = int(header[1]), int(header[2])
    lines = _tesseract(image, langs, deadline)
    if "jpn" in langs.split("+") and any(_is_vertical(words) for words, _ in lines):
        vertical = [(words, conf) for words, conf in _tesseract(image, "jpn_vert", deadline)
                    if _is_vertical(words) and conf >= VERTICAL_MIN_CONFIDENCE]
        lines = [(words, conf) for words, conf in lines if not _is_vertical(words)] + vertical
    os.unlink(image)
    runs = []
    for line, _ in lines:
        words = [w for w in line if w[5] >= MIN_CONFIDENCE]
        if not words:
            continue
        x0, y0 = min(w[0] for w in words), min(w[1] for w in words)
        x1, y1 = max(w[2] for w in words), max(w[3] for w in words)
        if _is_vertical(words):
            words.sort(key=lambda w: w[1])
            runs.append([x0, y0, x1, y1, True, _join(words)])
            continue
        words.sort(key=lambda w: w[0])
        # a horizontal line: one run per stretch of words written without spaces between them
        segment = [words[0]]
        for word in words[1:] + [None]:
            if word is not None and _cjk(segment[-1][4][-1]) and _cjk(word[4][0]):
                segment.append(word)
                continue
            runs.append([min(w[0] for w in segment), min(w[1] for w in segment), max(w[2] for w in segment),
                         max(w[3] for w in segment), False, "".join(w[4] for w in segment)])
            segment = [word]
    return [[r[0] / width, r[1] / height, r[2] / width, r[3] / height, r[4], r[5]] for r in runs]


def main(argv):
    started = time.monotonic()
    path, pages = argv[0], int(argv[1])
    text = "--text" in argv
    options = dict(zip(argv[2::2], argv[3::2], strict=False)) if not text else {}
    found = text_pages(path, pages) if text else []
    if len(found) != pages:
        found = [{"runs": [], "failed": False} for _ in range(pages)]
    langs = options.get("--ocr", "")
    todo = [int(n) - 1 for n in options.get("--ocr-pages", "").split(",") if n.isdigit() and 0 < int(n) <= pages]
    if langs and LANGS.fullmatch(langs) and todo:
        dpi = int(options.get("--dpi", "300"))
        deadline = started + float(options.get("--seconds", "60"))
        with concurrent.futures.ThreadPoolExecutor(max(1, min(2, os.cpu_count() or 1))) as pool:
            futures = {n: pool.submit(ocr_page, path, n + 1, langs, dpi, deadline) for n in todo}
            for n, future in futures.items():
                try:
                    found[n] = {"runs": future.result(), "failed": False}
                except (subprocess.SubprocessError, OSError, ValueError, IndexError):
                    found[n] = {"runs": [], "failed": True}  # out of time, or Tesseract failed
    json.dump({"pages": found}, sys.stdout, ensure_ascii=True)


if __name__ == "__main__":
    main(sys.argv[1:])
