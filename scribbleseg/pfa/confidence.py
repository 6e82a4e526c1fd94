"""Confidence maps ``p`` of eq. (1): which pixels of a class are confident enough to form its prototype.

Two choices, both computed from the basic logits ``[N, K, h, w]`` without gradient:

* ``softmax`` (default, the paper's wording "initial prediction values as confidence scores"): class
  probabilities.
* ``minmax`` (the authors' released code, exactly): ``a = ReLU(logits)`` per image and class map, values
  below ``min(a) + 1e-5`` set to 0, then ``(a - min(a) - 1e-5) / (max(a) - min(a) + 1e-5)``. The values lie
  in ``[-1, 1)``: the zeroed ones become ``-(min(a) + 1e-5) / (range + 1e-5)`` (slightly negative), and a
  *dead* map (no positive logit anywhere, ``a = 0``) is ``-1`` everywhere. What a dead map's prototype
  becomes is ``pfa.dead_maps`` (:mod:`scribbleseg.pfa.local_prototypes`).
"""

from __future__ import annotations

import torch
from torch import Tensor

from scribbleseg.errors import ConfigError

_MINMAX_EPS = 1e-5


@torch.no_grad()
def confidence_map(logits: Tensor, kind: str = "softmax") -> Tensor:
    """Confidence ``[N, K, h, w]`` (float32, no gradient) from logits ``[N, K, h, w]``.

    ``softmax``: values in ``[0, 1]``; ``minmax``: values in ``[-1, 1)`` (see the module docstring).
    """
    logits = logits.detach().float()
    if kind == "softmax":
        return logits.softmax(dim=1)
    if kind == "minmax":
        activated = logits.relu()
        flat = activated.flatten(2)
        low = flat.amin(dim=2)[..., None, None]
        high = flat.amax(dim=2)[..., None, None]
        activated = torch.where(activated < low + _MINMAX_EPS, torch.zeros_like(activated), activated)
        return (activated - low - _MINMAX_EPS) / (high - low + _MINMAX_EPS)
    raise ConfigError(f"pfa.confidence must be 'softmax' or 'minmax', got {kind!r}")
