"""Gated CRF loss (Obukhov, Georgoulis, Dai, Van Gool, 2019, arXiv:1906.04651), a regulariser for the
pixels that scribbles leave unlabelled. docs/gated_crf.md holds the derivation, the defaults and costs.

On a grid of ``h' x w'`` cells (the image downscaled by ``settings.downscale``), with class probabilities
``p_i`` (``[K]``, on the simplex), gate ``g_i`` (1 = a cell made only of valid image pixels) and

    k_ij = sum_kernels weight * exp(-|xy_i - xy_j|^2 / (2 xy^2) - |rgb_i - rgb_j|^2 / (2 rgb^2))

(``xy`` in grid cells, ``rgb`` in 0..255 grey levels; a kernel without ``rgb`` is XY only), the loss is the
Potts energy over every ordered pair ``i != j`` with ``j`` in the ``(2r+1)^2`` window around ``i``,
clipped to the image, divided by the number of valid cells of the batch:

    L = 1 / max(1, sum_i g_i) * sum_i sum_{j in window(i), j != i} g_i g_j k_ij (1 - p_i . p_j)

``1 - p_i . p_j`` is the probability that ``i`` and ``j`` take different labels. The loss is 0 exactly when
the probabilities are one-hot and constant; a cut of the prediction costs little where the colour changes
across it, and much inside uniformly coloured regions.

Resolution (as the authors' released code, which evaluates the loss on the decoder's 1/4-resolution
output): images are area-averaged to the grid, and the gate keeps a cell only if all its pixels are
valid. Predictions are resized to the grid (their probabilities: bilinear when enlarged, area when
shrunk), so ``xy`` and ``radius`` mean the same image distance for a 1/4 (SegFormer) or 1/8 (DeepLab)
decoder.

The window is evaluated as shifted views of the grid: ``w_ij = g_i g_j k_ij`` is symmetric, so each of
the ``((2r+1)^2 - 1) / 2`` offsets ``o`` of one half of the window serves the pairs ``(i, i+o)`` and
``(i+o, i)`` at once. The forward accumulates ``m_i = sum_j w_ij p_j``; the gradient is ``-2 m`` in closed
form (``_PottsEnergy``), so the backward costs one multiply. An ``F.unfold`` of the probabilities would
materialise ``[N, K, (2r+1)^2, h', w']`` (1.3 GB for batch 8, 21 classes, 128^2, r = 5) and is slower
(``benchmarks/bench_methods_gated_crf.py``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from pydantic import ConfigDict, Field
from torch import Tensor

from scribbleseg.models.settings_base import StrictSettings


class GatedCRFKernel(StrictSettings):
    """One Gaussian kernel of the sum ``k_ij``: ``weight * exp(-dxy^2 / (2 xy^2) - drgb^2 / (2 rgb^2))``.

    Attributes:
        weight: the kernel's weight in the sum.
        xy: spatial bandwidth in grid cells (image pixels / ``downscale``).
        rgb: colour bandwidth in 0..255 grey levels; ``None`` makes the kernel XY only (a smoothness term).
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)
    section = "gated_crf.kernels"

    weight: float = Field(gt=0)
    xy: float = Field(gt=0)
    rgb: float | None = Field(default=None, gt=0)


def default_kernels() -> list[GatedCRFKernel]:
    """The authors' example composition (docstring of their loss module): 0.9 RGBXY + 0.1 XY, both ``xy = 6``.

    Their ``rgb = 0.1`` is in ImageNet-normalised units (their VOC images are normalised by the ImageNet
    mean / std); 0.1 std is ``0.1 * 255 * 0.226`` (mean of the three stds) = 5.76 grey levels here.
    """
    return [GatedCRFKernel(weight=0.9, xy=6.0, rgb=5.76), GatedCRFKernel(weight=0.1, xy=6.0)]


class GatedCRFSettings(StrictSettings):
    """Settings of the Gated CRF regulariser: the ``gated_crf`` section of the config.

    Attributes:
        weight: lambda of ``total = pCE + lambda * gated_crf`` (released code's default: 0.1).
        kernels: the Gaussian kernels summed into ``k_ij`` (see :func:`default_kernels`).
        radius: half-size ``r`` of the ``(2r+1)^2`` window in grid cells (released default: 5).
        downscale: image pixels per grid cell along each axis; the loss runs on ``H/downscale x W/downscale``
            (4: the 1/4-resolution decoder output of the released code and of SegFormer).
        start_iter: training iterations before the loss is switched on (the released code waits 0.5 % of
            training, 450 of 90k iterations, so the prediction first learns from the scribbles). The
            trainer reads it; :func:`gated_crf_loss` does not.
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)
    section = "gated_crf"

    weight: float = Field(default=0.1, ge=0)
    kernels: list[GatedCRFKernel] = Field(default_factory=default_kernels, min_length=1)
    radius: int = Field(default=5, ge=1)
    downscale: int = Field(default=4, ge=1)
    start_iter: int = Field(default=0, ge=0)


def gated_crf_loss(predictions: Tensor, images: Tensor, settings: GatedCRFSettings, valid: Tensor | None = None,
                   *, mean: Sequence[float], std: Sequence[float], from_logits: bool = True) -> Tensor:
    """Gated CRF energy of ``predictions`` on ``images`` (module docstring); a scalar with a graph.

    Args:
        predictions: ``[N, K, h, w]`` logits (``from_logits``, softmax over ``K``) or probabilities, at any
            resolution; resized to the grid when it differs.
        images: ``[N, 3, H, W]`` normalised as in training, ``(rgb / 255 - mean) / std``; ``H`` and ``W``
            must be multiples of ``settings.downscale``. No gradient flows into them.
        settings: kernels, radius and downscale (``weight`` and ``start_iter`` are the caller's).
        valid: ``[N, H, W]`` bool, False for padding / ignored pixels, which neither send nor receive;
            ``None``: all valid.
        mean, std: the three per-channel values (0..1 scale) the images were normalised with.
        from_logits: ``predictions`` are logits (True) or probabilities on the simplex (False).

    Returns:
        float32 scalar (float64 for float64 predictions), computed in that precision even under autocast;
        0 with a graph when no cell is valid.
    """
    grid = _check_inputs(predictions, images, valid, settings.downscale, mean, std)
    dtype = torch.promote_types(predictions.dtype, torch.float32)
    with torch.autocast(device_type=predictions.device.type, enabled=False):
        probs = predictions.to(dtype)
        probs = probs.softmax(1) if from_logits else probs
        probs = _resize_probabilities(probs, grid)
        rgb = _grid_rgb(images.detach().to(device=probs.device, dtype=dtype), settings.downscale, mean, std)
        gate = _grid_gate(valid, settings.downscale, probs)
        energy = _PottsEnergy.apply(probs, rgb, gate, settings.kernels, settings.radius)
        return energy / gate.sum().clamp(min=1.0)


class _PottsEnergy(torch.autograd.Function):
    """``sum_i sum_j w_ij (1 - p_i . p_j)`` over ordered window pairs, ``w_ij = g_i g_j k_ij``, and its gradient.

    With the messages ``m_i = sum_j w_ij p_j`` ``[N, K, h, w]`` and degrees ``s_i = sum_j w_ij`` ``[N, 1, h, w]``
    the energy is ``sum_i (s_i - p_i . m_i)`` and, ``w`` being symmetric, its gradient is ``-2 m``: one pass
    over the offsets in the forward, none in the backward, no autograd graph per offset.
    """

    @staticmethod
    def forward(ctx, probs: Tensor, rgb: Tensor, gate: Tensor, kernels: list[GatedCRFKernel],
                radius: int) -> Tensor:
        grid = tuple(probs.shape[-2:])
        message = torch.zeros_like(probs)
        degree = torch.zeros_like(gate)
        for dy, dx in _half_window(radius, grid):
            here, there = _pair_slices(dy, dx, grid)
            weight = _kernel(rgb[here] - rgb[there], dy * dy + dx * dx, kernels) * gate[here] * gate[there]
            message[here].addcmul_(weight, probs[there])
            message[there].addcmul_(weight, probs[here])
            degree[here] += weight
            degree[there] += weight
        ctx.save_for_backward(message)
        # per cell first, so that a constant one-hot prediction gives exactly 0 (m_i = s_i e_c bit for bit)
        return (degree - (probs * message).sum(1, keepdim=True)).sum()

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad: Tensor):
        (message,) = ctx.saved_tensors
        return -2.0 * grad * message, None, None, None, None


def _check_inputs(predictions: Tensor, images: Tensor, valid: Tensor | None, downscale: int,
                  mean: Sequence[float], std: Sequence[float]) -> tuple[int, int]:
    """Shape checks (``ValueError`` naming the argument); returns the grid size ``(H/downscale, W/downscale)``."""
    if predictions.dim() != 4 or predictions.shape[1] < 1:
        raise ValueError(f"predictions must be [N, K, h, w], got {tuple(predictions.shape)}")
    if images.dim() != 4 or images.shape[1] != 3 or images.shape[0] != predictions.shape[0]:
        raise ValueError(f"images must be [N, 3, H, W] with N={predictions.shape[0]}, got {tuple(images.shape)}")
    height, width = images.shape[-2:]
    if valid is not None and tuple(valid.shape) != (images.shape[0], height, width):
        raise ValueError(f"valid must be [N, H, W] = {(images.shape[0], height, width)}, got {tuple(valid.shape)}")
    if height % downscale or width % downscale:
        raise ValueError(f"image size {height}x{width} is not a multiple of gated_crf.downscale={downscale}")
    if len(mean) != 3 or len(std) != 3 or min(std) <= 0:
        raise ValueError(f"mean and std must be 3 values each (std > 0), got mean={mean!r}, std={std!r}")
    return height // downscale, width // downscale


def _resize_probabilities(probs: Tensor, grid: tuple[int, int]) -> Tensor:
    """``[N, K, h, w]`` probabilities on the grid: identity, area average (shrinking) or bilinear."""
    if tuple(probs.shape[-2:]) == grid:
        return probs
    if probs.shape[-2] >= grid[0] and probs.shape[-1] >= grid[1]:
        return F.interpolate(probs, size=grid, mode="area")
    return F.interpolate(probs, size=grid, mode="bilinear", align_corners=False)


def _grid_rgb(images: Tensor, downscale: int, mean: Sequence[float], std: Sequence[float]) -> Tensor:
    """``[N, 3, H, W]`` normalised images -> ``[N, 3, h', w']`` cell means in 0..255 grey levels."""
    cells = F.avg_pool2d(images, downscale) if downscale > 1 else images
    scale = images.new_tensor([255.0 * s for s in std]).view(1, 3, 1, 1)
    offset = images.new_tensor([255.0 * m for m in mean]).view(1, 3, 1, 1)
    return cells * scale + offset


def _grid_gate(valid: Tensor | None, downscale: int, like: Tensor) -> Tensor:
    """``[N, 1, h', w']`` gate: 1 for a cell whose pixels are all valid, else 0 (all 1 without ``valid``)."""
    if valid is None:
        return like.new_ones(like.shape[0], 1, *like.shape[-2:])
    invalid = (~valid.to(device=like.device, dtype=torch.bool)).to(like.dtype).unsqueeze(1)
    if downscale > 1:
        invalid = F.max_pool2d(invalid, downscale)
    return 1.0 - invalid


def _half_window(radius: int, grid: tuple[int, int]) -> list[tuple[int, int]]:
    """One offset ``(dy, dx)`` of each ``{o, -o}`` pair of the window, without 0 and offsets off the grid."""
    return [(dy, dx) for dy in range(0, min(radius, grid[0] - 1) + 1)
            for dx in range(-min(radius, grid[1] - 1), min(radius, grid[1] - 1) + 1) if dy > 0 or dx > 0]


def _pair_slices(dy: int, dx: int, grid: tuple[int, int]) -> tuple[tuple[slice, ...], tuple[slice, ...]]:
    """Index tuples of the cells ``i`` and their partners ``j = i + (dy, dx)`` that lie on the grid."""
    height, width = grid
    here = (..., slice(max(0, -dy), height - max(0, dy)), slice(max(0, -dx), width - max(0, dx)))
    there = (..., slice(max(0, dy), height + min(0, dy)), slice(max(0, dx), width + min(0, dx)))
    return here, there


def _kernel(rgb_difference: Tensor, squared_distance: int, kernels: list[GatedCRFKernel]) -> Tensor:
    """``[N, 1, h, w]`` sum of the Gaussian kernels for one offset, from the ``[N, 3, h, w]`` colour difference."""
    colour = rgb_difference.square().sum(1, keepdim=True)
    total = rgb_difference.new_zeros(())
    for kernel in kernels:
        spatial = math.exp(-0.5 * squared_distance / kernel.xy ** 2)
        if kernel.rgb is None:
            total = total + kernel.weight * spatial
        else:
            total = total + (kernel.weight * spatial) * torch.exp(colour * (-0.5 / kernel.rgb ** 2))
    return total.expand_as(colour)
