"""Sliding-window inference: tile geometry, band stitching == full-canvas blending bit for bit, one tile
== whole-image inference, overlapping tiles == a per-tile reference, the class set chosen once per image
and used by every tile's class-dependent heads, the streamed probability file, eval in slide mode."""

from __future__ import annotations

import io
import os

import numpy as np
import pytest
import torch

from scribbleseg.engine.inference.band_sinks import ClassCountSink, EvidenceSink, LabelSink, evidence_factor
from scribbleseg.engine.inference.band_stitching import stitch
from scribbleseg.engine.inference.probabilities import infer_probabilities
from scribbleseg.engine.inference.settings import InferenceSettings
from scribbleseg.engine.prediction.probability_file import open_probability_file
from scribbleseg.engine.inference.slide import slide_infer
from scribbleseg.engine.inference.windows import (
    SlideSettings,
    blend_window,
    slide_settings,
    tile_grid,
    tile_starts,
    uses_slide,
)
from scribbleseg.engine.inference.tile_sources import RGBTiles, TensorTiles
from scribbleseg.errors import ConfigError, OutputWriteError
from scribbleseg.methods import ClassSource, Evidence, parse_class_source

from test_engine_eval_inference import NUM_CLASSES, fill_bank, options, tiny_segmentor

HEADS = ("basic", "local", "global")


class CanvasSink:
    """Test sink: the full [K, H, W] probabilities (NaN where never written) and how often each row came."""

    def __init__(self, num_classes: int, height: int, width: int) -> None:
        self.probabilities = torch.full((num_classes, height, width), float("nan"))
        self.row_writes = torch.zeros(height, dtype=torch.long)

    def write(self, top: int, probabilities, labels) -> None:
        rows = probabilities.shape[1]
        self.probabilities[:, top:top + rows] = probabilities
        self.row_writes[top:top + rows] += 1
        assert torch.equal(labels, probabilities.argmax(0))


def canvas_blend(grid, window, tile_maps) -> torch.Tensor:
    """Reference: one full [K, H, W] canvas, tiles added in row-major order, divided by the weight sum."""
    num_classes = next(iter(tile_maps.values())).shape[0]
    total = torch.zeros(num_classes, grid.height, grid.width)
    weight = torch.zeros(grid.height, grid.width)
    for y in grid.ys:
        for x in grid.xs:
            total[:, y:y + grid.tile_height, x:x + grid.tile_width] += tile_maps[(y, x)] * window
            weight[y:y + grid.tile_height, x:x + grid.tile_width] += window
    return total / weight


def run_slide(segmentor, image, heads, settings, **kwargs) -> tuple[dict, object]:
    """``kwargs``: the other fields of :class:`InferenceSettings` (class source, views, tile batch)."""
    sinks = {head: CanvasSink(NUM_CLASSES, *image.shape[-2:]) for head in heads}
    result = slide_infer(segmentor, TensorTiles(image), {head: [sink] for head, sink in sinks.items()},
                         InferenceSettings(slide=settings, **kwargs))
    for sink in sinks.values():
        assert torch.equal(sink.row_writes, torch.ones_like(sink.row_writes))  # every row exactly once
    return {head: sink.probabilities for head, sink in sinks.items()}, result


@pytest.mark.parametrize("length, tile, stride", [(100, 32, 24), (96, 32, 32), (20, 32, 24), (33, 32, 1), (64, 64, 48)])
def test_tiles_cover_the_axis_once_started_every_stride_and_the_last_ends_at_the_border(length, tile, stride):
    starts = tile_starts(length, tile, stride)
    size = min(tile, length)
    covered = torch.zeros(length, dtype=torch.long)
    for start in starts:
        covered[start:start + size] += 1
    assert (covered >= 1).all() and starts[0] == 0 and starts[-1] + size == length
    assert list(starts) == sorted(set(starts))
    assert all(b - a <= stride for a, b in zip(starts, starts[1:]))


def test_windows_and_settings() -> None:
    assert torch.equal(blend_window(5, 7, "uniform"), torch.ones(5, 7))
    gaussian = blend_window(33, 32, "gaussian")
    assert gaussian.shape == (33, 32) and float(gaussian.min()) > 0 and float(gaussian.max()) <= 1
    assert torch.equal(gaussian, gaussian.flip(0)) and torch.allclose(gaussian, gaussian.flip(1))
    assert gaussian[16, 15] > gaussian[0, 15] * 100  # the centre outweighs the border
    assert SlideSettings(tile=512).step == 384 and SlideSettings(tile=64, stride=64).step == 64
    with pytest.raises(ConfigError, match="stride"):
        slide_settings(tile=64, stride=65)
    with pytest.raises(ConfigError, match="eval.slide.mode"):
        slide_settings(mode="sometimes")
    assert slide_settings(SlideSettings(tile=64), tile=None, blend="uniform").tile == 64
    auto = SlideSettings(pixel_budget=100)
    assert not uses_slide(auto, 10, 10) and uses_slide(auto, 10, 11)
    assert uses_slide(SlideSettings(mode="slide"), 1, 1) and not uses_slide(SlideSettings(mode="whole", pixel_budget=1), 9, 9)
    assert not uses_slide(None, 10_000, 10_000)


@pytest.mark.parametrize("blend", ["uniform", "gaussian"])
@pytest.mark.parametrize("height, width, tile, stride", [(70, 90, 32, 24), (40, 100, 48, 17), (20, 45, 32, 32)])
def test_band_stitching_is_bit_identical_to_full_canvas_blending(blend, height, width, tile, stride) -> None:
    grid = tile_grid(height, width, SlideSettings(tile=tile, stride=stride))
    window = blend_window(grid.tile_height, grid.tile_width, blend)
    generator = torch.Generator().manual_seed(0)
    tile_maps = {(y, x): torch.rand(NUM_CLASSES, grid.tile_height, grid.tile_width, generator=generator)
                 for y in grid.ys for x in grid.xs}
    sink = CanvasSink(NUM_CLASSES, height, width)
    counts = ClassCountSink(NUM_CLASSES)
    stitch(grid, window, NUM_CLASSES, lambda y: ((x, {"basic": tile_maps[(y, x)]}) for x in grid.xs),
           {"basic": [sink, counts]}, emit_rows=3)
    reference = canvas_blend(grid, window, tile_maps)
    assert torch.equal(sink.probabilities, reference)
    assert torch.equal(sink.row_writes, torch.ones(height, dtype=torch.long))
    assert torch.equal(counts.counts, torch.bincount(reference.argmax(0).flatten(), minlength=NUM_CLASSES))


def test_evidence_sink_keeps_every_fth_row_and_column() -> None:
    assert evidence_factor(1000, 1000, 1_000_000) == 1 and evidence_factor(8000, 8000, 1024 * 1024) == 8
    assert evidence_factor(1001, 1000, 1_000_000) == 2
    probabilities = torch.rand(NUM_CLASSES, 23, 17).softmax(0)
    sink = EvidenceSink(NUM_CLASSES, 23, 17, factor=3)
    for top in range(0, 23, 5):  # bands that do not line up with the factor
        sink.write(top, probabilities[:, top:top + 5], probabilities[:, top:top + 5].argmax(0))
    assert torch.equal(sink.log_probabilities, probabilities[:, ::3, ::3].clamp_min(1e-12).log())


@pytest.mark.parametrize("views", [{}, {"flip": True, "scales": (0.75, 1.0)}])
def test_one_tile_covering_the_image_equals_whole_image_inference(views) -> None:
    segmentor = tiny_segmentor()
    fill_bank(segmentor)
    image = torch.randn(3, 45, 70)
    source = parse_class_source("threshold:40")
    whole = infer_probabilities(segmentor, [image], InferenceSettings(heads=HEADS, class_source=source, **views))
    uniform, result = run_slide(segmentor, image, HEADS, SlideSettings(tile=96, blend="uniform"),
                                class_source=source, **views)
    assert result.tiles == 1 and torch.equal(result.present, whole.present)
    for head in HEADS:
        assert torch.equal(uniform[head], whole.probabilities[head][0]), head  # weights 1: bit-identical
    if not views:  # Gaussian weights: w * p / w, equal up to rounding
        gaussian, _ = run_slide(segmentor, image, HEADS, SlideSettings(tile=96), class_source=source)
        for head in HEADS:
            torch.testing.assert_close(gaussian[head], whole.probabilities[head][0], atol=1e-6, rtol=1e-5)
    assert not torch.equal(uniform["local"], uniform["basic"])  # the augmented heads really ran


def test_overlapping_tiles_blend_each_tiles_own_prediction_like_the_reference() -> None:
    segmentor = tiny_segmentor()
    fill_bank(segmentor)
    image = torch.randn(3, 70, 90)
    settings = SlideSettings(tile=32, stride=24)
    present = torch.tensor([[True, False, True, True]])

    class Fixed(ClassSource):
        def classes(self, evidence, image_size, names=None, given=None):
            return present

    slid, result = run_slide(segmentor, image, HEADS, settings, class_source=Fixed(), tile_batch=3)
    grid = tile_grid(70, 90, settings)
    window = blend_window(32, 32, "gaussian")
    assert result.tiles == len(grid) == 12 and result.passes == 2
    for head in HEADS:
        tile_maps = {}
        for y in grid.ys:
            for x in grid.xs:
                tile = image[:, y:y + 32, x:x + 32]
                output = infer_probabilities(segmentor, [tile], InferenceSettings(heads=(head,)), classes=present)
                tile_maps[(y, x)] = output.probabilities[head][0]
        torch.testing.assert_close(slid[head], canvas_blend(grid, window, tile_maps), atol=1e-6, rtol=1e-5)


def test_class_set_is_chosen_once_from_the_whole_image_and_used_by_every_tile(monkeypatch) -> None:
    segmentor = tiny_segmentor()
    image = torch.randn(3, 64, 80)
    settings = SlideSettings(tile=32, stride=24)
    asked: list[tuple[Evidence, tuple]] = []

    class Recording(ClassSource):
        def classes(self, evidence, image_size, names=None, given=None):
            asked.append((evidence, tuple(image_size)))
            return torch.tensor([[True, True, False, False]])

    calls: list[tuple[tuple, object]] = []
    original = type(segmentor).infer

    def spy(self, images, heads=("basic",), classes=None):
        calls.append((tuple(heads), None if classes is None else classes.clone()))
        return original(self, images, heads=heads, classes=classes)

    monkeypatch.setattr(type(segmentor), "infer", spy)
    basic = LabelSink(64, 80, NUM_CLASSES)
    local = LabelSink(64, 80, NUM_CLASSES)
    slide_infer(segmentor, TensorTiles(image), {"basic": [basic], "local": [local]},
                InferenceSettings(slide=settings, class_source=Recording(), tile_batch=2))
    assert len(asked) == 1  # once per image, not per tile
    evidence, image_size = asked[0]
    assert image_size == (64, 80)
    assert torch.equal(evidence.pixel_counts[0], torch.bincount(basic.labels.flatten().long(), minlength=NUM_CLASSES))
    assert evidence.basic.shape == (1, NUM_CLASSES, 64, 80)  # small image: the full map
    assert torch.equal(evidence.basic[0].argmax(0), basic.labels.long())
    grid = tile_grid(64, 80, settings)
    dependent_calls = [classes for heads, classes in calls if "local" in heads]
    assert [len(classes) for classes in dependent_calls] == [2, 1] * len(grid.ys)  # 3 tiles a row, 2 per forward
    for classes in dependent_calls:
        assert torch.equal(classes, torch.tensor([[True, True, False, False]]).expand(len(classes), -1))
    assert all(classes is None for heads, classes in calls if heads == ("basic",))


def test_threshold_source_counts_the_full_resolution_pixels_it_is_given() -> None:
    source = parse_class_source("threshold:500")
    summary = torch.zeros(1, NUM_CLASSES, 2, 2)  # a subsampled map in which class 0 wins everywhere
    counts = torch.tensor([[10_000, 499, 500, 0]])
    chosen = source.classes(Evidence(summary, pixel_counts=counts), (8000, 8000))
    assert chosen.tolist() == [[True, False, True, False]]


def test_rgb_tiles_equal_windows_of_the_normalised_image() -> None:
    from scribbleseg.data import build_eval_transform
    from scribbleseg.data.datasets import image_to_tensor
    rgb = np.random.default_rng(0).integers(0, 256, (37, 51, 3), dtype=np.uint8)
    full = image_to_tensor(build_eval_transform()(image=rgb)["image"])
    tiles = RGBTiles(rgb)
    assert torch.equal(tiles.whole(), full)
    assert torch.equal(tiles.read(5, 30, 17, 51), full[:, 5:30, 17:51])


def test_probability_file_is_the_npy_file_numpy_writes(tmp_path) -> None:
    probabilities = torch.rand(NUM_CLASSES, 13, 9)
    target = tmp_path / "p.npy"
    with open_probability_file(target, NUM_CLASSES, 13, 9) as sink:
        for top in range(0, 13, 4):
            sink.write(top, probabilities[:, top:top + 4], probabilities[:, top:top + 4].argmax(0))
    buffer = io.BytesIO()
    np.save(buffer, probabilities.numpy().astype(np.float16), allow_pickle=False)
    assert target.read_bytes() == buffer.getvalue()
    assert sorted(os.listdir(tmp_path)) == ["p.npy"]


def test_failed_probability_file_leaves_the_old_file_and_no_temp(tmp_path, monkeypatch) -> None:
    target = tmp_path / "p.npy"
    target.write_bytes(b"old")

    def full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "pwrite", full)
    with pytest.raises(OutputWriteError, match="p.npy.*No space left"):
        with open_probability_file(target, NUM_CLASSES, 4, 4) as sink:
            sink.write(0, torch.rand(NUM_CLASSES, 4, 4), torch.zeros(4, 4, dtype=torch.long))
    assert target.read_bytes() == b"old" and sorted(os.listdir(tmp_path)) == ["p.npy"]


def test_eval_in_slide_mode_scores_like_whole_mode_when_one_tile_covers_each_image() -> None:
    from test_engine_eval_evaluate import TinyEvalSet
    from scribbleseg.engine.evaluation.evaluate import evaluate

    segmentor = tiny_segmentor()
    fill_bank(segmentor)
    dataset = TinyEvalSet()
    whole = evaluate(segmentor, dataset, options("threshold:20", slide=SlideSettings(mode="whole")))
    slid = evaluate(segmentor, dataset,
                    options("threshold:20", slide=SlideSettings(mode="slide", tile=64, blend="uniform")))
    assert list(slid) == list(whole) == list(HEADS)
    for head in HEADS:
        np.testing.assert_array_equal(slid[head].confusion, whole[head].confusion)
    assert any("3 image(s) predicted tile by tile" in note for note in slid["basic"].notes)
    assert not any("tile by tile" in note for note in whole["basic"].notes)
    # a tiny pixel budget: auto mode tiles every image (32 px tiles overlap on these 33..53 px images)
    tiled = evaluate(segmentor, dataset,
                     options("none", heads=("basic",), slide=SlideSettings(pixel_budget=100, tile=32, stride=16)))
    assert tiled["basic"].confusion.sum() == whole["basic"].confusion.sum()
    assert any("tile by tile (32 px tiles, stride 16" in note for note in tiled["basic"].notes)
