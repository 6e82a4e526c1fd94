"""Model complexity: parameter counts and FLOPs / MACs of one forward pass.

FLOPs come from :class:`torch.utils.flop_counter.FlopCounterMode`, which counts a multiply-add as
2 FLOPs (convolutions, matrix products, attention). Papers that quote "FLOPs" for segmentation
networks (SegFormer, the PFA paper's Tab. 3) usually report multiply-accumulates (MACs), i.e. half of
that; :class:`FlopReport` therefore carries both. Element-wise operations (norms, activations,
interpolation) are not counted by either convention.

PyTorch's counter has no formula for the CPU kernel of ``scaled_dot_product_attention``
(``_scaled_dot_product_flash_attention_for_cpu``); we register PyTorch's own SDPA formula
(:func:`torch.utils.flop_counter.sdpa_flop_count`) for it so attention is counted on CPU as on CUDA.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.utils.flop_counter as flop_counter
from torch import nn


@dataclass(frozen=True)
class FlopReport:
    """FLOPs of one forward pass for ``input_shape``; ``macs == flops / 2``."""

    flops: int
    input_shape: tuple[int, ...]

    @property
    def macs(self) -> int:
        return self.flops // 2

    @property
    def gflops(self) -> float:
        return self.flops / 1e9

    @property
    def gmacs(self) -> float:
        return self.macs / 1e9


def count_parameters(module: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters of ``module`` (each shared tensor counted once)."""
    seen: set[int] = set()
    total = 0
    for p in module.parameters():
        if id(p) in seen or (trainable_only and not p.requires_grad):
            continue
        seen.add(id(p))
        total += p.numel()
    return total


def _cpu_sdpa_flops(query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs) -> int:
    """FLOPs of the CPU flash-attention kernel, using PyTorch's generic SDPA formula."""
    return flop_counter.sdpa_flop_count(query_shape, key_shape, value_shape)


def _input_shape(input_size: int | Sequence[int], channels: int) -> tuple[int, ...]:
    """``512`` -> ``(1, C, 512, 512)``; ``(H, W)`` -> ``(1, C, H, W)``; a 4-tuple is used as is."""
    if isinstance(input_size, int):
        return (1, channels, input_size, input_size)
    size = tuple(int(s) for s in input_size)
    if len(size) == 2:
        return (1, channels, *size)
    if len(size) == 4:
        return size
    raise ValueError(f"input_size must be an int, (H, W) or (N, C, H, W), got {input_size!r}")


def count_flops(target: nn.Module | Callable[[torch.Tensor], object], input_size: int | Sequence[int],
                channels: int = 3) -> FlopReport:
    """Count the FLOPs of ``target(x)`` for a random ``x`` of ``input_size`` (no gradients).

    ``target`` is a module (run in eval mode, its mode restored afterwards) or any callable taking
    the input tensor, e.g. ``lambda x: head(encoder(x))`` (put its modules in eval mode yourself). The
    input is created on the device and with the dtype of the module's first parameter (CPU float32
    for a plain callable).
    """
    shape = _input_shape(input_size, channels)
    device, dtype = torch.device("cpu"), torch.float32
    if isinstance(target, nn.Module):
        first = next(target.parameters(), None)
        if first is not None:
            device, dtype = first.device, first.dtype
    was_training = target.training if isinstance(target, nn.Module) else None
    if isinstance(target, nn.Module):
        target.eval()
    mapping = {torch.ops.aten._scaled_dot_product_flash_attention_for_cpu: _cpu_sdpa_flops}
    try:
        with torch.no_grad(), flop_counter.FlopCounterMode(display=False, custom_mapping=mapping) as counter:
            target(torch.randn(shape, device=device, dtype=dtype))
    finally:
        if was_training:
            target.train()
    return FlopReport(flops=int(counter.get_total_flops()), input_shape=shape)
