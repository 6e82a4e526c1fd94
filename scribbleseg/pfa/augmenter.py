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
``embed`` computes the prototype-independent part once; when local and global branches share the
augmenter (as the authors do) the segmentor reuses it for both branches.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn


@dataclass
class EmbeddedFeatures:
    """The prototype-independent part of eq. (6)-(7) for one feature map, reusable across prototype sets.

    Attributes:
        flat: ``f`` as ``[N, HW, D]``.
        embedded: ``e_f = linear(f)`` ``[N, HW, D/2]``.
        fuse_part: the ``e_f`` half of eq. (7)'s linear layer plus its bias, ``[N, HW, D/2]``.
        shape: ``(N, D, h, w)`` of the feature map.
    """

    flat: Tensor
    embedded: Tensor
    fuse_part: Tensor
    shape: tuple[int, int, int, int]


class PrototypeAugmenter(nn.Module):
    """``aug(features [N, D, h, w], prototypes [N, P, D], mask [N, P] bool) -> [N, D, h, w]``.

    The linear layer of eq. (7) acts on ``concat(omega . e_fp, e_f)``; it is applied as the sum of its two
    halves, ``W_m (omega . e_fp) + W_e e_f + b``, which is the same map. This lets ``embed`` compute the
    ``e_f`` half once per feature map (shared by the local and the global branch) and lets the prototype
    half be applied to the ``P`` prototypes before the attention (``omega . (e_fp W_m^T)``) instead of to
    every pixel.
    """

    compile_methods = ("embed", "augment")  # what train.compile compiles (scribbleseg.engine.runtime.compilation)

    def __init__(self, dim: int) -> None:
        super().__init__()
        if dim < 2:
            raise ValueError(f"feature dim must be >= 2, got {dim}")
        half = dim // 2
        self.dim = dim
        self.half = half
        self.feature_proj = nn.Linear(dim, half)  # e_f, eq. (6)
        self.prototype_proj = nn.Linear(dim, half)  # e_fp, eq. (6)
        self.fuse = nn.Linear(2 * half, half)  # eq. (7), input concat(message, e_f)
        self.expand = nn.Linear(half, dim)  # eq. (8)

    def embed(self, features: Tensor) -> EmbeddedFeatures:
        """Prototype-independent projections of ``features [N, D, h, w]``."""
        batch, channels, height, width = features.shape
        if channels != self.dim:
            raise ValueError(f"features have {channels} channels, augmenter expects {self.dim}")
        flat = features.flatten(2).transpose(1, 2).contiguous()  # [N, HW, D]: one copy, every use below is dense
        embedded = self.feature_proj(flat)  # [N, HW, D/2]
        fuse_part = nn.functional.linear(embedded, self.fuse.weight[:, self.half :], self.fuse.bias)
        return EmbeddedFeatures(flat, embedded, fuse_part, (batch, channels, height, width))

    def forward(self, features: Tensor, prototypes: Tensor, mask: Tensor) -> Tensor:
        return self.augment(self.embed(features), prototypes, mask)

    def augment(
        self, features: EmbeddedFeatures, prototypes: Tensor, mask: Tensor, max_allowed: int | None = None
    ) -> Tensor:
        """Eq. (6)-(8) for embedded features and ``prototypes [N, P, D]`` with ``mask [N, P]``.

        The allowed prototypes of each image are first packed into ``M = max_n |allowed_n|`` columns, so
        the attention runs over ``M`` instead of ``P`` prototypes (e.g. 15 instead of 105 global ones);
        masked-out prototypes get zero attention either way, so the result is the same. ``max_allowed``
        (any bound ``>= M``, e.g. ``P`` on an accelerator: no packing then) saves the host sync that
        computing ``M`` costs.
        """
        batch, channels, height, width = features.shape
        if prototypes.dim() != 3 or prototypes.shape[0] != batch or prototypes.shape[2] != channels:
            raise ValueError(f"prototypes must be [N={batch}, P, D={channels}], got {tuple(prototypes.shape)}")
        if mask.shape != prototypes.shape[:2]:
            raise ValueError(f"mask must be {tuple(prototypes.shape[:2])}, got {tuple(mask.shape)}")
        embedded = features.embedded
        mask = mask.to(device=embedded.device, dtype=torch.bool)
        prototypes, mask = pack_allowed(prototypes, mask, max_allowed)
        proto_embedded = self.prototype_proj(prototypes.to(embedded.dtype))  # [N, P, D/2]
        proto_embedded = torch.where(mask.unsqueeze(2), proto_embedded, torch.zeros_like(proto_embedded))
        scores = torch.matmul(embedded, proto_embedded.transpose(1, 2))  # [N, HW, P], eq. (6)
        scores = scores.masked_fill(~mask.unsqueeze(1), torch.finfo(scores.dtype).min)
        attention = scores.softmax(dim=2)
        attention = attention * mask.any(dim=1).to(attention.dtype)[:, None, None]  # none allowed -> 0
        proto_fused = nn.functional.linear(proto_embedded, self.fuse.weight[:, : self.half])  # [N, P, D/2]
        message = torch.matmul(attention.to(proto_fused.dtype), proto_fused)  # W_m (omega . e_fp)
        fused = (message + features.fuse_part).relu_()  # eq. (7); in place on a fresh sum, same graph
        augmented = (features.flat + self.expand(fused)).relu_()  # eq. (8)
        return augmented.transpose(1, 2).reshape(batch, channels, height, width)


def pack_allowed(prototypes: Tensor, mask: Tensor, max_allowed: int | None = None) -> tuple[Tensor, Tensor]:
    """Move each image's allowed prototypes ``[N, P, D]`` to the front: ``[N, M, D]`` and mask ``[N, M]``.

    ``M = max(1, max_allowed or max_n |allowed_n|)``, capped at ``P``; order within an image is kept.
    """
    batch, count = mask.shape
    limit = max_allowed if max_allowed is not None else (int(mask.sum(1).max()) if batch else 0)
    columns = min(count, max(1, limit))
    if columns == count:
        return prototypes, mask
    rank = mask.long().cumsum(1) - 1  # [N, P]: column of an allowed prototype
    source = torch.zeros(batch, columns + 1, dtype=torch.long, device=mask.device)
    ids = torch.arange(count, device=mask.device).expand(batch, -1)
    source.scatter_(1, torch.where(mask, rank.clamp(max=columns), columns), ids)
    source = source[:, :columns]  # [N, M]: prototype index packed into each column
    packed_mask = torch.arange(columns, device=mask.device) < mask.sum(1, keepdim=True)
    packed = prototypes.gather(1, source.unsqueeze(2).expand(-1, -1, prototypes.shape[2]))
    return packed, packed_mask
