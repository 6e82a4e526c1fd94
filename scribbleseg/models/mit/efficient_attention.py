"""Efficient self-attention of the Mix Transformer (spatial-reduction attention, PVT / SegFormer).

Queries come from all ``L = H * W`` tokens; keys and values from a map shrunk by a strided
``sr_ratio x sr_ratio`` convolution plus LayerNorm, so the cost is ``O(L * L / sr_ratio^2)``. Keys and
values share one linear layer (``kv``, output ``2 C``: keys first, then values) and attention runs
through :func:`torch.nn.functional.scaled_dot_product_attention`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from scribbleseg.models.mit.channels_last_conv import ChannelsLastConv2d


class EfficientSelfAttention(nn.Module):
    """Multi-head attention over tokens ``[N, L, C]`` with keys/values reduced by ``sr_ratio``."""

    def __init__(self, dim: int, num_heads: int, sr_ratio: int) -> None:
        super().__init__()
        if dim % num_heads != 0:
            raise ValueError(f"dim {dim} is not divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.sr_ratio = sr_ratio
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(dim, 2 * dim)
        self.proj = nn.Linear(dim, dim)
        if sr_ratio > 1:
            self.sr = ChannelsLastConv2d(dim, dim, kernel_size=sr_ratio, stride=sr_ratio)
            self.norm = nn.LayerNorm(dim)

    def _reduce(self, x: torch.Tensor, height: int, width: int) -> torch.Tensor:
        """Tokens ``[N, L, C]`` -> reduced tokens ``[N, L / sr^2, C]`` (identity when ``sr == 1``)."""
        if self.sr_ratio == 1:
            return x
        batch, _, channels = x.shape
        grid = x.transpose(1, 2).reshape(batch, channels, height, width)
        reduced = self.sr(grid).flatten(2).transpose(1, 2)
        return self.norm(reduced)

    def forward(self, x: torch.Tensor, height: int, width: int) -> torch.Tensor:
        """``x [N, L, C]`` on an ``height x width`` grid -> attended tokens ``[N, L, C]``."""
        batch, length, channels = x.shape
        q = self.q(x).view(batch, length, self.num_heads, self.head_dim).transpose(1, 2)
        kv_source = self._reduce(x, height, width)
        kv = self.kv(kv_source).view(batch, -1, 2, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        k, v = kv.unbind(0)
        out = F.scaled_dot_product_attention(q, k, v)  # [N, heads, L, head_dim]
        return self.proj(out.transpose(1, 2).reshape(batch, length, channels))
