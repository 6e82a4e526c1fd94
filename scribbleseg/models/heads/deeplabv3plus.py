"""DeepLabV3+ decoder (Chen et al., 2018): ASPP on C5, refined with the low-level map C2.

``fuse(stage_maps)``:

1. ASPP on C5 (:mod:`scribbleseg.models.heads.aspp`; 256 channels, dropout 0.5 by default);
2. C2 projected to 48 channels (1x1 ConvBNReLU);
3. the ASPP output upsampled bilinearly to the C2 size, concatenated with the projected C2 (ASPP first);
4. two 3x3 ConvBNReLU with 256 channels: this is F, the feature map PFA augments (stride of C2, i.e. 4).

``classify(F)`` is a 1x1 convolution with bias to the K classes, so augmented features of F's shape go
through the very same classifier. The ASPP dilations default to ``(6, 12, 18)`` at output stride 16 and
scale with the C5 stride (``(12, 24, 36)`` at 8), or are given explicitly.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from scribbleseg.models.heads.aspp import ASPP
from scribbleseg.models.heads.conv_bn_relu import ConvBNReLU
from scribbleseg.models.stage_settings import four_positive, positive_int
from scribbleseg.models.weight_init import init_segformer_weights

_OS16_DILATIONS = (6, 12, 18)


def default_aspp_dilations(c5_stride: int) -> tuple[int, ...]:
    """DeepLabV3's ASPP dilations for a C5 map at ``c5_stride``: (6, 12, 18) at 16, (12, 24, 36) at 8."""
    return tuple(max(1, d * 16 // c5_stride) for d in _OS16_DILATIONS)


class DeepLabV3PlusHead(nn.Module):
    """Stage maps ``[C2, C3, C4, C5]`` -> F ``[N, 256, H_2, W_2]`` -> logits ``[N, K, H_2, W_2]``.

    ``in_channels`` / ``in_strides`` are the encoder's ``out_channels`` / ``output_strides`` (C2 and C5
    are used); ``output_stride`` is the stride of F and the logits w.r.t. the input (the C2 stride).
    """

    def __init__(self, in_channels: Sequence[int], num_classes: int, in_strides: Sequence[int] = (4, 8, 16, 16),
                 aspp_dilations: Sequence[int] | None = None, aspp_channels: int = 256,
                 low_level_channels: int = 48, decoder_channels: int = 256, dropout: float = 0.5) -> None:
        super().__init__()
        self.in_channels = four_positive("in_channels", in_channels, int)
        self.in_strides = four_positive("in_strides", in_strides, int)
        self.num_classes = positive_int("num_classes", num_classes)
        if aspp_dilations is None:
            aspp_dilations = default_aspp_dilations(self.in_strides[-1])
        self.aspp_dilations = tuple(positive_int("aspp_dilations", d) for d in aspp_dilations)
        aspp_channels = positive_int("aspp_channels", aspp_channels)
        low_level_channels = positive_int("low_level_channels", low_level_channels)
        self.decoder_channels = positive_int("decoder_channels", decoder_channels)

        self.aspp = ASPP(self.in_channels[-1], aspp_channels, self.aspp_dilations, dropout)
        self.low_level = ConvBNReLU(self.in_channels[0], low_level_channels, kernel_size=1)
        self.decoder = nn.Sequential(
            ConvBNReLU(aspp_channels + low_level_channels, self.decoder_channels, kernel_size=3),
            ConvBNReLU(self.decoder_channels, self.decoder_channels, kernel_size=3),
        )
        self.classifier = nn.Conv2d(self.decoder_channels, self.num_classes, kernel_size=1)
        self.apply(init_segformer_weights)  # He fan-out normal convs, BN ones/zeros
        nn.init.normal_(self.classifier.weight, std=0.01)

    @property
    def feature_channels(self) -> int:
        """Channels of F (``decoder_channels``, 256 by default)."""
        return self.decoder_channels

    @property
    def output_stride(self) -> int:
        """Stride of F and of the logits w.r.t. the input: the C2 stride (4 for ResNet)."""
        return self.in_strides[0]

    def fuse(self, stage_maps: Sequence[torch.Tensor]) -> torch.Tensor:
        """Stage maps (C2 first) -> F ``[N, decoder_channels, H_2, W_2]`` (steps 1-4 of the module docstring)."""
        if len(stage_maps) != 4:
            raise ValueError(f"expected 4 stage maps, got {len(stage_maps)}")
        low, high = stage_maps[0], stage_maps[-1]
        context = F.interpolate(self.aspp(high), size=low.shape[-2:], mode="bilinear", align_corners=False)
        return self.decoder(torch.cat([context, self.low_level(low)], dim=1))

    def classify(self, features: torch.Tensor) -> torch.Tensor:
        """Features ``[N, decoder_channels, h, w]`` -> logits ``[N, K, h, w]`` (1x1 convolution)."""
        return self.classifier(features)

    def forward(self, stage_maps: Sequence[torch.Tensor]) -> torch.Tensor:
        """``classify(fuse(stage_maps))``: logits ``[N, K, H_2, W_2]``."""
        return self.classify(self.fuse(stage_maps))
