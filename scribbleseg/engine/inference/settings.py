"""The test-time settings of one inference run: heads, class source, views, autocast, tiling, tile batch.

:class:`InferenceSettings` is built once at the edge (the command line, the config's ``eval`` section, the
Python API) by :meth:`InferenceSettings.build`, which is also the one place that turns ``ms_flip`` into
the multi-scale protocol's scales (:data:`~scribbleseg.engine.inference.views.DEFAULT_MS_SCALES`). It is
frozen and travels unchanged through evaluation, prediction, the trainer's validation and the figures;
a caller that needs a variant (other heads, another class source) makes one with
:func:`dataclasses.replace`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

from scribbleseg.engine.inference.views import DEFAULT_MS_SCALES
from scribbleseg.engine.inference.windows import SlideSettings
from scribbleseg.errors import ConfigError
from scribbleseg.methods.class_sources import ClassSource, NoClassSource

__all__ = ["InferenceSettings"]


@dataclass(frozen=True)
class InferenceSettings:
    """How a model is run at test time.

    Attributes:
        heads: the heads to run (``None``: every head of the model; evaluation skips those that cannot
            run, prediction runs the model's default head).
        class_source: where class-dependent heads get the image's class set (parsed once at the edge).
        scales: test scales (``(1.0,)``: single scale).
        flip: also run the horizontal mirror of every scale.
        amp: autocast the network (bf16 on CPU, fp16 on CUDA); the averaging stays float32.
        slide: whole-image or sliding-window inference per image (default: ``auto``).
        tile_batch: images per forward pass (padded to the largest), or tiles per pass of a tiled image.
    """

    heads: tuple[str, ...] | None = None
    class_source: ClassSource = field(default_factory=NoClassSource)
    scales: tuple[float, ...] = (1.0,)
    flip: bool = False
    amp: bool = False
    slide: SlideSettings = field(default_factory=SlideSettings)
    tile_batch: int = 1

    def __post_init__(self) -> None:
        if self.tile_batch < 1:
            raise ConfigError(f"batch size must be >= 1, got {self.tile_batch}")
        if not self.scales:
            raise ConfigError("at least one test scale is needed")

    @classmethod
    def build(cls, *, heads: Sequence[str] | None = None, class_source: ClassSource | None = None,
              ms_flip: bool = False, scales: Sequence[float] | None = None, amp: bool = False,
              slide: SlideSettings | None = None, batch_size: int = 1) -> "InferenceSettings":
        """Settings from command-line / config values: ``ms_flip`` without ``scales`` (or with ``(1.0,)``)
        means :data:`DEFAULT_MS_SCALES` and the flip; ``heads`` empty or ``None`` = every head."""
        view_scales = tuple(float(s) for s in (scales if scales is not None else (1.0,)))
        if ms_flip and view_scales == (1.0,):
            view_scales = DEFAULT_MS_SCALES
        return cls(heads=tuple(heads) if heads else None,
                   class_source=class_source if class_source is not None else NoClassSource(),
                   scales=view_scales, flip=bool(ms_flip), amp=bool(amp),
                   slide=slide if slide is not None else SlideSettings(), tile_batch=int(batch_size))

    @property
    def views(self) -> list[tuple[float, bool]]:
        """``(scale, mirrored)`` of every test view, in the order they are averaged."""
        return [(float(scale), mirrored) for scale in self.scales for mirrored in ((False, True) if self.flip
                                                                                  else (False,))]
