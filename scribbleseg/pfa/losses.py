"""Losses of PFA (section 3.4): partial cross-entropy (eq. 9) and prediction consistency (eq. 10).

``partial_cross_entropy`` upsamples the ``[N, K, h, w]`` logits bilinearly (``align_corners=False``; the
authors' code uses ``True``) to the scribble size ``[N, H, W]`` and averages the cross-entropy over the
scribbled pixels only. A batch without a single scribbled pixel gives an exact 0 that still carries a
graph (``backward`` works and gives zero gradients) instead of the NaN of ``F.cross_entropy``'s mean.

``consistency_loss`` compares the basic prediction ``p`` with an augmented one ``p_aug`` (both logits
``[N, K, h, w]`` at decoder resolution), averaged over the ``N*h*w`` pixels:

* ``"ce"`` (default, eq. 10): ``-sum_c p_c log p_aug_c``. The basic prediction is the target and is
  detached by default (``detach_target``), so the consistency term trains the augmenter (and, through the
  augmented branch, the encoder and classifier) towards the basic prediction.
* ``"kl"``: ``sum_c p_c (log p_c - log p_aug_c)``: eq. 10 minus the target entropy; same gradient w.r.t.
  ``p_aug`` as ``"ce"`` when the target is detached.
* ``"released"``: the authors' released code, ``nn.CrossEntropyLoss(softmax(basic), softmax(aug))``, i.e.
  ``-sum_c softmax(aug)_c log_softmax(softmax(basic))_c``: probabilities are fed where logits are expected
  and the roles are swapped; nothing is detached. Kept for reproduction only.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from scribbleseg.errors import ConfigError


def upsample_logits(logits: Tensor, size: tuple[int, int]) -> Tensor:
    """Bilinear resize of ``[N, K, h, w]`` logits to ``size = (H, W)`` (identity when already that size)."""
    if tuple(logits.shape[-2:]) == tuple(size):
        return logits
    return F.interpolate(logits, size=size, mode="bilinear", align_corners=False)


def partial_cross_entropy(logits: Tensor, scribbles: Tensor, ignore_index: int = 255) -> Tensor:
    """Eq. (9): mean cross-entropy over the scribbled pixels of ``scribbles [N, H, W]`` (long).

    ``logits [N, K, h, w]`` are upsampled to ``[H, W]``. Label values must be in ``[0, K)`` or
    ``ignore_index``. Returns a float32 scalar; 0 with a graph when no pixel is scribbled.
    """
    if scribbles.dim() != 3 or scribbles.shape[0] != logits.shape[0]:
        raise ValueError(f"scribbles must be [N, H, W] with N={logits.shape[0]}, got {tuple(scribbles.shape)}")
    scribbles = scribbles.to(device=logits.device, dtype=torch.long)
    full = upsample_logits(logits.float(), tuple(scribbles.shape[-2:]))
    summed = F.cross_entropy(full, scribbles, ignore_index=ignore_index, reduction="sum")
    labelled = (scribbles != ignore_index).sum().clamp(min=1)
    return summed / labelled


def consistency_loss(basic: Tensor, augmented: Tensor, kind: str = "ce", detach_target: bool = True) -> Tensor:
    """Eq. (10) and variants: consistency of ``augmented`` with ``basic`` (logits ``[N, K, h, w]``), float32."""
    if basic.shape != augmented.shape:
        raise ValueError(f"basic {tuple(basic.shape)} and augmented {tuple(augmented.shape)} differ")
    basic = basic.float()
    augmented = augmented.float()
    if kind == "released":
        per_pixel = -(augmented.softmax(1) * basic.softmax(1).log_softmax(1)).sum(1)
        return per_pixel.mean()
    target_logits = basic.detach() if detach_target else basic
    target = target_logits.softmax(1)
    log_augmented = augmented.log_softmax(1)
    if kind == "ce":
        return -(target * log_augmented).sum(1).mean()
    if kind == "kl":
        return (target * (target_logits.log_softmax(1) - log_augmented)).sum(1).mean()
    raise ConfigError(f"pfa.consistency must be 'ce', 'kl' or 'released', got {kind!r}")
