"""The Gated CRF loss as a regulariser of a method's supervised prediction (``pce + gated_crf``,
``pfa + gated_crf``): ``weight * gated_crf_loss(...)`` from ``start_iter`` on, 0 before.

The crop's ``valid`` mask gates the padding and rotation corners out of the kernel (the paper's ROI
gating); the images are un-normalised with the mean / std the data pipeline used.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor

from scribbleseg.methods.training_types import TrainBatch
from scribbleseg.methods.gated_crf import GatedCRFSettings, gated_crf_loss


class GatedCRFRegulariser:
    """``loss(logits [N, K, h, w], batch, iteration)`` -> weighted Gated CRF term (float32 scalar).

    Args:
        settings: the ``gated_crf`` section (weight, kernels, radius, downscale, start_iter).
        mean / std: per-channel values (0..1 scale) the training images were normalised with.
    """

    name = "gated_crf"

    def __init__(self, settings: GatedCRFSettings, mean: Sequence[float], std: Sequence[float]) -> None:
        self.settings = settings
        self.mean = tuple(float(m) for m in mean)
        self.std = tuple(float(s) for s in std)

    def loss(self, logits: Tensor, batch: TrainBatch, iteration: int) -> Tensor:
        """The weighted term; an exact 0 with a graph before ``start_iter`` or with weight 0."""
        if iteration < self.settings.start_iter or self.settings.weight == 0:
            return logits.float().sum() * 0
        energy = gated_crf_loss(logits, batch.images, self.settings, batch.valid, mean=self.mean, std=self.std)
        return self.settings.weight * energy
