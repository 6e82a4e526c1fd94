"""Summary statistics of a scanned data set (images, classes per image, scribbled pixels per class)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from scribbleseg.data.dataset_info import DatasetInfo
from scribbleseg.data.validation import DatasetScan


@dataclass
class DatasetStats:
    """Aggregates over the readable samples of a :class:`DatasetScan`.

    Attributes:
        num_images: readable images.
        total_pixels: sum of H * W over them.
        images_without_scribble: images whose (valid) scribble file has no labelled pixel.
        classes_per_image_mean: mean number of classes present in the scribbles.
        class_images: ``[K]`` images whose scribble contains the class.
        class_scribbled_pixels: ``[K]`` scribbled pixels per class.
        class_mask_pixels: ``[K]`` dense-GT pixels per class (zeros without masks).
    """

    num_images: int
    total_pixels: int
    images_without_scribble: int
    classes_per_image_mean: float
    class_images: np.ndarray
    class_scribbled_pixels: np.ndarray
    class_mask_pixels: np.ndarray

    @property
    def scribbled_fraction(self) -> np.ndarray:
        """``[K]`` scribbled pixels of each class / all image pixels."""
        return self.class_scribbled_pixels / max(self.total_pixels, 1)


def compute_stats(scan: DatasetScan, info: DatasetInfo) -> DatasetStats:
    """Aggregate the per-sample counts of ``scan`` (vectorised over samples)."""
    k = info.num_classes
    scribbles = np.stack([s.scribble_counts if s.scribble_counts is not None else np.zeros(k, np.int64)
                          for s in scan.samples]) if scan.samples else np.zeros((0, k), np.int64)
    masks = np.stack([s.mask_counts if s.mask_counts is not None else np.zeros(k, np.int64)
                      for s in scan.samples]) if scan.samples else np.zeros((0, k), np.int64)
    present = scribbles > 0
    return DatasetStats(
        num_images=len(scan.samples),
        total_pixels=int(sum(s.height * s.width for s in scan.samples)),
        images_without_scribble=int(sum(1 for s in scan.samples
                                        if s.scribble_counts is not None and s.scribble_counts.sum() == 0)),
        classes_per_image_mean=float(present.sum(axis=1).mean()) if scan.samples else 0.0,
        class_images=present.sum(axis=0),
        class_scribbled_pixels=scribbles.sum(axis=0),
        class_mask_pixels=masks.sum(axis=0),
    )
