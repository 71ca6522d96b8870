"""Stamp images: checked with Pillow and rebuilt from pixels before anyone sees them.

An admin's image file may be anything (a renamed document, a decompression
bomb, a photo with GPS data). It is opened only with a short list of decoders,
its pixel count is checked before decoding, and the stamp served to clients is
a new PNG drawn from the pixels, at most 256 px a side, with no metadata.
"""

from __future__ import annotations

import hashlib
import io
import warnings
from pathlib import Path
from typing import NamedTuple

from PIL import Image, ImageOps

MAX_SIDE = 256
MAX_FILE_BYTES = 5 * 1024 * 1024
MAX_SOURCE_PIXELS = 4096 * 4096
FORMATS = ("PNG", "JPEG", "GIF", "WEBP")


class StampImage(NamedTuple):
    png: bytes
    width: int
    height: int
    sha256: str


class StampImageError(Exception):
    """``key`` is a message key of the catalogues, ``params`` its placeholders."""

    def __init__(self, key: str, **params: object):
        super().__init__(key)
        self.key = key
        self.params = params


def load(path: Path) -> StampImage:
    try:
        size = path.stat().st_size
    except OSError:
        raise StampImageError("stamps.image_missing", path=str(path)) from None
    if size > MAX_FILE_BYTES:
        raise StampImageError("stamps.image_too_large", path=str(path), limit=MAX_FILE_BYTES // (1024 * 1024))
    data = path.read_bytes()
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            with Image.open(io.BytesIO(data), formats=FORMATS) as image:
                width, height = image.size
                if width * height > MAX_SOURCE_PIXELS:
                    raise StampImageError("stamps.image_bomb", path=str(path), width=width, height=height)
                image.load()
                upright = ImageOps.exif_transpose(image).convert("RGBA")
        except StampImageError:
            raise
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise StampImageError("stamps.image_bomb", path=str(path), width="?", height="?") from None
        except (OSError, ValueError, SyntaxError):  # what Pillow raises for what it cannot read
            raise StampImageError("stamps.image_not_image", path=str(path)) from None
    upright.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.LANCZOS)
    clean = Image.new("RGBA", upright.size)
    clean.putdata(list(upright.getdata()))  # pixels only: no EXIF, ICC, text chunks or trailing data
    out = io.BytesIO()
    clean.save(out, "PNG", optimize=True)
    png = out.getvalue()
    return StampImage(png, clean.width, clean.height, hashlib.sha256(png).hexdigest())
