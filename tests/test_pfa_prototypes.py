"""Local prototypes (eq. 1-3) and confidence maps against plain per-image, per-class loops written here."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from scribbleseg.errors import ConfigError
from scribbleseg.pfa import confidence_map, extract_local_prototypes, topk_count


def loop_prototypes(features, confidence, present, topk_ratio):
    """Reference: for each image and present class, top-k weighted mean, L2-normalised (eq. 1-3)."""
    batch, dim, height, width = features.shape
    k = max(1, int(topk_ratio * height * width))
    out = torch.zeros(batch, confidence.shape[1], dim)
    for n in range(batch):
        flat = features[n].reshape(dim, -1).T  # [HW, D]
        for t in range(confidence.shape[1]):
            if not present[n, t]:
                continue
            values, positions = confidence[n, t].reshape(-1).topk(k)
            if values.sum() <= 0:
                continue
            mean = (values[:, None] * flat[positions]).sum(0) / values.sum()
            out[n, t] = mean / mean.norm()
    return out


@pytest.mark.parametrize("compact", [True, False])
def test_matches_loop_reference_with_absent_classes(compact):
    torch.manual_seed(0)
    features = torch.randn(3, 16, 9, 11)
    confidence = torch.randn(3, 5, 9, 11).softmax(1)
    present = torch.rand(3, 5) < 0.6
    present[0] = False  # an image with no class at all
    got = extract_local_prototypes(features, confidence, present, topk_ratio=0.08, compact=compact)
    want = loop_prototypes(features, confidence, present, 0.08)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
    assert torch.all(got[~present] == 0)
    norms = got[present].norm(dim=1)
    torch.testing.assert_close(norms, torch.ones_like(norms))


@pytest.mark.parametrize("compact", [True, False])
def test_zero_weight_class_gives_zero_not_nan(compact):
    features = torch.randn(2, 8, 6, 6)
    confidence = torch.rand(2, 3, 6, 6)
    confidence[1, 2] = 0.0  # present, but every top-k weight is 0
    present = torch.ones(2, 3, dtype=torch.bool)
    got = extract_local_prototypes(features, confidence, present, compact=compact)
    assert torch.isfinite(got).all()
    assert torch.all(got[1, 2] == 0)
    assert got[0, 2].norm() > 0.99


def test_topk_count_and_minimum_one():
    assert topk_count(128, 128, 0.08) == int(0.08 * 128 * 128)
    assert topk_count(2, 2, 0.01) == 1
    features = torch.randn(1, 4, 2, 2)
    confidence = torch.zeros(1, 2, 2, 2)
    confidence[0, 1, 1, 0] = 1.0
    got = extract_local_prototypes(features, confidence, torch.ones(1, 2, dtype=torch.bool), topk_ratio=0.01)
    torch.testing.assert_close(got[0, 1], F.normalize(features[0, :, 1, 0], dim=0))


def test_no_gradient_flows_through_extraction():
    features = torch.randn(2, 8, 5, 5, requires_grad=True)
    logits = torch.randn(2, 3, 5, 5, requires_grad=True)
    protos = extract_local_prototypes(features, confidence_map(logits), torch.ones(2, 3, dtype=torch.bool))
    assert not protos.requires_grad and protos.grad_fn is None


def test_minmax_confidence_is_the_released_relu_minmax_per_map():
    """The released formula exactly: values below min + 1e-5 zeroed, then (a - min - 1e-5) / (range + 1e-5)."""
    torch.manual_seed(1)
    logits = torch.randn(2, 3, 4, 5)
    logits[1, 2] = -logits[1, 2].abs()  # a dead map: no positive logit anywhere
    got = confidence_map(logits, "minmax")
    for n in range(2):
        for t in range(3):
            a = logits[n, t].relu()
            low, high = a.min(), a.max()
            a = torch.where(a < low + 1e-5, torch.zeros_like(a), a)
            want = (a - low - 1e-5) / (high - low + 1e-5)
            assert torch.equal(got[n, t], want)
    assert torch.all(got[1, 2] == -1) and got.min() < 0 and got.max() < 1
    torch.testing.assert_close(confidence_map(logits, "softmax"), logits.softmax(1))
    with pytest.raises(ConfigError, match="confidence"):
        confidence_map(logits, "sigmoid")


def test_compact_handles_uneven_and_empty_batches():
    torch.manual_seed(2)
    features = torch.randn(4, 6, 5, 7)
    confidence = torch.rand(4, 9, 5, 7)
    present = torch.zeros(4, 9, dtype=torch.bool)
    present[0, [0, 3, 8]] = True
    present[2, 5] = True
    present[3] = True  # all classes in one image, none in another
    got = extract_local_prototypes(features, confidence, present)
    torch.testing.assert_close(got, loop_prototypes(features, confidence, present, 0.08), atol=1e-5, rtol=1e-5)
    none = extract_local_prototypes(features, confidence, torch.zeros(4, 9, dtype=torch.bool))
    assert none.shape == (4, 9, 6) and torch.all(none == 0)
