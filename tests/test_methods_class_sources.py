"""Inference class sources (appendix A.2, Tab. 4) and their parser."""

from __future__ import annotations

import json

import pytest
import torch

from scribbleseg.errors import ConfigError, DataError
from scribbleseg.methods.inference_types import Evidence
from scribbleseg.methods.class_sources import (
    FileClassSource,
    NoClassSource,
    DEFAULT_HEAD_THRESHOLD,
    HeadClassSource,
    OracleClassSource,
    PredictionThresholdClassSource,
    parse_class_source,
)


def test_parse_specs_and_errors(tmp_path):
    assert isinstance(parse_class_source("oracle"), OracleClassSource)
    assert isinstance(parse_class_source("none"), NoClassSource)
    assert parse_class_source("threshold:120").min_pixels == 120
    default = parse_class_source("threshold")
    assert default.min_pixels is None  # Tab. 4's 500 px per 500 x 375 px image, scaled to each image
    assert default.pixels_for((375, 500)) == 500 and default.pixels_for((500, 375)) == 500
    assert default.pixels_for((128, 128)) == 44 and default.pixels_for((4, 4)) == 1
    assert parse_class_source("threshold:500").pixels_for((128, 128)) == 500
    assert isinstance(parse_class_source("head"), HeadClassSource)
    assert parse_class_source("head").threshold == DEFAULT_HEAD_THRESHOLD == 0.5
    assert parse_class_source("head:0.25").threshold == 0.25
    for bad in ("", "oracle:1", "threshold:abc", "threshold:-3", "magic", "file:", "head:", "head:2", "heads"):
        with pytest.raises(ConfigError):
            parse_class_source(bad)
    missing = tmp_path / "nope.json"
    with pytest.raises(ConfigError, match="nope.json"):
        parse_class_source(f"file:{missing}")
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(ConfigError, match="broken.json"):
        parse_class_source(f"file:{broken}")


def test_default_threshold_scales_with_the_image_area():
    """The default keeps classes above 500 / (500 x 375) of the image at any size; a fixed count does not."""
    logits = torch.zeros(1, 3, 32, 32)
    logits[0, 1, :8, :] = 5.0  # class 1: a quarter of the image
    logits[0, 2, 31, 31] = 5.0  # class 2: 1 / 1024 of it, below 500 / 187500
    default, fixed = parse_class_source("threshold"), parse_class_source("threshold:500")
    for size in ((32, 32), (375, 500), (4000, 4000)):
        assert default.classes(Evidence(logits), size).tolist() == [[True, True, False]], size
    assert fixed.classes(Evidence(logits), (32, 32)).tolist() == [[True, False, False]]  # 256 px < 500
    assert fixed.classes(Evidence(logits), (4000, 4000)).tolist() == [[True, True, True]]  # 15625 px >= 500


def test_threshold_counts_full_resolution_pixels_and_keeps_background():
    logits = torch.zeros(2, 4, 4, 4)
    logits[0, 2, :2, :] = 5.0  # class 2 wins 8 of 16 low-res pixels -> 8*16 = 128 full-res pixels
    logits[0, 3, 3, 3] = 5.0  # class 3 wins a single low-res pixel -> at most ~16 full-res pixels
    logits[1, 1] = 5.0
    source = PredictionThresholdClassSource(min_pixels=100)
    got = source.classes(Evidence(logits), (16, 16))
    assert got.tolist() == [[True, False, True, False], [True, True, False, False]]


def test_oracle_uses_given_labels_and_needs_them():
    given = torch.tensor([[False, True, False]])
    got = OracleClassSource().classes(Evidence(torch.zeros(1, 3, 2, 2)), (8, 8), given=given)
    assert got.tolist() == [[True, True, False]]
    with pytest.raises(ConfigError, match="oracle"):
        OracleClassSource().classes(Evidence(torch.zeros(1, 3, 2, 2)), (8, 8))
    assert NoClassSource().classes(Evidence(torch.zeros(1, 3, 2, 2)), (8, 8)) is None


def test_file_source_ids_names_and_missing_image(tmp_path):
    path = tmp_path / "q2l.json"
    path.write_text(json.dumps({"a.jpg": [1, "cat"], "b": []}))
    source = parse_class_source(f"file:{path}", class_names=["background", "dog", "cat"])
    assert isinstance(source, FileClassSource)
    got = source.classes(Evidence(torch.zeros(2, 3, 2, 2)), (8, 8), names=["a", "b.png"])
    assert got.tolist() == [[True, True, True], [True, False, False]]
    with pytest.raises(DataError, match="zebra"):
        source.classes(Evidence(torch.zeros(1, 3, 2, 2)), (8, 8), names=["zebra"])
    path.write_text(json.dumps({"a": ["horse"]}))
    with pytest.raises(ConfigError, match="horse"):
        parse_class_source(f"file:{path}", class_names=["background", "dog", "cat"])
    path.write_text(json.dumps({"a": [7]}))
    with pytest.raises(ConfigError, match="7"):
        parse_class_source(f"file:{path}").classes(Evidence(torch.zeros(1, 3, 2, 2)), (8, 8), names=["a"])
