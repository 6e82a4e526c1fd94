"""CLI: eval / predict / plot end to end on a tiny checkpoint, and their bad-input errors (exit code 2)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from scribbleseg.cli.app import app
from scribbleseg.engine.runs.layout import eval_results_path
from scribbleseg.data import SYNTHETIC_CLASS_NAMES, make_synthetic_dataset
from scribbleseg.engine.runs.checkpoint import save_model_checkpoint
from scribbleseg.engine.config.schema import ExperimentConfig
from scribbleseg.engine.build.method_factory import build_method
from scribbleseg.methods import parse_class_source
from scribbleseg.pfa import PFASettings
from tiny_models import tiny_model_config

RUNNER = CliRunner()


def tiny_config(data_root, embed_dims=(8, 16, 32, 64)) -> ExperimentConfig:
    return ExperimentConfig(
        data={"root": str(data_root), "num_workers": 0},
        model=tiny_model_config(embed_dims=embed_dims, embed_dim=32),
        pfa=PFASettings(slots=2), eval={"class_source": "threshold"})


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli_eval")
    data_root = make_synthetic_dataset(root / "data", seed=0, num_train=1, num_val=2, size=32)
    cfg = tiny_config(data_root)
    config_path = root / "config.yaml"
    config_path.write_text(cfg.to_yaml())
    num_classes = len(SYNTHETIC_CLASS_NAMES)
    segmentor = build_method(cfg, num_classes, load_pretrained=False)
    palette = [[(37 * i) % 256, (91 * i) % 256, (53 * i) % 256] for i in range(num_classes)]
    checkpoint = save_model_checkpoint(root / "run" / "checkpoints" / "best.safetensors", segmentor, cfg,
                                       {"step": 7, "class_names": list(SYNTHETIC_CLASS_NAMES), "palette": palette})
    return {"root": root, "data": data_root, "config": config_path, "checkpoint": checkpoint, "cfg": cfg,
            "num_classes": num_classes}


def invoke(*args):
    return RUNNER.invoke(app, [str(a) for a in args])


def test_eval_prints_table_and_writes_json(run) -> None:
    out = run["root"] / "results" / "r.json"
    result = invoke("eval", run["config"], "--checkpoint", run["checkpoint"], "--classes", "none",
                    "--head", "basic", "--head", "local", "--out", out, "--device", "cpu")
    assert result.exit_code == 0, result.output
    assert "mean" in result.output and SYNTHETIC_CLASS_NAMES[1] in result.output
    payload = json.loads(out.read_text())
    assert set(payload["results"]) == {"basic", "local"}
    assert payload["meta"]["class_source"] == "none" and payload["meta"]["step"] == 7
    assert payload["results"]["local"]["confusion"] == payload["results"]["basic"]["confusion"]
    assert payload["results"]["basic"]["num_images"] == 2


def test_eval_default_heads_and_output_path(run) -> None:
    result = invoke("eval", run["config"], "--checkpoint", run["checkpoint"], "--device", "cpu")
    assert result.exit_code == 0, result.output
    assert "skipped head global" in result.output
    written = eval_results_path(run["checkpoint"], parse_class_source("threshold"), "val", str(run["data"]))
    assert written.name.startswith("best_data-") and written.name.endswith("_val_threshold.json")
    payload = json.loads(written.read_text())
    assert set(payload["results"]) == {"basic", "local"} and payload["meta"]["class_source"] == "threshold"


@pytest.mark.parametrize("extra, message", [
    (["--classes", "threshold:lots"], "whole number"),
    (["--classes", "file:/nonexistent/classes.json"], "not found"),
    (["--head", "global"], "not full"),
    (["--head", "fancy"], "unknown head"),
    (["--set", "eval.bogus=1"], "unknown config key"),
])
def test_eval_bad_options_exit_2(run, extra, message) -> None:
    result = invoke("eval", run["config"], "--checkpoint", run["checkpoint"], "--device", "cpu", *extra)
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output


def test_eval_missing_or_incompatible_checkpoint_exit_2(run, tmp_path) -> None:
    result = invoke("eval", run["config"], "--checkpoint", tmp_path / "nope.safetensors")
    assert result.exit_code == 2 and "checkpoint not found" in result.output
    other_backbone = tmp_path / "other.yaml"
    other_backbone.write_text(tiny_config(run["data"], embed_dims=(8, 16, 32, 32)).to_yaml())
    result = invoke("eval", other_backbone, "--checkpoint", run["checkpoint"])
    assert result.exit_code == 2 and "incompatible" in result.output and "backbone" in result.output
    cfg = run["cfg"]
    fewer = build_method(cfg, run["num_classes"] - 1, load_pretrained=False)
    fewer_path = save_model_checkpoint(tmp_path / "fewer.safetensors", fewer, cfg, {"step": 1})
    result = invoke("eval", run["config"], "--checkpoint", fewer_path)
    assert result.exit_code == 2 and "classes" in result.output
    corrupt = tmp_path / "corrupt.safetensors"
    corrupt.write_bytes(b"\x00" * 64)
    result = invoke("eval", run["config"], "--checkpoint", corrupt)
    assert result.exit_code == 2 and "corrupt.safetensors" in result.output


def test_predict_writes_labels_overlays_and_probabilities(run) -> None:
    images = run["data"] / "images" / "val"
    out = run["root"] / "pred"
    result = invoke("predict", run["checkpoint"], images, "--out", out, "--overlay", "--probs", "--device", "cpu",
                    "--batch-size", "2", "--head", "local", "--classes", "threshold:10")
    assert result.exit_code == 0, result.output
    names = sorted(p.stem for p in images.iterdir())
    assert sorted(p.stem for p in out.glob("*.png")) == names
    with Image.open(out / f"{names[0]}.png") as label:
        assert label.mode == "P" and label.getpalette()[3:6] == [37, 91, 53]
    assert sorted(p.stem for p in (out / "overlays").glob("*.png")) == names
    probs = np.load(out / "probabilities" / f"{names[0]}.npy")
    assert probs.shape == (run["num_classes"], 32, 32) and probs.dtype == np.float16


def test_predict_bad_inputs_exit_2(run, tmp_path) -> None:
    result = invoke("predict", run["checkpoint"], tmp_path / "missing.jpg", "--out", tmp_path / "o")
    assert result.exit_code == 2 and "missing.jpg" in result.output
    corrupt = tmp_path / "corrupt.jpg"
    corrupt.write_bytes(b"\xff\xd8\xff garbage")
    result = invoke("predict", run["checkpoint"], corrupt, "--out", tmp_path / "o")
    assert result.exit_code == 2 and "corrupt.jpg" in result.output
    image = next((run["data"] / "images" / "val").iterdir())
    blocker = tmp_path / "blocker"
    blocker.write_text("a file, not a folder")
    result = invoke("predict", run["checkpoint"], image, "--out", blocker)
    assert result.exit_code == 2 and "blocker" in result.output
    result = invoke("predict", run["checkpoint"], image, "--out", tmp_path / "o", "--classes", "maybe")
    assert result.exit_code == 2 and "class source" in result.output
    result = invoke("predict", tmp_path / "none.safetensors", image, "--out", tmp_path / "o")
    assert result.exit_code == 2 and "checkpoint not found" in result.output
    result = invoke("predict", run["checkpoint"], image, "--out", tmp_path / "o", "--device", "tpu")
    assert result.exit_code == 2 and "--device" in result.output


def test_plot_draws_curves_and_the_overlay_grid(run) -> None:
    run_dir = run["root"] / "run"
    rows = [{"step": s, "epoch": 0, "phase": "warmup", "lr": 1e-3, "loss": 1.0 / s, "loss_pce": 1.0 / s,
             "loss_con_local": 0.0, "loss_con_global": 0.0} for s in range(1, 6)]
    rows.append({"step": 5, "val/basic/miou": 0.3})
    (run_dir / "metrics.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    result = invoke("plot", run_dir, "--device", "cpu", "--num-images", "2")
    assert result.exit_code == 0, result.output
    for name in ("loss.png", "miou.png", "lr.png", "predictions.png"):
        assert (run_dir / "figures" / name).is_file(), result.output
    result = invoke("plot", run["root"] / "no_run")
    assert result.exit_code == 2 and "run folder not found" in result.output


def test_eval_of_an_exported_model_equals_eval_of_its_checkpoint(run) -> None:
    """``eval`` takes an ``.onnx`` model like ``predict`` does (one loader): its basic head scores what the
    checkpoint's does, within 1e-4 mIoU; the exported model has no class-source table to score."""
    for package in ("onnx", "onnxscript", "onnxruntime"):
        pytest.importorskip(package, reason="the [onnx] extra is not installed")
    model = run["root"] / "exported" / "basic.onnx"
    exported = invoke("export", run["checkpoint"], "--out", model, "--no-check")
    assert exported.exit_code == 0, exported.output
    scores = {}
    for name, path in (("checkpoint", run["checkpoint"]), ("onnx", model)):
        out = run["root"] / "exported" / f"{name}.json"
        result = invoke("eval", run["config"], "--checkpoint", path, "--head", "basic", "--out", out, "--device", "cpu")
        assert result.exit_code == 0, result.output
        payload = json.loads(out.read_text())
        scores[name] = payload["results"]["basic"]["miou"]
        assert payload["results"]["basic"]["num_images"] == 2
    assert abs(scores["onnx"] - scores["checkpoint"]) <= 1e-4, scores
    assert "class_sources" not in payload
    result = invoke("eval", run["config"], "--checkpoint", model, "--amp", "--device", "cpu")
    assert result.exit_code == 2 and "--amp applies to PyTorch checkpoints" in result.output
