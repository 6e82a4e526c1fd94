"""Atrous spatial pyramid pooling of DeepLabV3 / V3+ (Chen et al., 2017 and 2018).

Parallel branches on the encoder's last map ``[N, C_in, h, w]``: a 1x1 ConvBNReLU, one 3x3 ConvBNReLU
per dilation (``(6, 12, 18)`` at output stride 16, doubled at 8) and an image-pooling branch (global
average -> 1x1 ConvBNReLU -> broadcast back to ``h x w``). Their outputs are concatenated and projected
by a 1x1 ConvBNReLU, then dropout (element-wise ``nn.Dropout``, training only).

The image-pooling branch normalises one value per channel and image, so in training mode BatchNorm
needs a batch of at least 2 images (as in every DeepLabV3 implementation).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from scribbleseg.models.heads.conv_bn_relu import ConvBNReLU


class ImagePooling(nn.Module):
    """``[N, C_in, h, w]`` -> ``[N, C_out, h, w]``: global average, 1x1 ConvBNReLU, constant over the map."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.proj = ConvBNReLU(in_channels, out_channels, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = self.proj(F.adaptive_avg_pool2d(x, 1))  # [N, C_out, 1, 1]
        return pooled.expand(-1, -1, *x.shape[-2:])  # bilinear upsampling of a 1x1 map is a broadcast


class ASPP(nn.Module):
    """``[N, C_in, h, w]`` -> ``[N, out_channels, h, w]`` (see the module docstring)."""

    def __init__(self, in_channels: int, out_channels: int = 256, dilations: Sequence[int] = (6, 12, 18),
                 dropout: float = 0.5) -> None:
        super().__init__()
        self.dilations = tuple(int(d) for d in dilations)
        self.branches = nn.ModuleList(
            [ConvBNReLU(in_channels, out_channels, kernel_size=1)]
            + [ConvBNReLU(in_channels, out_channels, kernel_size=3, dilation=d) for d in self.dilations]
        )
        self.pooling = ImagePooling(in_channels, out_channels)
        self.project = ConvBNReLU((len(self.branches) + 1) * out_channels, out_channels, kernel_size=1)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pyramid = [branch(x) for branch in self.branches] + [self.pooling(x)]
        return self.dropout(self.project(torch.cat(pyramid, dim=1)))
