"""``scribbleseg predict`` as a user runs it: never over the input images (#4), --skip-bad and no
half-made output folder (#19), a full disk is one error line with the previous outputs intact (#10),
and images above the pixel budget predicted tile by tile (--mode / --tile / --pixel-budget)."""

from __future__ import annotations

import errno
import os

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from scribbleseg.cli.app import app
from scribbleseg.engine.runs.checkpoint import save_model_checkpoint
from scribbleseg.engine.config.schema import ExperimentConfig
from scribbleseg.engine.build.method_factory import build_method
from scribbleseg.pfa import PFASettings
from tiny_models import tiny_model_config

RUNNER = CliRunner()
CLASS_NAMES = ["background", "a", "b", "c"]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    root = tmp_path_factory.mktemp("predict_ckpt")
    cfg = ExperimentConfig(model=tiny_model_config(embed_dim=32), pfa=PFASettings(slots=2))
    method = build_method(cfg, len(CLASS_NAMES), load_pretrained=False)
    return save_model_checkpoint(root / "run" / "checkpoints" / "best.safetensors", method, cfg,
                                 {"step": 1, "class_names": CLASS_NAMES})


def write_image(path, size=(40, 50), seed=0):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, (*size, 3), dtype=np.uint8)).save(path)
    return path


def predict(checkpoint, images, out, *extra):
    return RUNNER.invoke(app, ["predict", str(checkpoint), str(images), "--out", str(out), "--device", "cpu",
                               *[str(e) for e in extra]])


def snapshot(folder) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def error_lines(result) -> list[str]:
    return [line for line in result.output.splitlines() if line.startswith("error:")]


# ------------------------------------------------------------------------------------ #4 inputs kept
@pytest.mark.parametrize("layout", ["same folder", "dotdot", "symlinked folder", "overlays folder"])
def test_predict_never_writes_over_its_input_images(checkpoint, tmp_path, layout) -> None:
    photos = tmp_path / "photos"
    extra: list[str] = []
    if layout == "overlays folder":  # the inputs live where --overlay would write
        photos = tmp_path / "out" / "overlays"
        out = tmp_path / "out"
        extra = ["--overlay"]
    elif layout == "dotdot":
        out = photos / ".." / "photos"
    elif layout == "symlinked folder":
        out = tmp_path / "link"
    else:
        out = photos
    write_image(photos / "cat.png", seed=1)
    write_image(photos / "dog.jpg", seed=2)
    if layout == "symlinked folder":
        out.symlink_to(photos, target_is_directory=True)
    before = snapshot(tmp_path)
    result = predict(checkpoint, photos, out, *extra)
    assert result.exit_code == 2, result.output
    assert "would overwrite the input image" in result.output and "cat.png" in result.output
    assert snapshot(tmp_path) == before  # nothing written, nothing replaced


def test_predict_into_the_input_folder_is_fine_when_no_name_collides(checkpoint, tmp_path) -> None:
    photos = tmp_path / "photos"
    write_image(photos / "dog.jpg")
    original = (photos / "dog.jpg").read_bytes()
    result = predict(checkpoint, photos, photos)
    assert result.exit_code == 0, result.output
    assert (photos / "dog.jpg").read_bytes() == original and (photos / "dog.png").is_file()


# -------------------------------------------------------------------------- #19 unreadable images
def test_skip_bad_predicts_the_rest_lists_the_bad_ones_and_exits_1(checkpoint, tmp_path) -> None:
    photos = tmp_path / "photos"
    write_image(photos / "a.png", seed=1)
    (photos / "b.png").write_bytes(b"\x89PNG\r\n\x1a\ntruncated")
    write_image(photos / "c.png", seed=2)
    result = predict(checkpoint, photos, tmp_path / "out", "--skip-bad")
    assert result.exit_code == 1, result.output
    assert "1 image(s) could not be read" in result.output and "b.png" in result.output
    assert sorted(snapshot(tmp_path / "out")) == ["a.png", "c.png"]


def test_without_skip_bad_the_first_bad_image_is_one_clear_error(checkpoint, tmp_path) -> None:
    photos = tmp_path / "photos"
    write_image(photos / "a.png")
    (photos / "b.png").write_bytes(b"not an image")
    result = predict(checkpoint, photos, tmp_path / "out")
    assert result.exit_code == 2, result.output
    assert error_lines(result) == [line for line in result.output.splitlines() if "b.png" in line]
    assert "cannot read image" in error_lines(result)[0] and "Traceback" not in result.output


@pytest.mark.parametrize("extra", [[], ["--skip-bad"]])
def test_a_run_that_writes_nothing_leaves_no_output_folder_behind(checkpoint, tmp_path, extra) -> None:
    photos = tmp_path / "photos"
    (photos).mkdir()
    (photos / "a.png").write_bytes(b"not an image")
    result = predict(checkpoint, photos, tmp_path / "new" / "out", "--overlay", "--probs", *extra)
    assert result.exit_code == (1 if extra else 2), result.output
    assert not (tmp_path / "new").exists()  # OUT, its parent and overlays/ probabilities/ were made, then removed
    existing = tmp_path / "existing"
    existing.mkdir()
    result = predict(checkpoint, photos, existing, "--overlay", *extra)
    assert existing.is_dir() and not (existing / "overlays").exists()  # only what the run created goes


# ---------------------------------------------------------------------------------- #10 disk full
def _fail_with_enospc(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


@pytest.mark.parametrize("mode, failing", [("whole", "write"), ("slide", "pwrite"), ("slide", "posix_fallocate")])
def test_disk_full_is_one_error_line_and_keeps_the_previous_outputs(checkpoint, tmp_path, monkeypatch, mode,
                                                                    failing) -> None:
    photos = tmp_path / "photos"
    write_image(photos / "a.png", seed=1)
    write_image(photos / "b.png", seed=2)
    out = tmp_path / "out"
    options = ["--probs", "--overlay", "--mode", mode, "--tile", "32"]
    assert predict(checkpoint, photos, out, *options).exit_code == 0
    before = snapshot(out)
    write_image(photos / "a.png", seed=3)  # new content: a successful run would change every output
    write_image(photos / "b.png", seed=4)
    monkeypatch.setattr(os, failing, _fail_with_enospc)
    result = predict(checkpoint, photos, out, *options)
    monkeypatch.undo()
    assert result.exit_code == 2, result.output
    assert len(error_lines(result)) == 1 and "No space left on device (ENOSPC)" in error_lines(result)[0]
    assert "Traceback" not in result.output
    assert snapshot(out) == before  # same files, same bytes, no temporary file left


# ------------------------------------------------------------------------------ sliding window
def test_slide_mode_with_one_tile_writes_the_files_of_whole_mode(checkpoint, tmp_path) -> None:
    photos = tmp_path / "photos"
    write_image(photos / "a.png", size=(40, 50))
    options = ["--probs", "--overlay", "--head", "local", "--classes", "threshold:20"]
    whole = predict(checkpoint, photos, tmp_path / "whole", *options, "--mode", "whole")
    slide = predict(checkpoint, photos, tmp_path / "slide", *options, "--mode", "slide", "--tile", "64",
                    "--blend", "uniform")
    assert whole.exit_code == slide.exit_code == 0, whole.output + slide.output
    assert "1 image(s) predicted tile by tile" in slide.output and "tile by tile" not in whole.output
    assert snapshot(tmp_path / "slide") == snapshot(tmp_path / "whole")  # labels, overlay, float16 probs


def test_images_above_the_pixel_budget_are_tiled_with_bounded_memory_outputs(checkpoint, tmp_path) -> None:
    photos = tmp_path / "photos"
    write_image(photos / "big.png", size=(70, 90))
    write_image(photos / "small.png", size=(20, 20))
    result = predict(checkpoint, photos, tmp_path / "out", "--probs", "--pixel-budget", "1000", "--tile", "32",
                     "--stride", "24", "--head", "local", "--classes", "threshold:10", "--batch-size", "3")
    assert result.exit_code == 0, result.output
    assert "2 label map(s)" in result.output and "1 image(s) predicted tile by tile" in result.output
    probabilities = np.load(tmp_path / "out" / "probabilities" / "big.npy", mmap_mode="r")
    labels = np.array(Image.open(tmp_path / "out" / "big.png"))
    assert probabilities.dtype == np.float16 and probabilities.shape == (len(CLASS_NAMES), 70, 90)
    np.testing.assert_allclose(probabilities.astype(np.float32).sum(0), 1.0, atol=5e-3)
    assert (probabilities.argmax(0) == labels).mean() > 0.98  # float16 rounding may flip near-ties only


@pytest.mark.parametrize("extra, message", [(["--mode", "tiles"], "--mode"), (["--tile", "8"], "--tile"),
                                            (["--tile", "64", "--stride", "65"], "stride")])
def test_bad_slide_options_exit_2(checkpoint, tmp_path, extra, message) -> None:
    write_image(tmp_path / "a.png")
    result = predict(checkpoint, tmp_path / "a.png", tmp_path / "out", *extra)
    assert result.exit_code == 2 and message in result.output, result.output
    assert not (tmp_path / "out").exists()
