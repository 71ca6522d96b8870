#!/usr/bin/env python3
"""Draws the sample stamps in config/stamps/ (the demo's stamp pack). Needs Pillow and a CJK
font (fonts-noto-cjk). The PNGs are committed; run again only to change them."""

from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

BOLD = "/usr/share/fonts/opentype/noto/NotoSansCJK-Bold.ttc"
OUT = Path(__file__).resolve().parent.parent / "config" / "stamps"
STAMPS = [  # file, lines, colour
    ("ryokai", ["了解"], (46, 125, 50)),
    ("kakunin", ["確認", "しました"], (21, 101, 192)),
    ("arigatou", ["ありがとう", "ございます"], (230, 81, 0)),
    ("otsukare", ["お疲れさま", "です"], (106, 27, 154)),
    ("shouchi", ["承知", "しました"], (0, 105, 92)),
    ("yoroshiku", ["よろしく", "お願いします"], (194, 24, 91)),
]


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for name, lines, colour in STAMPS:
        image = Image.new("RGBA", (256, 256), (0, 0, 0, 0))
        draw = ImageDraw.Draw(image)
        draw.rounded_rectangle((8, 8, 247, 247), radius=48, fill=(255, 255, 255, 255), outline=colour, width=10)
        size = 84 if len(lines) == 1 else 48
        font = ImageFont.truetype(BOLD, size, index=0)
        while max(draw.textlength(line, font=font) for line in lines) > 196:  # fit inside the frame
            size -= 2
            font = ImageFont.truetype(BOLD, size, index=0)
        heights = [draw.textbbox((0, 0), line, font=font)[3] for line in lines]
        y = (256 - sum(heights) - 10 * (len(lines) - 1)) / 2 - 8
        for line, height in zip(lines, heights, strict=True):
            width = draw.textlength(line, font=font)
            draw.text(((256 - width) / 2, y), line, font=font, fill=colour)
            y += height + 10
        image.save(OUT / f"{name}.png", optimize=True)
        print(OUT / f"{name}.png")


if __name__ == "__main__":
    main()
