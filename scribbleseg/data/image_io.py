"""Robust reading and atomic writing of images and label maps.

* :func:`read_rgb_image` always returns ``[H, W, 3]`` uint8 RGB: grayscale, palette, RGBA (alpha
  dropped), CMYK and 16-bit images are converted, EXIF orientation is applied.
* :func:`read_label_map` returns ``[H, W]`` uint8 class ids. Palette ("P") PNGs are read by their
  index (VOC's ``SegmentationClass`` convention), grayscale ("L") and 16-bit PNGs by their value.
  An RGB-coloured label is refused with a message that points to ``scribbleseg data convert-palette``.
* Every failure raises :class:`~scribbleseg.errors.DataError` naming the file.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from scribbleseg.atomic_files import atomic_write_bytes, atomic_write_text
from scribbleseg.errors import DataError

IMAGE_EXTENSIONS: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")

_PIL_READ_ERRORS = (OSError, ValueError, SyntaxError, Image.DecompressionBombError)


def open_decoded_image(path: Path, what: str) -> Image.Image:
    """Open and fully decode ``path`` (EXIF orientation applied); DataError when missing or corrupt."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{what} not found: {path}")
    try:
        with Image.open(path) as handle:
            handle.load()
            return ImageOps.exif_transpose(handle)
    except _PIL_READ_ERRORS as err:
        raise DataError(f"cannot read {what} {path}: corrupt or not an image ({err})") from err


def _high_bit_depth_to_uint8(array: np.ndarray) -> np.ndarray:
    """``[H, W(, C)]`` 16/32-bit integer or float image -> uint8, scaled when its values exceed 255."""
    if array.dtype == np.uint8:
        return array
    if np.issubdtype(array.dtype, np.floating):
        peak = float(np.nanmax(array)) if array.size else 0.0
        scaled = array * 255.0 if peak <= 1.0 else array
        return np.clip(np.nan_to_num(scaled), 0, 255).round().astype(np.uint8)
    peak = int(array.max()) if array.size else 0
    if peak > 255:
        return np.clip(np.round(array.astype(np.float64) / 257.0), 0, 255).astype(np.uint8)
    return np.clip(array, 0, 255).astype(np.uint8)


def read_rgb_image(path: str | Path) -> np.ndarray:
    """Read any supported image as ``[H, W, 3]`` uint8 RGB (EXIF-rotated, 8-bit, alpha dropped)."""
    image = open_decoded_image(Path(path), "image")
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        gray = _high_bit_depth_to_uint8(np.asarray(image))
        return np.ascontiguousarray(np.repeat(gray[:, :, None], 3, axis=2))
    if image.mode != "RGB":
        image = image.convert("RGBA").convert("RGB") if "A" in image.mode or "transparency" in image.info \
            else image.convert("RGB")
    return np.ascontiguousarray(np.asarray(image, dtype=np.uint8))


class RGBLabelError(DataError):
    """A label image is RGB-coloured where single-channel class ids are expected."""


def read_label_array(path: str | Path, what: str = "label map") -> np.ndarray:
    """Read a label PNG as ``[H, W]`` integer ids (no range check); see :func:`read_label_map`."""
    path = Path(path)
    image = open_decoded_image(path, what)
    if image.mode in ("P", "L", "1"):
        return np.asarray(image).astype(np.uint8)
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N"):
        return np.asarray(image).astype(np.int64)
    if image.mode in ("RGB", "RGBA", "LA", "PA"):
        array = np.asarray(image.convert("RGB"))
        if np.array_equal(array[..., 0], array[..., 1]) and np.array_equal(array[..., 0], array[..., 2]):
            return np.ascontiguousarray(array[..., 0])
        raise RGBLabelError(
            f"{what} {path} is an RGB-coloured image; expected a single-channel PNG of class ids "
            "(0..K-1, 255 = unlabeled). Convert colour-coded labels to ids with "
            "`scribbleseg data convert-palette IN_DIR OUT_DIR` (uses the data set's palette).")
    raise DataError(f"{what} {path} has unsupported image mode {image.mode!r}; expected an 8-bit PNG of class ids")


def label_value_problem(label: np.ndarray, num_classes: int, ignore_index: int) -> str | None:
    """Why ``label`` ``[H, W]`` holds values outside ``[0, K)`` and ``ignore_index``; ``None`` when it is fine."""
    counts = np.bincount(label.reshape(-1).astype(np.int64).clip(min=0), minlength=max(num_classes, ignore_index + 1))
    if label.size and int(label.min()) < 0:
        return "negative label values"
    valid = np.zeros(counts.shape[0], dtype=bool)
    valid[:num_classes] = True
    if ignore_index < counts.shape[0]:
        valid[ignore_index] = True
    bad_values = np.flatnonzero((counts > 0) & ~valid)
    if bad_values.size == 0:
        return None
    shown = ", ".join(f"{int(v)} ({int(counts[v])} px)" for v in bad_values[:6])
    more = f" and {bad_values.size - 6} more" if bad_values.size > 6 else ""
    return (f"values outside 0..{num_classes - 1} and ignore {ignore_index}: {shown}{more}")


def read_label_map(path: str | Path, num_classes: int, ignore_index: int = 255,
                   what: str = "label map") -> np.ndarray:
    """Read a label PNG as ``[H, W]`` uint8 class ids; DataError naming the file on any problem."""
    label = read_label_array(path, what)
    problem = label_value_problem(label, num_classes, ignore_index)
    if problem is not None:
        raise DataError(f"{what} {path} has {problem}")
    return label.astype(np.uint8, copy=False)


def write_png_atomic(path: str | Path, array: np.ndarray,
                     palette: list[int] | None = None) -> None:
    """Write ``[H, W]`` uint8 (as "P" when ``palette`` is given, else "L") or ``[H, W, 3]`` uint8 RGB as PNG.

    The PNG is written to a temporary file in the same folder and moved into place with ``os.replace``.
    """
    path = Path(path)
    if array.dtype != np.uint8:
        raise ValueError(f"write_png_atomic expects uint8, got {array.dtype}")
    image = Image.fromarray(array)
    if palette is not None and array.ndim == 2:
        image.putpalette(palette)  # turns the "L" image into "P" with the same indices
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    atomic_write_bytes(path, buffer.getvalue())


def write_text_atomic(path: str | Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` through a temporary file and ``os.replace``."""
    atomic_write_text(path, text)


def list_image_files(folder: str | Path) -> list[Path]:
    """Images (jpg, jpeg, png, bmp, tif, tiff; any case) directly inside ``folder``, sorted by name."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"image folder not found: {folder}")
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS
                  and not p.name.startswith("."))


def list_label_pngs(folder: str | Path, what: str = "label") -> list[Path]:
    """PNG label files directly inside ``folder``, sorted; DataError if the folder is missing or has none."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{what} folder {folder} not found")
    paths = sorted(p for p in folder.iterdir() if p.suffix.lower() == ".png" and not p.name.startswith("."))
    if not paths:
        raise DataError(f"no PNG {what} files in {folder}")
    return paths
