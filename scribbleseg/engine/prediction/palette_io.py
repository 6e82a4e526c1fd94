"""Writing label maps as palette PNGs, colour overlays and probability maps (all atomically).

* Label PNG: mode ``"P"``, pixel value = class id, the data set palette attached (as PASCAL VOC's
  ``SegmentationClass`` files), so the file opens in colour and ``np.array(Image.open(f))`` gives ids.
* Overlay PNG: RGB, ``(1 - alpha) * image + alpha * colour(label)``.
* Probability map: ``.npy`` float16 ``[K, H, W]`` (softmax probabilities, channel = class id).

PNGs go through :func:`scribbleseg.data.write_png_atomic`, probability maps through
:func:`scribbleseg.atomic_files.atomic_write_bytes` (temporary file in the same folder + ``os.replace``),
so a crash never leaves half a file behind.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from scribbleseg.data import IMAGENET_MEAN, IMAGENET_STD, write_png_atomic
from scribbleseg.atomic_files import atomic_write_bytes
from scribbleseg.errors import DataError

__all__ = [
    "palette_array",
    "colorize",
    "blend_overlay",
    "save_label_png",
    "save_rgb_png",
    "save_probabilities",
    "denormalize_image",
]

def palette_array(palette: Sequence[Sequence[int]] | np.ndarray) -> np.ndarray:
    """``[256, 3]`` uint8 colour table from a palette of ``K <= 256`` RGB triples (rest black)."""
    colours = np.asarray(palette, dtype=np.int64)
    if colours.ndim != 2 or colours.shape[1] != 3:
        raise DataError(f"palette must be a list of RGB triples, got shape {tuple(colours.shape)}")
    if colours.shape[0] > 256:
        raise DataError(f"a PNG palette holds at most 256 colours, got {colours.shape[0]}")
    if colours.size and (colours.min() < 0 or colours.max() > 255):
        raise DataError("palette colours must be in [0, 255]")
    table = np.zeros((256, 3), dtype=np.uint8)
    table[: colours.shape[0]] = colours.astype(np.uint8)
    return table


def _label_array(label: torch.Tensor | np.ndarray) -> np.ndarray:
    """``[H, W]`` uint8 array from an integer label map (ids must fit in a byte)."""
    if isinstance(label, torch.Tensor):
        label = label.detach().cpu().numpy()
    label = np.asarray(label)
    if label.ndim != 2:
        raise ValueError(f"label map must be [H, W], got shape {label.shape}")
    if label.size and (label.min() < 0 or label.max() > 255):
        raise ValueError("label ids must be in [0, 255] to be stored in a palette PNG")
    return label.astype(np.uint8)


def colorize(label: torch.Tensor | np.ndarray, palette) -> np.ndarray:
    """``[H, W, 3]`` uint8 colour image of a ``[H, W]`` label map (one table lookup)."""
    return palette_array(palette)[_label_array(label)]


def blend_overlay(image_rgb: np.ndarray, label: torch.Tensor | np.ndarray, palette, alpha: float = 0.5,
                  skip_index: int | None = None) -> np.ndarray:
    """Alpha-blend the colours of ``label`` ``[H, W]`` over ``image_rgb`` ``[H, W, 3]`` uint8.

    Pixels whose label equals ``skip_index`` (e.g. 255 = unlabeled in a scribble map) keep the image.
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError("alpha must be in [0, 1]")
    labels = _label_array(label)
    if image_rgb.shape[:2] != labels.shape:
        raise ValueError(f"image {image_rgb.shape[:2]} and label {labels.shape} sizes differ")
    colours = palette_array(palette)[labels].astype(np.float32)
    base = image_rgb.astype(np.float32)
    blended = (1.0 - alpha) * base + alpha * colours
    if skip_index is not None:
        blended = np.where((labels == skip_index)[..., None], base, blended)
    return np.clip(np.rint(blended), 0, 255).astype(np.uint8)


def save_label_png(label: torch.Tensor | np.ndarray, palette, path: str | Path) -> Path:
    """Write ``label`` ``[H, W]`` as a palette PNG (mode ``"P"``, index = class id) at ``path``, atomically."""
    path = Path(path)
    write_png_atomic(path, _label_array(label), palette=palette_array(palette).reshape(-1).tolist())
    return path


def save_rgb_png(image_rgb: np.ndarray, path: str | Path) -> Path:
    """Write a ``[H, W, 3]`` uint8 image as an RGB PNG at ``path`` (atomically)."""
    path = Path(path)
    write_png_atomic(path, np.ascontiguousarray(image_rgb, dtype=np.uint8))
    return path


def save_probabilities(probabilities: torch.Tensor, path: str | Path) -> Path:
    """Write ``[K, H, W]`` probabilities as a float16 ``.npy`` file at ``path`` (atomically)."""
    path = Path(path)
    array = probabilities.detach().to("cpu", torch.float32).numpy().astype(np.float16)
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    atomic_write_bytes(path, buffer.getvalue())
    return path


def denormalize_image(image: torch.Tensor, mean=IMAGENET_MEAN, std=IMAGENET_STD) -> np.ndarray:
    """``[H, W, 3]`` uint8 RGB from an ImageNet-normalised ``[3, H, W]`` float tensor."""
    mean_t = torch.tensor(mean, dtype=torch.float32).view(3, 1, 1)
    std_t = torch.tensor(std, dtype=torch.float32).view(3, 1, 1)
    pixels = (image.detach().to("cpu", torch.float32) * std_t + mean_t).clamp(0.0, 1.0) * 255.0
    return pixels.round().to(torch.uint8).permute(1, 2, 0).numpy()
