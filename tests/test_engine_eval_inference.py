"""Full-image inference: padding and crop-back on odd sizes, MS + flip, heads and class sources."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from scribbleseg.engine.config.schema import ExperimentConfig
from scribbleseg.engine.inference.probabilities import ImageFacts, available_heads, infer_probabilities, resolve_heads
from scribbleseg.engine.inference.settings import InferenceSettings
from scribbleseg.engine.inference.views import pad_batch
from scribbleseg.engine.build.method_factory import build_method
from scribbleseg.errors import ConfigError
from scribbleseg.methods import parse_class_source
from scribbleseg.pfa import PFASettings
from tiny_models import tiny_model_config

def options(classes: str | None = None, **values) -> InferenceSettings:
    """Test-time settings with the class source spelled ``classes`` (``None``: none) and ``values`` as in
    :meth:`InferenceSettings.build`."""
    return InferenceSettings.build(class_source=parse_class_source(classes) if classes is not None else None,
                                   **values)


NUM_CLASSES = 4


def tiny_segmentor(seed: int = 0, use_local: bool = True, use_global: bool = True):
    torch.manual_seed(seed)
    cfg = ExperimentConfig(model=tiny_model_config(embed_dim=32),
                           pfa=PFASettings(slots=2, use_local=use_local, use_global=use_global))
    return build_method(cfg, NUM_CLASSES, load_pretrained=False).eval()


def fill_bank(segmentor) -> None:
    with torch.no_grad():
        segmentor.bank.prototypes.copy_(F.normalize(torch.randn_like(segmentor.bank.prototypes), dim=-1))
        segmentor.bank.filled.fill_(segmentor.bank.slots)


def manual_view_probabilities(segmentor, image: torch.Tensor, mirrored: bool) -> torch.Tensor:
    """Reference: pad to 32, (mirror), encode, x4 upsample, (un-mirror), crop, softmax -> [K, H, W]."""
    h, w = image.shape[-2:]
    padded = F.pad(image[None], (0, -w % 32, 0, -h % 32))
    view = padded.flip(-1) if mirrored else padded
    with torch.no_grad():
        _, logits = segmentor.encode(view)
    logits = F.interpolate(logits, scale_factor=4, mode="bilinear", align_corners=False)
    if mirrored:
        logits = logits.flip(-1)
    return logits[0, :, :h, :w].softmax(0)


def test_pad_batch_pads_to_multiple_of_32_at_bottom_right() -> None:
    a, b = torch.randn(3, 37, 53), torch.randn(3, 20, 70)
    batch, sizes = pad_batch([a, b])
    assert batch.shape == (2, 3, 64, 96) and sizes == [(37, 53), (20, 70)]
    assert torch.equal(batch[0, :, :37, :53], a) and torch.equal(batch[1, :, :20, :70], b)
    assert batch[0, :, 37:].abs().sum() == 0 and batch[0, :, :, 53:].abs().sum() == 0


def test_single_scale_crop_back_on_odd_size_matches_manual_reference() -> None:
    segmentor = tiny_segmentor()
    image = torch.randn(3, 37, 53)
    out = infer_probabilities(segmentor, [image], InferenceSettings(heads=("basic",)))
    probs = out.probabilities["basic"][0]
    assert probs.shape == (NUM_CLASSES, 37, 53)
    torch.testing.assert_close(probs, manual_view_probabilities(segmentor, image, False), atol=1e-5, rtol=1e-4)


def test_flip_averages_the_mirrored_view_with_correct_crop() -> None:
    segmentor = tiny_segmentor()
    image = torch.randn(3, 37, 53)
    probs = infer_probabilities(segmentor, [image], InferenceSettings(heads=("basic",), flip=True)).probabilities["basic"][0]
    reference = (manual_view_probabilities(segmentor, image, False)
                 + manual_view_probabilities(segmentor, image, True)) / 2
    torch.testing.assert_close(probs, reference, atol=1e-5, rtol=1e-4)


def test_flip_is_mirror_equivariant_without_padding() -> None:
    segmentor = tiny_segmentor()
    image = torch.randn(3, 32, 64)
    forward = infer_probabilities(segmentor, [image], InferenceSettings(heads=("basic",), flip=True)).probabilities["basic"][0]
    mirrored = infer_probabilities(segmentor, [image.flip(-1)], InferenceSettings(heads=("basic",), flip=True)).probabilities["basic"][0]
    torch.testing.assert_close(forward, mirrored.flip(-1), atol=1e-5, rtol=1e-4)


def test_multiscale_flip_shapes_and_normalisation_for_mixed_sizes() -> None:
    segmentor = tiny_segmentor()
    fill_bank(segmentor)
    images = [torch.randn(3, 37, 53), torch.randn(3, 45, 33)]
    out = infer_probabilities(segmentor, images, InferenceSettings(heads=("basic", "local", "global"), class_source=parse_class_source("threshold:0"), scales=(0.75, 1.25), flip=True))
    for head in ("basic", "local", "global"):
        shapes = [tuple(p.shape) for p in out.probabilities[head]]
        assert shapes == [(NUM_CLASSES, 37, 53), (NUM_CLASSES, 45, 33)]
        for probs in out.probabilities[head]:
            torch.testing.assert_close(probs.sum(0), torch.ones(probs.shape[1:]), atol=1e-4, rtol=0)
    assert out.present is not None and out.present.shape == (2, NUM_CLASSES)


def test_batching_pads_to_the_largest_image_and_keeps_sizes() -> None:
    segmentor = tiny_segmentor()
    images = [torch.randn(3, 37, 53), torch.randn(3, 64, 64)]
    out = infer_probabilities(segmentor, images, InferenceSettings(heads=("basic",)))
    assert [tuple(p.shape[1:]) for p in out.probabilities["basic"]] == [(37, 53), (64, 64)]
    alone = infer_probabilities(segmentor, images[1:], InferenceSettings(heads=("basic",))).probabilities["basic"][0]
    torch.testing.assert_close(out.probabilities["basic"][1], alone, atol=1e-5, rtol=1e-4)


def test_class_source_none_gives_basic_for_augmented_heads_with_a_note() -> None:
    segmentor = tiny_segmentor()
    image = torch.randn(3, 32, 48)
    out = infer_probabilities(segmentor, [image], InferenceSettings(heads=("basic", "local"), class_source=parse_class_source("none")))
    assert out.present is None
    assert torch.equal(out.probabilities["local"][0], out.probabilities["basic"][0])
    assert out.notes and "Without Augmented" in out.notes[0]
    augmented = infer_probabilities(segmentor, [image], InferenceSettings(heads=("basic", "local"), class_source=parse_class_source("threshold:0")))
    assert not torch.allclose(augmented.probabilities["local"][0], augmented.probabilities["basic"][0])


def test_oracle_uses_given_classes_plus_background() -> None:
    segmentor = tiny_segmentor()
    given = torch.tensor([[False, False, True, False], [False, True, False, True]])
    out = infer_probabilities(segmentor, [torch.randn(3, 32, 32), torch.randn(3, 40, 36)], InferenceSettings(heads=("local",), class_source=parse_class_source("oracle")), ImageFacts(given=given))
    assert out.present.tolist() == [[True, False, True, False], [True, True, False, True]]
    assert set(out.probabilities) == {"local"}


def test_threshold_counts_pixels_of_the_basic_prediction() -> None:
    segmentor = tiny_segmentor()
    image = torch.randn(3, 37, 53)
    out = infer_probabilities(segmentor, [image], InferenceSettings(heads=("basic", "local"), class_source=parse_class_source("threshold:100")))
    counts = torch.bincount(out.labels("basic")[0].flatten(), minlength=NUM_CLASSES)
    expected = counts >= 100
    expected[0] = True
    assert out.present[0].tolist() == expected.tolist()


def test_head_availability_and_selection() -> None:
    segmentor = tiny_segmentor()
    reasons = available_heads(segmentor)
    assert reasons["basic"] is None and reasons["local"] is None
    assert "not full" in reasons["global"]
    runnable, skipped = resolve_heads(segmentor, None)
    assert runnable == ["basic", "local"] and set(skipped) == {"global"}
    with pytest.raises(ConfigError, match="not full"):
        resolve_heads(segmentor, ["global"])
    with pytest.raises(ConfigError, match="unknown head"):
        resolve_heads(segmentor, ["fancy"])
    fill_bank(segmentor)
    assert resolve_heads(segmentor, None)[0] == ["basic", "local", "global"]
    baseline = tiny_segmentor(use_local=False, use_global=False)
    assert resolve_heads(baseline, None) == (["basic"], {
        "local": available_heads(baseline)["local"], "global": available_heads(baseline)["global"]})
    assert "use_local" in available_heads(baseline)["local"]
