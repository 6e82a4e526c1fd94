"""The pCE baseline behind the method contract: loss, heads, inference, state snapshot, regularisers."""

from __future__ import annotations

import pytest
import torch

from scribbleseg.errors import ConfigError
from scribbleseg.methods import PartialCEMethod, TrainBatch, partial_cross_entropy
from scribbleseg.models import MixTransformer, SegFormerHead

K = 3


def tiny_pce(regularisers=()):
    torch.manual_seed(0)
    encoder = MixTransformer(embed_dims=(8, 8, 8, 8), num_heads=(1, 1, 1, 1), depths=(1, 1, 1, 1),
                             mlp_ratios=(2, 2, 2, 2), sr_ratios=(4, 2, 1, 1))
    head = SegFormerHead(encoder.out_channels, num_classes=K, embed_dim=8, dropout=0.0)
    return PartialCEMethod(encoder, head, K, regularisers=regularisers)


def batch(n=2, size=32):
    images = torch.randn(n, 3, size, size, generator=torch.Generator().manual_seed(1))
    scribbles = torch.full((n, size, size), 255, dtype=torch.long)
    scribbles[:, :4] = 0
    scribbles[:, -4:] = 2
    classes = torch.tensor([[True, False, True]] * n)
    return TrainBatch(images, scribbles, classes, classes)


class ConstantTerm:
    """A regulariser that adds ``value * mean(logits)``: its gradient and logged value are known."""

    name = "constant"

    def __init__(self, value: float) -> None:
        self.value = value

    def loss(self, logits, batch, iteration):  # type: ignore[no-untyped-def]
        return self.value * logits.float().mean()


def test_loss_is_pce_on_the_basic_prediction():
    method = tiny_pce().eval()
    data = batch()
    result = method.training_step(data, 0)
    assert method.loss_names() == ("total", "pce") and set(result.parts) == {"total", "pce"}
    assert result.phase is None and set(result.outputs) == {"basic"}
    _, basic = method.encode(data.images)
    torch.testing.assert_close(result.loss, partial_cross_entropy(basic, data.scribbles))
    result.loss.backward()
    assert method.head.classifier.weight.grad.abs().sum() > 0


def test_regularisers_add_to_the_loss_and_are_logged():
    method = tiny_pce([ConstantTerm(2.0)]).eval()
    data = batch()
    result = method.training_step(data, 0)
    assert method.loss_names() == ("total", "pce", "constant")
    _, basic = method.encode(data.images)
    torch.testing.assert_close(result.parts["constant"], 2.0 * basic.mean())
    torch.testing.assert_close(result.loss.detach(), result.parts["pce"] + result.parts["constant"])


def test_only_the_basic_head():
    method = tiny_pce().eval()
    assert list(method.heads()) == ["basic"]
    prediction = method.infer(batch().images)
    assert set(prediction.logits) == {"basic"} and prediction.logits["basic"].shape == (2, K, 8, 8)
    with pytest.raises(ConfigError, match="local"):
        method.infer(batch().images, ("basic", "local"))


def test_snapshot_restore_brings_back_batchnorm_statistics():
    method = tiny_pce().train()
    before = {name: value.clone() for name, value in method.state_dict().items()}
    snapshot = method.snapshot()
    method.training_step(batch(), 0)
    assert not torch.equal(method.head.fuse_norm.running_mean, before["head.fuse_norm.running_mean"])
    method.restore(snapshot)
    for name, value in method.state_dict().items():
        assert torch.equal(value, before[name]), name
