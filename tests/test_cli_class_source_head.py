"""CLI with the built-in image classifier: ``eval --classes head`` (mAP, per-class AP, the class-source table),
``predict`` defaulting to ``head``, and ``head`` refused for a checkpoint without a classifier (exit code 2)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from scribbleseg.cli.app import app
from scribbleseg.data import SYNTHETIC_CLASS_NAMES, make_synthetic_dataset
from scribbleseg.engine.runs.checkpoint import save_model_checkpoint
from scribbleseg.engine.config.schema import ExperimentConfig
from scribbleseg.engine.build.method_factory import build_method
from scribbleseg.pfa import PFASettings
from tiny_models import tiny_model_config

RUNNER = CliRunner()
K = len(SYNTHETIC_CLASS_NAMES)


def config(data_root, classifier: bool) -> ExperimentConfig:
    return ExperimentConfig(
        data={"root": str(data_root), "num_workers": 0}, model=tiny_model_config(embed_dim=32),
        pfa=PFASettings(slots=1), classifier={} if classifier else None,
        eval={"class_source": "head" if classifier else "threshold"})


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli_head")
    data_root = make_synthetic_dataset(root / "data", seed=0, num_train=1, num_val=3, size=32)
    made = {"root": root, "data": data_root}
    for name, classifier in (("head", True), ("plain", False)):
        cfg = config(data_root, classifier)
        (root / f"{name}.yaml").write_text(cfg.to_yaml())
        torch.manual_seed(0)
        method = build_method(cfg, K, load_pretrained=False)
        method.bank.prototypes.copy_(torch.nn.functional.normalize(torch.randn_like(method.bank.prototypes), dim=2))
        method.bank.filled.fill_(1)  # a full bank: the global head can run
        if classifier:  # the classifier says: background and class 1 only
            bias = torch.full((K,), -6.0)
            bias[:2] = 6.0
            method.image_classifier.head.linear.bias.data.copy_(bias)
        made[name] = save_model_checkpoint(root / name / "checkpoints" / "best.safetensors", method, cfg,
                                           {"step": 3, "class_names": list(SYNTHETIC_CLASS_NAMES)})
    return made


def invoke(*args):
    return RUNNER.invoke(app, [str(a) for a in args])


def test_eval_with_head_classes_reports_map_and_every_class_source(runs) -> None:
    out = runs["root"] / "head_eval.json"
    result = invoke("eval", runs["root"] / "head.yaml", "--checkpoint", runs["head"], "--classes", "head",
                    "--out", out, "--device", "cpu")
    assert result.exit_code == 0, result.output
    assert "mAP" in result.output and "Q2L 96.6" in result.output and "by class source" in result.output
    payload = json.loads(out.read_text())
    classifier = payload["classifier"]
    assert set(classifier["per_class_ap"]) == set(SYNTHETIC_CLASS_NAMES)
    assert classifier["per_class_ap"]["background"] is None  # always present: left out of the mAP
    assert 0.0 <= classifier["map"] <= 1.0 and classifier["num_images"] == 3
    assert list(payload["class_sources"]) == ["head", "oracle", "threshold", "none"]
    for spec, results in payload["class_sources"].items():
        assert set(results) == {"local", "global"}, spec
    none = payload["class_sources"]["none"]["global"]
    assert none["confusion"] == payload["results"]["basic"]["confusion"]
    assert payload["class_sources"]["head"]["global"]["confusion"] == payload["results"]["global"]["confusion"]


def test_predict_defaults_to_the_head_source(runs, tmp_path) -> None:
    images = runs["data"] / "images" / "val"
    outputs = {}
    for name, extra in (("default", []), ("head", ["--classes", "head"]), ("threshold", ["--classes", "threshold:0"])):
        result = invoke("predict", runs["head"], images, "--out", tmp_path / name, "--probs", "--head", "global",
                        "--device", "cpu", *extra)
        assert result.exit_code == 0, result.output
        outputs[name] = np.stack([np.load(path) for path in sorted((tmp_path / name / "probabilities").iterdir())])
    np.testing.assert_array_equal(outputs["default"], outputs["head"])
    assert not np.array_equal(outputs["default"], outputs["threshold"])


@pytest.mark.parametrize("command", ["eval", "predict"])
def test_head_source_without_a_classifier_exits_2(runs, tmp_path, command) -> None:
    if command == "eval":
        result = invoke("eval", runs["root"] / "plain.yaml", "--checkpoint", runs["plain"], "--classes", "head",
                        "--device", "cpu")
    else:
        image = next((runs["data"] / "images" / "val").iterdir())
        result = invoke("predict", runs["plain"], image, "--out", tmp_path / "o", "--classes", "head",
                        "--head", "global")
    assert result.exit_code == 2, result.output
    assert "trained without a 'classifier' config section" in result.output and "Traceback" not in result.output


def test_plain_checkpoint_predicts_with_the_threshold_default(runs, tmp_path) -> None:
    image = next((runs["data"] / "images" / "val").iterdir())
    result = invoke("predict", runs["plain"], image, "--out", tmp_path / "o", "--head", "global", "--device", "cpu")
    assert result.exit_code == 0, result.output


def test_eval_classifier_table_shows_support_and_marks_unreliable_ap(runs) -> None:
    out = runs["root"] / "support.json"
    result = invoke("eval", runs["root"] / "head.yaml", "--checkpoint", runs["head"], "--classes", "head",
                    "--out", out, "--device", "cpu", "--no-source-table")
    assert result.exit_code == 0, result.output
    table = result.output.split("image classifier on", 1)[1]
    assert "with" in table and "without" in table, table
    assert "* unreliable: fewer than 5 images with or without the class" in table.replace("\n", " "), table
    map_line = next(line for line in table.splitlines() if line.strip("│ ").startswith("mAP"))
    assert "*" in map_line, map_line  # 3 images: every AP, so the mAP, rests on fewer than 5
    classifier = json.loads(out.read_text())["classifier"]
    assert sum(classifier["positives"].values()) + sum(classifier["negatives"].values()) == 3 * K
    assert "background" not in classifier["unreliable_ap"] and classifier["unreliable_ap"]
