"""Resizing of logit maps between the decoder's resolution and the image's."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor


def upsample_logits(logits: Tensor, size: tuple[int, int], align_corners: bool = False) -> Tensor:
    """Bilinear resize of ``[N, K, h, w]`` logits to ``size = (H, W)`` (identity when already that size).

    ``align_corners=False`` by default (pixel centres aligned); the authors' PFA code upsamples its pCE logits
    with ``True`` (corner pixels aligned: a sub-pixel shift of the whole map), ``train.pce_align_corners``.
    """
    if tuple(logits.shape[-2:]) == tuple(size):
        return logits
    return F.interpolate(logits, size=tuple(size), mode="bilinear", align_corners=align_corners)
