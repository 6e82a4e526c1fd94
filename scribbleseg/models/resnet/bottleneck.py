"""Bottleneck residual block of ResNet v1.5: 1x1 reduce -> 3x3 (strided / dilated) -> 1x1 expand.

"v1.5" (torchvision, Hugging Face ``microsoft/resnet-*``) puts the stride on the 3x3 convolution, not on
the first 1x1 as the original paper does. Each convolution is followed by BatchNorm; ReLU after the first
two and after the residual sum. The shortcut is a strided 1x1 convolution + BatchNorm whenever the
block changes the resolution or the width, the identity otherwise.
"""

from __future__ import annotations

import torch
from torch import nn


class ProjectionShortcut(nn.Module):
    """``[N, C_in, H, W]`` -> ``[N, C_out, H / s, W / s]``: 1x1 convolution with stride ``s``, BatchNorm."""

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=stride, bias=False)
        self.norm = nn.BatchNorm2d(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.conv(x))


class Bottleneck(nn.Module):
    """``[N, C_in, H, W]`` -> ``[N, 4 * width, H / stride, W / stride]``.

    ``dilation`` applies to the 3x3 convolution (padding ``dilation`` keeps the size); a dilated ResNet
    uses ``stride=1`` and a larger ``dilation`` where the plain network would subsample.
    """

    expansion = 4

    def __init__(self, in_channels: int, width: int, stride: int = 1, dilation: int = 1) -> None:
        super().__init__()
        out_channels = width * self.expansion
        self.conv1 = nn.Conv2d(in_channels, width, kernel_size=1, bias=False)
        self.norm1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, kernel_size=3, stride=stride, padding=dilation, dilation=dilation,
                               bias=False)
        self.norm2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, out_channels, kernel_size=1, bias=False)
        self.norm3 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        needs_projection = stride != 1 or in_channels != out_channels
        self.shortcut = ProjectionShortcut(in_channels, out_channels, stride) if needs_projection else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.norm1(self.conv1(x)))
        out = self.relu(self.norm2(self.conv2(out)))
        out = self.norm3(self.conv3(out))
        return self.relu(out + self.shortcut(x))
