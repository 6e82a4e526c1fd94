"""PFAMethod on a tiny real MiT + SegFormer head: heads, phases, gradients, state, bank persistence."""

from __future__ import annotations

import pytest
import torch
from pydantic import ValidationError
from safetensors.torch import load_file, save_file

from scribbleseg.errors import ConfigError
from scribbleseg.methods import TrainBatch, parse_class_source, partial_cross_entropy
from scribbleseg.methods.class_sources import ClassSource
from scribbleseg.methods.inference_types import Evidence
from scribbleseg.models import MixTransformer, SegFormerHead
from scribbleseg.pfa import PFAMethod, PFASettings, Phase, phase_for

K = 4
ALL_HEADS = ("basic", "local", "global")


def tiny_segmentor(seed=0, **settings):
    torch.manual_seed(seed)
    encoder = MixTransformer(embed_dims=(8, 16, 16, 16), num_heads=(1, 1, 1, 1), depths=(1, 1, 1, 1),
                             mlp_ratios=(2, 2, 2, 2), sr_ratios=(4, 2, 1, 1))
    head = SegFormerHead(in_channels=encoder.embed_dims, num_classes=K, embed_dim=16, dropout=0.0)
    settings.setdefault("warmup_iters", 0)
    return PFAMethod(encoder, head, num_classes=K, settings=PFASettings(**settings))


def step(seg, images, scribbles, present, iteration):
    return seg.training_step(TrainBatch(images, scribbles, present, present), iteration)


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


def test_infer_heads_and_no_bank_change():
    seg = tiny_segmentor()
    images, _, present = batch()
    assert list(seg.heads()) == list(ALL_HEADS)
    assert seg.heads()["global"].unavailable and "not full" in seg.heads()["global"].unavailable
    out = seg.infer(images, ("basic", "local"), classes=present)
    assert out.logits["basic"].shape == (2, K, 8, 8)
    assert out.logits["local"].shape == out.logits["basic"].shape
    with pytest.raises(ConfigError, match="not full"):  # bank empty
        seg.infer(images, ALL_HEADS, classes=present)
    assert "local" not in seg.infer(images, ("basic", "local"), classes=None).logits
    assert "local" not in seg.infer(images, ("basic",), classes=present).logits
    assert torch.all(seg.bank.filled == 0)  # inference never updates the bank
    with pytest.raises(ConfigError, match="sideways"):
        seg.infer(images, ("sideways",), classes=present)


def test_phase_schedule_transitions_and_losses():
    seg = tiny_segmentor(warmup_iters=2, slots=2)
    images, scribbles, present = batch()
    seen = []
    for iteration in range(5):
        result = step(seg, images, scribbles, present, iteration)
        seen.append(Phase(result.phase))
        out, parts = result.outputs, result.parts
        assert torch.isfinite(result.loss) and set(parts) == set(seg.loss_names())
        if result.phase == "warmup":
            assert set(out) == {"basic"} and float(parts["con_local"]) == 0
            torch.testing.assert_close(result.loss.detach(), parts["pce"])
        elif result.phase == "local":
            assert set(out) == {"basic", "local"} and float(parts["con_local"]) > 0
        else:
            assert "global" in out and float(parts["con_global"]) > 0
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
    assert phase_for(9, True, PFASettings(warmup_iters=0, use_local=False, use_global=False)) is Phase.WARMUP
    assert phase_for(9, True, PFASettings(warmup_iters=0, use_global=False)) is Phase.LOCAL


def test_pce_supervises_the_configured_prediction():
    seg = tiny_segmentor(slots=1)
    images, scribbles, present = batch()
    seg.eval()  # deterministic: dropout off, BN running stats
    result = step(seg, images, scribbles, present, 0)
    assert result.phase == "global"
    torch.testing.assert_close(result.parts["pce"], partial_cross_entropy(result.outputs["global"], scribbles).detach())
    seg.settings.pce_target.global_ = "basic"
    result = step(seg, images, scribbles, present, 0)
    torch.testing.assert_close(result.parts["pce"], partial_cross_entropy(result.outputs["basic"], scribbles).detach())


def test_gradients_reach_augmenter_classifier_encoder_but_not_prototypes():
    seg = tiny_segmentor(slots=1)
    images, scribbles, present = batch()
    result = step(seg, images, scribbles, present, 0)
    assert result.phase == "global"
    features, basic = seg.encode(images)
    assert seg.local_prototypes(features, basic, seg.prepare_present(present))[0].grad_fn is None
    assert seg.bank.prototypes.grad_fn is None
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
    result = step(seg, images, scribbles, present, 0)
    result.loss.backward()
    assert float(result.parts["pce"]) == 0 and torch.isfinite(result.loss)
    assert seg.augmenter("local").feature_proj.weight.grad.abs().sum() > 0


def test_empty_scribble_batch_in_warmup_backpropagates():
    seg = tiny_segmentor(warmup_iters=5)
    images, scribbles, present = batch()
    scribbles[:] = 255
    result = step(seg, images, scribbles, present, 0)
    assert result.phase == "warmup" and torch.isfinite(result.loss) and float(result.loss.detach()) == 0
    result.loss.backward()
    assert all(torch.isfinite(p.grad).all() for p in seg.parameters() if p.grad is not None)


def test_baseline_never_touches_the_bank():
    seg = tiny_segmentor(use_local=False, use_global=False)
    images, scribbles, present = batch()
    for iteration in range(3):
        result = step(seg, images, scribbles, present, iteration)
        assert result.phase == "warmup" and set(result.outputs) == {"basic"}
    assert torch.all(seg.bank.filled == 0)


def test_global_only_ablation_skips_local_branch():
    seg = tiny_segmentor(use_local=False, slots=2)
    images, scribbles, present = batch()
    first = step(seg, images, scribbles, present, 0)
    assert first.phase == "local" and set(first.outputs) == {"basic"}
    torch.testing.assert_close(first.loss.detach(), first.parts["pce"])
    second = step(seg, images, scribbles, present, 1)
    assert second.phase == "global" and "global" in second.outputs


@pytest.mark.parametrize("share", [True, False])
def test_state_dict_round_trip_through_safetensors(tmp_path, share):
    seg = tiny_segmentor(slots=2, share_augmenter=share)
    images, scribbles, present = batch()
    step(seg, images, scribbles, present, 0)
    assert not seg.bank.is_full
    step(seg, images, scribbles, present, 1)
    assert seg.bank.is_full
    path = tmp_path / "model.safetensors"
    save_file({k: v.contiguous() for k, v in seg.state_dict().items()}, str(path))
    fresh = tiny_segmentor(seed=1, slots=2, share_augmenter=share)
    assert not fresh.bank.is_full
    fresh.load_state_dict(load_file(str(path)))
    assert fresh.bank.is_full and torch.equal(fresh.bank.prototypes, seg.bank.prototypes)
    seg.eval(), fresh.eval()
    a, b = seg.infer(images, ALL_HEADS, present), fresh.infer(images, ALL_HEADS, present)
    torch.testing.assert_close(a.logits["global"], b.logits["global"])
    torch.testing.assert_close(a.logits["local"], b.logits["local"])
    assert ("augmenters.global.fuse.weight" in seg.state_dict()) is (not share)


def _chooser(source: ClassSource, given=None):
    return lambda evidence: source.classes(evidence, (32, 32), given=given)


def test_infer_with_class_sources(tmp_path):
    seg = tiny_segmentor(slots=1).eval()
    images, scribbles, present = batch()
    step(seg, images, scribbles, present, 0)
    out = seg.infer(images, ALL_HEADS, _chooser(parse_class_source("oracle"), given=present))
    assert set(out.logits) == set(ALL_HEADS) and out.present[:, 0].all()
    assert set(seg.infer(images, ALL_HEADS, _chooser(parse_class_source("none"))).logits) == {"basic"}
    out = seg.infer(images, ALL_HEADS, _chooser(parse_class_source("threshold:0")))
    assert out.present.all() and "global" in out.logits
    seen = []
    seg.infer(images, ("local",), lambda evidence: seen.append(evidence) or present)
    assert isinstance(seen[0], Evidence) and seen[0].basic.shape == (2, K, 8, 8)


def test_bad_settings_are_validation_errors_naming_the_field():
    for bad, field in (({"confidence": "max"}, "confidence"), ({"slots": 0}, "slots"),
                       ({"pce_target": {"later": "basic"}}, "later"), ({"pce_target": {"local": "other"}}, "local"),
                       ({"topk_ratio": 0}, "topk_ratio"), ({"consistency": "mse"}, "consistency")):
        with pytest.raises(ValidationError, match=field):
            PFASettings(**bad)
        with pytest.raises(ConfigError, match=f"pfa.*{field}"):
            PFASettings.build(**bad)


def test_training_step_under_bf16_autocast_keeps_float32_prototypes():
    seg = tiny_segmentor(slots=1)
    images, scribbles, present = batch()
    with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
        result = step(seg, images, scribbles, present, 0)
        features, basic = seg.encode(images)
        prototypes, _ = seg.local_prototypes(features, basic, seg.prepare_present(present))
    assert result.phase == "global" and torch.isfinite(result.loss)
    assert prototypes.dtype == torch.float32 and seg.bank.prototypes.dtype == torch.float32
    norms = prototypes[present].norm(dim=1)
    torch.testing.assert_close(norms, torch.ones_like(norms), atol=1e-5, rtol=0)  # full precision, unit norm
    result.loss.backward()
    assert seg.augmenter("local").expand.weight.grad is not None


@pytest.mark.parametrize("share", [True, False])
def test_branches_equal_direct_augmenter_calls(share):
    """The shared embedding reuse gives exactly what a direct augmenter call on the features gives."""
    seg = tiny_segmentor(slots=1, share_augmenter=share).eval()
    images, scribbles, present = batch()
    step(seg, images, scribbles, present, 0)
    out = seg.infer(images, ALL_HEADS, present)
    feats, basic = seg.encode(images)
    protos, usable = seg.local_prototypes(feats, basic, seg.prepare_present(present))
    local = seg.head.classify(seg.augmenter("local")(feats, protos, usable))
    bank = seg.bank.flat_prototypes().unsqueeze(0).expand(2, -1, -1)
    glob = seg.head.classify(seg.augmenter("global")(feats, bank, seg.prepare_present(present).repeat_interleave(1, 1)))
    torch.testing.assert_close(out.logits["local"], local)
    torch.testing.assert_close(out.logits["global"], glob)
    assert (seg.augmenter("global") is seg.augmenter("local")) is share


@pytest.mark.parametrize("consistency", ["ce", "kl", "released"])
def test_variants_train_end_to_end(consistency):
    seg = tiny_segmentor(slots=1, confidence="minmax", consistency=consistency)
    images, scribbles, present = batch()
    result = step(seg, images, scribbles, present, 0)
    assert result.phase == "global" and torch.isfinite(result.loss)
    result.loss.backward()
    assert seg.augmenter("global").fuse.weight.grad.abs().sum() > 0


def test_restore_undoes_bank_and_batchnorm_updates_of_a_step():
    """A skipped step must leave no trace: bank, fill counters and BN running statistics come back."""
    seg = tiny_segmentor(slots=1)
    images, scribbles, present = batch()
    before = {name: value.clone() for name, value in seg.state_dict().items()}
    snapshot = seg.snapshot()
    result = step(seg, images, scribbles, present, 0)
    assert result.phase == "global" and seg.bank.is_full
    changed = [name for name, value in seg.state_dict().items() if not torch.equal(value, before[name])]
    assert any("running_mean" in name for name in changed) and "bank.filled" in changed
    seg.restore(snapshot)
    for name, value in seg.state_dict().items():
        assert torch.equal(value, before[name]), name
    assert not seg.bank.is_full, "the cached fill state is dropped with the restore"
    assert step(seg, images, scribbles, present, 0).phase == "global"


def test_training_summary_reports_the_bank_fill_state():
    seg = tiny_segmentor(slots=2)
    images, scribbles, present = batch()
    assert seg.training_summary() == {"bank_full_classes": 0, "bank_seen_classes": 0, "bank_classes": K}
    step(seg, images, scribbles, present, 0)  # classes 0 and 3 twice, 1 and 2 once
    assert seg.training_summary() == {"bank_full_classes": 2, "bank_seen_classes": 4, "bank_classes": K}
