"""Confusion matrix, IoU / mIoU / pixel accuracy against plain-loop references."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from scribbleseg.engine.evaluation.confusion import (
    ConfusionAccumulator,
    class_accuracy,
    confusion_matrix,
    iou_from_confusion,
    mean_iou,
    pixel_accuracy,
)
from scribbleseg.errors import DataError


def _loop_confusion(prediction: np.ndarray, target: np.ndarray, num_classes: int, ignore: int) -> np.ndarray:
    reference = np.zeros((num_classes, num_classes), dtype=np.int64)
    for p, t in zip(prediction.reshape(-1).tolist(), target.reshape(-1).tolist()):
        if t != ignore:
            reference[t, p] += 1
    return reference


def test_bincount_matches_plain_loop_with_ignore_pixels() -> None:
    generator = torch.Generator().manual_seed(0)
    num_classes = 7
    prediction = torch.randint(0, num_classes, (3, 19, 23), generator=generator)
    target = torch.randint(0, num_classes, (3, 19, 23), generator=generator)
    target[torch.rand(target.shape, generator=generator) < 0.3] = 255
    counts = confusion_matrix(prediction, target, num_classes, ignore_index=255)
    reference = _loop_confusion(prediction.numpy(), target.numpy(), num_classes, 255)
    assert counts.dtype == torch.int64 and counts.shape == (num_classes, num_classes)
    np.testing.assert_array_equal(counts.numpy(), reference)
    assert int(counts.sum()) == int((target != 255).sum())


def test_accumulator_sums_batches() -> None:
    generator = torch.Generator().manual_seed(1)
    accumulator = ConfusionAccumulator(5)
    total = np.zeros((5, 5), dtype=np.int64)
    for _ in range(3):
        prediction = torch.randint(0, 5, (11, 13), generator=generator)
        target = torch.randint(0, 5, (11, 13), generator=generator)
        target[0] = 255
        accumulator.update(prediction, target)
        total += _loop_confusion(prediction.numpy(), target.numpy(), 5, 255)
    np.testing.assert_array_equal(accumulator.matrix.numpy(), total)
    accumulator.all_reduce()  # no process group: a no-op
    np.testing.assert_array_equal(accumulator.matrix.numpy(), total)
    accumulator.reset()
    assert int(accumulator.matrix.sum()) == 0


def test_iou_with_absent_class_is_nan_and_skipped_by_mean() -> None:
    # class 0: TP 2, FP 1, FN 0 -> 2/3 ; class 1: TP 1, FP 0, FN 1 -> 1/2 ; class 2 absent -> NaN
    # class 3: only predicted (FP 1), never in GT -> 0
    target = torch.tensor([0, 0, 1, 1, 255, 1])
    prediction = torch.tensor([0, 0, 1, 0, 2, 3])
    counts = confusion_matrix(prediction, target, 4)
    iou = iou_from_confusion(counts)
    assert iou[0] == pytest.approx(2 / 3)
    assert iou[1] == pytest.approx(1 / 3)
    assert math.isnan(iou[2])
    assert iou[3] == 0.0
    assert mean_iou(iou) == pytest.approx((2 / 3 + 1 / 3 + 0.0) / 3)
    assert pixel_accuracy(counts) == pytest.approx(3 / 5)
    recall = class_accuracy(counts)
    assert recall[0] == 1.0 and recall[1] == pytest.approx(1 / 3) and math.isnan(recall[3])


def test_empty_confusion_gives_nan_metrics() -> None:
    counts = torch.zeros(3, 3, dtype=torch.long)
    assert math.isnan(mean_iou(iou_from_confusion(counts)))
    assert math.isnan(pixel_accuracy(counts))


def test_out_of_range_ground_truth_is_a_data_error() -> None:
    with pytest.raises(DataError, match=r"\[9\]"):
        confusion_matrix(torch.zeros(4, dtype=torch.long), torch.tensor([0, 1, 9, 255]), 3)


@pytest.mark.parametrize("bad_value, prediction_value", [(3, 0), (-1, 2), (7, 2)])
def test_every_out_of_range_target_is_caught(bad_value: int, prediction_value: int) -> None:
    target = torch.tensor([0, 1, bad_value, 255])
    prediction = torch.tensor([0, 1, prediction_value, 0])
    with pytest.raises(DataError, match=rf"\[{bad_value}\]"):
        confusion_matrix(prediction, target, 3)


def test_negative_ignore_index_is_supported() -> None:
    target = torch.tensor([0, -100, 2, 1])
    prediction = torch.tensor([0, 1, 2, 2])
    counts = confusion_matrix(prediction, target, 3, ignore_index=-100)
    assert counts.tolist() == [[1, 0, 0], [0, 0, 1], [0, 0, 1]]
    with pytest.raises(DataError, match=r"\[-1\]"):
        confusion_matrix(prediction, torch.tensor([0, -100, -1, 1]), 3, ignore_index=-100)


def test_out_of_range_prediction_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="prediction"):
        confusion_matrix(torch.tensor([0, 3]), torch.tensor([0, 1]), 3)


def test_shape_mismatch_is_rejected() -> None:
    with pytest.raises(ValueError):
        confusion_matrix(torch.zeros(4, dtype=torch.long), torch.zeros(5, dtype=torch.long), 3)
