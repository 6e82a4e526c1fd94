"""Resizing of logit maps between the decoder's resolution and the image's."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor


def upsample_logits(logits: Tensor, size: tuple[int, int]) -> Tensor:
    """Bilinear resize of ``[N, K, h, w]`` logits to ``size = (H, W)`` (identity when already that size).

    ``align_corners=False`` (the authors' PFA code uses ``True``).
    """
    if tuple(logits.shape[-2:]) == tuple(size):
        return logits
    return F.interpolate(logits, size=tuple(size), mode="bilinear", align_corners=False)
