"""The multi-label image classifier head: pooling (with a padding mask) against per-image loops, init."""

from __future__ import annotations

import pytest
import torch

from scribbleseg.models.heads.image_classifier import ImageClassifierHead, pool_positions


def loop_pool(x, pooling, valid=None):
    """Reference: per image, mean and max over its valid positions (zeros when none is valid)."""
    rows = []
    for n in range(x.shape[0]):
        flat = x[n].flatten(1)  # [C, hw]
        if valid is not None:
            flat = flat[:, valid[n].flatten()]
        if flat.shape[1] == 0:
            mean = peak = torch.zeros(x.shape[1])
        else:
            mean, peak = flat.mean(1), flat.max(1).values
        rows.append({"avg": mean, "max": peak, "avgmax": torch.cat([mean, peak])}[pooling])
    return torch.stack(rows)


@pytest.mark.parametrize("pooling", ["avg", "max", "avgmax"])
def test_pooling_matches_the_loop_with_and_without_a_mask(pooling):
    torch.manual_seed(0)
    x = torch.randn(3, 4, 5, 6) - 2.0  # negative values: a masked max must not see the padding's zeros
    valid = torch.rand(3, 5, 6) > 0.4
    valid[1] = False  # an image without valid positions
    torch.testing.assert_close(pool_positions(x, pooling), loop_pool(x, pooling))
    torch.testing.assert_close(pool_positions(x, pooling, valid), loop_pool(x, pooling, valid))


def test_head_starts_at_probability_one_half_and_learns_through_its_linear_layer():
    head = ImageClassifierHead(4, 3, "avgmax")
    x = torch.randn(2, 4, 5, 5, requires_grad=True)
    logits = head(x)
    assert logits.shape == (2, 3) and torch.equal(logits, torch.zeros(2, 3))
    torch.nn.functional.binary_cross_entropy_with_logits(logits, torch.ones(2, 3)).backward()
    assert head.linear.weight.grad.abs().sum() > 0 and head.linear.bias.grad.abs().sum() > 0


def test_mask_at_input_resolution_is_resized_to_the_map():
    head = ImageClassifierHead(2, 2, "max")
    torch.nn.init.eye_(head.linear.weight)
    x = torch.zeros(1, 2, 2, 2)
    x[0, :, 1, 1] = 5.0  # only the bottom-right cell is large
    valid = torch.zeros(1, 8, 8, dtype=torch.bool)
    valid[0, :4, :4] = True  # the top-left quarter at 4x the resolution
    assert head(x).max() == 5.0 and head(x, valid).max() == 0.0


def test_bad_shapes_and_pooling_are_rejected():
    with pytest.raises(ValueError, match="pooling"):
        ImageClassifierHead(4, 3, "median")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"\[N, 4, h, w\]"):
        ImageClassifierHead(4, 3)(torch.zeros(1, 5, 2, 2))


@pytest.mark.parametrize("pooling", ["avg", "max", "avgmax"])
def test_score_then_pool_pools_per_class_activation_maps(pooling):
    torch.manual_seed(1)
    head = ImageClassifierHead(4, 3, pooling, order="score_then_pool")
    torch.nn.init.normal_(head.linear.weight)
    torch.nn.init.normal_(head.linear.bias)
    x = torch.randn(2, 4, 3, 5)
    maps = torch.stack([torch.stack([(head.linear.weight[k, :, None, None] * x[n]).sum(0) + head.linear.bias[k]
                                     for k in range(3)]) for n in range(2)])  # [N, K, h, w] by loops
    pooled = loop_pool(maps, "avgmax")
    want = {"avg": pooled[:, :3], "max": pooled[:, 3:], "avgmax": 0.5 * (pooled[:, :3] + pooled[:, 3:])}[pooling]
    torch.testing.assert_close(head(x), want, atol=1e-5, rtol=1e-5)
    assert head.linear.weight.shape == (3, 4)
