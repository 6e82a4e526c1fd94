"""Partial cross-entropy (eq. 9) and consistency losses (eq. 10 and variants) against explicit formulas."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from scribbleseg.errors import ConfigError
from scribbleseg.methods import partial_cross_entropy
from scribbleseg.pfa import consistency_loss


def test_pce_is_mean_over_scribbled_pixels_of_upsampled_logits():
    torch.manual_seed(0)
    logits = torch.randn(2, 4, 3, 5)
    scribbles = torch.full((2, 12, 20), 255, dtype=torch.long)
    scribbles[0, 2:4, 3:9] = 1
    scribbles[1, 7, :] = 3
    scribbles[1, 0, 0] = 0
    full = F.interpolate(logits, size=(12, 20), mode="bilinear", align_corners=False)
    terms = []
    for n, y, x in (scribbles != 255).nonzero().tolist():
        terms.append(-full[n, :, y, x].log_softmax(0)[scribbles[n, y, x]])
    want = torch.stack(terms).mean()
    torch.testing.assert_close(partial_cross_entropy(logits, scribbles), want)


def test_pce_without_scribbles_is_zero_with_a_graph():
    logits = torch.randn(2, 3, 4, 4, requires_grad=True)
    loss = partial_cross_entropy(logits, torch.full((2, 16, 16), 255, dtype=torch.long))
    assert loss.requires_grad and float(loss.detach()) == 0.0 and torch.isfinite(loss)
    loss.backward()
    assert logits.grad is not None and torch.all(logits.grad == 0)


def test_consistency_forms():
    torch.manual_seed(1)
    basic = torch.randn(2, 5, 3, 4, requires_grad=True)
    aug = torch.randn(2, 5, 3, 4, requires_grad=True)
    p, log_q = basic.softmax(1), aug.log_softmax(1)
    ce = -(p * log_q).sum(1).mean()
    torch.testing.assert_close(consistency_loss(basic, aug, "ce"), ce)
    kl = (p * (basic.log_softmax(1) - log_q)).sum(1).mean()
    torch.testing.assert_close(consistency_loss(basic, aug, "kl"), kl)
    released = F.cross_entropy(basic.softmax(1), aug.softmax(1))  # the authors' PredConLoss
    torch.testing.assert_close(consistency_loss(basic, aug, "released"), released)
    with pytest.raises(ConfigError, match="consistency"):
        consistency_loss(basic, aug, "mse")


def test_ce_detaches_the_basic_target_by_default():
    basic = torch.randn(1, 3, 2, 2, requires_grad=True)
    aug = torch.randn(1, 3, 2, 2, requires_grad=True)
    consistency_loss(basic, aug, "ce").backward()
    assert basic.grad is None and aug.grad.abs().sum() > 0
    consistency_loss(basic, aug, "ce", detach_target=False).backward()
    assert basic.grad is not None and basic.grad.abs().sum() > 0
