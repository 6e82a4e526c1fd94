"""Image-level class labels derived from label maps (no ``cls_labels.npy`` to download).

A class is *present* in an image when at least one pixel of its label map (scribble or dense ground
truth) carries that class id; background counts as a class like any other. Ignore pixels never count.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from scribbleseg.data.dataset_info import DatasetInfo, SampleFiles
from scribbleseg.data.image_io import read_label_map


def class_pixel_counts(label: np.ndarray, num_classes: int) -> np.ndarray:
    """``[K]`` int64 pixel count of each class id in ``label`` ``[H, W]`` (ignore/other values skipped)."""
    flat = label.reshape(-1).astype(np.int64)
    flat = flat[(flat >= 0) & (flat < num_classes)]
    return np.bincount(flat, minlength=num_classes)[:num_classes]


def classes_present(label: np.ndarray | torch.Tensor, num_classes: int) -> torch.Tensor:
    """``[K]`` bool: which class ids occur in ``label`` ``[H, W]`` (values >= K, e.g. 255, are ignored)."""
    tensor = torch.as_tensor(label).reshape(-1).long()
    tensor = tensor[(tensor >= 0) & (tensor < num_classes)]
    return torch.bincount(tensor, minlength=num_classes)[:num_classes] > 0


def image_level_labels(samples: Sequence[SampleFiles], info: DatasetInfo,
                       source: str = "auto") -> np.ndarray:
    """``[N, K]`` bool image-level labels of ``samples``, computed from the label files at call time.

    Args:
        source: ``"scribble"``, ``"mask"`` (dense ground truth) or ``"auto"`` (mask when the sample
            has one, else scribble).
    """
    labels = np.zeros((len(samples), info.num_classes), dtype=bool)
    for row, sample in enumerate(samples):
        path = sample.scribble if source == "scribble" else sample.mask
        if source == "auto":
            path = sample.mask if sample.mask is not None and sample.mask.is_file() else sample.scribble
        if path is None:
            continue
        label = read_label_map(path, info.num_classes, info.ignore_index)
        labels[row] = class_pixel_counts(label, info.num_classes) > 0
    return labels
