"""SegFormer's weight initialisation: truncated normal (std 0.02) for linear layers, fan-out normal
for convolutions, ones / zeros for normalisation layers, zero biases."""

from __future__ import annotations

import math

from torch import nn


def init_segformer_weights(module: nn.Module) -> None:
    """Initialise one module in place the way SegFormer does; use as ``model.apply(...)``."""
    if isinstance(module, nn.Linear):
        nn.init.trunc_normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.Conv2d):
        fan_out = module.kernel_size[0] * module.kernel_size[1] * module.out_channels // module.groups
        nn.init.normal_(module.weight, mean=0.0, std=math.sqrt(2.0 / fan_out))
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, (nn.LayerNorm, nn.BatchNorm2d, nn.GroupNorm)):
        if module.weight is not None:
            nn.init.ones_(module.weight)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
