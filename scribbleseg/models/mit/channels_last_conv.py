"""A ``Conv2d`` that runs in channels-last memory format, for maps that are views of tokens.

Token tensors ``[N, L, C]`` viewed as ``[N, C, H, W]`` are already channels-last in memory. Running the
convolution with a channels-last weight keeps it that way: no layout copies before or after, and on
CPU oneDNN's channels-last depth-wise kernel is several times faster than the NCHW one (measured in
``benchmarks/bench_models_forward.py``). The parameter itself stays contiguous, so state dicts and
safetensors files are unaffected; only a tiny per-call copy of the weight is made.
"""

from __future__ import annotations

import torch
from torch import nn


class ChannelsLastConv2d(nn.Conv2d):
    """``nn.Conv2d`` (same parameters and state-dict keys) computed in channels-last layout.

    Input ``[N, C_in, H, W]`` in any layout; output ``[N, C_out, H', W']`` in channels-last layout, so
    ``out.flatten(2).transpose(1, 2)`` is a contiguous token tensor ``[N, H'W', C_out]`` without a copy.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight = self.weight.to(memory_format=torch.channels_last)  # restrides even when C_in / groups == 1
        x = x.contiguous(memory_format=torch.channels_last)  # no copy for token views
        return self._conv_forward(x, weight, self.bias)
