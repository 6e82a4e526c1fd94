"""Confidence maps ``p`` of eq. (1): which pixels of a class are confident enough to form its prototype.

Two choices, both computed from the basic logits ``[N, K, h, w]`` without gradient:

* ``softmax`` (default, the paper's wording "initial prediction values as confidence scores"): class
  probabilities.
* ``minmax`` (the authors' released code): ``ReLU(logits)`` min-max normalised per image and class map to
  ``[0, 1]``. The released code maps values below ``min + 1e-5`` to a small negative number; here they are
  clamped to 0, which keeps the same top-k order and keeps every weight non-negative.
"""

from __future__ import annotations

import torch
from torch import Tensor

from scribbleseg.errors import ConfigError

_MINMAX_EPS = 1e-5


@torch.no_grad()
def confidence_map(logits: Tensor, kind: str = "softmax") -> Tensor:
    """Confidence ``[N, K, h, w]`` (float32, no gradient, values in ``[0, 1]``) from logits ``[N, K, h, w]``."""
    logits = logits.detach().float()
    if kind == "softmax":
        return logits.softmax(dim=1)
    if kind == "minmax":
        activated = logits.relu()
        flat = activated.flatten(2)
        low = flat.amin(dim=2)[..., None, None]
        high = flat.amax(dim=2)[..., None, None]
        return ((activated - low) / (high - low + _MINMAX_EPS)).clamp_(min=0.0)
    raise ConfigError(f"pfa.confidence must be 'softmax' or 'minmax', got {kind!r}")
