"""Overlapping patch embedding of the Mix Transformer: a strided convolution followed by LayerNorm.

Stage 1 uses kernel 7 / stride 4 / padding 3, later stages kernel 3 / stride 2 / padding 1; the
padding is always ``kernel // 2`` so neighbouring patches overlap and any stride (also 1) works.
"""

from __future__ import annotations

import torch
from torch import nn


class OverlapPatchEmbedding(nn.Module):
    """``[N, C_in, H, W]`` -> tokens ``[N, H' * W', C_out]`` plus the token grid size ``(H', W')``."""

    def __init__(self, in_channels: int, embed_dim: int, patch_size: int, stride: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(in_channels, embed_dim, kernel_size=patch_size, stride=stride,
                              padding=patch_size // 2)
        self.norm = nn.LayerNorm(embed_dim)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, int, int]:
        """Return the normalised tokens ``[N, H'W', C_out]`` and ``H'``, ``W'``."""
        x = self.proj(x)
        height, width = x.shape[-2:]
        tokens = x.flatten(2).transpose(1, 2)
        return self.norm(tokens), height, width
