"""A light multi-label image classifier on a feature map: one logit per class.

``ImageClassifierHead(in_channels, num_classes, pooling, order)`` maps ``x [N, C, h, w]`` to logits
``[N, K]`` (a sigmoid turns them into per-class presence probabilities). Two orders:

* ``pool_then_score``: pool the features to ``[N, C]`` (or ``[N, 2C]``), then one linear layer;
* ``score_then_pool``: a 1x1 convolution scores every position for every class (``[N, K, h, w]``, a class
  activation map), then each class map is pooled: the image has class ``c`` if some region looks like ``c``.

Pooling over the positions:

* ``avg``: the mean;
* ``max``: the maximum;
* ``avgmax``: both (``pool_then_score``: concatenated to ``[N, 2C]``; ``score_then_pool``: their mean), i.e.
  what a class *covers* and where it shows *most*.

An optional ``valid [N, h, w]`` bool mask keeps padded positions out of both poolings (a row without any
valid position pools to zeros). The linear layer starts at zero weights and zero bias: every class starts
at probability 0.5 and no random projection disturbs a jointly trained encoder in its first steps.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

Pooling = Literal["avg", "max", "avgmax"]
POOLINGS: tuple[str, ...] = ("avg", "max", "avgmax")
Order = Literal["pool_then_score", "score_then_pool"]
ORDERS: tuple[str, ...] = ("pool_then_score", "score_then_pool")


def pool_positions(x: Tensor, pooling: str, valid: Tensor | None = None) -> Tensor:
    """``x [N, C, h, w]`` -> ``[N, C]`` (avg / max) or ``[N, 2C]`` (avgmax), over the ``valid`` positions."""
    if pooling not in POOLINGS:
        raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
    flat = x.flatten(2)  # [N, C, hw]
    if valid is None:
        mean = flat.mean(dim=2)
        peak = flat.amax(dim=2)
    else:
        keep = valid.flatten(1).unsqueeze(1).to(torch.bool)  # [N, 1, hw]
        count = keep.sum(dim=2).clamp(min=1).to(flat.dtype)  # [N, 1]
        mean = torch.where(keep, flat, torch.zeros_like(flat)).sum(dim=2) / count
        lowest = torch.finfo(flat.dtype).min
        peak = torch.where(keep, flat, torch.full_like(flat, lowest)).amax(dim=2)
        peak = torch.where(keep.any(dim=2), peak, torch.zeros_like(peak))
    if pooling == "avg":
        return mean
    if pooling == "max":
        return peak
    return torch.cat([mean, peak], dim=1)


class ImageClassifierHead(nn.Module):
    """``head(x [N, C, h, w], valid [N, h, w] | None) -> logits [N, K]`` (see the module docstring).

    Args:
        in_channels: ``C`` of the feature map it reads.
        num_classes: ``K``.
        pooling: ``avg``, ``max`` or ``avgmax``.
        order: ``pool_then_score`` (pooled features -> linear) or ``score_then_pool`` (class maps -> pooled).
    """

    def __init__(self, in_channels: int, num_classes: int, pooling: Pooling = "avgmax",
                 order: Order = "pool_then_score") -> None:
        super().__init__()
        if in_channels < 1 or num_classes < 1:
            raise ValueError(f"in_channels and num_classes must be >= 1, got {in_channels}, {num_classes}")
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
        if order not in ORDERS:
            raise ValueError(f"order must be one of {ORDERS}, got {order!r}")
        self.pooling = pooling
        self.order = order
        self.in_channels = int(in_channels)
        self.num_classes = int(num_classes)
        pooled_width = 2 * self.in_channels if pooling == "avgmax" else self.in_channels
        width = pooled_width if order == "pool_then_score" else self.in_channels
        self.linear = nn.Linear(width, self.num_classes)  # as a 1x1 convolution for score_then_pool
        nn.init.zeros_(self.linear.weight)
        nn.init.zeros_(self.linear.bias)

    def forward(self, x: Tensor, valid: Tensor | None = None) -> Tensor:
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"expected [N, {self.in_channels}, h, w] features, got {tuple(x.shape)}")
        if valid is not None and valid.shape[-2:] != x.shape[-2:]:
            valid = nn.functional.interpolate(valid[:, None].float(), size=x.shape[-2:], mode="nearest")[:, 0] > 0
        if self.order == "pool_then_score":
            return self.linear(pool_positions(x, self.pooling, valid))
        maps = torch.einsum("nchw,kc->nkhw", x, self.linear.weight) + self.linear.bias[:, None, None]
        pooled = pool_positions(maps, self.pooling, valid)  # [N, K] or [N, 2K]
        if self.pooling == "avgmax":
            mean, peak = pooled.split(self.num_classes, dim=1)
            return 0.5 * (mean + peak)
        return pooled
