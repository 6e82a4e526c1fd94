"""MixTransformer: shapes for both stride settings, variants, gradients, drop path, autocast, init."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from scribbleseg.errors import ConfigError
from scribbleseg.models import MIT_VARIANTS, MixTransformer
from scribbleseg.models.mit.drop_path import DropPath

TINY = dict(embed_dims=(8, 16, 24, 32), num_heads=(1, 2, 3, 4), depths=(1, 2, 1, 1), sr_ratios=(4, 2, 2, 1))


def tiny(**overrides) -> MixTransformer:
    torch.manual_seed(0)
    return MixTransformer(**{**TINY, **overrides})


@pytest.mark.parametrize(("strides", "expected"), [
    ((4, 2, 2, 2), [(8, 16, 16), (16, 8, 8), (24, 4, 4), (32, 2, 2)]),
    ((4, 2, 2, 1), [(8, 16, 16), (16, 8, 8), (24, 4, 4), (32, 4, 4)]),
])
def test_stage_map_shapes_follow_the_strides(strides, expected) -> None:
    model = tiny(strides=strides).eval()
    maps = model(torch.randn(2, 3, 64, 64))
    assert [tuple(m.shape) for m in maps] == [(2, *e) for e in expected]
    assert all(m.is_contiguous() for m in maps)
    assert model.output_strides == tuple(64 // e[1] for e in expected)


def test_odd_input_sizes_work() -> None:
    maps = tiny().eval()(torch.randn(1, 3, 70, 45))
    assert tuple(maps[0].shape[-2:]) == (18, 12)


def test_from_name_builds_every_variant_with_its_widths() -> None:
    model = MixTransformer.from_name("MiT-B0", strides=(4, 2, 2, 1), drop_path_rate=0.1)
    assert model.embed_dims == (32, 64, 160, 256) and model.strides == (4, 2, 2, 1)
    assert model.variant_name == "mit_b0"
    assert [len(s.blocks) for s in model.stages] == list(MIT_VARIANTS["mit_b0"].depths)
    assert MIT_VARIANTS["mit_b5"].depths == (3, 6, 40, 3)
    assert MIT_VARIANTS["mit_b1"].embed_dims == (64, 128, 320, 512)


def test_unknown_variant_and_bad_strides_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="mit_b7.*mit_b0"):
        MixTransformer.from_name("mit_b7")
    with pytest.raises(ConfigError, match="strides"):
        tiny(strides=(4, 2, 2))
    with pytest.raises(ConfigError, match="strides"):
        tiny(strides=(4, 2, 0, 2))
    with pytest.raises(ConfigError, match="depths"):
        tiny(depths=(1, "two", 1, 1))
    with pytest.raises(ConfigError, match="stage 2 is not"):
        tiny(num_heads=(1, 3, 3, 4))


def test_drop_path_rates_increase_linearly_to_the_maximum() -> None:
    model = tiny(drop_path_rate=0.4)
    rates = [b.drop_path.drop_prob for s in model.stages for b in s.blocks]
    assert rates == pytest.approx([0.0, 0.1, 0.2, 0.3, 0.4])


def test_drop_path_is_random_in_training_and_off_in_eval() -> None:
    model = tiny(drop_path_rate=0.9)
    x = torch.randn(4, 3, 32, 32)
    model.train()
    torch.manual_seed(1)
    a = model(x)[-1]
    torch.manual_seed(2)
    b = model(x)[-1]
    assert not torch.allclose(a, b)
    model.eval()
    assert torch.equal(model(x)[-1], model(x)[-1])


def test_drop_path_zeroes_whole_samples_and_keeps_the_expectation() -> None:
    torch.manual_seed(0)
    layer = DropPath(0.5).train()
    out = layer(torch.ones(4000, 3, 2))
    per_sample = out.flatten(1)
    assert set(per_sample.unique().tolist()) == {0.0, 2.0}
    assert (per_sample == per_sample[:, :1]).all()  # a sample is dropped entirely or kept entirely
    assert out.mean().item() == pytest.approx(1.0, abs=0.05)


def test_gradients_reach_every_parameter() -> None:
    model = tiny(drop_path_rate=0.1).train()
    maps = model(torch.randn(2, 3, 32, 32))
    sum(m.square().mean() for m in maps).backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not missing
    assert model.stages[0].blocks[0].ffn.dwconv.weight.grad.abs().sum() > 0


def test_bf16_autocast_on_cpu_runs_and_stays_close() -> None:
    model = tiny().eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        reference = model(x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low = model(x)
    for r, m in zip(reference, low):
        assert torch.isfinite(m).all()
        assert (r - m.float()).abs().max() < 0.25


def test_initialisation_follows_segformer() -> None:
    model = MixTransformer(**{**TINY, "embed_dims": (64, 64, 64, 64), "num_heads": (1, 1, 1, 1)})
    q = model.stages[0].blocks[0].attn.q
    assert q.weight.std().item() == pytest.approx(0.02, rel=0.15)
    assert torch.all(q.bias == 0)
    dw = model.stages[0].blocks[0].ffn.dwconv  # fan_out = 3 * 3 * 256 / 256 = 9
    assert dw.weight.std().item() == pytest.approx((2.0 / 9) ** 0.5, rel=0.15)
    norms = [m for m in model.modules() if isinstance(m, nn.LayerNorm)]
    assert all(torch.all(n.weight == 1) and torch.all(n.bias == 0) for n in norms)


def test_state_dict_is_contiguous_for_safetensors(tmp_path) -> None:
    from safetensors.torch import save_file

    model = tiny()
    model(torch.randn(1, 3, 32, 32))
    save_file(model.state_dict(), str(tmp_path / "enc.safetensors"))
    assert (tmp_path / "enc.safetensors").stat().st_size > 0


def test_channels_last_conv_equals_conv2d_and_returns_contiguous_tokens() -> None:
    from scribbleseg.models.mit.channels_last_conv import ChannelsLastConv2d

    torch.manual_seed(0)
    fast = ChannelsLastConv2d(6, 6, kernel_size=3, padding=1, groups=6)
    plain = nn.Conv2d(6, 6, kernel_size=3, padding=1, groups=6)
    plain.load_state_dict(fast.state_dict())
    tokens = torch.randn(2, 20, 6, requires_grad=True)  # [N, L, C] on a 4 x 5 grid
    grid = tokens.transpose(1, 2).reshape(2, 6, 4, 5)
    out = fast(grid)
    assert torch.allclose(out, plain(grid), atol=1e-6)
    assert out.flatten(2).transpose(1, 2).is_contiguous()
    out.sum().backward()
    assert fast.weight.grad is not None and fast.weight.grad.is_contiguous() and tokens.grad is not None
