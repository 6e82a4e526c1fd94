"""DeepLabV2's ASPP classifier (Chen et al., 2017): four parallel dilated 3x3 convolutions, summed.

DeepLabV2-ResNet101 (the PFA paper's "Ours-ResNet101", Tab. 1 row (2), Tab. 3) classifies the encoder's
last map C5 directly: each branch is a 3x3 convolution from C5 to the K classes with dilation 6, 12, 18
or 24 (padding = dilation keeps the size), and the logits are the sum of the branches. There is no
intermediate feature layer, so the feature map F that PFA augments is C5 itself:

* ``fuse(stage_maps)`` returns C5 (``[N, 2048, H/8, W/8]`` for ResNet-101 at output stride 8), after
  optional channel dropout (``Dropout2d``, training only; off by default as in DeepLabV2-ResNet);
* ``classify(F)`` applies the summed ASPP classifiers, so augmented features of F's shape go through the
  very same classifier.

The classifiers are initialised as DeepLab does: normal weights with std 0.01, zero biases.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from scribbleseg.models.stage_settings import four_positive, positive_int


class DeepLabV2Head(nn.Module):
    """Stage maps ``[C2, C3, C4, C5]`` -> F = C5 ``[N, C_5, h, w]`` -> logits ``[N, K, h, w]``.

    ``in_channels`` / ``in_strides`` are the encoder's ``out_channels`` / ``output_strides`` (only the last
    entries are used); ``output_stride`` is the stride of F and the logits w.r.t. the input.
    """

    def __init__(self, in_channels: Sequence[int], num_classes: int, in_strides: Sequence[int] = (4, 8, 8, 8),
                 dilations: Sequence[int] = (6, 12, 18, 24), dropout: float = 0.0) -> None:
        super().__init__()
        self.in_channels = four_positive("in_channels", in_channels, int)
        self.in_strides = four_positive("in_strides", in_strides, int)
        self.num_classes = positive_int("num_classes", num_classes)
        self.dilations = tuple(positive_int("dilations", d) for d in dilations)
        self.dropout = nn.Dropout2d(dropout) if dropout > 0 else nn.Identity()
        self.classifiers = nn.ModuleList(
            nn.Conv2d(self.feature_channels, self.num_classes, kernel_size=3, padding=d, dilation=d)
            for d in self.dilations
        )
        for conv in self.classifiers:
            nn.init.normal_(conv.weight, std=0.01)
            nn.init.zeros_(conv.bias)

    @property
    def feature_channels(self) -> int:
        """Channels of F: the encoder's last stage (2048 for ResNet-50/101)."""
        return self.in_channels[-1]

    @property
    def output_stride(self) -> int:
        """Stride of F and of the logits w.r.t. the input: the C5 stride (8 for DeepLabV2)."""
        return self.in_strides[-1]

    def fuse(self, stage_maps: Sequence[torch.Tensor]) -> torch.Tensor:
        """Stage maps (C2 first) -> F = C5 ``[N, C_5, h, w]`` (dropout applied in training if enabled)."""
        if len(stage_maps) != 4:
            raise ValueError(f"expected 4 stage maps, got {len(stage_maps)}")
        return self.dropout(stage_maps[-1])

    def classify(self, features: torch.Tensor) -> torch.Tensor:
        """Features ``[N, C_5, h, w]`` -> logits ``[N, K, h, w]``: the sum of the dilated 3x3 classifiers."""
        logits = self.classifiers[0](features)
        for conv in self.classifiers[1:]:
            logits = logits + conv(features)
        return logits

    def forward(self, stage_maps: Sequence[torch.Tensor]) -> torch.Tensor:
        """``classify(fuse(stage_maps))``: logits ``[N, K, h, w]`` at the C5 stride."""
        return self.classify(self.fuse(stage_maps))
