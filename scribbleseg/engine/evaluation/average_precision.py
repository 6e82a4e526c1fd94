"""Average precision of a multi-label image classifier (the mAP of PFA's Tab. 4: Q2L 96.6, MCAR 94.3).

``average_precision(scores [N], targets [N])`` is the area under the precision-recall curve as a step
function (the definition of scikit-learn's ``average_precision_score`` and of the multi-label papers):
``AP = sum_k (R_k - R_{k-1}) P_k`` over the distinct score thresholds in decreasing order, so tied scores
form one step. NaN when the class has no positive image.
"""

from __future__ import annotations

import numpy as np

__all__ = ["average_precision", "per_class_average_precision"]


def average_precision(scores: np.ndarray, targets: np.ndarray) -> float:
    """AP of one class: ``scores [N]`` float, ``targets [N]`` bool (see the module docstring)."""
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    targets = np.asarray(targets, dtype=bool).reshape(-1)
    if scores.shape != targets.shape:
        raise ValueError(f"scores {scores.shape} and targets {targets.shape} differ")
    positives = int(targets.sum())
    if positives == 0:
        return float("nan")
    order = np.argsort(-scores, kind="stable")
    sorted_scores, hits = scores[order], targets[order]
    last_of_tie = np.r_[sorted_scores[1:] != sorted_scores[:-1], True]  # end of each distinct threshold
    true_positives = np.cumsum(hits)[last_of_tie]
    predicted = np.arange(1, scores.size + 1)[last_of_tie]
    precision = true_positives / predicted
    recall = true_positives / positives
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def per_class_average_precision(scores: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """``[K]`` AP per column of ``scores [N, K]`` against ``targets [N, K]`` (NaN: class never present)."""
    scores = np.asarray(scores, dtype=np.float64)
    targets = np.asarray(targets, dtype=bool)
    if scores.ndim != 2 or scores.shape != targets.shape:
        raise ValueError(f"scores {scores.shape} and targets {targets.shape} must be equal [N, K]")
    return np.array([average_precision(scores[:, k], targets[:, k]) for k in range(scores.shape[1])])
