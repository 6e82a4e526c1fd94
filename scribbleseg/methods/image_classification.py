"""The built-in multi-label image classifier any method can carry (the ``classifier`` config section).

PFA needs the classes present in a test image (appendix A.2): with ground-truth labels its global head
gains most (Tab. 4: 80.4), with the prediction-map threshold it loses (75.7 vs 76.8), and the headline
77.9 needs an external classifier (Q2L). This module trains a light classifier *jointly* with the
segmentor, from step 0, on the image-level labels the scribbles give for free; at inference its
``[N, K]`` logits go to the class source ``head`` (:mod:`scribbleseg.methods.class_sources`).

* Input (``features``): ``fused`` = the decoder's fused features ``F [N, D, h, w]`` (what the prototype
  augmenters read), ``deepest`` = the encoder's last stage map ``[N, C_4, H/32, W/32]`` (what an
  ImageNet classifier would read), or ``logits`` = the basic prediction ``[N, K, h, w]`` (the segmentor's
  own per-pixel evidence, recalibrated per class). The head: :class:`~scribbleseg.models.heads.image_classifier.ImageClassifierHead`
  (pooling -> linear).
* Loss: ``lambda_cls * BCE(logits, targets)``, mean over the batch and the ``K`` classes; targets are the
  classes scribbled in the training crop (``TrainBatch.crop_classes``, default) or anywhere in the whole
  image (``image_classes``: a class the crop cut away is then a positive the crop cannot show).
* ``detach``: the classifier learns on detached features and sends no gradient into the segmentor.

The design comparison behind the defaults is in docs/pfa.md ("Built-in image classifier").
"""

from __future__ import annotations

from typing import Literal, Sequence

import torch
from pydantic import Field
from torch import Tensor, nn

from scribbleseg.methods.training_types import NetworkOutput, TrainBatch
from scribbleseg.models.heads.image_classifier import ImageClassifierHead, Order, Pooling
from scribbleseg.models.settings_base import StrictSettings

__all__ = ["CLASSIFIER_LOSS", "ImageClassification", "ImageClassifierSettings"]

CLASSIFIER_LOSS = "cls"


class ImageClassifierSettings(StrictSettings):
    """The ``classifier`` section: a multi-label image classifier trained jointly with the segmentor."""

    section = "classifier"

    features: Literal["fused", "deepest", "logits"] = Field(
        "fused", description="fused decoder features F, the encoder's deepest stage map, or the basic logits")
    pooling: Pooling = Field("avgmax", description="avg, max, or both")
    order: Order = Field("pool_then_score", description="pool the features then score them (linear), or score "
                                                        "every position per class (1x1) then pool the class maps")
    lambda_cls: float = Field(0.1, ge=0.0, description="weight of the BCE loss")
    targets: Literal["crop", "image"] = Field(
        "crop", description="classes scribbled inside the training crop (what the crop can show), or anywhere "
                            "in the whole image (label noise where the crop lost a class)")
    detach: bool = Field(False, description="train on detached features: no gradient into the segmentor")

    def architecture(self) -> dict[str, object]:
        """The fields that shape the weights (what a checkpoint must match)."""
        return {"features": self.features, "pooling": self.pooling, "order": self.order}


class ImageClassification(nn.Module):
    """The classifier and its loss: ``logits(network, valid) -> [N, K]``, ``loss(logits, batch targets)``.

    A :class:`~scribbleseg.methods.contract.SegmentationMethod` built with one composes it: the base's
    training step adds :meth:`training_loss` (loss part :data:`CLASSIFIER_LOSS`) to every method's own loss.

    Args:
        settings: the ``classifier`` section.
        stage_channels: channels of the encoder's stage maps (``encoder.out_channels``).
        feature_channels: ``D`` of the fused features.
        num_classes: ``K``.
    """

    def __init__(self, settings: ImageClassifierSettings, stage_channels: Sequence[int], feature_channels: int,
                 num_classes: int) -> None:
        super().__init__()
        self.settings = settings
        channels = {"fused": int(feature_channels), "deepest": int(stage_channels[-1]),
                    "logits": int(num_classes)}[settings.features]
        self.head = ImageClassifierHead(channels, num_classes, settings.pooling, settings.order)

    def logits(self, network: NetworkOutput, valid: Tensor | None = None) -> Tensor:
        """``[N, K]`` image-level logits from the chosen map of ``network`` (``valid [N, H, W]`` optional)."""
        source = {"fused": network.features, "deepest": network.stages[-1], "logits": network.basic}[
            self.settings.features]
        if self.settings.detach:
            source = source.detach()
        return self.head(source, valid)

    def targets(self, crop_classes: Tensor, image_classes: Tensor) -> Tensor:
        """``[N, K]`` bool training targets (``settings.targets``)."""
        return image_classes if self.settings.targets == "image" else crop_classes

    def training_loss(self, network: NetworkOutput, batch: TrainBatch) -> Tensor:
        """The weighted BCE of one training forward (scalar with graph; padding excluded via ``batch.valid``)."""
        logits = self.logits(network, batch.valid)
        return self.loss(logits, self.targets(batch.crop_classes, batch.image_classes))

    def loss(self, logits: Tensor, targets: Tensor) -> Tensor:
        """``lambda_cls * BCE`` (float32 scalar with graph), mean over the ``N x K`` entries."""
        bce = nn.functional.binary_cross_entropy_with_logits(logits.float(), targets.to(torch.float32))
        return self.settings.lambda_cls * bce
