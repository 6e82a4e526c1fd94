"""Label Studio JSON export -> folder layout: brush RLE decoding, keypoints, polygons, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from scribbleseg.cli.app import app
from scribbleseg.data import decode_labelstudio_rle, import_labelstudio_json, open_dataset, validate_dataset
from scribbleseg.data.folder_layout import load_dataset_yaml
from scribbleseg.data.imports.labelstudio import image_names
from scribbleseg.data.imports.labelstudio_rle import decode_brush_mask
from scribbleseg.errors import DataError

RUNNER = CliRunner()


# --- an encoder written from the documented bit layout (see scribbleseg/data/imports/labelstudio_rle.py) ---

def _bits(value: int, width: int) -> str:
    assert 0 <= value < 2 ** width
    return format(value, f"0{width}b")


def _pack(bit_string: str) -> list[int]:
    bit_string += "0" * (-len(bit_string) % 8)
    return [int(bit_string[i:i + 8], 2) for i in range(0, len(bit_string), 8)]


def encode_rle(values, word_bits: int = 8, run_bits=(3, 4, 8, 16)) -> list[int]:
    """Runs of >= 2 equal values become repeat tokens, stretches of single values literal tokens."""
    values = [int(v) for v in values]
    out = [_bits(len(values), 32), _bits(word_bits - 1, 5)] + [_bits(b - 1, 4) for b in run_bits]
    longest = 2 ** max(run_bits)

    def token(repeat: int, length: int, words: list[int]) -> None:
        index = next(i for i, b in enumerate(run_bits) if 2 ** b >= length)
        out.append(_bits(repeat, 1) + _bits(index, 2) + _bits(length - 1, run_bits[index])
                   + "".join(_bits(w, word_bits) for w in words))

    i, literal = 0, []
    while i < len(values):
        j = i
        while j + 1 < len(values) and values[j + 1] == values[i]:
            j += 1
        if j == i:
            literal.append(values[i])
        else:
            for start in range(0, len(literal), longest):
                token(0, len(literal[start:start + longest]), literal[start:start + longest])
            literal = []
            for start in range(i, j + 1, longest):
                token(1, min(longest, j + 1 - start), [values[i]])
        i = j + 1
    for start in range(0, len(literal), longest):
        token(0, len(literal[start:start + longest]), literal[start:start + longest])
    return _pack("".join(out))


def brush_rle(mask: np.ndarray, rgb=(255, 0, 0), **kwargs) -> list[int]:
    """RLE of the RGBA image Label Studio stores for a brush: colour + alpha 255 where painted."""
    rgba = np.zeros(mask.shape + (4,), dtype=np.uint8)
    rgba[mask] = (*rgb, 255)
    return encode_rle(rgba.reshape(-1), **kwargs)


def test_hand_assembled_stream_decodes_exactly():
    # num=8, 8-bit words, run widths 3/4/8/16; repeat 3 x 0, literal [7, 9], repeat 3 x 255
    stream = (_bits(8, 32) + _bits(7, 5) + _bits(2, 4) + _bits(3, 4) + _bits(7, 4) + _bits(15, 4)
              + "1" + "00" + _bits(2, 3) + _bits(0, 8)
              + "0" + "00" + _bits(1, 3) + _bits(7, 8) + _bits(9, 8)
              + "1" + "01" + _bits(2, 4) + _bits(255, 8))
    assert decode_labelstudio_rle(_pack(stream)).tolist() == [0, 0, 0, 7, 9, 255, 255, 255]


def test_header_of_a_real_export_is_read_big_endian():
    # first bytes of a published Label Studio brush result on a 3332 x 2527 image
    with pytest.raises(DataError, match=f"holds {3332 * 2527 * 4} values, expected 4"):
        decode_labelstudio_rle([2, 1, 233, 240, 57, 27, 255, 255], expected_length=4)


@pytest.mark.parametrize("kwargs", [{}, {"run_bits": (1, 2, 5, 9)}, {"word_bits": 12, "run_bits": (2, 4, 6, 16)}])
def test_brush_masks_round_trip_exactly(kwargs):
    rng = np.random.default_rng(0)
    mask = np.zeros((37, 53), dtype=bool)
    mask[5:20, 10:30] = True
    mask[rng.random(mask.shape) < 0.05] = True  # isolated pixels: literal runs
    mask[30:, :] = True                            # a long run across rows
    rle = brush_rle(mask, rgb=(12, 200, 7), **kwargs)
    assert np.array_equal(decode_brush_mask(rle, 37, 53), mask)
    values = np.zeros((37 * 53, 4), dtype=np.uint16)
    values[mask.reshape(-1)] = (12, 200, 7, 255)
    assert np.array_equal(decode_labelstudio_rle(rle), values.reshape(-1))


def test_malformed_rle_is_a_data_error():
    rle = brush_rle(np.ones((4, 4), dtype=bool))
    with pytest.raises(DataError, match="ends early"):
        decode_brush_mask(rle[:-3], 4, 4)
    with pytest.raises(DataError, match="expected 80"):
        decode_brush_mask(rle, 4, 5)
    with pytest.raises(DataError, match="integers 0..255"):
        decode_labelstudio_rle([1, 300, 2])


def test_image_lookup_names():
    assert image_names("/data/upload/3/1a2b3c4d-cat%201.png") == ("1a2b3c4d-cat 1.png", "cat 1.png")
    assert image_names("/data/local-files/?d=photos/sub/dog.jpg") == ("photos/sub/dog.jpg", "dog.jpg")
    assert image_names("s3://bucket/x/y.jpg") == ("y.jpg",)


# --- a hand-written export ---

def _image(path: Path, width: int, height: int) -> bytes:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((height, width, 3), 90, dtype=np.uint8)).save(path)
    return path.read_bytes()


def _result(kind: str, label, **value) -> dict:
    return {"id": f"r-{kind[:3]}-{label}", "type": kind, "from_name": "tag", "to_name": "image",
            "original_width": 20, "original_height": 10, "image_rotation": 0,
            "value": {**value, kind: label if isinstance(label, list) else [label]}}


CAT_BRUSH = np.zeros((10, 20), dtype=bool)
CAT_BRUSH[2:5, 12:16] = True


def _tasks() -> list[dict]:
    good = {"id": 11, "was_cancelled": False, "result": [
        _result("polygonlabels", "background", points=[[0, 0], [50, 0], [50, 100], [0, 100]]),
        _result("brushlabels", "cat", format="rle", rle=brush_rle(CAT_BRUSH)),
        _result("keypointlabels", "dog", x=25.0, y=55.0, width=0.5),
        _result("keypointlabels", "dog", x=110.0, y=50.0, width=0.5),
        _result("polygonlabels", "zebra", points=[[60, 60], [90, 60], [90, 90]]),
        _result("brushlabels", ["cat", "dog"], format="rle", rle=brush_rle(CAT_BRUSH)),
        {"id": "box", "type": "rectanglelabels", "value": {"x": 1, "y": 1, "width": 5, "height": 5,
                                                           "rectanglelabels": ["cat"]}},
    ]}
    prediction = {"result": [_result("polygonlabels", "cat", points=[[0, 0], [100, 0], [100, 100]])]}
    return [
        {"id": 1, "data": {"image": "/data/upload/1/1a2b3c4d-cat.png"}, "predictions": [prediction],
         "annotations": [{"id": 10, "was_cancelled": True, "result": [prediction["result"][0]]}, good,
                         {"id": 12, "result": []}]},
        {"id": 2, "data": {"image": "/data/local-files/?d=sub/dog.png"},
         "annotations": [{"id": 20, "result": [_result("brushlabels", "dog", format="rle",
                                                       rle=brush_rle(np.ones((10, 20), dtype=bool)))]}]},
        {"id": 3, "data": {"image": "/data/upload/1/0badf00d-ghost.png"}, "annotations": []},
        {"id": 4, "data": {"text": "no image here"}, "annotations": []},
    ]


@pytest.fixture
def export(tmp_path) -> tuple[Path, Path]:
    images = tmp_path / "images"
    _image(images / "cat.png", 20, 10)
    _image(images / "sub" / "dog.png", 9, 6)
    path = tmp_path / "export.json"
    path.write_text(json.dumps(_tasks()))
    (tmp_path / "dataset.yaml").write_text("class_names: [background, cat, dog]\n")
    return path, images


def _scribble(out: Path, stem: str, split: str = "train") -> np.ndarray:
    return np.asarray(Image.open(out / "scribbles" / split / f"{stem}.png"))


def test_brush_keypoint_polygon_are_drawn_with_dataset_yaml_ids(export, tmp_path):
    path, images = export
    out = tmp_path / "out"
    report = import_labelstudio_json(path, images, out, dataset_yaml=tmp_path / "dataset.yaml")
    assert report.converted == 2
    assert len(report.failed) == 2
    assert any("ghost.png" in f and "not found" in f for f in report.failed)
    assert any("task 4" in f and "no image in 'data'" in f for f in report.failed)
    warnings = "\n".join(report.warnings)
    assert "task 1" in warnings and "2 annotations, using the first (id 11)" in warnings
    assert "1 shape(s) with label 'zebra'" in warnings
    assert "needs exactly one label" in warnings
    assert "1 'rectanglelabels' result(s) skipped" in warnings
    assert "('dog') has 1 point(s) outside the 20x10 image" in warnings
    assert "brush mask is 20x10 but the image is 9x6" in warnings
    assert "without any scribble" in warnings and "dog.png" in warnings

    s = _scribble(out, "cat")
    expected = np.full((10, 20), 255, dtype=np.uint8)
    expected[:, :10] = 0                 # polygon 0..50 % of the width, full height
    expected[CAT_BRUSH] = 1              # decoded brush
    expected[4:7, 4:6] = 2               # disc of radius 1.5 around (5.0, 5.5) px, over the polygon
    assert np.array_equal(s, expected)   # the cancelled annotation and the prediction are ignored
    assert (_scribble(out, "dog") == 255).all()
    assert (out / "images" / "train" / "cat.png").read_bytes() == (images / "cat.png").read_bytes()
    assert (out / "images" / "train" / "dog.png").is_file()


def test_class_names_default_to_the_sorted_labels_with_background_first(export, tmp_path):
    path, images = export
    data = _tasks()
    data[0]["annotations"][1]["result"][0]["value"]["polygonlabels"] = ["Background"]
    path.write_text(json.dumps(data))
    report = import_labelstudio_json(path, images, tmp_path / "out")
    assert load_dataset_yaml(tmp_path / "out" / "dataset.yaml").class_names == ["Background", "cat", "dog", "zebra"]
    assert not any("not a class name" in w for w in report.warnings)
    assert _scribble(tmp_path / "out", "cat")[8, 17] == 3  # zebra polygon (60..90 % of both sides)


def test_cli_imports_and_the_result_is_a_valid_folder_dataset(export, tmp_path):
    path, images = export
    data = [task for task in _tasks() if task["id"] in (1, 2)]
    path.write_text(json.dumps(data))
    out = tmp_path / "out"
    result = RUNNER.invoke(app, ["data", "import-labelstudio", str(path), str(images), str(out),
                                 "--classes", "background,cat,dog", "--point-radius", "3"])
    assert result.exit_code == 0, result.output
    assert "imported 2 image(s)" in result.output and "warning:" in result.output
    disc = _scribble(out, "cat")[2:9, 1:9] == 2  # pixel centres closer than 3 px to (5.0, 5.5)
    assert disc.astype(int).tolist() == [[0, 0, 0, 0, 0, 0, 0, 0],
                                         [0, 0, 1, 1, 1, 1, 0, 0],
                                         [0, 1, 1, 1, 1, 1, 1, 0],
                                         [0, 1, 1, 1, 1, 1, 1, 0],
                                         [0, 1, 1, 1, 1, 1, 1, 0],
                                         [0, 0, 1, 1, 1, 1, 0, 0],
                                         [0, 0, 0, 0, 0, 0, 0, 0]]
    info, samples = open_dataset(out, layout="folder", split="train")
    assert [s.name for s in samples] == ["cat", "dog"] and validate_dataset(info, samples) == []


def test_cli_missing_image_exits_2_after_writing_the_rest(export, tmp_path):
    path, images = export
    result = RUNNER.invoke(app, ["data", "import-labelstudio", str(path), str(images), str(tmp_path / "out"),
                                 "--dataset-yaml", str(tmp_path)])
    assert result.exit_code == 2
    assert "failed:" in result.output and "ghost.png" in result.output
    info, samples = open_dataset(tmp_path / "out", layout="folder", split="train")
    assert len(samples) == 2 and validate_dataset(info, samples) == []


@pytest.mark.parametrize("content, message", [
    (None, "cannot read Label Studio JSON"),
    ("{not json", "not JSON"),
    ('{"images": [], "annotations": [], "categories": []}', "is not a Label Studio JSON export"),
    ('[{"image": "a.png", "id": 1, "label": []}]', "JSON-MIN"),
    ("[]", "holds no tasks"),
])
def test_cli_bad_json_is_one_error_line_and_exit_2(tmp_path, content, message):
    path = tmp_path / "export.json"
    if content is not None:
        path.write_text(content)
    (tmp_path / "im").mkdir()
    result = RUNNER.invoke(app, ["data", "import-labelstudio", str(path), str(tmp_path / "im"), str(tmp_path / "o")])
    assert result.exit_code == 2
    error_lines = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(error_lines) == 1 and message in result.output and "Traceback" not in result.output
    assert not (tmp_path / "o").exists()
