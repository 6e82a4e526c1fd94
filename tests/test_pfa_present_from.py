"""``pfa.present_from``: the class set of a training step from the crop's scribbles (ours) or the whole image's
(released code), both against a per-image, per-class loop reference of the whole step."""

from __future__ import annotations

import copy

import pytest
import torch

from scribbleseg.methods import TrainBatch
from test_pfa_augmenter import loop_augment
from test_pfa_memory_bank import sequential_update
from test_pfa_method import K, batch, tiny_segmentor
from test_pfa_prototypes import loop_prototypes


def loop_step(seg, images, classes):
    """Local and global logits of one training step, computed with loops, for the class set ``classes``."""
    present = classes.clone()
    present[:, 0] = True  # background always present
    features, basic = seg.encode(images)
    local_protos = loop_prototypes(features.detach(), basic.detach().softmax(1), present, seg.settings.topk_ratio)
    usable = present & (local_protos.abs().sum(2) > 0)
    local = seg.head.classify(loop_augment(seg.augmenter("local"), features, local_protos, usable))
    bank, filled = sequential_update(seg.bank.prototypes, seg.bank.filled, local_protos, usable, seg.bank.momentum)
    slots = bank.shape[1]
    mask = torch.stack([torch.tensor([bool(present[n, t]) and s < int(filled[t]) for t in range(K)
                                      for s in range(slots)]) for n in range(images.shape[0])])
    flat = bank.reshape(1, K * slots, -1).expand(images.shape[0], -1, -1)
    glob = seg.head.classify(loop_augment(seg.augmenter("global"), features, flat, mask))
    return local, glob, bank, filled


@pytest.mark.parametrize("present_from", ["crop", "image"])
def test_training_step_equals_the_loop_reference_for_either_class_set(present_from):
    seg = tiny_segmentor(slots=1, present_from=present_from)
    images, scribbles, crop_classes = batch()
    image_classes = crop_classes.clone()
    image_classes[0, 2] = True  # class 2 is in image 0 but was cropped away
    image_classes[1, 1] = True
    reference = copy.deepcopy(seg)
    result = seg.training_step(TrainBatch(images, scribbles, crop_classes, image_classes), 0)
    assert result.phase == "global"
    chosen = image_classes if present_from == "image" else crop_classes
    local, glob, bank, filled = loop_step(reference, images, chosen)
    torch.testing.assert_close(result.outputs["local"], local, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(result.outputs["global"], glob, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(seg.bank.prototypes, bank, atol=1e-6, rtol=1e-6)
    assert torch.equal(seg.bank.filled, filled)


def test_the_two_class_sets_give_different_steps():
    images, scribbles, crop_classes = batch()
    image_classes = crop_classes.clone()
    image_classes[0, 2] = True
    outputs = {}
    for present_from in ("crop", "image"):
        seg = tiny_segmentor(slots=1, present_from=present_from)
        outputs[present_from] = seg.training_step(TrainBatch(images, scribbles, crop_classes, image_classes), 0)
    assert not torch.allclose(outputs["crop"].outputs["local"], outputs["image"].outputs["local"])
