"""Bottleneck ResNet v1.5 encoder (He et al., 2016) with DeepLab's dilated stages, written for scribbleseg.

Stem: 7x7 convolution with stride 2, BatchNorm, ReLU, 3x3 max-pool with stride 2 (1/4 of the input).
Then 4 stages of bottleneck blocks (:mod:`scribbleseg.models.resnet.bottleneck`) with widths
``base_width * (1, 2, 4, 8)`` and outputs 4 times wider; stages 2-4 halve the resolution in their first
block. For an output stride of 16 or 8 (DeepLab's "atrous" ResNet), the stride of stage 4 (and 3) is
removed and the dilation of the following 3x3 convolutions doubles instead: the first block of a dilated
stage still sees the previous resolution, so it keeps the previous dilation, the other blocks use the
new one. With this convention the dilated network computes exactly the plain network's values on the
sub-grid ``[::k, ::k]`` of its denser maps (checked in the tests).

The module names are scribbleseg's (``stem.conv``, ``stages.2.0.conv2``, ``stages.2.0.shortcut.norm``);
:func:`~scribbleseg.models.load_encoder_weights` translates torchvision and Hugging Face files.
"""

from __future__ import annotations

import itertools
import operator
from collections.abc import Sequence

import torch
from torch import nn

from scribbleseg.errors import ConfigError
from scribbleseg.models.resnet.bottleneck import Bottleneck
from scribbleseg.models.resnet.variants import resolve_resnet_variant
from scribbleseg.models.stage_settings import four_positive, positive_int
from scribbleseg.models.weight_init import init_segformer_weights

OUTPUT_STRIDES = (8, 16, 32)
_STEM_STRIDE = 4
_STAGE_STRIDES = (1, 2, 2, 2)


class ResNetStem(nn.Module):
    """``[N, C_in, H, W]`` -> ``[N, C, H / 4, W / 4]``: conv 7x7/2, BatchNorm, ReLU, max-pool 3x3/2."""

    def __init__(self, in_channels: int, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, channels, kernel_size=7, stride=2, padding=3, bias=False)
        self.norm = nn.BatchNorm2d(channels)
        self.relu = nn.ReLU(inplace=True)
        self.pool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.relu(self.norm(self.conv(x))))


def dilation_plan(output_stride: int) -> tuple[tuple[int, int, int], ...]:
    """Per stage ``(stride, dilation of its first block, dilation of its other blocks)``.

    ``32`` -> all plain; ``16`` -> stage 4 unstrided with dilation 2; ``8`` -> stages 3 and 4 unstrided
    with dilations 2 and 4. Raises :class:`ConfigError` for other values.
    """
    if output_stride not in OUTPUT_STRIDES:
        raise ConfigError(f"output_stride must be one of {', '.join(map(str, OUTPUT_STRIDES))}, got {output_stride!r}")
    plan, reached, dilation = [], _STEM_STRIDE, 1
    for stride in _STAGE_STRIDES:
        first_dilation = dilation
        if reached * stride > output_stride:
            dilation, stride = dilation * stride, 1
        reached *= stride
        plan.append((stride, first_dilation, dilation))
    return tuple(plan)


class ResNet(nn.Module):
    """ResNet encoder: image ``[N, C_in, H, W]`` -> 4 maps ``[N, out_channels[i], H / s_i, W / s_i]``.

    ``s_i = output_strides[i]``, e.g. ``(4, 8, 8, 8)`` at ``output_stride=8`` (sizes rounded up for odd
    inputs). Build ResNet-50/101 with :meth:`from_name`, or pass ``depths`` and ``base_width`` for tiny
    test models (``ResNet(depths=(1, 1, 1, 1), base_width=8)``: outputs 32, 64, 128, 256 channels).
    ``stem_channels`` defaults to ``base_width``. Invalid settings raise :class:`ConfigError`.
    Convolutions and BatchNorm keep channels-last inputs channels-last (``model.to(memory_format=...)``).
    """

    def __init__(self, depths: Sequence[int] = (3, 4, 23, 3), base_width: int = 64, stem_channels: int | None = None,
                 output_stride: int = 32, in_channels: int = 3) -> None:
        super().__init__()
        self.depths: tuple[int, int, int, int] = four_positive("depths", depths, int)
        self.base_width = positive_int("base_width", base_width)
        self.stem_channels = positive_int("stem_channels", self.base_width if stem_channels is None else stem_channels)
        widths = tuple(self.base_width * 2**i for i in range(4))
        plan = dilation_plan(output_stride)
        self.output_stride = int(output_stride)
        # stride of each stage map w.r.t. the previous one (stage 1 includes the stem), as MiT's ``strides``
        self.strides: tuple[int, int, int, int] = tuple(s * (_STEM_STRIDE if i == 0 else 1)
                                                        for i, (s, _, _) in enumerate(plan))
        self.dilations: tuple[int, int, int, int] = tuple(d for _, _, d in plan)
        self.variant_name: str | None = None  # "resnet101" etc. when built by from_name

        self.stem = ResNetStem(in_channels, self.stem_channels)
        stages, channels = [], self.stem_channels
        for depth, width, (stride, first_dilation, dilation) in zip(self.depths, widths, plan):
            blocks = [Bottleneck(channels, width, stride=stride, dilation=first_dilation)]
            channels = width * Bottleneck.expansion
            blocks += [Bottleneck(channels, width, dilation=dilation) for _ in range(depth - 1)]
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.ModuleList(stages)
        self._out_channels = tuple(w * Bottleneck.expansion for w in widths)
        self.apply(init_segformer_weights)  # He fan-out normal convs, BN ones/zeros: ResNet's own init too

    @classmethod
    def from_name(cls, name: str, output_stride: int = 32, **overrides) -> ResNet:
        """Build ``resnet50`` or ``resnet101`` (see :data:`~scribbleseg.models.RESNET_VARIANTS`).

        ``overrides`` may replace any other constructor argument (e.g. ``in_channels``). Unknown names
        raise :class:`~scribbleseg.errors.ConfigError` listing the variants.
        """
        variant = resolve_resnet_variant(name)
        model = cls(**{"depths": variant.depths, "base_width": variant.base_width, "output_stride": output_stride,
                       **overrides})
        model.variant_name = variant.name
        return model

    @property
    def out_channels(self) -> tuple[int, int, int, int]:
        """Channels of the 4 stage maps, ``(256, 512, 1024, 2048)`` for ResNet-50/101."""
        return self._out_channels

    @property
    def output_strides(self) -> tuple[int, int, int, int]:
        """Cumulative stride of each stage map w.r.t. the input: (4, 8, 16, 32), (4, 8, 16, 16) or (4, 8, 8, 8)."""
        return tuple(itertools.accumulate(self.strides, operator.mul))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """``x [N, C_in, H, W]`` -> ``[C2, C3, C4, C5]``, map ``i`` of shape ``[N, out_channels[i], H_i, W_i]``."""
        x = self.stem(x)
        maps = []
        for stage in self.stages:
            x = stage(x)
            maps.append(x)
        return maps
