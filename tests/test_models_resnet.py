"""ResNet encoder: stage shapes and strides at output stride 8/16/32, exact dilation equivalence,
named variants, parameter counts, channels-last inputs and configuration errors."""

from __future__ import annotations

import math

import pytest
import torch

from scribbleseg.errors import ConfigError
from scribbleseg.models import RESNET_VARIANTS, ResNet, count_parameters

TINY = dict(depths=(1, 2, 2, 1), base_width=8)


def randomize_batchnorm(model: torch.nn.Module, seed: int = 0) -> None:
    """Non-trivial BN affine parameters and running statistics, so eval-mode BN is not an identity."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.copy_(torch.rand(m.weight.shape, generator=gen) + 0.5)
                m.bias.copy_(torch.randn(m.bias.shape, generator=gen) * 0.1)
                m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=gen) * 0.1)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=gen) + 0.5)


def tiny(output_stride: int) -> ResNet:
    torch.manual_seed(0)
    model = ResNet(**TINY, output_stride=output_stride).eval()
    randomize_batchnorm(model)
    return model


@pytest.mark.parametrize(("output_stride", "strides", "dilations"), [
    (32, (4, 8, 16, 32), (1, 1, 1, 1)),
    (16, (4, 8, 16, 16), (1, 1, 1, 2)),
    (8, (4, 8, 8, 8), (1, 1, 2, 4)),
])
def test_stage_shapes_and_strides(output_stride, strides, dilations) -> None:
    model = tiny(output_stride)
    assert model.output_strides == strides and model.dilations == dilations
    assert model.out_channels == (32, 64, 128, 256) and model.output_stride == output_stride
    for height, width in ((64, 64), (65, 50)):
        with torch.no_grad():
            maps = model(torch.randn(1, 3, height, width))
        assert len(maps) == 4
        for m, channels, stride in zip(maps, model.out_channels, strides):
            assert m.shape == (1, channels, math.ceil(height / stride), math.ceil(width / stride))


def test_first_block_of_a_dilated_stage_keeps_the_previous_dilation() -> None:
    model = ResNet(depths=(1, 1, 3, 3), base_width=4, output_stride=8)
    conv2 = [[(b.conv2.stride[0], b.conv2.dilation[0], b.conv2.padding[0]) for b in s] for s in model.stages]
    assert conv2[2] == [(1, 1, 1), (1, 2, 2), (1, 2, 2)]
    assert conv2[3] == [(1, 2, 2), (1, 4, 4), (1, 4, 4)]
    assert all(isinstance(b.shortcut.conv, torch.nn.Conv2d) and b.shortcut.conv.stride == (1, 1)
               for b in (model.stages[2][0], model.stages[3][0]))


@pytest.mark.parametrize(("output_stride", "size"), [(16, (64, 64)), (8, (64, 64)), (8, (70, 45))])
def test_dilated_maps_equal_the_plain_maps_on_their_sub_grid(output_stride, size) -> None:
    """Removing a stride and dilating what follows computes the plain network densely: exact on [::k, ::k]."""
    plain = tiny(32)
    dilated = ResNet(**TINY, output_stride=output_stride).eval()
    dilated.load_state_dict(plain.state_dict())  # strides and dilations change no weight shape
    x = torch.randn(1, 3, *size)
    with torch.no_grad():
        expected, got = plain(x), dilated(x)
    for stage, (e, g) in enumerate(zip(expected, got)):
        step = plain.output_strides[stage] // dilated.output_strides[stage]
        assert g[..., ::step, ::step].shape == e.shape
        assert torch.allclose(g[..., ::step, ::step], e, atol=1e-5), f"stage {stage + 1}"
        if step > 1:  # the positions between the sub-grid hold new values (not an upsampled copy)
            between = g[..., 1::step, 1::step]
            assert not torch.allclose(between, e[..., : between.shape[-2], : between.shape[-1]], atol=1e-3)


def test_channels_last_input_gives_the_same_maps_in_channels_last() -> None:
    model = tiny(8)
    x = torch.randn(2, 3, 48, 40)
    with torch.no_grad():
        expected = model(x)
        model.to(memory_format=torch.channels_last)
        got = model(x.contiguous(memory_format=torch.channels_last))
    for e, g in zip(expected, got):
        assert g.is_contiguous(memory_format=torch.channels_last)
        assert torch.allclose(e, g, atol=1e-5)


def test_gradients_reach_every_parameter_in_training_mode() -> None:
    model = ResNet(**TINY, output_stride=16).train()
    sum(m.mean() for m in model(torch.randn(2, 3, 32, 32))).backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())


@pytest.mark.parametrize(("name", "depths"), [("resnet50", (3, 4, 6, 3)), ("ResNet-101", (3, 4, 23, 3))])
def test_named_variants(name, depths) -> None:
    with torch.device("meta"):
        model = ResNet.from_name(name, output_stride=8)
    assert model.depths == depths and model.variant_name == name.lower().replace("-", "")
    assert model.out_channels == (256, 512, 1024, 2048) and model.output_strides == (4, 8, 8, 8)
    assert [len(s) for s in model.stages] == list(depths)


def test_parameter_counts_of_the_imagenet_networks_without_fc() -> None:
    """torchvision: ResNet-50 25.557 M, ResNet-101 44.549 M, both with a 2048 x 1000 fc (2.049 M)."""
    fc = 2048 * 1000 + 1000
    with torch.device("meta"):
        r50, r101 = ResNet.from_name("resnet50"), ResNet.from_name("resnet101")
    assert count_parameters(r50) == 25_557_032 - fc
    assert count_parameters(r101) == 44_549_160 - fc
    assert round(count_parameters(r101) / 1e6, 2) == 42.50


def test_configuration_errors_name_the_setting() -> None:
    with pytest.raises(ConfigError, match="unknown backbone 'resnet18'.*resnet50, resnet101"):
        ResNet.from_name("resnet18")
    assert set(RESNET_VARIANTS) == {"resnet50", "resnet101"}
    with pytest.raises(ConfigError, match="output_stride must be one of 8, 16, 32, got 4"):
        ResNet(**TINY, output_stride=4)
    with pytest.raises(ConfigError, match="depths must be 4 positive ints"):
        ResNet(depths=(1, 1, 1), base_width=8)
    with pytest.raises(ConfigError, match="base_width must be a positive integer"):
        ResNet(depths=(1, 1, 1, 1), base_width=0)
