"""What a method's inference speaks: :class:`HeadInfo`, :class:`Evidence`, :data:`ClassChooser`,
:class:`Prediction` (the inference half of the method contract, :mod:`scribbleseg.methods.contract`).

Plain records: they import no method and no model, so class sources, the engine and the ONNX Runtime
model can use them without the base class.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from torch import Tensor

BASIC_HEAD = "basic"


@dataclass(frozen=True)
class HeadInfo:
    """One prediction head of a method.

    Attributes:
        name: the head's name (``"basic"`` is the un-augmented prediction every method has).
        description: one line for tables and help texts.
        uses_classes: the head needs the image-level class set (see :mod:`scribbleseg.methods.contract`).
        unavailable: why the head cannot run with this model now, or ``None``.
    """

    name: str
    description: str
    uses_classes: bool = False
    unavailable: str | None = None


@dataclass
class Evidence:
    """What a class chooser may look at: the basic pass of a batch.

    Attributes:
        basic: ``[N, K, h, w]`` basic logits.
        image_logits: ``[N, K]`` logits of the method's image-level classifier, or ``None``.
        pixel_counts: ``[N, K]`` int64 arg-max pixel counts of the basic prediction at full image
            resolution, when the caller counted them (sliding-window inference of a large image, where
            ``basic`` is only a subsampled summary); ``None``: count on ``basic`` itself.
    """

    basic: Tensor
    image_logits: Tensor | None = None
    pixel_counts: Tensor | None = None


ClassChooser = Callable[[Evidence], "Tensor | None"]


@dataclass
class Prediction:
    """What a method's ``infer`` returns.

    Attributes:
        logits: head -> ``[N, K, h, w]`` logits; class-dependent heads are missing when no class set
            was available.
        present: ``[N, K]`` bool class set used by the class-dependent heads, or ``None``.
        image_logits: ``[N, K]`` image-level classifier logits, or ``None``.
    """

    logits: dict[str, Tensor]
    present: Tensor | None = None
    image_logits: Tensor | None = None
