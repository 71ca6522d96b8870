#!/usr/bin/env python3
"""Draws synapse_modules/zones/assets/pending-sanitization.png, the picture an LGWAN device
sees instead of an untrusted image's thumbnail. Needs Pillow and a CJK font (fonts-noto-cjk).
Run it again only to change the picture; the PNG is committed."""

from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

FONT = "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"
BOLD = "/usr/share/fonts/opentype/noto/NotoSansCJK-Bold.ttc"
OUT = Path(__file__).resolve().parent.parent / "synapse_modules" / "zones" / "assets" / "pending-sanitization.png"


def main() -> None:
    image = Image.new("RGB", (400, 300), (245, 246, 248))
    draw = ImageDraw.Draw(image)
    draw.rounded_rectangle((8, 8, 391, 291), radius=18, outline=(176, 184, 196), width=3)
    # An hourglass: the file is waiting.
    draw.polygon([(170, 40), (230, 40), (200, 85)], fill=(120, 132, 150))
    draw.polygon([(200, 85), (170, 130), (230, 130)], fill=(190, 198, 210))
    draw.line([(165, 38), (235, 38)], fill=(90, 100, 116), width=5)
    draw.line([(165, 132), (235, 132)], fill=(90, 100, 116), width=5)
    big = ImageFont.truetype(BOLD, 34, index=0)
    small = ImageFont.truetype(FONT, 17, index=0)
    for text, font, y, colour in (("無害化待ち", big, 165, (40, 48, 60)),
                                  ("Waiting for sanitization", small, 212, (70, 80, 94)),
                                  ("無害化済みのファイルをお待ちください", small, 240, (70, 80, 94))):
        width = draw.textlength(text, font=font)
        draw.text(((400 - width) / 2, y), text, font=font, fill=colour)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    image.save(OUT, optimize=True)
    print(OUT, OUT.stat().st_size, "bytes")


if __name__ == "__main__":
    main()
