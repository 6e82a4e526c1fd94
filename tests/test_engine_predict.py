"""predict_paths(): palette PNGs = arg-max of the logits, overlays, probability maps, bad input."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from scribbleseg.data import InferenceImages
from scribbleseg.errors import OutputDirError
from scribbleseg.engine.inference.model import MethodModel
from scribbleseg.engine.prediction.predict_files import PredictionOutputs, predict_paths
from scribbleseg.errors import ConfigError, DataError

from test_engine_eval_inference import NUM_CLASSES, options, tiny_segmentor

PALETTE = [(0, 0, 0), (128, 0, 0), (0, 128, 0), (128, 128, 0)]


def painted(segmentor) -> MethodModel:
    """The tiny segmentor behind the inference protocol, with the test palette."""
    return MethodModel(segmentor, palette=PALETTE)


def write_images(folder, sizes=((37, 53), (40, 32))) -> list:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    paths = []
    for index, (h, w) in enumerate(sizes):
        path = folder / f"img{index}.png"
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(path)
        paths.append(path)
    return paths


def reference_logits(segmentor, path) -> torch.Tensor:
    """Logits [K, H, W]: pad to 32, encode, x4 upsample, crop (independent of the inference module)."""
    image = InferenceImages(path)[0]["image"]
    h, w = image.shape[-2:]
    with torch.no_grad():
        _, logits = segmentor.encode(F.pad(image[None], (0, -w % 32, 0, -h % 32)))
    return F.interpolate(logits, scale_factor=4, mode="bilinear", align_corners=False)[0, :, :h, :w]


def test_label_pngs_hold_the_argmax_of_the_logits(tmp_path) -> None:
    segmentor = tiny_segmentor()
    paths = write_images(tmp_path / "in")
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    files = predict_paths(painted(segmentor), tmp_path / "in", out, options(batch_size=2))
    assert [f.name for f in files] == ["img0", "img1"]
    for record, path in zip(files, paths):
        logits = reference_logits(segmentor, path)
        with Image.open(record.label) as picture:
            assert picture.mode == "P" and picture.size == Image.open(path).size
            labels = np.array(picture)
        expected = logits.argmax(0).numpy()
        top2 = logits.topk(2, dim=0).values
        clear = (top2[0] - top2[1] > 1e-4).numpy()  # batch padding may flip near-ties only
        if record.name == "img0":
            np.testing.assert_array_equal(labels, expected)  # the largest image: no extra padding
        else:
            assert (labels[clear] == expected[clear]).mean() > 0.9
        assert record.overlay is None and record.probabilities is None
    assert (out / "notes.txt").read_text() == "keep me"
    assert not [p for p in out.rglob("*") if p.name.endswith(".tmp")]


def test_single_image_batches_match_exactly_and_extras_are_written(tmp_path) -> None:
    segmentor = tiny_segmentor()
    paths = write_images(tmp_path / "in")
    files = predict_paths(painted(segmentor), paths, tmp_path / "out", options(),
                          PredictionOutputs(overlay=True, probabilities=True))
    for record, path in zip(files, paths):
        logits = reference_logits(segmentor, path)
        labels = np.array(Image.open(record.label))
        np.testing.assert_array_equal(labels, logits.argmax(0).numpy())
        probs = np.load(record.probabilities)
        assert probs.dtype == np.float16 and probs.shape == (NUM_CLASSES,) + labels.shape
        np.testing.assert_allclose(probs.astype(np.float32), logits.softmax(0).numpy(), atol=2e-3)
        assert record.probabilities.parent.name == "probabilities"
        with Image.open(record.overlay) as overlay, Image.open(path) as original:
            assert overlay.mode == "RGB" and overlay.size == original.size
            rgb = np.asarray(original.convert("RGB")).astype(np.float32)
            colours = np.asarray(PALETTE, dtype=np.float32)[labels]
            np.testing.assert_allclose(np.asarray(overlay).astype(np.float32), 0.5 * rgb + 0.5 * colours, atol=1.0)


def test_augmented_head_with_threshold_source(tmp_path) -> None:
    segmentor = tiny_segmentor()
    paths = write_images(tmp_path / "in", sizes=((32, 32),))
    basic = predict_paths(painted(segmentor), paths, tmp_path / "a", options(), PredictionOutputs(probabilities=True))
    local = predict_paths(painted(segmentor), paths, tmp_path / "b", options("threshold:0", heads=["local"]),
                          PredictionOutputs(probabilities=True))
    assert not np.allclose(np.load(basic[0].probabilities), np.load(local[0].probabilities))


def test_bad_inputs_raise_user_errors(tmp_path) -> None:
    segmentor = tiny_segmentor()
    paths = write_images(tmp_path / "in", sizes=((32, 32),))
    with pytest.raises(DataError, match="not found"):
        predict_paths(painted(segmentor), tmp_path / "missing.png", tmp_path / "out")
    corrupt = tmp_path / "in" / "broken.png"
    corrupt.write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    with pytest.raises(DataError, match="broken.png"):
        predict_paths(painted(segmentor), corrupt, tmp_path / "out")
    with pytest.raises(ConfigError, match="oracle"):
        predict_paths(painted(segmentor), paths, tmp_path / "out", options("oracle"))
    with pytest.raises(ConfigError, match="class source"):
        predict_paths(painted(segmentor), paths, tmp_path / "out", options("threshold:abc"))
    with pytest.raises(ConfigError, match="not full"):
        predict_paths(painted(segmentor), paths, tmp_path / "out", options(heads=["global"]))
    (tmp_path / "dup").mkdir()
    Image.open(paths[0]).save(tmp_path / "dup" / "img0.jpg")
    with pytest.raises(DataError, match="share the name"):
        predict_paths(painted(segmentor), [paths[0], tmp_path / "dup" / "img0.jpg"], tmp_path / "out")
    blocker = tmp_path / "file_not_dir"
    blocker.write_text("x")
    with pytest.raises(OutputDirError):
        predict_paths(painted(segmentor), paths, blocker)
    if os.geteuid() != 0:
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        with pytest.raises(OutputDirError, match="not writable"):
            predict_paths(painted(segmentor), paths, locked)
