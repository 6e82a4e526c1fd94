"""The data a method trains on and reports: :class:`TrainBatch`, :class:`NetworkOutput`, :class:`StepResult`,
:class:`StateSnapshot` (the training half of the method contract, :mod:`scribbleseg.methods.contract`).

Plain records: they import no method and no model, so every module of the method layer can use them.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Sequence

import torch
from torch import Tensor

TOTAL_LOSS = "total"


@dataclass
class TrainBatch:
    """One training batch.

    Attributes:
        images: ``[N, 3, H, W]`` float, normalised crops.
        scribbles: ``[N, H, W]`` int64 class ids, ``ignore_index`` = unlabeled.
        crop_classes: ``[N, K]`` bool, classes with a scribbled pixel inside the crop.
        image_classes: ``[N, K]`` bool, classes scribbled anywhere in the whole image (image-level
            labels; equal to ``crop_classes`` when the data set cannot tell).
        valid: ``[N, H, W]`` bool, False where the crop shows no image (padding, rotation corners), or
            ``None`` (all valid).
    """

    images: Tensor
    scribbles: Tensor
    crop_classes: Tensor
    image_classes: Tensor
    valid: Tensor | None = None

    @classmethod
    def from_loader(cls, batch: dict[str, Tensor]) -> "TrainBatch":
        """From a collated batch of the data layer's ``ScribbleDataset`` items."""
        return cls(batch["image"], batch["scribble"], batch["crop_classes"], batch["image_classes"],
                   batch.get("valid"))

    def to(self, device: torch.device | str, non_blocking: bool = False) -> "TrainBatch":
        """The same batch on ``device``."""
        moved = {item.name: getattr(self, item.name) for item in fields(self)}
        return TrainBatch(**{name: None if value is None else value.to(device, non_blocking=non_blocking)
                             for name, value in moved.items()})


@dataclass
class NetworkOutput:
    """One forward of encoder and decoder.

    Attributes:
        stages: the encoder's stage maps, stage 1 first (``[N, C_i, H_i, W_i]``).
        features: fused features ``F [N, D, h, w]``.
        basic: basic logits ``[N, K, h, w]``.
    """

    stages: Sequence[Tensor]
    features: Tensor
    basic: Tensor


@dataclass
class StepResult:
    """What a method's training step returns (:meth:`~scribbleseg.methods.contract.SegmentationMethod.training_step`).

    Attributes:
        loss: the total loss, a scalar with its graph.
        parts: detached scalars, one per name of ``loss_names()`` (``"total"`` first).
        phase: the method's training phase at this step (``None`` for methods without phases).
        outputs: head -> ``[N, K, h, w]`` logits computed in this step (for inspection and tests).
    """

    loss: Tensor
    parts: dict[str, Tensor]
    phase: str | None = None
    outputs: dict[str, Tensor] = field(default_factory=dict)


@dataclass
class StateSnapshot:
    """Copies of every buffer of a method (see :meth:`~scribbleseg.methods.contract.SegmentationMethod.snapshot`)."""

    tensors: list[Tensor] = field(default_factory=list)
