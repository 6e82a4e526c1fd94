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


def corner_aligned_upsample(logits: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Plain-loop bilinear resize with the corner pixels aligned (the released PFA code's pCE resize):
    output pixel y samples the input at y * (h - 1) / (H - 1)."""
    n, k, h, w = logits.shape
    out = torch.zeros(n, k, height, width, dtype=torch.float64)
    for y in range(height):
        sy = y * (h - 1) / (height - 1)
        y0 = min(int(sy), h - 2)
        fy = sy - y0
        for x in range(width):
            sx = x * (w - 1) / (width - 1)
            x0 = min(int(sx), w - 2)
            fx = sx - x0
            out[:, :, y, x] = ((1 - fy) * (1 - fx) * logits[:, :, y0, x0] + (1 - fy) * fx * logits[:, :, y0, x0 + 1]
                               + fy * (1 - fx) * logits[:, :, y0 + 1, x0] + fy * fx * logits[:, :, y0 + 1, x0 + 1])
    return out


def test_pce_align_corners_is_the_corner_aligned_resize_of_the_released_code():
    logits = torch.randn(2, K, 3, 4, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    scribbles = torch.full((2, 9, 13), 255, dtype=torch.long)
    scribbles[0, 0, :5] = 1
    scribbles[0, 8, 9:] = 2
    scribbles[1, :, 6] = 0
    full = corner_aligned_upsample(logits, 9, 13)
    labelled = scribbles != 255
    log_probs = full.log_softmax(1).permute(0, 2, 3, 1)[labelled]
    want = -log_probs.gather(1, scribbles[labelled][:, None]).mean()
    got = partial_cross_entropy(logits.float(), scribbles, align_corners=True)
    assert float(got) == pytest.approx(float(want), rel=1e-6)
    default = partial_cross_entropy(logits.float(), scribbles)
    assert abs(float(default) - float(want)) > 1e-3, "the default resize aligns pixel centres, not corners"


@pytest.mark.parametrize("method", ["pce", "pfa"])
def test_train_pce_align_corners_reaches_every_method_s_pce(method):
    from scribbleseg.engine.build.method_factory import build_method
    from scribbleseg.engine.config.schema import ExperimentConfig
    from tiny_models import tiny_model_config

    data = batch()
    losses = {}
    for aligned in (False, True):
        cfg = ExperimentConfig(method=method, model=tiny_model_config(), train={"max_iters": 1,
                                                                               "pce_align_corners": aligned})
        torch.manual_seed(0)
        model = build_method(cfg, K, load_pretrained=False).eval()
        result = model.training_step(data, 0)  # PFA: warm-up, pCE on the basic prediction
        _, basic = model.encode(data.images)
        want = partial_cross_entropy(basic, data.scribbles, align_corners=aligned)
        torch.testing.assert_close(result.parts["pce"], want)
        losses[aligned] = float(result.parts["pce"])
    assert losses[True] != losses[False]
