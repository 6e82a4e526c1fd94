"""DeepLabV2 and DeepLabV3+ decoders: the fuse/classify contract, ASPP dilations, which stage maps are
used and how, dropout only in training, initialisation, and parameter / FLOP counts vs the PFA paper."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from scribbleseg.errors import ConfigError
from scribbleseg.models import DeepLabV2Head, DeepLabV3PlusHead, ResNet, count_flops, count_parameters

CHANNELS = (32, 64, 128, 256)  # a tiny ResNet's out_channels (base width 8)
SMALL_V3 = dict(aspp_channels=16, low_level_channels=8, decoder_channels=16)  # fast test-sized DeepLabV3+


def stage_maps(strides=(4, 8, 8, 8), size: int = 32, batch: int = 2, seed: int = 0) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(batch, c, size // s, size // s, generator=gen) for c, s in zip(CHANNELS, strides)]


def randomize_batchnorm(module: nn.Module) -> None:
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.3, 0.3)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)


# --- DeepLabV2 ---------------------------------------------------------------------------------

def test_v2_features_are_c5_and_logits_the_sum_of_the_dilated_classifiers() -> None:
    head = DeepLabV2Head(CHANNELS, num_classes=5).eval()
    maps = stage_maps()
    features = head.fuse(maps)
    assert torch.equal(features, maps[-1])
    assert head.feature_channels == 256 and head.num_classes == 5 and head.output_stride == 8
    assert head.dilations == (6, 12, 18, 24)
    expected = sum(F.conv2d(features, c.weight, c.bias, padding=d, dilation=d)
                   for c, d in zip(head.classifiers, (6, 12, 18, 24)))
    with torch.no_grad():
        logits = head.classify(features)
        assert logits.shape == (2, 5, 4, 4)
        assert torch.allclose(logits, expected, atol=1e-6)
        assert torch.equal(head(maps), logits)
        augmented = features + torch.randn_like(features)  # PFA sends augmented F through the same classifier
        assert head.classify(augmented).shape == logits.shape


def test_v2_dilations_and_strides_are_configurable() -> None:
    head = DeepLabV2Head(CHANNELS, num_classes=3, in_strides=(4, 8, 16, 16), dilations=(1, 2))
    assert head.output_stride == 16 and len(head.classifiers) == 2
    assert [(c.dilation[0], c.padding[0]) for c in head.classifiers] == [(1, 1), (2, 2)]
    assert head.classify(torch.randn(1, 256, 7, 9)).shape == (1, 3, 7, 9)


def test_v2_classifier_init_is_deeplabs_normal_std_001() -> None:
    torch.manual_seed(0)
    head = DeepLabV2Head((8, 8, 8, 2048), num_classes=21)
    weights = torch.cat([c.weight.flatten() for c in head.classifiers])
    assert weights.mean().abs() < 1e-3 and weights.std().item() == pytest.approx(0.01, rel=0.02)
    assert all(torch.count_nonzero(c.bias) == 0 for c in head.classifiers)


def test_v2_dropout_only_in_training_and_off_by_default() -> None:
    maps = stage_maps()
    assert torch.equal(DeepLabV2Head(CHANNELS, 2).train().fuse(maps), maps[-1])
    head = DeepLabV2Head(CHANNELS, 2, dropout=0.5).train()
    dropped = head.fuse(maps)
    assert (dropped.flatten(2).abs().sum(-1) == 0).any()  # whole channels (Dropout2d)
    assert torch.equal(head.eval().fuse(maps), maps[-1])


# --- DeepLabV3+ --------------------------------------------------------------------------------

def test_v3plus_shapes_strides_and_default_dilations() -> None:
    head = DeepLabV3PlusHead(CHANNELS, num_classes=4, in_strides=(4, 8, 16, 16)).eval()
    maps = stage_maps((4, 8, 16, 16))
    features = head.fuse(maps)
    assert features.shape == (2, 256, 8, 8) and head.feature_channels == 256 and head.output_stride == 4
    assert head.classify(features).shape == (2, 4, 8, 8)
    assert torch.equal(head(maps), head.classify(features))
    dilated = [(b.conv.dilation[0], b.conv.padding[0]) for b in head.aspp.branches]
    assert dilated == [(1, 0), (6, 6), (12, 12), (18, 18)]
    assert DeepLabV3PlusHead(CHANNELS, 4, in_strides=(4, 8, 8, 8)).aspp_dilations == (12, 24, 36)
    assert DeepLabV3PlusHead(CHANNELS, 4, in_strides=(4, 8, 8, 8), aspp_dilations=(2, 3)).aspp_dilations == (2, 3)
    small = DeepLabV3PlusHead(CHANNELS, 4, decoder_channels=16, aspp_channels=8, low_level_channels=4)
    assert small.fuse(maps).shape == (2, 16, 8, 8) and small.feature_channels == 16


def test_v3plus_uses_c2_and_c5_only_and_concatenates_aspp_first() -> None:
    torch.manual_seed(0)
    head = DeepLabV3PlusHead(CHANNELS, num_classes=3, in_strides=(4, 8, 16, 16), **SMALL_V3).eval()
    randomize_batchnorm(head)
    maps = stage_maps((4, 8, 16, 16))
    with torch.no_grad():
        base = head.fuse(maps)
        middle_changed = head.fuse([maps[0], maps[1] * 3, maps[2] - 1, maps[3]])
        assert torch.equal(base, middle_changed)
        assert not torch.allclose(base, head.fuse([maps[0] + 1, *maps[1:]]))
        assert not torch.allclose(base, head.fuse([*maps[:3], maps[3] + 1]))
        first = head.decoder[0].conv
        assert first.in_channels == 16 + 8
        first.weight[:, :16].zero_()  # cut the ASPP part: F must no longer depend on C5
        assert torch.equal(head.fuse(maps), head.fuse([*maps[:3], maps[3] * 5 + 1]))


def test_v3plus_image_pooling_branch_is_constant_over_the_map() -> None:
    head = DeepLabV3PlusHead(CHANNELS, num_classes=2, **SMALL_V3).eval()
    randomize_batchnorm(head)
    with torch.no_grad():
        pooled = head.aspp.pooling(torch.randn(2, 256, 5, 7))
    assert pooled.shape == (2, 16, 5, 7)
    assert torch.equal(pooled, pooled[..., :1, :1].expand_as(pooled))


def test_v3plus_dropout_only_in_training_and_gradients_reach_every_parameter() -> None:
    head = DeepLabV3PlusHead(CHANNELS, num_classes=3, **SMALL_V3)
    assert head.aspp.dropout.p == 0.5  # the default
    maps = [m.requires_grad_() for m in stage_maps((4, 8, 16, 16))]
    head.train()
    torch.manual_seed(1)
    a = head.fuse(maps)
    b = head.fuse(maps)
    assert not torch.equal(a, b)
    head.classify(a).sum().backward()
    assert all(p.grad is not None for p in head.parameters())
    assert maps[0].grad.abs().sum() > 0 and maps[3].grad.abs().sum() > 0
    head.eval()
    with torch.no_grad():
        assert torch.equal(head.fuse(maps), head.fuse(maps))


# --- shared contract and errors ------------------------------------------------------------------

@pytest.mark.parametrize("head_type", [DeepLabV2Head, DeepLabV3PlusHead])
def test_heads_reject_bad_settings_and_inputs(head_type) -> None:
    with pytest.raises(ConfigError, match="num_classes"):
        head_type(CHANNELS, num_classes=0)
    with pytest.raises(ConfigError, match="in_channels must be 4 positive ints"):
        head_type(CHANNELS[:3], num_classes=2)
    with pytest.raises(ConfigError, match="in_strides"):
        head_type(CHANNELS, num_classes=2, in_strides=(4, 8, 8))
    with pytest.raises(ValueError, match="expected 4 stage maps"):
        head_type(CHANNELS, num_classes=2).fuse(stage_maps()[:3])


@pytest.mark.parametrize("head_type", [DeepLabV2Head, DeepLabV3PlusHead])
def test_heads_on_a_tiny_resnet_give_logits_at_their_output_stride(head_type) -> None:
    for output_stride in (8, 16):
        encoder = ResNet(depths=(1, 1, 1, 1), base_width=8, output_stride=output_stride).eval()
        extra = SMALL_V3 if head_type is DeepLabV3PlusHead else {}
        head = head_type(encoder.out_channels, num_classes=3, in_strides=encoder.output_strides, **extra).eval()
        with torch.no_grad():
            logits = head(encoder(torch.randn(1, 3, 32, 32)))
        assert logits.shape == (1, 3, 32 // head.output_stride, 32 // head.output_stride)


# --- parameters and FLOPs vs the PFA paper (Tab. 3, 21 VOC classes) -----------------------------

class Segmentor(nn.Module):
    def __init__(self, encoder: nn.Module, head: nn.Module) -> None:
        super().__init__()
        self.encoder, self.head = encoder, head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(x))


def resnet101_with(head_type, output_stride: int) -> Segmentor:
    with torch.device("meta"):  # shapes only: no memory, no compute
        encoder = ResNet.from_name("resnet101", output_stride=output_stride)
        return Segmentor(encoder, head_type(encoder.out_channels, 21, in_strides=encoder.output_strides))


def test_deeplabv2_resnet101_parameters_within_2_percent_of_the_paper() -> None:
    model = resnet101_with(DeepLabV2Head, 8)
    assert count_parameters(model.head) == 4 * (2048 * 21 * 9 + 21)
    assert count_parameters(model) == 44_048_532
    assert count_parameters(model) / 1e6 == pytest.approx(43.6, rel=0.02)


def test_deeplabv3plus_resnet101_parameters() -> None:
    """59.34 M vs the paper's 60.8 M (-2.4 %); docs/models.md discusses the difference."""
    model = resnet101_with(DeepLabV3PlusHead, 16)
    c, low = 256, 48
    aspp = 2 * 2048 * c + 3 * 2048 * c * 9 + 5 * c * c + 6 * 2 * c  # 1x1, 3 dilated, pooling; projection; 6 BNs
    decoder = 256 * low + 2 * low + (c + low) * c * 9 + c * c * 9 + 4 * c + c * 21 + 21
    assert count_parameters(model.head) == aspp + decoder
    assert count_parameters(model) == 59_344_309


def test_flops_at_512_and_the_papers_75_2_g_at_321() -> None:
    """GMACs (multiply-adds): the paper's 75.2 G for DeepLabV2 are MACs at DeepLabV2's 321x321 crop."""
    v2 = resnet101_with(DeepLabV2Head, 8)
    assert count_flops(v2, 512).gmacs == pytest.approx(183.6, abs=0.05)
    assert count_flops(v2, 321).gmacs == pytest.approx(75.2, rel=0.002)
    v3 = resnet101_with(DeepLabV3PlusHead, 16)
    assert count_flops(v3, 512).gmacs == pytest.approx(88.6, abs=0.05)


@pytest.mark.parametrize("head_type", [DeepLabV2Head, DeepLabV3PlusHead])
def test_encoder_and_heads_run_under_bf16_autocast_close_to_float32(head_type) -> None:
    torch.manual_seed(0)
    encoder = ResNet(depths=(1, 1, 1, 1), base_width=8, output_stride=16).eval()
    extra = SMALL_V3 if head_type is DeepLabV3PlusHead else {}
    head = head_type(encoder.out_channels, num_classes=3, in_strides=encoder.output_strides, **extra).eval()
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        expected = head(encoder(x))
        with torch.autocast("cpu", dtype=torch.bfloat16):
            got = head(encoder(x))
    assert got.dtype == torch.bfloat16 and got.shape == expected.shape
    assert (got.float() - expected).abs().max() <= 0.05 * expected.abs().max()
