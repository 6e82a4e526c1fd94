"""The whole / sliding-window options shared by ``predict`` and ``eval`` (see docs/evaluation.md).

Every option defaults to ``None`` = the value of :class:`~scribbleseg.engine.inference.windows.SlideSettings`
(or of a config section handed to :func:`settings_from_options` as ``base``).
"""

from __future__ import annotations

from enum import Enum
from typing import TYPE_CHECKING, Optional

import typer

if TYPE_CHECKING:
    from scribbleseg.engine.inference.windows import SlideSettings

# shown in --help without importing the engine (torch); a test checks them against sliding_window's
DEFAULT_TILE = 512
DEFAULT_PIXEL_BUDGET = 1024 * 1024

__all__ = ["BLEND_OPTION", "Blend", "MODE_OPTION", "Mode", "PIXEL_BUDGET_OPTION", "STRIDE_OPTION", "TILE_OPTION",
           "settings_from_options"]


class Mode(str, Enum):
    """``--mode`` values."""

    auto = "auto"
    whole = "whole"
    slide = "slide"


class Blend(str, Enum):
    """``--blend`` values."""

    gaussian = "gaussian"
    uniform = "uniform"


MODE_OPTION = typer.Option(
    None, "--mode",
    help=f"whole image, sliding window, or auto (default): whole up to --pixel-budget pixels "
         f"({DEFAULT_PIXEL_BUDGET} = 1024x1024), slide above.")
TILE_OPTION = typer.Option(None, "--tile", min=32, help=f"Sliding-window tile side in pixels (default {DEFAULT_TILE}).")
STRIDE_OPTION = typer.Option(None, "--stride", min=1, help="Step between tiles (default 3/4 of --tile).")
BLEND_OPTION = typer.Option(None, "--blend", help="Weighting of overlapping tiles (default gaussian).")
PIXEL_BUDGET_OPTION = typer.Option(None, "--pixel-budget", min=1,
                                   help="Largest H*W that --mode auto predicts whole.")


def settings_from_options(mode: Optional[Mode], tile: Optional[int], stride: Optional[int],
                          blend: Optional[Blend], pixel_budget: Optional[int],
                          base: SlideSettings | None = None) -> SlideSettings:
    """The options given on the command line over ``base`` (ConfigError for e.g. a stride above the tile)."""
    from scribbleseg.engine.inference.windows import slide_settings

    return slide_settings(base, mode=mode.value if mode is not None else None, tile=tile, stride=stride,
                          blend=blend.value if blend is not None else None, pixel_budget=pixel_budget)
