"""PFA's released-code options against plain-loop references of the authors' behaviour (TranquilChan/PFA,
utils/util.py extract_prototype, read for the facts only): the exact min-max confidence, top-k ``h*w // 12``
and ``pfa.dead_maps: released`` (a map without a positive logit still gives a prototype)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from scribbleseg.methods import TrainBatch
from scribbleseg.models import MixTransformer, SegFormerHead
from scribbleseg.pfa import PFAMethod, PFASettings
from scribbleseg.pfa.confidence import confidence_map
from scribbleseg.pfa.local_prototypes import extract_local_prototypes, topk_count

RELEASED_TOPK = 0.08333333333333333  # configs/voc_pfa_released.yaml


def released_loop_prototypes(features: torch.Tensor, logits: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
    """The released extraction, one (image, class) at a time: ReLU, values below min + 1e-5 zeroed,
    (a - min - 1e-5) / (range + 1e-5), the h*w // 12 largest, weighted sum / weight sum, L2 norm."""
    batch, classes, height, width = logits.shape
    k = height * width // 12
    out = torch.zeros(batch, classes, features.shape[1])
    for n in range(batch):
        flat_features = features[n].flatten(1)  # [D, HW]
        for t in range(classes):
            if not present[n, t]:
                continue
            a = logits[n, t].flatten().clamp(min=0)
            low, high = a.min(), a.max()
            a = torch.where(a < low + 1e-5, torch.zeros_like(a), a)
            weights = (a - low - 1e-5) / (high - low + 1e-5)
            values, positions = weights.topk(k)
            mean = (flat_features[:, positions] * values).sum(1) / values.sum()
            out[n, t] = mean / mean.norm()
    return out


def logits_with_dead_maps(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """features [3, 8, 6, 10], logits [3, 5, 6, 10] (maps [0, 2] and [2, 4] dead: no positive logit), present."""
    torch.manual_seed(seed)
    features = torch.randn(3, 8, 6, 10)
    logits = torch.randn(3, 5, 6, 10)
    logits[0, 2] = -logits[0, 2].abs()
    logits[2, 4] = -logits[2, 4].abs() - 0.1
    present = torch.rand(3, 5) < 0.7
    present[0, 2] = present[2, 4] = True
    return features, logits, present


@pytest.mark.parametrize("compact", [True, False])
def test_released_options_give_the_released_prototypes_to_float32_noise(compact):
    features, logits, present = logits_with_dead_maps()
    assert topk_count(6, 10, RELEASED_TOPK) == 60 // 12
    got = extract_local_prototypes(features, confidence_map(logits, "minmax"), present, RELEASED_TOPK,
                                   compact=compact, dead_maps="released")
    want = released_loop_prototypes(features, logits, present)
    assert (got - want).abs().max() < 1e-6  # measured: ~6e-8 ("equal to about 1e-7", docs/pfa.md)
    assert got[0, 2].norm() == pytest.approx(1.0) and got[2, 4].norm() == pytest.approx(1.0)


def test_a_dead_map_is_the_mean_of_its_features_released_and_zero_skipped():
    """Spatially constant features make the tie positions of a dead map irrelevant: released = that feature."""
    features, logits, present = logits_with_dead_maps()
    features[2] = torch.randn(8)[:, None, None].expand(8, 6, 10)
    confidence = confidence_map(logits, "minmax")
    assert torch.all(confidence[2, 4] == -1)
    released = extract_local_prototypes(features, confidence, present, RELEASED_TOPK, dead_maps="released")
    torch.testing.assert_close(released[2, 4], F.normalize(features[2, :, 0, 0], dim=0))
    skipped = extract_local_prototypes(features, confidence, present, RELEASED_TOPK)  # default: skip
    assert torch.all(skipped[2, 4] == 0) and torch.all(skipped[0, 2] == 0)
    alive = present.clone()
    alive[0, 2] = alive[2, 4] = False
    torch.testing.assert_close(skipped[alive], released[alive], rtol=0, atol=0)
    with pytest.raises(ValueError, match="dead_maps"):
        extract_local_prototypes(features, confidence, present, dead_maps="nan")


def tiny_pfa(dead_maps: str) -> PFAMethod:
    torch.manual_seed(0)
    encoder = MixTransformer(embed_dims=(8, 16, 32, 64), num_heads=(1, 1, 2, 4), depths=(1, 1, 1, 1))
    head = SegFormerHead(encoder.out_channels, num_classes=4, embed_dim=16, dropout=0.0)
    settings = PFASettings(warmup_iters=0, slots=2, confidence="minmax", topk_ratio=RELEASED_TOPK,
                           dead_maps=dead_maps, use_global=False)
    return PFAMethod(encoder, head, num_classes=4, settings=settings)


@pytest.mark.parametrize("dead_maps", ["skip", "released"])
def test_the_method_attends_to_and_banks_a_dead_map_only_when_released(dead_maps):
    seg = tiny_pfa(dead_maps)
    with torch.no_grad():  # class 3's map gets no positive logit anywhere
        seg.head.classifier.weight[3] = 0
        seg.head.classifier.bias[3] = -1.0
    images = torch.randn(2, 3, 32, 32)
    classes = torch.tensor([[True, False, False, True], [True, True, False, False]])
    scribbles = torch.full((2, 32, 32), 255, dtype=torch.long)
    scribbles[0, 4, :] = 3
    scribbles[1, 5, :] = 1
    result = seg.training_step(TrainBatch(images, scribbles, classes, classes), 0)
    assert result.phase == "local" and torch.isfinite(result.loss)
    features, basic = seg.encode(images)
    prototypes, usable = seg.local_prototypes(features, basic, seg.prepare_present(classes))
    assert bool(usable[0, 3]) is (dead_maps == "released")
    assert int(seg.bank.filled[3]) == (1 if dead_maps == "released" else 0)
    assert int(seg.bank.filled[1]) == 1 and int(seg.bank.filled[0]) == 2
