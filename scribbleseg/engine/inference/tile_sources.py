"""Where the tiles of a sliding-window pass come from: a normalised tensor, or raw RGB normalised per tile.

Both give ``read(top, bottom, left, right) -> [3, h, w]`` float32 normalised pixels. :class:`RGBTiles`
keeps only the decoded ``[H, W, 3]`` uint8 image (192 MB for 8000 x 8000, where the normalised float32
image would be 768 MB) and normalises each tile with the data layer's eval transform, which works pixel by
pixel, so a tile equals the same window of the normalised full image bit for bit.
"""

from __future__ import annotations

from typing import Callable, Protocol

import numpy as np
from torch import Tensor

from scribbleseg.data import build_eval_transform
from scribbleseg.data.datasets import image_to_tensor

__all__ = ["RGBTiles", "TensorTiles", "TileSource"]


class TileSource(Protocol):
    """An image that hands out normalised windows of itself."""

    height: int
    width: int

    def read(self, top: int, bottom: int, left: int, right: int) -> Tensor:
        """Rows ``[top, bottom)``, columns ``[left, right)`` as ``[3, h, w]`` float32 normalised pixels."""

    def whole(self) -> Tensor:
        """The full normalised ``[3, H, W]`` image."""


class TensorTiles:
    """Windows of a normalised ``[3, H, W]`` image tensor (views, no copy)."""

    def __init__(self, image: Tensor) -> None:
        if image.dim() != 3 or image.shape[0] != 3:
            raise ValueError(f"image must be [3, H, W], got {tuple(image.shape)}")
        self.image = image
        self.height, self.width = int(image.shape[1]), int(image.shape[2])

    def read(self, top: int, bottom: int, left: int, right: int) -> Tensor:
        return self.image[:, top:bottom, left:right]

    def whole(self) -> Tensor:
        """The full normalised ``[3, H, W]`` image (whole-mode inference)."""
        return self.image


class RGBTiles:
    """Windows of an ``[H, W, 3]`` uint8 RGB image, normalised one tile at a time.

    Args:
        rgb: the decoded image.
        transform: ``transform(image=hwc_uint8)["image"]`` -> ``[h, w, 3]`` float32 (default: the data
            layer's eval transform, the same one :class:`scribbleseg.data.InferenceImages` applies).
    """

    def __init__(self, rgb: np.ndarray, transform: Callable[..., dict] | None = None) -> None:
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise ValueError(f"rgb must be [H, W, 3] uint8, got {rgb.shape} {rgb.dtype}")
        self.rgb = rgb
        self.transform = transform if transform is not None else build_eval_transform()
        self.height, self.width = int(rgb.shape[0]), int(rgb.shape[1])

    def read(self, top: int, bottom: int, left: int, right: int) -> Tensor:
        window = np.ascontiguousarray(self.rgb[top:bottom, left:right])
        return image_to_tensor(self.transform(image=window)["image"])

    def whole(self) -> Tensor:
        """The full normalised ``[3, H, W]`` image (whole-mode inference)."""
        return self.read(0, self.height, 0, self.width)
