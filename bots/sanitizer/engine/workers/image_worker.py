"""Image re-encoder, run warm inside the sandbox: untrusted image bytes in, a new image made from the
pixels alone out (JPEG stays JPEG, everything else becomes PNG), plus what was found and left behind.

Request header: ``{"max_pixels": N}``. Answer: ``{"format", "width", "height", "found": [...],
"trailing": bytes after the image's end, "appended_zip": bool, "frames": n}`` and the new image; or
``{"refused": "image_too_large"}``. A file Pillow cannot read raises ValueError
(bad file, worker fine); anything stranger ends the worker and a fresh one serves the next file.
"""

import io
import os
import struct
import sys
import warnings
import zipfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import protocol

protocol.add_site()

from PIL import Image, ImageOps  # noqa: E402

#: decoders a file may reach: anything else (EPS through Ghostscript, ICO, PSD, ...) is never tried
FORMATS = ("JPEG", "PNG", "GIF", "WEBP", "BMP", "TIFF")
#: the limit below which Pillow only warns: as dangerous as the error above it
warnings.simplefilter("error", Image.DecompressionBombWarning)

MAX_PAYLOAD = 2048 * 1024 * 1024
#: scans of a progressive JPEG decoded at most: each is one more pass over every pixel (30,000 scans of a
#: 7000x7000 image take minutes); encoders write about 10, the most elaborate scan scripts a few dozen
MAX_JPEG_SCANS = 100
GPS_IFD = 0x8825
#: Exif IFD, ImageDescription, Make, Model, Software, DateTime, Artist, HostComputer, Copyright
TIFF_PERSONAL_TAGS = (0x8769, 0x010E, 0x010F, 0x0110, 0x0131, 0x0132, 0x013B, 0x013C, 0x8298)


def _jpeg_scans(data, limit):
    """How many scans (SOS markers) the first JPEG image has, counting stops past ``limit``: a walk over
    the segments and the entropy-coded data between them, linear in the file's size."""
    pos, scans = 2, 0
    while pos + 4 <= len(data) and scans <= limit:
        if data[pos] != 0xFF:
            break
        marker = data[pos + 1]
        if marker == 0xFF:
            pos += 1
            continue
        if marker == 0xD9:
            break
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:
            pos += 2
            continue
        pos += 2 + struct.unpack(">H", data[pos + 2:pos + 4])[0]
        if marker == 0xDA:
            scans += 1
            pos = data.find(b"\xff", pos)
            while 0 <= pos < len(data) - 1 and (data[pos + 1] == 0 or 0xD0 <= data[pos + 1] <= 0xD7):
                pos = data.find(b"\xff", pos + 2)
            if pos < 0:
                break
    return scans


def _png_end(data):
    pos = 8
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        pos += 12 + length
        if kind == b"IEND":
            return pos
    return len(data)


def _jpeg_end(data):
    """Offset after the EOI marker, walking segments and the entropy-coded scans between them."""
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            return len(data)
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker == 0xD9:
            return pos + 2
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:
            pos += 2
            continue
        pos += 2 + struct.unpack(">H", data[pos + 2:pos + 4])[0]
        if marker == 0xDA:  # scan data runs to the next marker that is not a stuffed 0 or a restart
            pos = data.find(b"\xff", pos)
            while 0 <= pos < len(data) - 1 and (data[pos + 1] == 0 or 0xD0 <= data[pos + 1] <= 0xD7):
                pos = data.find(b"\xff", pos + 2)
            if pos < 0:
                return len(data)
    return len(data)


def _gif_end(data):
    pos = 13
    if data[10] & 0x80:
        pos += 3 << ((data[10] & 7) + 1)
    while pos < len(data):
        block = data[pos]
        if block == 0x3B:
            return pos + 1
        if block == 0x21:
            pos += 2
        elif block == 0x2C:
            flags = data[pos + 9] if pos + 9 < len(data) else 0
            pos += 10 + ((3 << ((flags & 7) + 1)) if flags & 0x80 else 0) + 1
        else:
            return len(data)
        while pos < len(data) and data[pos]:  # data sub-blocks
            pos += 1 + data[pos]
        pos += 1
    return len(data)


def _riff_end(data):
    size = struct.unpack("<I", data[4:8])[0]
    return 8 + size + (size & 1)


def _bmp_end(data):
    return struct.unpack("<I", data[2:6])[0]


#: where each format says its image ends (TIFF has no end: offsets point anywhere)
IMAGE_END = {"PNG": _png_end, "JPEG": _jpeg_end, "MPO": _jpeg_end, "GIF": _gif_end, "WEBP": _riff_end,
             "BMP": _bmp_end}


def _trailing(fmt, data):
    try:
        end = IMAGE_END[fmt](data)
    except (KeyError, IndexError, struct.error):
        return 0
    return max(0, len(data) - end)


def _metadata(im):
    """Names of what the original carries besides pixels (all of it is left behind)."""
    found = []
    exif = im.getexif()
    # a TIFF's own tags read as EXIF: only camera, author and capture tags count there
    if exif and (im.format != "TIFF" or any(tag in exif for tag in TIFF_PERSONAL_TAGS)):
        found.append("exif")
    if exif.get_ifd(GPS_IFD) or GPS_IFD in exif:
        found.append("gps")
    info = im.info
    if "xmp" in info or "XML:com.adobe.xmp" in info:
        found.append("xmp")
    if info.get("icc_profile"):
        found.append("icc")
    if "photoshop" in info or "iptc" in info:
        found.append("iptc")
    text_keys = {"exif", "xmp", "XML:com.adobe.xmp", "icc_profile"}
    if "comment" in info or any(k not in text_keys for k in getattr(im, "text", {}) or {}):
        found.append("text")
    return found


def _pixels_only(im):
    """A new image holding the (upright) pixels and nothing else."""
    ImageOps.exif_transpose(im, in_place=True)
    if im.mode.startswith("I;16") or (im.mode == "I" and im.getextrema()[1] > 255):
        im = im.convert("I").point(lambda v: v * (1 / 257))  # 16-bit grey: scaled, not clipped to white
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        mode = "RGBA"
    elif im.mode in ("1", "L", "I", "F"):
        mode = "L"
    else:
        mode = "RGB"
    clean = Image.new(mode, im.size)  # info, exif, palette, text: all empty
    clean.paste(im if im.mode == mode else im.convert(mode))
    return clean


def handle(header, payload):
    max_pixels = int(header["max_pixels"])
    Image.MAX_IMAGE_PIXELS = max_pixels
    if payload[:2] == b"\xff\xd8" and _jpeg_scans(payload, MAX_JPEG_SCANS) > MAX_JPEG_SCANS:
        return {"refused": "jpeg_too_many_scans", "limit": MAX_JPEG_SCANS}, b""  # before any decoding
    try:
        im = Image.open(io.BytesIO(payload), formats=FORMATS)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        return {"refused": "image_too_large"}, b""
    except (OSError, SyntaxError, struct.error) as e:
        raise ValueError(f"unreadable image: {e}") from None
    width, height = im.size
    if width * height > max_pixels:  # frames of GIF/WebP/TIFF may not pass through Pillow's own check
        return {"refused": "image_too_large"}, b""
    source = im.format  # a camera's MPO is a JPEG followed by more JPEGs: Pillow names it MPO
    try:
        frames = getattr(im, "n_frames", 1)
        im.load()  # first frame only
        found = _metadata(im)
        clean = _pixels_only(im)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        return {"refused": "image_too_large"}, b""
    except (OSError, SyntaxError, ValueError, struct.error, EOFError) as e:
        raise ValueError(f"undecodable image: {e}") from None
    out = io.BytesIO()
    if source in ("JPEG", "MPO") and clean.mode != "RGBA":
        clean.save(out, "JPEG", quality=90)
        fmt = "JPEG"
    else:
        clean.save(out, "PNG", compress_level=6)
        fmt = "PNG"
    answer = {"format": fmt, "source": source, "width": clean.width, "height": clean.height,
              "found": found, "trailing": _trailing(source, payload),
              "appended_zip": zipfile.is_zipfile(io.BytesIO(payload)), "frames": frames}
    return answer, out.getvalue()


if __name__ == "__main__":
    protocol.serve(handle, MAX_PAYLOAD)
