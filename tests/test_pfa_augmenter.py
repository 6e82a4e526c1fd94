"""Prototype augmenter (eq. 6-8): batched + masked against the per-image selection loop of the paper."""

from __future__ import annotations

import torch

from scribbleseg.pfa import PrototypeAugmenter
from scribbleseg.pfa.augmenter import pack_allowed


def loop_augment(aug, features, prototypes, mask):
    """Reference: per image, keep only its allowed prototypes (fp* = select(fp)) and apply eq. 6-8."""
    batch, dim, height, width = features.shape
    out = torch.empty_like(features)
    for n in range(batch):
        f = features[n].reshape(dim, -1).T  # [HW, D]
        e_f = aug.feature_proj(f)
        chosen = prototypes[n][mask[n]]
        if chosen.shape[0] == 0:
            message = torch.zeros_like(e_f)  # documented choice: no prototype -> no message
        else:
            e_p = aug.prototype_proj(chosen)
            omega = torch.softmax(e_f @ e_p.T, dim=1)  # eq. 6
            message = omega @ e_p
        e_star = torch.relu(aug.fuse(torch.cat([message, e_f], dim=1)))  # eq. 7
        out[n] = torch.relu(f + aug.expand(e_star)).T.reshape(dim, height, width)  # eq. 8
    return out


def make(seed=0, batch=3, dim=12, protos=5):
    torch.manual_seed(seed)
    aug = PrototypeAugmenter(dim)
    features = torch.randn(batch, dim, 4, 6)
    prototypes = torch.randn(batch, protos, dim)
    mask = torch.rand(batch, protos) < 0.6
    mask[0] = torch.tensor([True, False, True, False, False])
    mask[1] = False  # no allowed prototype
    mask[2, 3] = True
    return aug, features, prototypes, mask


def test_matches_per_image_loop_including_image_without_prototypes():
    aug, features, prototypes, mask = make()
    got = aug(features, prototypes, mask)
    assert got.shape == features.shape and torch.isfinite(got).all()
    torch.testing.assert_close(got, loop_augment(aug, features, prototypes, mask), atol=1e-5, rtol=1e-5)


def test_output_does_not_depend_on_masked_prototypes():
    aug, features, prototypes, mask = make(1)
    before = aug(features, prototypes, mask)
    changed = prototypes.clone()
    changed[~mask] = torch.randn(int((~mask).sum()), prototypes.shape[2]) * 100
    changed[1] = float("inf")  # even non-finite masked prototypes do not leak
    torch.testing.assert_close(aug(features, changed, mask), before, atol=0, rtol=0)


def test_images_are_independent():
    aug, features, prototypes, mask = make(2)
    whole = aug(features, prototypes, mask)
    for n in range(features.shape[0]):
        alone = aug(features[n : n + 1], prototypes[n : n + 1], mask[n : n + 1])
        torch.testing.assert_close(alone, whole[n : n + 1], atol=1e-5, rtol=1e-5)
    other = features.clone()
    other[0] += 5
    torch.testing.assert_close(aug(other, prototypes, mask)[1:], whole[1:], atol=0, rtol=0)


def test_gradients_reach_every_layer_and_features():
    aug, features, prototypes, mask = make(3)
    features.requires_grad_(True)
    aug(features, prototypes, mask).sum().backward()
    assert features.grad is not None and features.grad.abs().sum() > 0
    for name, parameter in aug.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name


def test_packing_allowed_prototypes_changes_nothing():
    """Packed attention (M columns) equals the unpacked masked attention over all P prototypes."""
    torch.manual_seed(4)
    aug = PrototypeAugmenter(8)
    features = torch.randn(3, 8, 3, 3)
    prototypes = torch.randn(3, 20, 8)
    mask = torch.zeros(3, 20, dtype=torch.bool)
    mask[0, [2, 7, 19]] = True
    mask[2, 5] = True
    embedded = aug.embed(features)
    unpacked = aug.augment(embedded, prototypes, mask, max_allowed=20)
    torch.testing.assert_close(aug.augment(embedded, prototypes, mask), unpacked, atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(aug.augment(embedded, prototypes, mask, max_allowed=6), unpacked, atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(unpacked, loop_augment(aug, features, prototypes, mask), atol=1e-5, rtol=1e-5)
    packed, packed_mask = pack_allowed(prototypes, mask)
    assert packed.shape == (3, 3, 8) and packed_mask.tolist() == [[True] * 3, [False] * 3, [True, False, False]]
    torch.testing.assert_close(packed[0], prototypes[0, [2, 7, 19]])
