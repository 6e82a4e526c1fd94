"""Local prototypes, eq. (1)-(3): one confidence-weighted mean feature per image and present class.

For image ``n`` and present class ``t``: ``c_t = topk(p_t)`` (eq. 1) are the ``k`` highest confidences of the
class map, ``v_t`` the features at those positions (eq. 2), and ``fp_t = norm(sum_i c_ti v_ti / sum_i c_ti)``
(eq. 3) with ``norm`` the L2 normalisation. ``k = max(1, int(topk_ratio * h * w))``.

Vectorised as a dense weight map: the top-k confidences of every (image, class) map are scattered into a
zero ``[N, K, h*w]`` tensor, absent classes are zeroed, and one batched matmul with the features
``[N, h*w, D]`` gives all weighted sums at once (measured ~7x faster than per-class loops; gathering the
top-k features to ``[N, K, k, D]`` is slower than the loops).
"""

from __future__ import annotations

import torch
from torch import Tensor


def topk_count(height: int, width: int, topk_ratio: float) -> int:
    """Number ``k`` of positions per class map used by eq. (1)-(2)."""
    return max(1, int(topk_ratio * height * width))


@torch.no_grad()
def extract_local_prototypes(
    features: Tensor, confidence: Tensor, present: Tensor, topk_ratio: float = 0.08
) -> Tensor:
    """Local prototypes ``[N, K, D]`` (float32, unit norm or zero, no gradient), eq. (1)-(3).

    Args:
        features: ``[N, D, h, w]`` fused decoder features ``F``.
        confidence: ``[N, K, h, w]`` non-negative confidence maps (see ``confidence.confidence_map``).
        present: ``[N, K]`` bool, classes present in each image; absent classes give a zero prototype.
        topk_ratio: fraction of the ``h*w`` positions used per class.

    A present class whose top-k weights sum to 0 also gives a zero prototype (never NaN).
    """
    batch, channels, height, width = features.shape
    if confidence.shape[0] != batch or confidence.shape[2:] != features.shape[2:]:
        raise ValueError(f"confidence {tuple(confidence.shape)} does not match features {tuple(features.shape)}")
    num_classes = confidence.shape[1]
    if present.shape != (batch, num_classes):
        raise ValueError(f"present {tuple(present.shape)} must be [N, K] = [{batch}, {num_classes}]")
    with torch.autocast(device_type=features.device.type, enabled=False):  # float32 even under AMP
        return _weighted_topk_means(features, confidence, present, topk_count(height, width, topk_ratio))


def _weighted_topk_means(features: Tensor, confidence: Tensor, present: Tensor, k: int) -> Tensor:
    """Dense scatter of the top-k weights + one ``bmm``; see :func:`extract_local_prototypes`."""
    scores = confidence.detach().float().flatten(2)  # [N, K, HW]
    top_values, top_positions = scores.topk(k, dim=2, sorted=False)  # [N, K, k], order irrelevant
    top_values = top_values * present.to(top_values.dtype).unsqueeze(2)
    weights = torch.zeros_like(scores).scatter_(2, top_positions, top_values)  # [N, K, HW]
    flat_features = features.detach().float().flatten(2).transpose(1, 2)  # [N, HW, D]
    weighted_sums = torch.bmm(weights, flat_features)  # [N, K, D]
    totals = top_values.sum(dim=2, keepdim=True)  # [N, K, 1]
    usable = totals > 0
    means = weighted_sums / torch.where(usable, totals, torch.ones_like(totals))
    prototypes = torch.nn.functional.normalize(means, dim=2)
    return torch.where(usable, prototypes, torch.zeros_like(prototypes))
