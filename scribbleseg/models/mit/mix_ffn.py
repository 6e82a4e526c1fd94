"""Mix-FFN of the Mix Transformer: fc1 -> 3x3 depth-wise conv -> GELU -> fc2.

The depth-wise convolution leaks positional information into the tokens, which is why MiT needs no
positional embedding and works at any input resolution.
"""

from __future__ import annotations

import torch
from torch import nn

from scribbleseg.models.mit.channels_last_conv import ChannelsLastConv2d


class MixFFN(nn.Module):
    """Tokens ``[N, L, C]`` on an ``H x W`` grid -> ``[N, L, C]`` through a hidden width ``C * ratio``."""

    def __init__(self, dim: int, hidden_dim: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden_dim)
        self.dwconv = ChannelsLastConv2d(hidden_dim, hidden_dim, kernel_size=3, padding=1, groups=hidden_dim)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden_dim, dim)

    def forward(self, x: torch.Tensor, height: int, width: int) -> torch.Tensor:
        """Apply the Mix-FFN to ``x [N, L, C]`` with ``L == height * width``."""
        x = self.fc1(x)
        batch, _, hidden = x.shape
        grid = x.transpose(1, 2).reshape(batch, hidden, height, width)
        x = self.dwconv(grid).flatten(2).transpose(1, 2)
        return self.fc2(self.act(x))
