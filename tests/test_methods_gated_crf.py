"""Gated CRF loss against a loop reference over pixels and window offsets, its gradient and its properties."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from pydantic import ValidationError

from scribbleseg.data import IMAGENET_MEAN, IMAGENET_STD
from scribbleseg.methods.gated_crf import GatedCRFKernel, GatedCRFSettings, default_kernels, gated_crf_loss

NORM = {"mean": IMAGENET_MEAN, "std": IMAGENET_STD}
# a wide colour bandwidth, so that most pairs of random colours still interact
WIDE = [GatedCRFKernel(weight=0.7, xy=2.0, rgb=60.0), GatedCRFKernel(weight=0.3, xy=1.5)]


def reference_loss(probs, images, valid, kernels, radius, downscale):
    """Plain loops: cell means, gate, then every ordered pair (i, j) of the clipped window, float64 numpy."""
    probs = probs.detach().double().numpy()
    images = images.double().numpy()
    valid = np.ones((images.shape[0],) + images.shape[2:], bool) if valid is None else valid.numpy()
    batch, _, height, width = probs.shape
    rgb = np.zeros((batch, 3, height, width))
    gate = np.zeros((batch, height, width), bool)
    for n in range(batch):
        for y in range(height):
            for x in range(width):
                block = (slice(y * downscale, (y + 1) * downscale), slice(x * downscale, (x + 1) * downscale))
                for c in range(3):
                    cell = images[n, c][block].mean()
                    rgb[n, c, y, x] = (cell * IMAGENET_STD[c] + IMAGENET_MEAN[c]) * 255.0
                gate[n, y, x] = valid[n][block].all()
    total = 0.0
    for n in range(batch):
        for y in range(height):
            for x in range(width):
                for dy in range(-radius, radius + 1):
                    for dx in range(-radius, radius + 1):
                        yy, xx = y + dy, x + dx
                        if (dy, dx) == (0, 0) or not (0 <= yy < height and 0 <= xx < width):
                            continue
                        if not (gate[n, y, x] and gate[n, yy, xx]):
                            continue
                        k = 0.0
                        for kernel in kernels:
                            exponent = (dy * dy + dx * dx) / kernel.xy ** 2
                            if kernel.rgb is not None:
                                exponent += ((rgb[n, :, y, x] - rgb[n, :, yy, xx]) ** 2).sum() / kernel.rgb ** 2
                            k += kernel.weight * math.exp(-0.5 * exponent)
                        total += k * (1.0 - probs[n, :, y, x] @ probs[n, :, yy, xx])
    return total / max(gate.sum(), 1)


def random_case(seed=0, batch=2, classes=3, height=7, width=9, downscale=1):
    generator = torch.Generator().manual_seed(seed)
    logits = torch.randn(batch, classes, height, width, generator=generator) * 2
    images = torch.randn(batch, 3, height * downscale, width * downscale, generator=generator)
    return logits, images


@pytest.mark.parametrize("radius", [2, 5])
def test_equals_loop_reference_at_prediction_resolution(radius):
    logits, images = random_case()
    settings = GatedCRFSettings(kernels=WIDE, radius=radius, downscale=1)
    loss = gated_crf_loss(logits.double(), images, settings, **NORM)
    want = reference_loss(logits.double().softmax(1), images, None, WIDE, radius, 1)
    assert loss.dtype == torch.float64 and want > 0.1
    assert abs(float(loss) - want) < 1e-9
    loss32 = gated_crf_loss(logits, images, settings, **NORM)
    assert loss32.dtype == torch.float32 and abs(float(loss32) - want) < 1e-6 * max(1.0, want)


def test_equals_loop_reference_with_downscale_defaults_and_gate():
    logits, images = random_case(seed=1, downscale=4)
    valid = torch.ones(2, 28, 36, dtype=torch.bool)
    valid[0, :9, :] = False      # rows 0-8: grid rows 0-2 of image 0 (row 2 partly invalid) drop out
    valid[1, :, 30:] = False     # columns 30-35: grid columns 7-8 of image 1 (column 7 partly) drop out
    settings = GatedCRFSettings(downscale=4)
    loss = gated_crf_loss(logits, images, settings, valid, **NORM)
    want = reference_loss(logits.softmax(1), images, valid, default_kernels(), 5, 4)
    assert abs(float(loss) - want) < 1e-6 * max(1.0, want)
    ungated = gated_crf_loss(logits, images, settings, **NORM)
    assert abs(float(ungated) - reference_loss(logits.softmax(1), images, None, default_kernels(), 5, 4)) < 1e-6
    assert abs(float(ungated) - float(loss)) > 1e-3


def test_gate_cuts_the_masked_cells_out():
    logits, images = random_case(seed=2)
    valid = torch.ones(2, 7, 9, dtype=torch.bool)
    valid[:, 2:5, 3:7] = False
    settings = GatedCRFSettings(kernels=WIDE, radius=3, downscale=1)
    logits = logits.requires_grad_()
    loss = gated_crf_loss(logits, images, settings, valid, **NORM)
    loss.backward()
    assert torch.all(logits.grad[:, :, 2:5, 3:7] == 0) and logits.grad[:, :, valid[0]].abs().sum() > 0
    changed = logits.detach().clone()
    changed[:, :, 2:5, 3:7] = torch.randn(2, 3, 3, 4) * 5  # what the prediction says in the masked area
    assert float(gated_crf_loss(changed, images, settings, valid, **NORM)) == pytest.approx(loss.item(), abs=1e-6)
    nothing = torch.zeros(2, 7, 9, dtype=torch.bool)
    empty = gated_crf_loss(logits, images, settings, nothing, **NORM)
    assert empty.item() == 0.0 and empty.requires_grad


def test_gradcheck_float64():
    logits, images = random_case(seed=3, batch=1, classes=3, height=4, width=5)
    settings = GatedCRFSettings(kernels=WIDE, radius=2, downscale=1)
    valid = torch.ones(1, 4, 5, dtype=torch.bool)
    valid[0, 1, 1:3] = False
    logits = logits.double().requires_grad_()
    for gate in (None, valid):
        assert torch.autograd.gradcheck(lambda x: gated_crf_loss(x, images, settings, gate, **NORM), (logits,))
    probs = logits.detach().softmax(1).requires_grad_()  # perturbed off the simplex too: 1 - p_i.p_j as is
    assert torch.autograd.gradcheck(
        lambda p: gated_crf_loss(p, images, settings, valid, from_logits=False, **NORM), (probs,))


def test_constant_one_hot_prediction_costs_nothing():
    _, images = random_case(seed=4, downscale=2)
    probs = torch.zeros(2, 3, 7, 9)
    probs[:, 1] = 1.0
    for kernels in (WIDE, default_kernels()):
        settings = GatedCRFSettings(kernels=kernels, radius=5, downscale=2)
        assert float(gated_crf_loss(probs, images, settings, from_logits=False, **NORM)) == 0.0
    split = probs.clone()
    split[:, :, :, 5:] = torch.tensor([1.0, 0.0, 0.0]).view(1, 3, 1, 1)
    assert float(gated_crf_loss(split, images, GatedCRFSettings(downscale=2), from_logits=False, **NORM)) > 0


def _normalise(rgb255):
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return (rgb255 / 255.0 - mean) / std


def test_cut_along_a_colour_edge_costs_less_than_a_cut_across_a_uniform_region():
    size = 16
    rgb = torch.zeros(1, 3, size, size)
    rgb[:, :, :, size // 2:] = 200.0  # dark left half, bright right half: one vertical colour edge
    images = _normalise(rgb)
    along = torch.zeros(1, 2, size, size)
    along[:, 0, :, : size // 2] = 1.0
    along[:, 1, :, size // 2:] = 1.0           # the prediction's boundary lies on the colour edge
    across = along.transpose(2, 3).contiguous()  # same boundary length, horizontal, through both colours
    settings = GatedCRFSettings(downscale=1)
    cost_along = float(gated_crf_loss(along, images, settings, from_logits=False, **NORM))
    cost_across = float(gated_crf_loss(across, images, settings, from_logits=False, **NORM))
    assert cost_across > 5 * cost_along > 0
    xy_only = GatedCRFSettings(kernels=[GatedCRFKernel(weight=1.0, xy=6.0)], downscale=1)
    assert float(gated_crf_loss(along, images, xy_only, from_logits=False, **NORM)) == pytest.approx(
        float(gated_crf_loss(across, images, xy_only, from_logits=False, **NORM)), rel=1e-6)


def test_batch_order_does_not_matter():
    logits, images = random_case(seed=5, batch=4, downscale=2)
    valid = torch.rand(4, 14, 18, generator=torch.Generator().manual_seed(0)) > 0.2
    settings = GatedCRFSettings(kernels=WIDE, downscale=2)
    order = torch.tensor([2, 0, 3, 1])
    loss = gated_crf_loss(logits, images, settings, valid, **NORM)
    permuted = gated_crf_loss(logits[order], images[order], settings, valid[order], **NORM)
    torch.testing.assert_close(permuted, loss)


def test_predictions_at_another_resolution_are_resized_to_the_grid():
    logits, images = random_case(seed=6, height=4, width=5, downscale=8)  # a 1/8 decoder, grid at 1/4
    settings = GatedCRFSettings(kernels=WIDE, downscale=4)
    probs = F.interpolate(logits.softmax(1), size=(8, 10), mode="bilinear", align_corners=False)
    want = reference_loss(probs, images, None, WIDE, 5, 4)
    assert abs(float(gated_crf_loss(logits, images, settings, **NORM)) - want) < 1e-6 * max(1.0, want)
    fine, _ = random_case(seed=7, height=24, width=30)                     # finer than the grid: area mean
    probs = F.avg_pool2d(fine.softmax(1), 3)
    want = reference_loss(probs, images, None, WIDE, 5, 4)
    assert abs(float(gated_crf_loss(fine, images, settings, **NORM)) - want) < 1e-6 * max(1.0, want)


def test_bf16_autocast_gives_a_finite_float32_loss_close_to_float32():
    logits, images = random_case(seed=8, batch=2, classes=5, height=12, width=12, downscale=4)
    settings = GatedCRFSettings()
    reference = gated_crf_loss(logits, images, settings, **NORM)
    half = logits.bfloat16().requires_grad_()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = gated_crf_loss(half, images.bfloat16(), settings, **NORM)
    loss.backward()
    assert loss.dtype == torch.float32 and torch.isfinite(loss) and torch.isfinite(half.grad.float()).all()
    assert loss.item() == pytest.approx(reference.item(), rel=0.05)


def test_bad_shapes_raise_value_errors_naming_the_argument():
    logits, images = random_case(downscale=4)
    settings = GatedCRFSettings()
    with pytest.raises(ValueError, match="predictions"):
        gated_crf_loss(logits[0], images, settings, **NORM)
    with pytest.raises(ValueError, match="images"):
        gated_crf_loss(logits, images[:, :1], settings, **NORM)
    with pytest.raises(ValueError, match="images"):
        gated_crf_loss(logits, images[:1], settings, **NORM)
    with pytest.raises(ValueError, match="valid"):
        gated_crf_loss(logits, images, settings, torch.ones(2, 7, 9, dtype=torch.bool), **NORM)
    with pytest.raises(ValueError, match="downscale"):
        gated_crf_loss(logits, images[..., :27, :], settings, **NORM)
    with pytest.raises(ValueError, match="std"):
        gated_crf_loss(logits, images, settings, mean=IMAGENET_MEAN, std=(0.2, 0.2))


@pytest.mark.parametrize("fields, where", [
    ({"radius": 0}, "radius"),
    ({"downscale": 0}, "downscale"),
    ({"weight": -0.1}, "weight"),
    ({"kernels": []}, "kernels"),
    ({"kernels": [{"weight": 1.0, "xy": 0.0}]}, "kernels.0.xy"),
    ({"kernels": [{"weight": 1.0, "xy": 3.0, "rgb": float("nan")}]}, "kernels.0.rgb"),
    ({"kernels": [{"weight": 1.0, "xy": 3.0, "lab": 5.0}]}, "kernels.0.lab"),
    ({"radus": 3}, "radus"),
])
def test_bad_settings_name_the_field(fields, where):
    with pytest.raises(ValidationError, match=where.replace(".", r"\.")):
        GatedCRFSettings.model_validate(fields)
    settings = GatedCRFSettings()
    if where in ("radius", "downscale", "weight"):
        with pytest.raises(ValidationError, match=where):
            setattr(settings, where, fields[where])  # validate_assignment


def test_settings_from_a_yaml_mapping():
    settings = GatedCRFSettings.model_validate(
        {"weight": 0.2, "radius": 3, "kernels": [{"weight": 1, "xy": 4, "rgb": 15}]})
    assert settings.kernels == [GatedCRFKernel(weight=1.0, xy=4.0, rgb=15.0)] and settings.downscale == 4
    assert GatedCRFSettings.model_validate(settings.model_dump()) == settings
    # the default rgb bandwidth is the released code's 0.1 ImageNet std, in grey levels
    assert default_kernels()[0].rgb == pytest.approx(0.1 * 255 * sum(IMAGENET_STD) / 3, abs=0.01)
