"""The partial cross-entropy baseline (PFA paper Tab. 2 "Baseline"): encoder + decoder, pCE on the
scribbled pixels, optionally plus regularisers such as the Gated CRF loss (``pce + gated_crf``) and the
built-in image classifier (``cls``); :data:`PCE` declares the family (``method: pce``, no settings section)."""

from __future__ import annotations

from typing import Sequence

from torch import nn

from scribbleseg.methods.contract import SegmentationMethod
from scribbleseg.methods.declarations import MethodFamily
from scribbleseg.methods.image_classification import ImageClassification
from scribbleseg.methods.inference_types import BASIC_HEAD
from scribbleseg.methods.partial_ce import partial_cross_entropy
from scribbleseg.methods.regularisers import Regulariser, add_regularisers
from scribbleseg.methods.training_types import TOTAL_LOSS, NetworkOutput, StepResult, TrainBatch


class PartialCEMethod(SegmentationMethod):
    """``loss = pCE(basic, scribbles) + sum(regularisers) [+ lambda_cls BCE]``; one head, ``basic``.

    Args:
        encoder / head / num_classes / ignore_index / classifier: as :class:`SegmentationMethod`.
        regularisers: extra weighted loss terms on the basic prediction.
    """

    method_name = "pce"

    def __init__(self, encoder: nn.Module, head: nn.Module, num_classes: int, ignore_index: int = 255,
                 regularisers: Sequence[Regulariser] = (), classifier: ImageClassification | None = None) -> None:
        super().__init__(encoder, head, num_classes, ignore_index, classifier)
        self.regularisers = list(regularisers)

    def own_loss_names(self) -> tuple[str, ...]:
        """``total``, ``pce`` and one per regulariser (the base adds ``cls`` with an image classifier)."""
        return (TOTAL_LOSS, "pce") + tuple(regulariser.name for regulariser in self.regularisers)

    def own_step(self, network: NetworkOutput, batch: TrainBatch, iteration: int) -> StepResult:
        """pCE on the basic prediction of the crops plus the regularisers (the base adds the classifier's BCE)."""
        basic = network.basic
        pce = partial_cross_entropy(basic, batch.scribbles, self.ignore_index)
        parts = {"pce": pce.detach()}
        loss = add_regularisers(self.regularisers, basic, batch, iteration, pce, parts)
        return StepResult(loss=loss, parts=parts, outputs={BASIC_HEAD: basic})


PCE = MethodFamily(PartialCEMethod)
