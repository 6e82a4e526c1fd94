"""PFASegmentor on a tiny real MiT + SegFormer head: outputs, phases, gradients, bank persistence."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file, save_file

from scribbleseg.errors import ConfigError
from scribbleseg.models import MixTransformer, SegFormerHead
from scribbleseg.pfa import PFASegmentor, PFASettings, Phase, parse_class_source, partial_cross_entropy, phase_for

K = 4


def tiny_segmentor(seed=0, **settings):
    torch.manual_seed(seed)
    encoder = MixTransformer(embed_dims=(8, 16, 16, 16), num_heads=(1, 1, 1, 1), depths=(1, 1, 1, 1),
                             mlp_ratios=(2, 2, 2, 2), sr_ratios=(4, 2, 1, 1))
    head = SegFormerHead(in_channels=encoder.embed_dims, num_classes=K, embed_dim=16, dropout=0.0)
    return PFASegmentor(encoder, head, num_classes=K, settings=PFASettings(**settings))


def batch(seed=0, n=2, size=32):
    generator = torch.Generator().manual_seed(seed)
    images = torch.randn(n, 3, size, size, generator=generator)
    scribbles = torch.full((n, size, size), 255, dtype=torch.long)
    scribbles[:, 2:5, 2:20] = 0
    scribbles[0, 20:23, 5:25] = 1
    scribbles[1, 20:23, 5:25] = 2
    scribbles[:, 27:29, 10:30] = 3
    present = torch.zeros(n, K, dtype=torch.bool)
    present[:, 0] = present[:, 3] = True
    present[0, 1] = present[1, 2] = True
    return images, scribbles, present


def test_forward_outputs_and_no_bank_change():
    seg = tiny_segmentor()
    images, _, present = batch()
    out = seg(images, present=present)
    assert out.basic.shape == (2, K, 8, 8) and out.features.shape == (2, 16, 8, 8)
    assert out.local is not None and out.local.shape == out.basic.shape
    assert out.global_ is None  # bank empty
    assert seg(images, present=None).local is None
    assert seg(images, present=present, augment=False).local is None
    assert torch.all(seg.bank.filled == 0)  # forward never updates the bank
    with pytest.raises(ConfigError, match="augment"):
        seg(images, present=present, augment="sideways")


def test_phase_schedule_transitions_and_losses():
    seg = tiny_segmentor(warmup_iters=2, slots=2)
    images, scribbles, present = batch()
    seen = []
    for iteration in range(5):
        result = seg.training_step(images, scribbles, present, iteration)
        seen.append(result.phase)
        out, parts = result.output, result.parts
        assert torch.isfinite(result.loss)
        if result.phase is Phase.WARMUP:
            assert out.local is None and out.global_ is None and float(parts["con_local"]) == 0
            torch.testing.assert_close(result.loss.detach(), parts["pce"])
        elif result.phase is Phase.LOCAL:
            assert out.local is not None and out.global_ is None and float(parts["con_local"]) > 0
        else:
            assert out.global_ is not None and float(parts["con_global"]) > 0
            want = parts["pce"] + 0.01 * parts["con_local"] + 0.01 * parts["con_global"]
            torch.testing.assert_close(result.loss.detach(), want)
    # warm-up: bank untouched; iteration 2 fills classes 0, 3 but only one slot of 1, 2: local;
    # iteration 3 fills the bank before the phase is decided: global
    assert seen == [Phase.WARMUP, Phase.WARMUP, Phase.LOCAL, Phase.GLOBAL, Phase.GLOBAL]
    assert seg.phase_for(0) is Phase.WARMUP and seg.phase_for(10) is Phase.GLOBAL


def test_phase_for_pure_function():
    s = PFASettings(warmup_iters=3)
    assert phase_for(2, True, s) is Phase.WARMUP
    assert phase_for(3, False, s) is Phase.LOCAL
    assert phase_for(3, True, s) is Phase.GLOBAL
    assert phase_for(9, True, PFASettings(use_local=False, use_global=False)) is Phase.WARMUP
    assert phase_for(9, True, PFASettings(use_global=False)) is Phase.LOCAL


def test_pce_supervises_the_configured_prediction():
    seg = tiny_segmentor(slots=1)
    images, scribbles, present = batch()
    seg.eval()  # deterministic: dropout off, BN running stats
    result = seg.training_step(images, scribbles, present, 0)
    assert result.phase is Phase.GLOBAL
    torch.testing.assert_close(result.parts["pce"], partial_cross_entropy(result.output.global_, scribbles).detach())
    seg.settings.pce_target["global"] = "basic"
    result = seg.training_step(images, scribbles, present, 0)
    torch.testing.assert_close(result.parts["pce"], partial_cross_entropy(result.output.basic, scribbles).detach())


def test_gradients_reach_augmenter_classifier_encoder_but_not_prototypes():
    seg = tiny_segmentor(slots=1)
    images, scribbles, present = batch()
    result = seg.training_step(images, scribbles, present, 0)
    assert result.phase is Phase.GLOBAL
    assert result.output.local_prototypes.grad_fn is None and seg.bank.prototypes.grad_fn is None
    result.loss.backward()
    for name, parameter in seg.augmenters.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name
    assert seg.head.classifier.weight.grad.abs().sum() > 0
    assert all(p.grad is not None for p in seg.encoder.parameters())
    assert sum(float(p.grad.abs().sum()) for p in seg.encoder.parameters()) > 0


def test_consistency_gradient_only_through_augmented_branch():
    """With pCE on basic and detached targets, the consistency term's gradient reaches the augmenter."""
    seg = tiny_segmentor(slots=1, pce_target={"global": "basic", "local": "basic"}, lambda_local=1.0)
    images, scribbles, present = batch()
    scribbles[:] = 255  # no scribbles: the loss is consistency only
    result = seg.training_step(images, scribbles, present, 0)
    result.loss.backward()
    assert float(result.parts["pce"]) == 0 and torch.isfinite(result.loss)
    assert seg.augmenter("local").feature_proj.weight.grad.abs().sum() > 0


def test_empty_scribble_batch_in_warmup_backpropagates():
    seg = tiny_segmentor(warmup_iters=5)
    images, scribbles, present = batch()
    scribbles[:] = 255
    result = seg.training_step(images, scribbles, present, 0)
    assert result.phase is Phase.WARMUP and torch.isfinite(result.loss) and float(result.loss.detach()) == 0
    result.loss.backward()
    assert all(torch.isfinite(p.grad).all() for p in seg.parameters() if p.grad is not None)


def test_baseline_never_touches_the_bank():
    seg = tiny_segmentor(use_local=False, use_global=False)
    images, scribbles, present = batch()
    for iteration in range(3):
        result = seg.training_step(images, scribbles, present, iteration)
        assert result.phase is Phase.WARMUP and result.output.local is None
    assert torch.all(seg.bank.filled == 0)


def test_global_only_ablation_skips_local_branch():
    seg = tiny_segmentor(use_local=False, slots=2)
    images, scribbles, present = batch()
    first = seg.training_step(images, scribbles, present, 0)
    assert first.phase is Phase.LOCAL and first.output.local is None and first.output.global_ is None
    torch.testing.assert_close(first.loss.detach(), first.parts["pce"])
    second = seg.training_step(images, scribbles, present, 1)
    assert second.phase is Phase.GLOBAL and second.output.global_ is not None


@pytest.mark.parametrize("share", [True, False])
def test_state_dict_round_trip_through_safetensors(tmp_path, share):
    seg = tiny_segmentor(slots=2, share_augmenter=share)
    images, scribbles, present = batch()
    seg.training_step(images, scribbles, present, 0)
    assert not seg.bank.is_full
    seg.training_step(images, scribbles, present, 1)
    assert seg.bank.is_full
    path = tmp_path / "model.safetensors"
    save_file({k: v.contiguous() for k, v in seg.state_dict().items()}, str(path))
    fresh = tiny_segmentor(seed=1, slots=2, share_augmenter=share)
    assert not fresh.bank.is_full
    fresh.load_state_dict(load_file(str(path)))
    assert fresh.bank.is_full and torch.equal(fresh.bank.prototypes, seg.bank.prototypes)
    seg.eval(), fresh.eval()
    a, b = seg(images, present=present), fresh(images, present=present)
    torch.testing.assert_close(a.global_, b.global_)
    torch.testing.assert_close(a.local, b.local)
    assert ("augmenters.global.fuse.weight" in seg.state_dict()) is (not share)


def test_infer_with_class_sources(tmp_path):
    seg = tiny_segmentor(slots=1).eval()
    images, scribbles, present = batch()
    seg.training_step(images, scribbles, present, 0)
    out = seg.infer(images, parse_class_source("oracle"), given=present)
    assert out.local is not None and out.global_ is not None and out.present[:, 0].all()
    assert seg.infer(images, parse_class_source("none")).local is None
    out = seg.infer(images, parse_class_source("threshold:0"))
    assert out.present.all() and out.global_ is not None


def test_bad_settings_raise_config_error():
    for bad in ({"confidence": "max"}, {"slots": 0}, {"pce_target": {"later": "basic"}},
                {"pce_target": {"local": "other"}}, {"topk_ratio": 0}, {"consistency": "mse"}):
        with pytest.raises(ConfigError, match="pfa"):
            PFASettings(**bad)


def test_training_step_under_bf16_autocast_keeps_float32_prototypes():
    seg = tiny_segmentor(slots=1)
    images, scribbles, present = batch()
    with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
        result = seg.training_step(images, scribbles, present, 0)
    assert result.phase is Phase.GLOBAL and torch.isfinite(result.loss)
    assert result.output.local_prototypes.dtype == torch.float32 and seg.bank.prototypes.dtype == torch.float32
    norms = result.output.local_prototypes[present].norm(dim=1)
    torch.testing.assert_close(norms, torch.ones_like(norms), atol=1e-5, rtol=0)  # full precision, unit norm
    result.loss.backward()
    assert seg.augmenter("local").expand.weight.grad is not None


@pytest.mark.parametrize("share", [True, False])
def test_branches_equal_direct_augmenter_calls(share):
    """The shared embedding reuse gives exactly what a direct augmenter call on the features gives."""
    seg = tiny_segmentor(slots=1, share_augmenter=share).eval()
    images, scribbles, present = batch()
    seg.training_step(images, scribbles, present, 0)
    out = seg(images, present=present)
    feats = out.features
    protos, usable = seg.local_prototypes(feats, out.basic, seg.prepare_present(present))
    local = seg.head.classify(seg.augmenter("local")(feats, protos, usable))
    bank = seg.bank.flat_prototypes().unsqueeze(0).expand(2, -1, -1)
    glob = seg.head.classify(seg.augmenter("global")(feats, bank, seg.prepare_present(present).repeat_interleave(1, 1)))
    torch.testing.assert_close(out.local, local)
    torch.testing.assert_close(out.global_, glob)
    assert (seg.augmenter("global") is seg.augmenter("local")) is share


@pytest.mark.parametrize("consistency", ["ce", "kl", "released"])
def test_variants_train_end_to_end(consistency):
    seg = tiny_segmentor(slots=1, confidence="minmax", consistency=consistency)
    images, scribbles, present = batch()
    result = seg.training_step(images, scribbles, present, 0)
    assert result.phase is Phase.GLOBAL and torch.isfinite(result.loss)
    result.loss.backward()
    assert seg.augmenter("global").fuse.weight.grad.abs().sum() > 0
