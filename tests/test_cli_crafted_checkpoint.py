"""A checkpoint whose header was edited (a huge ``embed_dim``, more classes) does not fit its own tensors:
eval / predict say so (exit 2) before the model is built, so nothing huge is ever allocated."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from typer.testing import CliRunner

from scribbleseg.cli.app import app
from scribbleseg.engine.runs.checkpoint import CONFIG_KEY, META_KEY, save_model_checkpoint
from scribbleseg.engine.config.loading import config_from_mapping
from scribbleseg.engine.build.method_factory import build_method
from tiny_models import tiny_model_mapping


def crafted(folder: Path, edit) -> Path:  # type: ignore[no-untyped-def]
    """A valid tiny checkpoint whose stored config / meta were then changed by ``edit(config, meta)``."""
    cfg = config_from_mapping({"model": tiny_model_mapping(), "pfa": {"slots": 2}})
    good = save_model_checkpoint(folder / "good.safetensors", build_method(cfg, 4, load_pretrained=False), cfg,
                                 {"step": 1})
    with safe_open(str(good), framework="pt") as handle:
        metadata = handle.metadata()
    config, meta = json.loads(metadata[CONFIG_KEY]), json.loads(metadata[META_KEY])
    edit(config, meta)
    metadata = {**metadata, CONFIG_KEY: json.dumps(config), META_KEY: json.dumps(meta)}
    path = folder / "crafted.safetensors"
    save_file(load_file(str(good)), str(path), metadata=metadata)
    return path


EDITS = {
    "embed_dim": lambda config, meta: config["model"]["decoder"].update(embed_dim=200000),  # 640 GB of weights
    "num_classes": lambda config, meta: meta.update(num_classes=10**9),  # 64 GB for the classifier
}


@pytest.mark.parametrize("edit", sorted(EDITS))
def test_a_header_that_does_not_fit_the_tensors_is_refused_before_building(tmp_path: Path, edit: str) -> None:
    checkpoint = crafted(tmp_path, EDITS[edit])
    image = tmp_path / "photo.png"
    Image.new("RGB", (32, 32)).save(image)
    result = CliRunner().invoke(app, ["predict", str(checkpoint), str(image), "--out", str(tmp_path / "out"),
                                      "--device", "cpu"])
    assert result.exit_code == 2, (result.output, result.exception)
    text = result.output.replace("\n", "")
    assert "crafted.safetensors" in text and "does not fit" in text and "Traceback" not in text, text
