"""A colour legend for overlays: a strip below the image naming the classes it shows.

:func:`legend_strip` draws, on white, one entry per class present (a swatch in the class colour and its
name), packed into rows as wide as the image; the font scales with the image width. :func:`present_classes`
finds the classes of a label map with one ``bincount``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

WHITE = (255, 255, 255)
TEXT = (0, 0, 0)


def present_classes(label: np.ndarray, num_classes: int) -> list[int]:
    """Class ids ``< num_classes`` that occur in the ``[H, W]`` label map, in id order."""
    counts = np.bincount(label.reshape(-1).astype(np.int64), minlength=num_classes)[:num_classes]
    return [int(index) for index in np.flatnonzero(counts)]


def _font(width: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    size = int(min(max(width / 40, 10), 40))
    return ImageFont.load_default(size=size)


def legend_strip(width: int, class_ids: Sequence[int], class_names: Sequence[str],
                 palette: Sequence[Sequence[int]]) -> np.ndarray:
    """``[h, width, 3]`` uint8: the legend of ``class_ids`` (names from ``class_names``, colours from
    ``palette``), rows of entries wrapped at ``width``; ``h`` = 0 rows when ``class_ids`` is empty."""
    font = _font(width)
    line = int(font.size) if hasattr(font, "size") else 11
    pad, swatch = max(line // 3, 2), line
    entries = [(index, str(class_names[index]) if index < len(class_names) else str(index)) for index in class_ids]
    scratch = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    rows: list[list[tuple[int, str, int]]] = [[]]
    used = pad
    for index, name in entries:
        size = swatch + pad + int(scratch.textlength(name, font=font)) + 2 * pad
        if rows[-1] and used + size > width:
            rows.append([])
            used = pad
        rows[-1].append((index, name, used))
        used += size
    if not entries:
        return np.zeros((0, width, 3), dtype=np.uint8)
    height = len(rows) * (line + pad) + pad
    strip = Image.new("RGB", (width, height), WHITE)
    draw = ImageDraw.Draw(strip)
    for row, items in enumerate(rows):
        top = pad + row * (line + pad)
        for index, name, left in items:
            colour = tuple(int(c) for c in palette[index]) if index < len(palette) else TEXT
            draw.rectangle([left, top, left + swatch - 1, top + swatch - 1], fill=colour, outline=TEXT)
            draw.text((left + swatch + pad, top), name, fill=TEXT, font=font)
    return np.asarray(strip, dtype=np.uint8)
