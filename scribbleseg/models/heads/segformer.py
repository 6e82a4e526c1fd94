"""SegFormer's all-MLP decoder, split into ``fuse`` (features F) and ``classify`` (logits).

``fuse``: each stage map goes through its own linear projection to ``embed_dim`` channels (a 1x1
convolution, identical to SegFormer's per-token MLP), is upsampled bilinearly to the stage-1 size, the
four maps are concatenated in SegFormer's order stage4, stage3, stage2, stage1, fused by a 1x1
convolution without bias, BatchNorm and ReLU, and finally channel dropout (``Dropout2d``, active only
in training). ``classify`` is a plain 1x1 convolution, so PFA can send augmented features through the
very same classifier.

Initialisation (``init``): ``segformer`` (default) re-draws every layer the SegFormer way
(:func:`scribbleseg.models.weight_init.init_segformer_weights`: the projections normal with std
``sqrt(2 / E)``, zero biases) and the classifier with std 0.01. ``torch_default`` keeps PyTorch's default
initialisation of the projections and the classifier (uniform in ``±1 / sqrt(fan_in)``, biases included; a
1x1 convolution draws exactly what ``nn.Linear`` draws), as the authors' released PFA code. The fuse
convolution (Kaiming fan-out normal, which mmcv's ``ConvModule`` also gives it there) and BatchNorm (ones,
zeros) are the same either way.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from scribbleseg.models.weight_init import init_segformer_weights


class SegFormerHead(nn.Module):
    """Stage maps ``[N, C_i, H_i, W_i]`` -> features ``[N, E, H_1, W_1]`` -> logits ``[N, K, H_1, W_1]``.

    ``in_channels`` / ``in_strides`` are the encoder's ``out_channels`` / ``output_strides``; only the
    stage-1 stride matters (it is ``output_stride``).
    """

    def __init__(self, in_channels: Sequence[int], num_classes: int, embed_dim: int = 256,
                 dropout: float = 0.1, in_strides: Sequence[int] = (4, 8, 16, 32), init: str = "segformer") -> None:
        super().__init__()
        self.in_channels = tuple(int(c) for c in in_channels)
        self.in_strides = tuple(int(s) for s in in_strides)  # the encoder's output_strides
        if len(self.in_strides) != len(self.in_channels):
            raise ValueError(f"in_strides {self.in_strides} must have one entry per stage of in_channels "
                             f"{self.in_channels}")
        self.num_classes = int(num_classes)
        self.embed_dim = int(embed_dim)
        if self.num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        self.projections = nn.ModuleList(nn.Conv2d(c, self.embed_dim, kernel_size=1) for c in self.in_channels)
        self.fuse_conv = nn.Conv2d(len(self.in_channels) * self.embed_dim, self.embed_dim, kernel_size=1,
                                   bias=False)
        self.fuse_norm = nn.BatchNorm2d(self.embed_dim)
        self.fuse_act = nn.ReLU(inplace=True)
        self.dropout = nn.Dropout2d(dropout)
        self.classifier = nn.Conv2d(self.embed_dim, self.num_classes, kernel_size=1)
        if init == "segformer":
            self.apply(init_segformer_weights)
            nn.init.normal_(self.classifier.weight, std=0.01)
        elif init == "torch_default":  # projections and classifier as constructed; BatchNorm's default is ones/zeros
            init_segformer_weights(self.fuse_conv)
        else:
            raise ValueError(f"init must be 'segformer' or 'torch_default', got {init!r}")

    @property
    def feature_channels(self) -> int:
        """Channels ``E`` of the fused features ``F`` (the decoder contract shared by every decoder)."""
        return self.embed_dim

    @property
    def output_stride(self) -> int:
        """Stride of F and of the logits w.r.t. the input: the stage-1 stride (4 for MiT)."""
        return self.in_strides[0]

    def fuse(self, stage_maps: Sequence[torch.Tensor]) -> torch.Tensor:
        """Stage maps (stage 1 first) -> fused features ``F [N, E, H_1, W_1]`` (BN, ReLU, dropout applied)."""
        if len(stage_maps) != len(self.projections):
            raise ValueError(f"expected {len(self.projections)} stage maps, got {len(stage_maps)}")
        size = stage_maps[0].shape[-2:]
        projected = []
        for stage_map, projection in zip(reversed(stage_maps), reversed(self.projections)):
            p = projection(stage_map)
            if p.shape[-2:] != size:
                p = F.interpolate(p, size=size, mode="bilinear", align_corners=False)
            projected.append(p)
        fused = self.fuse_act(self.fuse_norm(self.fuse_conv(torch.cat(projected, dim=1))))
        return self.dropout(fused)

    def classify(self, features: torch.Tensor) -> torch.Tensor:
        """Features ``[N, E, H, W]`` -> logits ``[N, K, H, W]`` (1x1 convolution)."""
        return self.classifier(features)

    def forward(self, stage_maps: Sequence[torch.Tensor]) -> torch.Tensor:
        """``classify(fuse(stage_maps))``: logits ``[N, K, H_1, W_1]``."""
        return self.classify(self.fuse(stage_maps))
