"""Test-time views of a batch of images of any sizes, and mapping logits back to each image.

1. **Views.** For every scale ``s`` (and its horizontal mirror when flipping), each image is resized to
   ``round(s * H_i) x round(s * W_i)`` (bilinear) and the batch is zero-padded at the bottom / right to a
   common size that is a multiple of 32 (zeros *after* normalisation = the ImageNet mean colour). With
   one image per batch the padding is below 32 pixels; with several, images are padded to the largest.
2. **Back to the image.** Logits ``[N, K, h, w]`` of a view (at the decoder's resolution, whatever its
   output stride) are upsampled to the padded size, cropped back to each image's region, un-mirrored,
   resized to ``H_i x W_i`` and turned into softmax probabilities; :func:`accumulate` sums the views.
"""

from __future__ import annotations

import contextlib
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

PAD_MULTIPLE = 32
# The multi-scale + flip protocol's scales (eval --ms-flip, predict --ms-flip).
DEFAULT_MS_SCALES = (0.5, 0.75, 1.0, 1.25, 1.5, 1.75)

Size = tuple[int, int]


def pad_batch(images: Sequence[Tensor], multiple: int = PAD_MULTIPLE) -> tuple[Tensor, list[Size]]:
    """Stack ``[3, H_i, W_i]`` images into ``[N, 3, H_p, W_p]``, zero-padded at the bottom / right.

    ``H_p`` / ``W_p`` are the largest height / width rounded up to a multiple of ``multiple``. Returns the
    batch and the original ``(H_i, W_i)`` of each image.
    """
    if not images:
        raise ValueError("pad_batch needs at least one image")
    sizes = [(int(image.shape[-2]), int(image.shape[-1])) for image in images]
    height = -(-max(h for h, _ in sizes) // multiple) * multiple
    width = -(-max(w for _, w in sizes) // multiple) * multiple
    if all(size == sizes[0] for size in sizes):
        stacked = torch.stack(list(images))
        return F.pad(stacked, (0, width - sizes[0][1], 0, height - sizes[0][0])), sizes
    batch = images[0].new_zeros((len(images), images[0].shape[0], height, width))
    for index, (image, (h, w)) in enumerate(zip(images, sizes)):
        batch[index, :, :h, :w] = image
    return batch, sizes


def view_batch(images: Sequence[Tensor], scale: float, mirrored: bool) -> tuple[Tensor, list[Size]]:
    """Images resized by ``scale``, padded into one batch (mirrored if asked); returns it and the resized sizes."""
    if scale == 1.0:
        batch, sizes = pad_batch(images)
    else:
        resized = []
        for image in images:
            h, w = image.shape[-2:]
            size = (max(1, round(h * scale)), max(1, round(w * scale)))
            resized.append(F.interpolate(image[None], size=size, mode="bilinear", align_corners=False)[0])
        batch, sizes = pad_batch(resized)
    return (batch.flip(-1) if mirrored else batch), sizes


def image_regions(logits: Tensor, padded_size: Size, view_sizes: Sequence[Size], image_sizes: Sequence[Size],
                  flipped: bool = False) -> list[Tensor]:
    """``[N, K, h, w]`` logits of a padded (mirrored) view -> N logit maps ``[1, K, H_i, W_i]`` (float32)."""
    padded = F.interpolate(logits.float(), size=tuple(padded_size), mode="bilinear", align_corners=False)
    if flipped:  # the view was the mirrored padded batch: mirror back, the image is top-left again
        padded = padded.flip(-1)
    regions = []
    for index, ((h, w), size) in enumerate(zip(view_sizes, image_sizes)):
        region = padded[index:index + 1, :, :h, :w]
        if (h, w) != tuple(size):
            region = F.interpolate(region, size=tuple(size), mode="bilinear", align_corners=False)
        regions.append(region)
    return regions


def to_image_probabilities(logits: Tensor, padded_size: Size, view_sizes: Sequence[Size],
                           image_sizes: Sequence[Size], flipped: bool) -> list[Tensor]:
    """``[N, K, h, w]`` logits of a view -> N softmax probability maps ``[K, H_i, W_i]``."""
    return [region[0].softmax(dim=0) for region in image_regions(logits, padded_size, view_sizes, image_sizes,
                                                                 flipped)]


def accumulate(total: list[Tensor] | None, maps: list[Tensor]) -> list[Tensor]:
    """Per-image running sum of probability maps."""
    if total is None:
        return maps
    return [running + new for running, new in zip(total, maps)]


def autocast(device: torch.device, enabled: bool):
    """bf16 autocast on CPU, fp16 on CUDA, or nothing."""
    if not enabled:
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if device.type == "cpu" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)
