"""evaluate(): dense-GT scoring per head / class source, per-class table, atomic JSON results."""

from __future__ import annotations

import json
import math
import os

import numpy as np
import pytest
import torch
from rich.console import Console

from scribbleseg.data import DatasetInfo
from scribbleseg.engine.evaluation.confusion import confusion_matrix
from scribbleseg.engine.evaluation.results import EvalReport, EvalResult, write_results_json
from scribbleseg.engine.evaluation.tables import comparison_table, per_class_table
from scribbleseg.engine.evaluation.evaluate import evaluate
from scribbleseg.engine.inference.probabilities import infer_probabilities
from scribbleseg.engine.inference.settings import InferenceSettings
from scribbleseg.errors import ConfigError, DataError
from scribbleseg.methods import parse_class_source
from tiny_models import tiny_model_config

from test_engine_eval_inference import NUM_CLASSES, fill_bank, options, tiny_segmentor

CLASS_NAMES = ("background", "cat", "dog", "sofa")


class TinyEvalSet(torch.utils.data.Dataset):
    """Dense-GT items like EvalDataset: random images of odd sizes; class 3 never in the GT."""

    def __init__(self, sizes=((37, 53), (32, 40), (45, 33))):
        generator = torch.Generator().manual_seed(3)
        self.info = DatasetInfo(class_names=CLASS_NAMES, palette=((0, 0, 0), (128, 0, 0), (0, 128, 0), (0, 0, 128)))
        self.items = []
        for index, (h, w) in enumerate(sizes):
            mask = torch.randint(0, 3, (h, w), generator=generator)
            mask[0, :] = 255
            self.items.append({"image": torch.randn(3, h, w, generator=generator), "mask": mask,
                               "classes": torch.bincount(mask[mask != 255], minlength=NUM_CLASSES) > 0,
                               "name": f"img_{index}"})

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict:
        return self.items[index]


def console_text(renderable) -> str:
    console = Console(record=True, width=200)
    console.print(renderable)
    return console.export_text()


def test_basic_head_confusion_equals_sum_of_per_image_predictions() -> None:
    segmentor = tiny_segmentor()
    dataset = TinyEvalSet()
    report = evaluate(segmentor, dataset, options("none", heads=("basic",), batch_size=1))
    assert isinstance(report, EvalReport) and list(report) == ["basic"]
    expected = torch.zeros(NUM_CLASSES, NUM_CLASSES, dtype=torch.long)
    for item in dataset.items:
        label = infer_probabilities(segmentor, [item["image"]], InferenceSettings(heads=("basic",))).labels("basic")[0]
        expected += confusion_matrix(label, item["mask"], NUM_CLASSES)
    result = report["basic"]
    np.testing.assert_array_equal(result.confusion, expected.numpy())
    assert result.num_images == 3
    assert int(result.confusion.sum()) == sum(int((i["mask"] != 255).sum()) for i in dataset.items)
    assert 0.0 <= result.miou <= 1.0 and 0.0 <= result.pixel_accuracy <= 1.0
    assert not segmentor.training
    batched = evaluate(segmentor, dataset, options("none", heads=("basic",), batch_size=2))["basic"]
    assert int(batched.confusion.sum()) == int(result.confusion.sum()) and batched.num_images == 3


def test_evaluate_restores_training_mode_and_skips_impossible_heads() -> None:
    segmentor = tiny_segmentor().train()
    report = evaluate(segmentor, TinyEvalSet(), options("oracle", heads=None))
    assert segmentor.training
    assert set(report) == {"basic", "local"}
    assert "not full" in report.skipped["global"]
    fill_bank(segmentor)
    assert set(evaluate(segmentor, TinyEvalSet(), options("oracle", heads=None))) == {"basic", "local", "global"}


def test_class_source_none_makes_local_equal_basic_and_is_noted() -> None:
    segmentor = tiny_segmentor()
    report = evaluate(segmentor, TinyEvalSet(), options("none", heads=("basic", "local")))
    np.testing.assert_array_equal(report["local"].confusion, report["basic"].confusion)
    assert report["local"].notes and not report["basic"].notes
    oracle = evaluate(segmentor, TinyEvalSet(), options("oracle", heads=("basic", "local")))
    np.testing.assert_array_equal(oracle["basic"].confusion, report["basic"].confusion)
    assert not np.array_equal(oracle["local"].confusion, oracle["basic"].confusion)
    assert oracle["local"].class_source == "oracle"


def test_absent_class_is_nan_and_excluded_from_mean() -> None:
    confusion = np.array([[5, 1, 0, 0], [2, 3, 0, 0], [0, 0, 4, 0], [0, 0, 0, 0]])
    result = EvalResult(head="basic", class_source="oracle", confusion=confusion, class_names=CLASS_NAMES,
                        num_images=1)
    iou = result.per_class_iou
    assert math.isnan(iou[3])
    assert result.miou == pytest.approx(np.mean([5 / 8, 3 / 6, 1.0]))
    record = result.to_dict()
    assert record["per_class_iou"]["sofa"] is None and record["miou"] == pytest.approx(result.miou)
    json.dumps(record)  # NaN-free, serialisable


def test_per_class_table_lists_every_class_and_the_mean() -> None:
    confusion = np.array([[5, 1, 0, 0], [2, 3, 0, 0], [0, 0, 4, 0], [0, 0, 0, 0]])
    result = EvalResult(head="local", class_source="threshold:500", confusion=confusion,
                        class_names=CLASS_NAMES, num_images=2)
    text = console_text(per_class_table(result))
    for name in CLASS_NAMES:
        assert name in text
    assert "62.5" in text and "50.0" in text and "100.0" in text  # IoU of background, cat, dog in %
    assert "70.8" in text  # mean of the three defined classes
    sofa_line = next(line for line in text.splitlines() if "sofa" in line)
    assert "-" in sofa_line
    other = EvalResult(head="basic", class_source="none", confusion=np.eye(4, dtype=np.int64),
                       class_names=CLASS_NAMES, num_images=2)
    both = console_text(comparison_table({"basic": other, "local": result}))
    assert "basic" in both and "local" in both and "mean" in both


def test_results_json_is_written_atomically(tmp_path, monkeypatch) -> None:
    segmentor = tiny_segmentor()
    report = evaluate(segmentor, TinyEvalSet(), options("none", heads=None))
    path = write_results_json(report, tmp_path / "eval" / "results.json", checkpoint="x.safetensors")
    payload = json.loads(path.read_text())
    assert payload["meta"]["checkpoint"] == "x.safetensors"
    assert set(payload["results"]) == {"basic", "local"} and "global" in payload["skipped"]
    assert len(payload["results"]["basic"]["confusion"]) == NUM_CLASSES
    before = path.read_bytes()

    def failing_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError):
        write_results_json(report, path, checkpoint="other")
    assert path.read_bytes() == before
    assert sorted(p.name for p in path.parent.iterdir()) == ["results.json"]


def test_bad_inputs_raise_clear_errors() -> None:
    segmentor = tiny_segmentor()
    dataset = TinyEvalSet(sizes=((32, 32),))
    with pytest.raises(ConfigError, match="class source"):
        evaluate(segmentor, dataset, options("bogus"))
    with pytest.raises(ConfigError, match="5 classes|4 classes"):
        evaluate(tiny_segmentor_with(5), dataset, options("oracle"))
    dataset.items[0]["mask"][3, 3] = 9
    with pytest.raises(DataError, match="img_0"):
        evaluate(segmentor, dataset, options("none"))


def tiny_segmentor_with(num_classes: int):
    from scribbleseg.engine.config.schema import ExperimentConfig
    from scribbleseg.engine.build.method_factory import build_method
    return build_method(ExperimentConfig(model=tiny_model_config(embed_dim=32)), num_classes, load_pretrained=False)


def test_ms_flip_uses_default_scales() -> None:
    segmentor = tiny_segmentor()
    report = evaluate(segmentor, TinyEvalSet(sizes=((32, 32),)),
                      options("none", heads=("basic",), ms_flip=True, scales=(0.5, 1.0)))
    assert report["basic"].scales == (0.5, 1.0) and report["basic"].flip
    assert int(report["basic"].confusion.sum()) == 31 * 32
    assert parse_class_source("threshold:7").min_pixels == 7


def test_distributed_all_reduce_path_with_one_gloo_process(tmp_path) -> None:
    import torch.distributed as dist

    segmentor = tiny_segmentor()
    dataset = TinyEvalSet()
    single = evaluate(segmentor, dataset, options("none", heads=("basic",)))["basic"]
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'rendezvous'}", rank=0, world_size=1)
    try:
        whole = evaluate(segmentor, dataset, options("none", heads=("basic",)))["basic"]
        shard = evaluate(segmentor, torch.utils.data.Subset(dataset, [0, 2]),
                         options("none", heads=("basic",)))["basic"]
    finally:
        dist.destroy_process_group()
    np.testing.assert_array_equal(whole.confusion, single.confusion)
    assert whole.num_images == 3 and shard.num_images == 2


def test_amp_on_cpu_runs_and_mostly_agrees() -> None:
    segmentor = tiny_segmentor()
    dataset = TinyEvalSet(sizes=((32, 32),))
    full = evaluate(segmentor, dataset, options("none", heads=("basic",)))["basic"]
    mixed = evaluate(segmentor, dataset, options("none", heads=("basic",), amp=True))["basic"]
    assert int(mixed.confusion.sum()) == int(full.confusion.sum())
    assert np.abs(mixed.confusion - full.confusion).sum() <= 0.2 * full.confusion.sum()
