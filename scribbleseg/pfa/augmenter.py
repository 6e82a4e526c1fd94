"""Prototype-based feature augmenter, eq. (6)-(8) (section 3.3, Fig. 3).

For every pixel feature ``f`` (``D`` channels) and the allowed prototypes ``fp`` of its image:

* ``e_f = linear(f)``, ``e_fp = linear(fp)`` project to ``D/2``;
* ``omega = softmax(e_f . e_fp^T)`` over the allowed prototypes only (eq. 6, no temperature, as written);
* ``e_f* = ReLU(linear(concat(omega . e_fp, e_f)))`` (eq. 7);
* ``f_aug = ReLU(f + linear(e_f*))`` (eq. 8).

Batched over the whole batch with a ``[N, P]`` mask instead of the per-image prototype selection of the
paper: masked-out prototypes get exactly zero attention and their projections are zeroed, so an image's
output depends neither on masked prototypes nor on other images. An image with no allowed prototype gets
``omega . e_fp = 0`` (no prototype message): ``f_aug = ReLU(f + linear(ReLU(linear(concat(0, e_f)))))``,
finite and still a function of its own features only.

Local use: ``P = K`` local prototypes, mask = present classes. Global use: the bank's ``K * slots``
prototypes, mask = the slots of present classes (the paper's "merge" of the global prototypes, 3.3.2).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class PrototypeAugmenter(nn.Module):
    """``aug(features [N, D, h, w], prototypes [N, P, D], mask [N, P] bool) -> [N, D, h, w]``."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        if dim < 2:
            raise ValueError(f"feature dim must be >= 2, got {dim}")
        half = dim // 2
        self.dim = dim
        self.feature_proj = nn.Linear(dim, half)  # e_f, eq. (6)
        self.prototype_proj = nn.Linear(dim, half)  # e_fp, eq. (6)
        self.fuse = nn.Linear(2 * half, half)  # eq. (7)
        self.expand = nn.Linear(half, dim)  # eq. (8)

    def forward(self, features: Tensor, prototypes: Tensor, mask: Tensor) -> Tensor:
        batch, channels, height, width = features.shape
        if channels != self.dim:
            raise ValueError(f"features have {channels} channels, augmenter expects {self.dim}")
        if prototypes.dim() != 3 or prototypes.shape[0] != batch or prototypes.shape[2] != channels:
            raise ValueError(f"prototypes must be [N={batch}, P, D={channels}], got {tuple(prototypes.shape)}")
        if mask.shape != prototypes.shape[:2]:
            raise ValueError(f"mask must be {tuple(prototypes.shape[:2])}, got {tuple(mask.shape)}")
        mask = mask.to(device=features.device, dtype=torch.bool)
        flat = features.flatten(2).transpose(1, 2)  # [N, HW, D]
        embedded = self.feature_proj(flat)  # [N, HW, D/2]
        proto_embedded = self.prototype_proj(prototypes.to(flat.dtype))  # [N, P, D/2]
        proto_embedded = torch.where(mask.unsqueeze(2), proto_embedded, torch.zeros_like(proto_embedded))
        scores = torch.matmul(embedded, proto_embedded.transpose(1, 2))  # [N, HW, P]
        scores = scores.masked_fill(~mask.unsqueeze(1), torch.finfo(scores.dtype).min)
        attention = scores.softmax(dim=2)
        attention = attention * mask.any(dim=1).to(attention.dtype)[:, None, None]  # none allowed -> 0
        message = torch.matmul(attention.to(proto_embedded.dtype), proto_embedded)  # [N, HW, D/2]
        fused = torch.relu(self.fuse(torch.cat([message, embedded], dim=2)))  # eq. (7)
        augmented = torch.relu(flat + self.expand(fused))  # eq. (8)
        return augmented.transpose(1, 2).reshape(batch, channels, height, width)
