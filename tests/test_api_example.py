"""The Python API example of docs/ARCHITECTURE.md runs as written (tiny model, two iterations)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

DOC = Path(__file__).resolve().parents[1] / "docs" / "ARCHITECTURE.md"


def api_example() -> str:
    """The first ``python`` code block after the Python API heading."""
    text = DOC.read_text(encoding="utf-8")
    section = text[text.index("## The Python API"):]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_the_documented_api_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(api_example(), str(DOC), "exec"), namespace)  # noqa: S102 - the project's own documentation
    image, prediction, refined, report = (namespace[name] for name in ("image", "prediction", "refined", "report"))
    assert prediction.labels.shape == image.shape[:2] and prediction.labels.dtype == np.uint8
    assert prediction.probabilities.shape == (namespace["model"].num_classes, *image.shape[:2])
    np.testing.assert_allclose(prediction.probabilities.sum(0), 1.0, atol=1e-4)
    assert np.array_equal(prediction.probabilities.argmax(0), prediction.labels)
    assert refined.head == "local" and refined.probabilities is None
    assert {"basic", "local"} <= set(report) and all(0.0 <= result.miou <= 1.0 for result in report.values())
    assert (tmp_path / "runs" / "tiny" / "checkpoints" / "last.safetensors").is_file()
    assert "(32, 32) local" in capsys.readouterr().out


def test_api_predict_equals_the_cli_label_png(tmp_path: Path) -> None:
    """``api.predict`` of an array = the label PNG ``scribbleseg predict`` writes for the same file (one path)."""
    from PIL import Image

    from scribbleseg import api
    from scribbleseg.data import read_rgb_image
    from scribbleseg.engine.inference.model import MethodModel
    from scribbleseg.engine.inference.windows import SlideSettings
    from test_engine_eval_inference import tiny_segmentor
    from test_engine_predict import write_images

    paths = write_images(tmp_path / "in", sizes=((37, 53), (80, 64)))
    model = MethodModel(tiny_segmentor())
    for slide in (SlideSettings(), SlideSettings(mode="slide", tile=32)):
        settings = api.inference_settings(model, slide=slide)
        api.predict_files(model, paths, tmp_path / "out", settings)
        for path in paths:
            labels = api.predict(model, read_rgb_image(path), settings).labels
            assert np.array_equal(labels, np.array(Image.open(tmp_path / "out" / f"{path.stem}.png")))
