"""SegFormerHead: fuse/classify split, SegFormer's concat order, dropout only in training, params."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from scribbleseg.models import MixTransformer, SegFormerHead, count_parameters

CHANNELS = (8, 16, 24, 32)


def stage_maps(batch: int = 2) -> list[torch.Tensor]:
    torch.manual_seed(0)
    sizes = [(16, 16), (8, 8), (4, 4), (2, 2)]
    return [torch.randn(batch, c, *s) for c, s in zip(CHANNELS, sizes)]


def test_fuse_and_classify_shapes_and_attributes() -> None:
    head = SegFormerHead(CHANNELS, num_classes=5, embed_dim=12).eval()
    features = head.fuse(stage_maps())
    logits = head.classify(features)
    assert features.shape == (2, 12, 16, 16) and logits.shape == (2, 5, 16, 16)
    assert head.embed_dim == 12 and head.num_classes == 5
    assert torch.equal(head(stage_maps()), logits)


def test_fuse_matches_segformer_reference_order_stage4_first() -> None:
    head = SegFormerHead(CHANNELS, num_classes=3, embed_dim=6).eval()
    with torch.no_grad():
        head.fuse_norm.running_mean.uniform_(-0.5, 0.5)
        head.fuse_norm.running_var.uniform_(0.5, 2.0)
    maps = stage_maps()
    projected = [F.interpolate(F.conv2d(m, p.weight, p.bias), size=(16, 16), mode="bilinear",
                               align_corners=False) for m, p in zip(maps, head.projections)]
    concat = torch.cat(projected[::-1], dim=1)  # SegFormer: [c4, c3, c2, c1]
    bn = head.fuse_norm
    expected = F.relu(F.batch_norm(F.conv2d(concat, head.fuse_conv.weight), bn.running_mean, bn.running_var,
                                   bn.weight, bn.bias, False, 0.0, bn.eps))
    with torch.no_grad():
        assert torch.allclose(head.fuse(maps), expected, atol=1e-5)
        wrong_order = torch.cat(projected, dim=1)
        assert not torch.allclose(F.conv2d(wrong_order, head.fuse_conv.weight), F.conv2d(concat, head.fuse_conv.weight))


def test_classify_is_a_plain_1x1_conv() -> None:
    head = SegFormerHead(CHANNELS, num_classes=4, embed_dim=6).train()
    features = torch.randn(2, 6, 5, 7)
    expected = torch.einsum("nehw,ke->nkhw", features, head.classifier.weight[:, :, 0, 0])
    expected = expected + head.classifier.bias[None, :, None, None]
    assert torch.allclose(head.classify(features), expected, atol=1e-6)
    assert torch.equal(head.classify(features), head.classify(features))  # no dropout in classify


def test_dropout_is_active_only_in_training() -> None:
    head = SegFormerHead(CHANNELS, num_classes=2, embed_dim=32, dropout=0.5)
    maps = stage_maps()
    head.train()
    torch.manual_seed(3)
    a = head.fuse(maps)
    assert (a.flatten(2).abs().sum(-1) == 0).any()  # whole channels dropped (Dropout2d)
    head.eval()
    assert torch.equal(head.fuse(maps), head.fuse(maps))


def test_gradients_flow_through_fuse_and_classify() -> None:
    head = SegFormerHead(CHANNELS, num_classes=3, embed_dim=8).train()
    maps = [m.requires_grad_() for m in stage_maps()]
    head.classify(head.fuse(maps)).sum().backward()
    assert all(m.grad is not None and m.grad.abs().sum() > 0 for m in maps)
    assert all(p.grad is not None for p in head.parameters())


def test_mit_b1_with_decoder_has_the_papers_parameter_count() -> None:
    encoder = MixTransformer.from_name("mit_b1", strides=(4, 2, 2, 1))
    head = SegFormerHead(encoder.embed_dims, num_classes=21, embed_dim=256)
    total = count_parameters(encoder) + count_parameters(head)
    assert total == pytest.approx(13.65e6, rel=0.01)  # PFA Tab. 3: 13.6 M; SegFormer: 13.7 M
    assert count_parameters(head) == (64 + 128 + 320 + 512) * 256 + 4 * 256 + 4 * 256 * 256 + 2 * 256 + 256 * 21 + 21


def test_head_runs_under_bf16_autocast_on_cpu() -> None:
    head = SegFormerHead(CHANNELS, num_classes=3, embed_dim=8).eval()
    maps = stage_maps()
    with torch.no_grad():
        reference = head(maps)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low = head.classify(head.fuse(maps))
    assert torch.isfinite(low).all() and low.shape == reference.shape
    assert (low.float() - reference).abs().max() < 0.1


def test_output_stride_is_the_stage_1_stride_of_the_encoder() -> None:
    encoder = MixTransformer(embed_dims=CHANNELS, num_heads=(1, 1, 1, 1), depths=(1, 1, 1, 1), strides=(4, 2, 2, 1))
    head = SegFormerHead(encoder.out_channels, num_classes=2, embed_dim=8, in_strides=encoder.output_strides)
    assert head.output_stride == 4 and head.in_strides == (4, 8, 16, 16)
    assert SegFormerHead(CHANNELS, 2, embed_dim=8).output_stride == 4
    with torch.no_grad():
        logits = head.eval()(encoder.eval()(torch.randn(1, 3, 64, 64)))
    assert logits.shape[-2:] == (64 // head.output_stride, 64 // head.output_stride)
    with pytest.raises(ValueError, match="one entry per stage"):
        SegFormerHead(CHANNELS, 2, in_strides=(4, 8, 16))


def test_torch_default_init_draws_what_the_released_decoder_s_layers_draw() -> None:
    """Reference: the released decoder's layers built fresh in the same order with PyTorch's defaults (its
    nn.Linear projections draw what a 1x1 convolution draws), the fuse conv Kaiming fan-out as mmcv's ConvModule."""
    torch.manual_seed(7)
    head = SegFormerHead(CHANNELS, num_classes=5, embed_dim=12, init="torch_default")
    torch.manual_seed(7)
    linears = [torch.nn.Linear(c, 12) for c in CHANNELS]
    fuse = torch.nn.Conv2d(4 * 12, 12, kernel_size=1, bias=False)
    classifier = torch.nn.Conv2d(12, 5, kernel_size=1)
    torch.nn.init.kaiming_normal_(fuse.weight, mode="fan_out", nonlinearity="relu")
    for projection, linear in zip(head.projections, linears):
        assert torch.equal(projection.weight.flatten(1), linear.weight) and torch.equal(projection.bias, linear.bias)
    assert torch.equal(head.fuse_conv.weight, fuse.weight)
    assert torch.equal(head.classifier.weight, classifier.weight) and torch.equal(head.classifier.bias, classifier.bias)
    assert torch.equal(head.fuse_norm.weight, torch.ones(12)) and torch.equal(head.fuse_norm.bias, torch.zeros(12))
    torch.manual_seed(7)
    segformer = SegFormerHead(CHANNELS, num_classes=5, embed_dim=12)  # the default: zero biases, std-0.01 classifier
    assert torch.all(segformer.classifier.bias == 0) and head.classifier.bias.abs().min() > 0
    with pytest.raises(ValueError, match="init"):
        SegFormerHead(CHANNELS, num_classes=5, init="xavier")


def test_decoder_init_is_a_config_option() -> None:
    from scribbleseg.models.network_builders import build_decoder
    from scribbleseg.models.heads.segformer_family import SegFormerDecoder

    encoder = MixTransformer(embed_dims=CHANNELS, num_heads=(1, 1, 1, 1), depths=(1, 1, 1, 1))
    torch.manual_seed(3)
    built = build_decoder(SegFormerDecoder(embed_dim=12, init="torch_default"), encoder, num_classes=5)
    torch.manual_seed(3)
    direct = SegFormerHead(encoder.out_channels, num_classes=5, embed_dim=12, init="torch_default")
    assert all(torch.equal(a, b) for a, b in zip(built.state_dict().values(), direct.state_dict().values()))
    assert SegFormerDecoder().init == "segformer" and "init" not in SegFormerDecoder().architecture()
