"""Adversarial corpus against the engine's own promises (issue #14), generated (nothing is downloaded).

Each class attacks one promise: detection that must not crash, patterns that must not backtrack,
budgets that must refuse a bomb before the work, host memory, names that must extract. ``CLASSES``
maps a class to generators of (file name, bytes); the tests and ``bench/sanitize.py`` share them.
"""

from __future__ import annotations

import functools
import io
import struct
import zipfile
import zlib

import corpus_documents as documents
import pikepdf
from corpus_files import encode, photo, small_zip

# --- images ---


def jpeg_segments(count: int = 60, *, size: tuple[int, int] = (16, 16)) -> bytes:
    """A JPEG with ``count`` APP1/COM segments after SOI (libmagic's "name use count (64) exceeded")."""
    plain = encode(photo(*size), "JPEG")
    segments = b"".join((b"\xff\xe1" if i % 2 else b"\xff\xfe") + struct.pack(">H", 2 + 11) + b"segment%04d" % i
                        for i in range(count))
    return plain[:2] + segments + plain[2:]


def jpeg_segment_markers(data: bytes) -> list[int]:
    """The markers of a JPEG's segments up to its first scan (an independent walker for the tests)."""
    markers, pos = [], 2
    while pos + 4 <= len(data) and data[pos] == 0xFF:
        marker = data[pos + 1]
        markers.append(marker)
        if marker == 0xDA:
            break
        pos += 2 + struct.unpack(">H", data[pos + 2:pos + 4])[0]
    return markers


def jpeg_scan_count(data: bytes) -> int:
    """SOS markers before EOI, walking the entropy-coded data (independent of the engine's walker)."""
    count, pos = 0, 2
    while pos + 4 <= len(data):
        marker = data[pos + 1]
        if marker == 0xD9:
            break
        length = struct.unpack(">H", data[pos + 2:pos + 4])[0]
        pos += 2 + length
        if marker == 0xDA:
            count += 1
            while True:
                pos = data.index(b"\xff", pos)
                if data[pos + 1] == 0 or 0xD0 <= data[pos + 1] <= 0xD7:
                    pos += 2
                    continue
                break
    return count


def progressive_jpeg(scans: int, size: tuple[int, int] = (64, 64)) -> bytes:
    """A progressive JPEG whose last scan is repeated until it has ``scans`` scans (decoders accept the
    repeats: each is one more pass over the image)."""
    data = encode(photo(*size), "JPEG", progressive=True, quality=80)
    last = data.rindex(b"\xff\xda")
    end = data.rindex(b"\xff\xd9")
    have = jpeg_scan_count(data)
    return data[:end] + data[last:end] * max(0, scans - have) + data[end:]


# --- PDF ---


@functools.cache
def pdf_double_deflate(size: int = 256 * 1024 * 1024) -> bytes:
    """A one-page PDF whose content stream is ``size`` spaces compressed twice (/FlateDecode twice):
    a few KB stored, ``size`` bytes for the renderer to inflate."""
    once = zlib.compressobj(9)
    chunk = b" " * (1024 * 1024)
    inner = b"".join(once.compress(chunk) for _ in range(size // len(chunk))) + once.flush()
    twice = zlib.compress(inner, 9)
    pdf = pikepdf.new()
    content = pdf.make_stream(b"")
    content.write(twice, filter=[pikepdf.Name.FlateDecode, pikepdf.Name.FlateDecode])
    pdf.pages.append(pikepdf.Page(pikepdf.Dictionary(Type=pikepdf.Name.Page, MediaBox=[0, 0, 595, 842],
                                                     Contents=content)))
    out = io.BytesIO()
    pdf.save(out, compress_streams=False)
    return out.getvalue()


def pdf_huge_image(width: int = 30000, height: int = 30000) -> bytes:
    """A page holding an image that says it is ``width`` x ``height`` (its data a few bytes)."""
    pdf = pikepdf.new()
    image = pdf.make_stream(zlib.compress(b"\0" * 1000), Type=pikepdf.Name.XObject, Subtype=pikepdf.Name.Image,
                            Width=width, Height=height, ColorSpace=pikepdf.Name.DeviceGray, BitsPerComponent=8,
                            Filter=pikepdf.Name.FlateDecode)
    pdf.pages.append(pikepdf.Page(pikepdf.Dictionary(
        Type=pikepdf.Name.Page, MediaBox=[0, 0, 595, 842], Resources=pikepdf.Dictionary(
            XObject=pikepdf.Dictionary(Im0=image)), Contents=pdf.make_stream(b"q 595 0 0 842 0 0 cm /Im0 Do Q"))))
    out = io.BytesIO()
    pdf.save(out)
    return out.getvalue()


# --- Office ---


@functools.cache
def docx_xml_bomb(size: int = 150 * 1024 * 1024, run: bytes = b"") -> bytes:
    """A docx of a few hundred KB whose document.xml inflates to ``size`` bytes of XML: long paragraphs,
    or ``run`` repeated (``<w:p/>``: millions of elements)."""
    body = documents.paragraph("x")
    inner = documents.docx(body)
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(inner)) as source, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED,
                                                                        compresslevel=9) as target:
        for info in source.infolist():
            if info.filename != "word/document.xml":
                target.writestr(info.filename, source.read(info))
                continue
            xml = source.read(info)
            head, tail = xml.split(b"<w:body>", 1)
            with target.open("word/document.xml", "w", force_zip64=True) as member:
                member.write(head + b"<w:body>")
                run = run or b"<w:p><w:r><w:t>" + b"A" * 4000 + b"</w:t></w:r></w:p>"
                for _ in range(size // len(run)):
                    member.write(run)
                member.write(tail)
    return out.getvalue()


def xlsx_long_formula(length: int = 50_000, char: str = "a") -> bytes:
    """One cell whose formula is ``length`` characters (Excel's limit is 8,192): the DDE check would
    backtrack on it."""
    return documents.xlsx([["合計", 1]], formulas={"B1": char * length})


# --- CSV and text ---


def csv_number_like_cell(length: int = 30_000) -> bytes:
    """One cell ``-1111...1x``: starts like a formula, nearly a number (the old pattern was quadratic)."""
    return b"name,value\r\nA,-" + b"1" * length + b"x\r\n"


def csv_separator(sep: str = ";") -> bytes:
    """Excel's ``sep=`` line: with it, Excel splits at ``sep`` and the formula is a cell of its own."""
    return (f"sep={sep}\r\n名前{sep}メモ\r\n山田{sep}=cmd|' /C calc'!A0\r\n佐藤{sep}\"a,b\"\r\n").encode()


def csv_long_cell(length: int = 40_000) -> bytes:
    return b"a,b\r\n" + b"x" * length + b",1\r\n"


# --- ZIP names ---


def zip_long_folder(length: int = 300) -> bytes:
    return small_zip({"f" * length + "/note.txt": b"deep\n", "ok.txt": b"fine\n"})


def zip_deep(depth: int = 3000) -> bytes:
    return small_zip({"d/" * depth + "note.txt": b"deep\n", "ok.txt": b"fine\n"})


def zip_long_path(folders: int = 20, length: int = 12) -> bytes:
    """Every folder name short, the path over Windows' 260 characters."""
    return small_zip({"/".join(["フォルダ" * (length // 4)] * folders) + "/note.txt": b"long\n", "ok.txt": b"fine\n"})


def zip_with(members: dict[str, bytes]) -> bytes:
    return small_zip(members)


#: class -> [(file name, bytes)]: what bench/sanitize.py runs (the tests use the generators directly)
def classes() -> dict[str, list[tuple[str, bytes]]]:
    return {
        "libmagic limits": [("segments.jpg", jpeg_segments(60)), ("segments200.jpg", jpeg_segments(200))],
        "backtracking": [("number.csv", csv_number_like_cell()), ("formula.xlsx", xlsx_long_formula())],
        "CPU bombs": [("scans.jpg", progressive_jpeg(30000 // 100)), ("double.pdf", pdf_double_deflate()),
                      ("huge-image.pdf", pdf_huge_image())],
        "memory bombs": [("xml-bomb.docx", docx_xml_bomb())],
        "CSV directives": [("sep.csv", csv_separator()), ("long-cell.csv", csv_long_cell())],
        "ZIP names": [("long-folder.zip", zip_long_folder()), ("deep.zip", zip_deep()),
                      ("long-path.zip", zip_long_path())],
    }
