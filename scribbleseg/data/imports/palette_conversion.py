"""RGB colour-coded label images -> single-channel class-id PNGs, using a data set's palette.

Colour ``palette[i]`` becomes id ``i``; the ignore colours (VOC's boundary colour ``(224, 224, 192)``
and white by default) become ``ignore_index``. Any other colour is an error naming the file and the
colours, unless ``unknown_as_ignore`` is set.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from scribbleseg.data.image_io import list_label_pngs, open_decoded_image, write_png_atomic
from scribbleseg.data.voc_classes import VOC_IGNORE_COLOR, full_palette_bytes
from scribbleseg.errors import DataError

DEFAULT_IGNORE_COLORS: tuple[tuple[int, int, int], ...] = (VOC_IGNORE_COLOR, (255, 255, 255))


def _codes(colors: np.ndarray) -> np.ndarray:
    colors = colors.astype(np.int64)
    return (colors[..., 0] << 16) | (colors[..., 1] << 8) | colors[..., 2]


def rgb_to_ids(rgb: np.ndarray, palette: Sequence[tuple[int, int, int]], ignore_index: int = 255,
               ignore_colors: Sequence[tuple[int, int, int]] = DEFAULT_IGNORE_COLORS,
               unknown_as_ignore: bool = False, source: str = "label image") -> np.ndarray:
    """``[H, W, 3]`` uint8 RGB -> ``[H, W]`` uint8 ids; DataError listing colours not in the palette."""
    table_codes = _codes(np.asarray(list(palette) + list(ignore_colors), dtype=np.int64).reshape(-1, 3))
    table_ids = np.concatenate([np.arange(len(palette)), np.full(len(ignore_colors), ignore_index)])
    unique_codes, first = np.unique(table_codes, return_index=True)  # palette wins over ignore colours
    unique_ids = table_ids[first]
    pixel_codes = _codes(rgb[..., :3])
    position = np.clip(np.searchsorted(unique_codes, pixel_codes), 0, unique_codes.shape[0] - 1)
    known = unique_codes[position] == pixel_codes
    if not known.all() and not unknown_as_ignore:
        bad = np.unique(pixel_codes[~known])
        shown = ", ".join(f"({c >> 16}, {(c >> 8) & 255}, {c & 255})" for c in bad[:6])
        raise DataError(f"{source} has {bad.size} colour(s) not in the palette: {shown}"
                        f"{' ...' if bad.size > 6 else ''} (use --unknown-as-ignore to map them to {ignore_index})")
    return np.where(known, unique_ids[position], ignore_index).astype(np.uint8)


def convert_palette_folder(in_dir: str | Path, out_dir: str | Path, palette: Sequence[tuple[int, int, int]],
                           ignore_index: int = 255, unknown_as_ignore: bool = False) -> int:
    """Convert every PNG in ``in_dir`` to an id PNG in ``out_dir`` (same name); returns the count.

    RGB(A) images go through :func:`rgb_to_ids`; palette / grayscale PNGs already hold ids and are
    copied by index.
    """
    in_dir, out_dir = Path(in_dir), Path(out_dir)
    paths = list_label_pngs(in_dir, "label")
    flat_palette = full_palette_bytes(tuple(palette), ignore_index)
    for path in paths:
        image: Image.Image = open_decoded_image(path, "label image")
        if image.mode in ("P", "L"):
            ids = np.asarray(image, dtype=np.uint8)
        else:
            ids = rgb_to_ids(np.asarray(image.convert("RGB")), palette, ignore_index,
                             unknown_as_ignore=unknown_as_ignore, source=f"label image {path}")
        write_png_atomic(out_dir / path.name, ids, palette=flat_palette)
    return len(paths)
