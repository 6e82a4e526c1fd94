"""Convolution (no bias) -> BatchNorm -> ReLU, the unit DeepLabV3+'s ASPP and decoder are built from."""

from __future__ import annotations

import torch
from torch import nn


class ConvBNReLU(nn.Module):
    """``[N, C_in, H, W]`` -> ``[N, C_out, H, W]``: ``k x k`` convolution with ``dilation`` (padding keeps the
    size), BatchNorm, ReLU."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 1, dilation: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, padding=dilation * (kernel_size // 2),
                              dilation=dilation, bias=False)
        self.norm = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.norm(self.conv(x)))
