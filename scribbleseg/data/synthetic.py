"""The built-in synthetic data set: textured objects on a textured background, in the folder layout.

Each image (``size`` x ``size``, default 128) shows 3-6 blob-shaped objects of five texture classes
over a textured background, drawn in random order so that objects occlude each other and are cut
by the image border. What tells the classes apart is texture, not colour:

==========  ====================================================================
background  smooth low-frequency blotches (period ~20-40 px)
stripes     straight stripes, period 5-9 px, random orientation
checks      checkerboard, cell 3-5 px, random orientation
dots        round spots on a plain ground, spacing 6-10 px
speckle     fine isotropic grain (slightly blurred per-pixel noise)
zigzag      stripes whose phase swings sideways (herringbone-like), period 5-9 px
==========  ====================================================================

Every region is painted with a base colour and a lighter or darker partner colour that draws its
texture. Object classes lean towards their own hue (centres 72 degrees apart) with a spread that
overlaps the neighbouring classes widely, background takes any hue, and saturation / brightness are
class-independent: a per-pixel colour classifier reaches only about 43 % balanced accuracy (chance
17 %), so texture is the real cue. A random illumination gradient, a vignette, Gaussian pixel noise
and a mild blur are applied to the whole image. Dense masks are exact; the
scribbles are simulated from them with :func:`simulate_scribbles` (3 px skeleton strokes, shrunk
to half their length by default).
Generation is deterministic given ``seed`` (each image has its own generator seeded by
``(seed, split, index)``).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import yaml

from scribbleseg.data.image_io import write_png_atomic, write_text_atomic
from scribbleseg.data.scribble_simulation import simulate_scribbles
from scribbleseg.data.voc_classes import full_palette_bytes
from scribbleseg.errors import DataError

SYNTHETIC_CLASS_NAMES: tuple[str, ...] = ("background", "stripes", "checks", "dots", "speckle", "zigzag")
SYNTHETIC_PALETTE: tuple[tuple[int, int, int], ...] = (
    (0, 0, 0), (230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48))


def _rotated_coords(rng: np.random.Generator, ys: np.ndarray, xs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    angle = float(rng.uniform(0, np.pi))
    cos, sin = float(np.cos(angle)), float(np.sin(angle))
    return xs * cos + ys * sin, -xs * sin + ys * cos


def _smooth_noise(rng: np.random.Generator, size: int, cell: float) -> np.ndarray:
    """``[size, size]`` noise in [0, 1] with features of about ``cell`` pixels (bicubic upsampling)."""
    grid = max(2, int(np.ceil(size / cell)) + 1)
    coarse = rng.random((grid, grid), dtype=np.float32)
    fine = cv2.resize(coarse, (size, size), interpolation=cv2.INTER_CUBIC)
    low, high = fine.min(), fine.max()
    return (fine - low) / max(high - low, 1e-6)


def _texture(class_id: int, rng: np.random.Generator, ys: np.ndarray, xs: np.ndarray, size: int) -> np.ndarray:
    """``[size, size]`` texture value in [0, 1] for one region of class ``class_id``."""
    u, v = _rotated_coords(rng, ys, xs)
    phase = rng.uniform(0, 2 * np.pi)
    if class_id == 0:
        return _smooth_noise(rng, size, rng.uniform(20, 40))
    if class_id == 1:
        return 0.5 + 0.5 * np.sin(2 * np.pi * u / rng.uniform(5, 9) + phase)
    if class_id == 2:
        period = 2 * rng.uniform(3, 5)
        return (np.sin(2 * np.pi * u / period + phase) * np.sin(2 * np.pi * v / period) > 0).astype(np.float64)
    if class_id == 3:
        period = rng.uniform(6, 10)
        spots = np.cos(2 * np.pi * u / period + phase) + np.cos(2 * np.pi * v / period)
        return np.clip((spots - 0.6) * 2.0, 0.0, 1.0)
    if class_id == 4:
        grain = cv2.GaussianBlur(rng.random((size, size), dtype=np.float32), (0, 0), 0.7)
        return np.clip(grain * 3.0 - 1.0, 0.0, 1.0)
    swing = rng.uniform(2.0, 4.0) * np.abs(((v / rng.uniform(8, 14)) % 2.0) - 1.0)
    return 0.5 + 0.5 * np.sin(2 * np.pi * (u + swing * 2.0) / rng.uniform(5, 9) + phase)


def _hsv_to_rgb(hue: float, saturation: float, value: float) -> np.ndarray:
    """One HSV colour (all in [0, 1]) -> RGB ``[3]`` in [0, 1]."""
    channel = (np.array([5.0, 3.0, 1.0]) + hue * 6.0) % 6.0
    return value - value * saturation * np.clip(np.minimum(channel, 4.0 - channel), 0.0, 1.0)


def _random_colour_pair(rng: np.random.Generator, class_id: int) -> tuple[np.ndarray, np.ndarray]:
    """Two RGB colours in [0, 1]: a base colour and a lighter or darker partner that draws the texture.

    Object classes lean towards their own hue (centres 0.2 apart on the hue circle) but with a spread
    (sigma 0.15) that overlaps the neighbouring classes widely; background takes any hue. Saturation
    and brightness are class-independent.
    """
    if class_id == 0:
        hue = float(rng.uniform(0.0, 1.0))
    else:
        hue = float((class_id - 1) / (len(SYNTHETIC_CLASS_NAMES) - 1) + rng.normal(0.0, 0.15)) % 1.0
    saturation, value = float(rng.uniform(0.25, 0.85)), float(rng.uniform(0.35, 0.75))
    base = _hsv_to_rgb(hue, saturation, value)
    shift = float(rng.uniform(0.25, 0.45)) * float(rng.choice([-1.0, 1.0]))
    other = _hsv_to_rgb(hue, saturation * float(rng.uniform(0.5, 1.0)), float(np.clip(value + shift, 0.05, 1.0)))
    return base, other


def _blob_mask(rng: np.random.Generator, ys: np.ndarray, xs: np.ndarray, size: int) -> np.ndarray:
    """``[size, size]`` bool blob: a radius perturbed by a few angular harmonics around a random centre."""
    cy, cx = (float(c) for c in rng.uniform(-0.05, 1.05, size=2) * size)
    radius = float(rng.uniform(0.14, 0.34)) * size
    stretch = float(rng.uniform(0.6, 1.4))
    dy, dx = (ys - cy) * stretch, xs - cx
    angle = np.arctan2(dy, dx)
    boundary = np.ones_like(angle)
    for harmonic in (2, 3, 4):
        boundary += float(rng.uniform(0.0, 0.18)) * np.cos(harmonic * angle + float(rng.uniform(0, 2 * np.pi)))
    return dy * dy + dx * dx < (radius * boundary) ** 2


def render_synthetic_sample(rng: np.random.Generator, size: int = 128) -> tuple[np.ndarray, np.ndarray]:
    """One sample: image ``[size, size, 3]`` uint8 RGB and dense mask ``[size, size]`` uint8 ids 0..5."""
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32)
    num_objects = int(rng.integers(3, 7))
    classes = [0] + list(rng.integers(1, len(SYNTHETIC_CLASS_NAMES), size=num_objects))
    image = np.zeros((size, size, 3), dtype=np.float32)
    mask = np.zeros((size, size), dtype=np.uint8)
    for layer, class_id in enumerate(classes):
        region = np.ones((size, size), dtype=bool) if layer == 0 else _blob_mask(rng, ys, xs, size)
        texture = _texture(int(class_id), rng, ys, xs, size)
        first, second = (c.astype(np.float32) for c in _random_colour_pair(rng, int(class_id)))
        painted = first + (second - first) * texture.astype(np.float32)[..., None]
        np.copyto(image, painted, where=region[..., None])
        mask[region] = class_id
    u, _ = _rotated_coords(rng, ys, xs)
    gradient = 1.0 + rng.uniform(0.2, 0.6) * (u - u.mean()) / max(np.ptp(u), 1e-6)
    vignette = 1.0 - rng.uniform(0.0, 0.35) * (np.hypot(ys - size / 2, xs - size / 2) / size) ** 2 * 2
    image = image * (gradient * vignette)[..., None] * rng.uniform(0.7, 1.2)
    sigma = rng.uniform(0.0, 0.5)
    if sigma > 0.2:
        image = cv2.GaussianBlur(image.astype(np.float32), (0, 0), sigma)
    image = image + rng.standard_normal(size=image.shape, dtype=np.float32) * rng.uniform(0.01, 0.05)
    return (np.clip(image, 0.0, 1.0) * 255).round().astype(np.uint8), mask


def make_synthetic_dataset(out_dir: str | Path, seed: int = 0, num_train: int = 200, num_val: int = 50,
                           size: int = 128, scribble_thickness: int = 3, scribble_shrink: float = 0.5) -> Path:
    """Write the synthetic set in the folder layout (``dataset.yaml``, images/scribbles/masks x train/val).

    Scribbles are skeleton strokes shrunk to ``1 - scribble_shrink`` of their length (default: half,
    about 5 % of the pixels, like hand-drawn VOC scribbles) and ``scribble_thickness`` pixels wide.
    Returns ``out_dir``. Image ``i`` of split ``s`` is named ``s_{i:05d}``; writes are atomic and
    ``dataset.yaml`` is written last (its presence marks a complete set).
    """
    if size < 32:
        raise DataError(f"synthetic image size must be >= 32, got {size}")
    if num_train < 1 or num_val < 0:
        raise DataError(f"need num_train >= 1 and num_val >= 0, got {num_train}, {num_val}")
    out_dir = Path(out_dir)
    palette = full_palette_bytes(SYNTHETIC_PALETTE)
    for split_index, (split, count) in enumerate((("train", num_train), ("val", num_val))):
        for index in range(count):
            rng = np.random.default_rng([seed, split_index, index])
            image, mask = render_synthetic_sample(rng, size)
            scribble = simulate_scribbles(mask, thickness=scribble_thickness, shrink=scribble_shrink,
                                          seed=int(rng.integers(2**31)))
            name = f"{split}_{index:05d}"
            write_png_atomic(out_dir / "images" / split / f"{name}.png", image)
            write_png_atomic(out_dir / "masks" / split / f"{name}.png", mask, palette=palette)
            write_png_atomic(out_dir / "scribbles" / split / f"{name}.png", scribble, palette=palette)
    spec = {
        "name": "scribbleseg-synthetic",
        "description": (f"procedural texture segmentation set, seed {seed}, {num_train} train / {num_val} val "
                        f"images of {size}x{size}; classes differ by texture, colours overlap"),
        "class_names": list(SYNTHETIC_CLASS_NAMES),
        "palette": [list(c) for c in SYNTHETIC_PALETTE],
        "ignore_index": 255,
    }
    write_text_atomic(out_dir / "dataset.yaml", yaml.safe_dump(spec, sort_keys=False))
    return out_dir
