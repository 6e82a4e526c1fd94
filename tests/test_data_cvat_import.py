"""CVAT for images 1.1 XML -> folder layout (library and ``scribbleseg data import-cvat``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from scribbleseg.cli.app import app
from scribbleseg.data import import_cvat_xml, open_dataset, parse_cvat_xml, validate_dataset
from scribbleseg.data.folder_layout import load_dataset_yaml
from scribbleseg.errors import DataError

RUNNER = CliRunner()

XML = """<?xml version="1.0" encoding="utf-8"?>
<annotations>
  <version>1.1</version>
  <meta><task><labels>
    <label><name>cat</name><type>polyline</type></label>
    <label><name>Background</name><type>any</type></label>
    <label><name>good_frame</name><type>tag</type></label>
    <label><name>dog</name><type>points</type></label>
  </labels></task></meta>
  <image id="0" name="frames/a.png" width="30" height="20">
    <polygon label="background" points="0,10;30,10;30,20;0,20" z_order="0"/>
    <polyline label="cat" points="2.5,2.5;10.5,2.5" z_order="0"/>
    <points label="dog" points="20.2,15.7;40,40" z_order="0"/>
    <mask label="Cat" rle="2, 2, 2, 3" left="25" top="0" width="3" height="3" z_order="0"/>
    <box label="cat" xtl="1" ytl="1" xbr="3" ybr="3" z_order="0"/>
    <polyline label="zebra" points="1,8;5,8" z_order="0"/>
    <polyline label="cat" points="12,6" outside="1"/>
    <tag label="good_frame"/>
  </image>
  <image id="1" name="b.png" width="10" height="8"/>
  <image id="2" name="missing.jpg" width="10" height="8"/>
</annotations>
"""


def _image(path: Path, width: int, height: int, seed: int = 0) -> bytes:
    path.parent.mkdir(parents=True, exist_ok=True)
    rgb = np.random.default_rng(seed).integers(0, 256, size=(height, width, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(path)
    return path.read_bytes()


@pytest.fixture
def export(tmp_path) -> tuple[Path, Path, dict[str, bytes]]:
    images = tmp_path / "images"
    originals = {"a.png": _image(images / "a.png", 30, 20), "b.png": _image(images / "b.png", 10, 8, seed=1)}
    xml = tmp_path / "annotations.xml"
    xml.write_text(XML)
    (tmp_path / "dataset.yaml").write_text("class_names: [background, cat, dog]\n"
                                           "palette: [[0, 0, 0], [200, 0, 0], [0, 200, 0]]\n")
    return xml, images, originals


def _scribble(out: Path, stem: str) -> np.ndarray:
    return np.asarray(Image.open(out / "scribbles" / "train" / f"{stem}.png"))


def test_shapes_are_drawn_with_the_dataset_yaml_ids(export, tmp_path):
    xml, images, originals = export
    out = tmp_path / "out"
    report = import_cvat_xml(xml, images, out, dataset_yaml=tmp_path / "dataset.yaml")
    assert report.converted == 2
    assert len(report.failed) == 1 and "missing.jpg" in report.failed[0] and "not found" in report.failed[0]
    warnings = "\n".join(report.warnings)
    assert "1 shape(s) with label 'zebra'" in warnings                   # unknown label, skipped
    assert "<points> #3 ('dog') has 1 point(s) outside the 30x20 image" in warnings
    assert "1 <box> shape(s) skipped" in warnings
    assert "b.png" in warnings and "without any scribble" in warnings

    s = _scribble(out, "a")
    assert s.shape == (20, 30)
    # polygon 0..30 x 10..20 filled with background (pixel centres inside)
    assert (s[10:20, :19] == 0).all() and (s[9, :] == 255).all()
    # polyline through pixel (2, 2) .. (10, 2), exactly 3 px wide
    assert (s[1:4, 1:12] == 1).all() and (s[0, 1:12] == 255).all() and (s[4, 1:12] == 255).all()
    assert s[2, 0] == 255 and s[2, 12] == 255
    # point (20.2, 15.7) -> pixel (20, 15), a 3x3 square drawn over the polygon; (40, 40) is outside
    assert (s[14:17, 19:22] == 2).all() and s[13, 20] == 0 and s[15, 22] == 0
    # mask RLE 2,2,2,3 over a 3x3 box at (25, 0): rows [0 0 1] [1 0 0] [1 1 1]; label 'Cat' matches 'cat'
    assert s[0:3, 25:28].tolist() == [[255, 255, 1], [1, 255, 255], [1, 1, 1]]
    assert set(np.unique(s)) == {0, 1, 2, 255}
    assert (_scribble(out, "b") == 255).all()  # no shapes: all unlabeled

    # images copied unchanged (not re-encoded), inputs untouched, dataset.yaml from the given one
    for name, data in originals.items():
        assert (out / "images" / "train" / name).read_bytes() == data == (images / name).read_bytes()
    spec = load_dataset_yaml(out / "dataset.yaml")
    assert spec.class_names == ["background", "cat", "dog"] and spec.palette[1] == (200, 0, 0)


def test_later_shapes_draw_over_earlier_and_crossing_strokes_are_unlabeled(tmp_path):
    _image(tmp_path / "im" / "x.png", 20, 20)
    (tmp_path / "x.xml").write_text("""<annotations><image name="x.png" width="20" height="20">
      <polygon label="a" points="0,0;20,0;20,20;0,20" z_order="1"/>
      <polyline label="b" points="2,10;18,10" z_order="2"/>
      <polyline label="c" points="10,2;10,18" z_order="2"/>
      <polyline label="b" points="2,16;18,16" z_order="2"/>
      <polygon label="a" points="12,14;20,14;20,20;12,20" z_order="3"/>
      <polygon label="c" points="0,0;5,0;5,5;0,5" z_order="0"/>
    </image></annotations>""")
    report = import_cvat_xml(tmp_path / "x.xml", tmp_path / "im", tmp_path / "out", class_names=["a", "b", "c"])
    s = _scribble(tmp_path / "out", "x")
    assert s[10, 4] == 1 and s[4, 10] == 2           # strokes over the earlier polygon
    assert (s[9:12, 9:12] == 255).all()              # b and c cross: ambiguous -> unlabeled
    assert s[16, 10] == 255 and s[16, 4] == 1        # second crossing of c with b
    assert s[16, 14] == 0                            # a later polygon covers the stroke again
    assert s[2, 2] == 0                              # z_order 0 polygon drawn first, under 'a'
    assert any("pixel(s) covered by strokes of different classes" in w for w in report.warnings)


def test_class_names_default_to_the_declared_labels_with_background_first(export, tmp_path):
    xml, images, _ = export
    parsed = parse_cvat_xml(xml)
    assert parsed.labels == ["cat", "Background", "dog", "background", "Cat", "zebra"]
    report = import_cvat_xml(xml, images, tmp_path / "out")
    spec = load_dataset_yaml(tmp_path / "out" / "dataset.yaml")
    assert spec.class_names == ["Background", "cat", "dog", "background", "Cat", "zebra"]
    assert not any("not a class name" in w for w in report.warnings)
    s = _scribble(tmp_path / "out", "a")
    assert s[15, 5] == 3 and s[2, 5] == 1 and s[0, 27] == 4 and s[8, 3] == 5  # exact names win


def test_size_mismatch_and_clashing_stems_fail_only_their_image(tmp_path):
    _image(tmp_path / "im" / "a.png", 12, 10)
    _image(tmp_path / "im" / "sub" / "a.png", 12, 10, seed=2)
    _image(tmp_path / "im" / "c.png", 12, 10)
    (tmp_path / "x.xml").write_text("""<annotations>
      <image name="a.png" width="12" height="10"><polyline label="cat" points="1,1;5,1"/></image>
      <image name="sub/a.png" width="12" height="10"/>
      <image name="c.png" width="13" height="10"/>
      <image name="a.png" width="12" height="10"/>
    </annotations>""")
    report = import_cvat_xml(tmp_path / "x.xml", tmp_path / "im", tmp_path / "out")
    assert report.converted == 1 and len(report.failed) == 3
    assert "sub/a.png has the same stem as" in report.failed[0]
    assert "is 12x10 but the export says 13x10" in report.failed[1]
    assert "appears again in the export" in report.failed[2]


def test_existing_dataset_yaml_with_other_classes_is_refused_before_writing(export, tmp_path):
    xml, images, _ = export
    out = tmp_path / "out"
    out.mkdir()
    (out / "dataset.yaml").write_text("class_names: [sky, sea]\n")
    with pytest.raises(DataError, match="already exists with classes"):
        import_cvat_xml(xml, images, out)
    assert not (out / "images").exists()


def test_cli_imports_and_the_result_is_a_valid_folder_dataset(export, tmp_path):
    xml, images, _ = export
    (images / "missing.jpg").write_bytes((images / "b.png").read_bytes())  # now every image is there
    out = tmp_path / "out"
    result = RUNNER.invoke(app, ["data", "import-cvat", str(xml), str(images), str(out),
                                 "--dataset-yaml", str(tmp_path / "dataset.yaml"), "--stroke-width", "5"])
    assert result.exit_code == 0, result.output
    assert "imported 3 image(s)" in result.output and "zebra" in result.output
    assert (_scribble(out, "a")[0:5, 3:12] == 1).all()  # 5 px wide
    info, samples = open_dataset(out, layout="folder", split="train")
    assert [s.name for s in samples] == ["a", "b", "missing"] and info.class_names == ("background", "cat", "dog")
    assert validate_dataset(info, samples) == []


def test_cli_lists_missing_images_and_exits_2_after_writing_the_rest(export, tmp_path):
    xml, images, _ = export
    result = RUNNER.invoke(app, ["data", "import-cvat", str(xml), str(images), str(tmp_path / "out"),
                                 "--split", "val", "--classes", "background, cat,dog"])
    assert result.exit_code == 2
    assert "failed:" in result.output and "missing.jpg" in result.output and "imported 2 image(s)" in result.output
    info, samples = open_dataset(tmp_path / "out", layout="folder", split="val")
    assert len(samples) == 2 and validate_dataset(info, samples) == []


@pytest.mark.parametrize("content, message", [
    (None, "cannot read CVAT XML"),
    ("this is not xml", "not well-formed"),
    ("<annotation><size/></annotation>", "is not a CVAT XML export"),
    ("<annotations><track id='0' label='cat'/></annotations>", "CVAT for video"),
    ('<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x "xx"><!ENTITY y "&x;&x;">]><annotations>&y;</annotations>',
     "declares a DTD"),
])
def test_cli_bad_xml_is_one_error_line_and_exit_2(tmp_path, content, message):
    xml = tmp_path / "annotations.xml"
    if content is not None:
        xml.write_text(content)
    (tmp_path / "im").mkdir()
    result = RUNNER.invoke(app, ["data", "import-cvat", str(xml), str(tmp_path / "im"), str(tmp_path / "out")])
    assert result.exit_code == 2
    error_lines = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(error_lines) == 1 and message in result.output and "Traceback" not in result.output
    assert not (tmp_path / "out").exists()
