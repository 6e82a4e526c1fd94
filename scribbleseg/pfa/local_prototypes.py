"""Local prototypes, eq. (1)-(3): one confidence-weighted mean feature per image and present class.

For image ``n`` and present class ``t``: ``c_t = topk(p_t)`` (eq. 1) are the ``k`` highest confidences of the
class map, ``v_t`` the features at those positions (eq. 2), and ``fp_t = norm(sum_i c_ti v_ti / sum_i c_ti)``
(eq. 3) with ``norm`` the L2 normalisation. ``k = max(1, int(topk_ratio * h * w))``.

Vectorised as a dense weight map: the top-k confidences of each (image, class) map are scattered into a
zero ``[N, C, h*w]`` tensor and one batched matmul with the features ``[N, h*w, D]`` gives all weighted
sums at once (gathering the top-k features to ``[N, K, k, D]`` is slower than per-class loops).

``compact=True`` (default) first packs each image's present classes into ``C = max_n |present_n|`` rows
(a cumsum rank, one gather), so top-k and matmul run on the present maps only instead of all ``K`` (about
``K / C`` times less work: 21 vs 6 maps per image on VOC). Knowing ``C`` costs one host sync, which is free
on a CPU; on an accelerator the caller passes the static bound ``max_present = K`` instead
(:func:`scribbleseg.pfa.sync_policy.count_bound`), and a bound ``>= K`` runs the dense path on all ``K``
maps without any sync (``compact=False`` does the same). Both give the same prototypes.

Dead maps (``dead_maps``). A present class whose top-k weights sum to ``<= 0`` has no confident position:
with the ``minmax`` confidence this is a map without a single positive logit (every weight ``-1``). ``skip``
(default) gives it a zero prototype, which the method keeps out of the attention and the bank. ``released``
does what the authors' code does: the weighted mean all the same (for a dead map the plain mean of the
features at the top-k tie positions), L2-normalised, so it is attended to and written into the bank. A sum of
exactly 0 gives a zero prototype either way (the released code: NaN).
"""

from __future__ import annotations

import torch
from torch import Tensor

from scribbleseg.pfa.sync_policy import count_max, float32_region

__all__ = ["DEAD_MAPS", "count_max", "extract_local_prototypes", "topk_count"]

DEAD_MAPS = ("skip", "released")


def topk_count(height: int, width: int, topk_ratio: float) -> int:
    """Number ``k`` of positions per class map used by eq. (1)-(2)."""
    return max(1, int(topk_ratio * height * width))


@torch.no_grad()
def extract_local_prototypes(
    features: Tensor,
    confidence: Tensor,
    present: Tensor,
    topk_ratio: float = 0.08,
    compact: bool = True,
    max_present: int | None = None,
    dead_maps: str = "skip",
) -> Tensor:
    """Local prototypes ``[N, K, D]`` (float32, unit norm or zero, no gradient), eq. (1)-(3).

    Args:
        features: ``[N, D, h, w]`` fused decoder features ``F``.
        confidence: ``[N, K, h, w]`` confidence maps (see ``confidence.confidence_map``; minmax may be < 0).
        present: ``[N, K]`` bool, classes present in each image; absent classes give a zero prototype.
        topk_ratio: fraction of the ``h*w`` positions used per class.
        compact: work on the present maps only instead of all ``K`` maps.
        max_present: ``present.sum(1).max()`` or any bound on it the caller knows (else computed: one host
            sync); a bound ``>= K`` takes the dense path.
        dead_maps: ``skip`` or ``released``: a present class whose top-k weights sum to ``<= 0`` gives a
            zero prototype, or the released code's normalised weighted mean (see the module docstring).

    A present class whose top-k weights sum to exactly 0 gives a zero prototype (never NaN).
    """
    if dead_maps not in DEAD_MAPS:
        raise ValueError(f"dead_maps must be one of {DEAD_MAPS}, got {dead_maps!r}")
    batch, channels, height, width = features.shape
    if confidence.shape[0] != batch or confidence.shape[2:] != features.shape[2:]:
        raise ValueError(f"confidence {tuple(confidence.shape)} does not match features {tuple(features.shape)}")
    num_classes = confidence.shape[1]
    if present.shape != (batch, num_classes):
        raise ValueError(f"present {tuple(present.shape)} must be [N, K] = [{batch}, {num_classes}]")
    k = topk_count(height, width, topk_ratio)
    present = present.to(device=confidence.device, dtype=torch.bool)
    with float32_region(features.device):  # float32 even under AMP
        rows = num_classes if not compact else max_present if max_present is not None else count_max(present)
        if rows >= num_classes:  # nothing to pack: all K maps, no sync
            return _weighted_topk_means(features, confidence.flatten(2), present, k, dead_maps)
        rank = present.long().cumsum(1) - 1  # [N, K]: row of a present class among its image's classes
        if rows == 0:
            return features.new_zeros(batch, num_classes, channels, dtype=torch.float32)
        row_ids = torch.arange(rows, device=present.device)
        # class_of[n, r] = the class packed into row r of image n (rows beyond the image's count: unused)
        class_of = torch.zeros(batch, rows + 1, dtype=torch.long, device=present.device)
        class_ids = torch.arange(num_classes, device=present.device).expand(batch, -1)
        class_of.scatter_(1, torch.where(present, rank, rows), class_ids)
        class_of = class_of[:, :rows]
        used = row_ids < present.sum(1, keepdim=True)  # [N, C]
        packed = confidence.flatten(2).gather(1, class_of.unsqueeze(2).expand(-1, -1, height * width))
        means = _weighted_topk_means(features, packed, used, k, dead_maps)  # [N, C, D]
        unpacked = means.gather(1, rank.clamp(min=0).unsqueeze(2).expand(-1, -1, channels))  # [N, K, D]
        return torch.where(present.unsqueeze(2), unpacked, torch.zeros_like(unpacked))


def _weighted_topk_means(features: Tensor, scores: Tensor, used: Tensor, k: int, dead_maps: str) -> Tensor:
    """Normalised top-k weighted means ``[N, C, D]`` of ``scores [N, C, HW]`` rows where ``used [N, C]``.

    Rows whose top-k weights sum to ``<= 0`` (``skip``) or to exactly 0 (``released``) give zero.

    Dense scatter of the top-k weights into ``[N, C, HW]`` + one ``bmm`` with ``features [N, D, h, w]``.
    """
    scores = scores.detach().float()
    top_values, top_positions = scores.topk(k, dim=2, sorted=False)  # [N, C, k], order irrelevant
    top_values = top_values * used.to(top_values.dtype).unsqueeze(2)
    weights = torch.zeros_like(scores).scatter_(2, top_positions, top_values)  # [N, C, HW]
    flat_features = features.detach().float().flatten(2).transpose(1, 2)  # [N, HW, D]
    weighted_sums = torch.bmm(weights, flat_features)  # [N, C, D]
    totals = top_values.sum(dim=2, keepdim=True)  # [N, C, 1]
    usable = totals > 0 if dead_maps == "skip" else totals != 0
    means = weighted_sums / torch.where(usable, totals, torch.ones_like(totals))
    prototypes = torch.nn.functional.normalize(means, dim=2)
    return torch.where(usable, prototypes, torch.zeros_like(prototypes))
