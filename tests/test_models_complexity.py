"""Parameter and FLOP counting (torch FlopCounterMode; attention counted on CPU too)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from scribbleseg.models import MixTransformer, SegFormerHead, count_flops, count_parameters
from scribbleseg.models.mit.efficient_attention import EfficientSelfAttention


def test_count_parameters_counts_shared_tensors_once_and_can_skip_frozen() -> None:
    linear = nn.Linear(3, 4)
    assert count_parameters(linear) == 16
    shared = nn.Sequential(linear, nn.ReLU(), linear)
    assert count_parameters(shared) == 16
    linear.bias.requires_grad_(False)
    assert count_parameters(linear, trainable_only=True) == 12


def test_conv_flops_are_two_per_multiply_add() -> None:
    conv = nn.Conv2d(3, 8, kernel_size=3, padding=1)
    report = count_flops(conv, (16, 16))
    assert report.macs == 8 * 3 * 9 * 16 * 16
    assert report.flops == 2 * report.macs and report.input_shape == (1, 3, 16, 16)
    assert report.gmacs == pytest.approx(report.macs / 1e9)


def test_attention_flops_are_counted_on_cpu() -> None:
    dim, heads, sr, size = 16, 2, 2, 8
    attn = EfficientSelfAttention(dim, heads, sr).eval()
    report = count_flops(lambda x: attn(x.flatten(2).transpose(1, 2), size, size), (1, dim, size, size))
    tokens, reduced = size * size, (size // sr) ** 2
    macs = (tokens * dim * dim  # q
            + reduced * dim * dim * sr * sr  # sr conv
            + reduced * dim * 2 * dim  # kv
            + 2 * tokens * reduced * dim  # q k^T and attn v over all heads
            + tokens * dim * dim)  # proj
    assert report.macs == macs


def test_module_mode_is_restored() -> None:
    head = SegFormerHead((4, 4, 4, 4), num_classes=2, embed_dim=4).train()
    count_flops(lambda x: head([x, x, x, x]), (1, 4, 8, 8))
    model = MixTransformer(embed_dims=(8, 8, 8, 8), num_heads=(1, 1, 1, 1), depths=(1, 1, 1, 1)).train()
    count_flops(model, 64)
    assert model.training


def test_mit_b1_segformer_flops_match_the_segformer_paper() -> None:
    """SegFormer-B1 (150 classes, 512x512) is reported as 15.9 G (multiply-adds)."""
    with torch.device("meta"):  # shapes only: no memory, no compute
        encoder = MixTransformer.from_name("mit_b1")
        head = SegFormerHead(encoder.embed_dims, num_classes=150, embed_dim=256)

    class Segformer(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.encoder, self.head = encoder, head

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.head(self.encoder(x))

    report = count_flops(Segformer(), 512)
    assert report.gmacs == pytest.approx(15.9, abs=0.05)


@pytest.mark.parametrize(("variant", "paper_millions"), [("mit_b1", 13.6), ("mit_b3", 44.6), ("mit_b5", 82.0)])
def test_parameter_counts_match_the_pfa_paper_table_3(variant, paper_millions) -> None:
    """PFA Tab. 3 counts SegFormer with a 256-wide decoder for every backbone (21 VOC classes)."""
    with torch.device("meta"):
        encoder = MixTransformer.from_name(variant, strides=(4, 2, 2, 1))
        head = SegFormerHead(encoder.embed_dims, num_classes=21, embed_dim=256)
    total = (count_parameters(encoder) + count_parameters(head)) / 1e6
    assert total == pytest.approx(paper_millions, rel=0.01)
