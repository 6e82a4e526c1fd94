"""The partial cross-entropy baseline (PFA paper Tab. 2 "Baseline"): encoder + decoder, pCE on the
scribbled pixels, optionally plus regularisers such as the Gated CRF loss (``pce + gated_crf``)."""

from __future__ import annotations

from typing import Sequence

from torch import nn

from scribbleseg.methods.contract import BASIC_HEAD, TOTAL_LOSS, SegmentationMethod, StepResult, TrainBatch
from scribbleseg.methods.partial_ce import partial_cross_entropy
from scribbleseg.methods.regularisers import Regulariser, add_regularisers


class PartialCEMethod(SegmentationMethod):
    """``loss = pCE(basic, scribbles) + sum(regularisers)``; one head, ``basic``.

    Args:
        encoder / head / num_classes / ignore_index: as :class:`SegmentationMethod`.
        regularisers: extra weighted loss terms on the basic prediction.
    """

    method_name = "pce"

    def __init__(self, encoder: nn.Module, head: nn.Module, num_classes: int, ignore_index: int = 255,
                 regularisers: Sequence[Regulariser] = ()) -> None:
        super().__init__(encoder, head, num_classes, ignore_index)
        self.regularisers = list(regularisers)

    def loss_names(self) -> tuple[str, ...]:
        """``total``, ``pce`` and one per regulariser."""
        return (TOTAL_LOSS, "pce") + tuple(regulariser.name for regulariser in self.regularisers)

    def training_step(self, batch: TrainBatch, iteration: int) -> StepResult:
        """pCE on the basic prediction of the crops (plus the regularisers)."""
        _, basic = self.encode(batch.images)
        pce = partial_cross_entropy(basic, batch.scribbles, self.ignore_index)
        parts = {"pce": pce.detach()}
        loss = add_regularisers(self.regularisers, basic, batch, iteration, pce, parts)
        parts[TOTAL_LOSS] = loss.detach()
        return StepResult(loss=loss, parts=parts, outputs={BASIC_HEAD: basic})
