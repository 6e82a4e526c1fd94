"""Sliding-window geometry: when to tile an image, where the tiles go and how they are weighted.

``whole`` mode runs the network once on the full image (:mod:`scribbleseg.engine.inference.probabilities`); ``slide``
mode runs it on ``tile x tile`` windows and blends their softmax probabilities
(:mod:`scribbleseg.engine.inference.slide`). ``auto`` (the default) picks ``whole`` while the image has at
most :attr:`SlideSettings.pixel_budget` pixels and ``slide`` above.

Tiles start every ``stride`` pixels along each axis; the last one is moved back to end exactly at the
image border, so every tile has the full size (an axis shorter than the tile gets one tile of the
image's length). A pixel covered by several tiles gets ``sum_t w_t p_t / sum_t w_t`` with ``p_t`` the
tile's probabilities and ``w_t`` its window: ``uniform`` (1 everywhere: plain averaging of the
overlapping tiles, as mmsegmentation's slide inference does with logits) or ``gaussian`` (the default:
``exp(-d^2 / (2 sigma^2))`` per axis with ``sigma = tile / 8``, ``d`` the distance to the tile's centre,
so pixels near a tile border, where the network saw little context, count less; it is the window of
nnU-Net's sliding-window prediction).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

import torch
from pydantic import Field, model_validator
from torch import Tensor

from scribbleseg.models.settings_base import StrictSettings

__all__ = ["DEFAULT_PIXEL_BUDGET", "DEFAULT_TILE", "SlideSettings", "TileGrid", "blend_window",
           "slide_settings", "tile_grid", "tile_starts", "uses_slide"]

# 1024 x 1024 px: every PASCAL VOC image (<= 500 x 500) is still predicted whole, as in the paper; a whole
# pass of a MiT-B0-size model at this size peaks about as high as a tiled pass of any size (~1.3 GiB on
# the CPU), and above it whole-image memory keeps growing with H * W (docs/evaluation.md, benchmark)
DEFAULT_PIXEL_BUDGET = 1024 * 1024
DEFAULT_TILE = 512
GAUSSIAN_SIGMA_FRACTION = 1.0 / 8.0


class SlideSettings(StrictSettings):
    """Whole-image or sliding-window inference (``eval`` / ``predict``; see the module docstring).

    Attributes:
        mode: ``auto`` (whole up to ``pixel_budget`` pixels, slide above), ``whole`` or ``slide``.
        tile: tile side in pixels (a multiple of 32 avoids padding inside the image).
        stride: step between tiles (default ``3/4`` of the tile: a quarter overlap); ``<= tile``.
        blend: ``gaussian`` or ``uniform`` window for overlapping tiles.
        pixel_budget: the largest ``H * W`` that ``auto`` predicts whole.
    """

    section: ClassVar[str] = "eval.slide"

    mode: Literal["auto", "whole", "slide"] = "auto"
    tile: int = Field(DEFAULT_TILE, ge=32)
    stride: int | None = Field(None, ge=1)
    blend: Literal["gaussian", "uniform"] = "gaussian"
    pixel_budget: int = Field(DEFAULT_PIXEL_BUDGET, ge=1)

    @model_validator(mode="after")
    def _stride_fits_the_tile(self) -> "SlideSettings":
        if self.stride is not None and self.stride > self.tile:
            raise ValueError(f"stride {self.stride} is larger than the tile {self.tile}: pixels would be skipped")
        return self

    @property
    def step(self) -> int:
        """The stride actually used (``3/4`` of the tile when not set)."""
        return self.stride if self.stride is not None else max(1, self.tile * 3 // 4)


def slide_settings(base: SlideSettings | None = None, **options: object) -> SlideSettings:
    """``base`` (default settings when ``None``) with the options that are not ``None`` replaced.

    For command lines and config sections: ``slide_settings(cfg_section, mode=cli_mode, tile=None)``.
    Raises ConfigError naming ``eval.slide.<field>`` for a bad value.
    """
    values = (base or SlideSettings()).model_dump()
    values.update({key: value for key, value in options.items() if value is not None})
    return SlideSettings.build(**values)


def uses_slide(settings: SlideSettings | None, height: int, width: int) -> bool:
    """Whether an ``height x width`` image is predicted tile by tile under ``settings`` (``None``: whole)."""
    if settings is None or settings.mode == "whole":
        return False
    return settings.mode == "slide" or height * width > settings.pixel_budget


def tile_starts(length: int, tile: int, stride: int) -> tuple[int, ...]:
    """Start offsets of the tiles along one axis of ``length`` pixels (the last tile ends at the border)."""
    if length <= tile:
        return (0,)
    return tuple(range(0, length - tile, stride)) + (length - tile,)


@dataclass(frozen=True)
class TileGrid:
    """Tiles of an ``height x width`` image: every ``(y, x)`` of ``ys x xs``, each ``tile_height x tile_width``."""

    height: int
    width: int
    tile_height: int
    tile_width: int
    ys: tuple[int, ...]
    xs: tuple[int, ...]

    def __len__(self) -> int:
        return len(self.ys) * len(self.xs)


def tile_grid(height: int, width: int, settings: SlideSettings) -> TileGrid:
    """The tiles covering an ``height x width`` image (see the module docstring)."""
    tile_h, tile_w = min(settings.tile, height), min(settings.tile, width)
    return TileGrid(height, width, tile_h, tile_w, tile_starts(height, tile_h, settings.step),
                    tile_starts(width, tile_w, settings.step))


def _axis_window(length: int, kind: str) -> Tensor:
    if kind == "uniform":
        return torch.ones(length)
    sigma = max(length * GAUSSIAN_SIGMA_FRACTION, 1e-3)
    distance = torch.arange(length, dtype=torch.float64) - (length - 1) / 2
    return torch.exp(-distance.square() / (2 * sigma * sigma)).float()


def blend_window(height: int, width: int, kind: str, device: torch.device | str = "cpu") -> Tensor:
    """``[height, width]`` float32 tile weights: ``uniform`` ones or a separable ``gaussian`` (peak 1, at a
    tile's corner ``exp(-16)`` ~ 1e-7: small but positive, so every pixel keeps a defined blend)."""
    if kind not in ("uniform", "gaussian"):
        raise ValueError(f"unknown blend window {kind!r}")
    return torch.outer(_axis_window(height, kind), _axis_window(width, kind)).to(device)
