"""Partial cross-entropy (PFA paper eq. 9): cross-entropy over the scribbled pixels only.

The ``[N, K, h, w]`` logits are upsampled bilinearly to the scribble size ``[N, H, W]`` and the
cross-entropy is averaged over the scribbled pixels. A batch without a single scribbled pixel gives an
exact 0 that still carries a graph (``backward`` works and gives zero gradients) instead of the NaN of
``F.cross_entropy``'s mean.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from scribbleseg.methods.logit_resizing import upsample_logits


def partial_cross_entropy(logits: Tensor, scribbles: Tensor, ignore_index: int = 255,
                          align_corners: bool = False) -> Tensor:
    """Eq. (9): mean cross-entropy over the scribbled pixels of ``scribbles [N, H, W]`` (long).

    ``logits [N, K, h, w]`` are upsampled to ``[H, W]`` (bilinear, ``align_corners``: the released PFA code
    uses ``True``). Label values must be in ``[0, K)`` or ``ignore_index``. Returns a float32 scalar; 0 with a
    graph when no pixel is scribbled.
    """
    if scribbles.dim() != 3 or scribbles.shape[0] != logits.shape[0]:
        raise ValueError(f"scribbles must be [N, H, W] with N={logits.shape[0]}, got {tuple(scribbles.shape)}")
    scribbles = scribbles.to(device=logits.device, dtype=torch.long)
    full = upsample_logits(logits.float(), tuple(scribbles.shape[-2:]), align_corners)
    summed = F.cross_entropy(full, scribbles, ignore_index=ignore_index, reduction="sum")
    labelled = (scribbles != ignore_index).sum().clamp(min=1)
    return summed / labelled
