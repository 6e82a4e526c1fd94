"""ScribbleSup XML -> PNG conversion (library and CLI)."""

from __future__ import annotations

import numpy as np
from PIL import Image
from typer.testing import CliRunner

from scribbleseg.cli.app import app
from scribbleseg.data.imports.scribblesup_xml import convert_scribblesup_folder, parse_scribblesup_xml

XML = """<?xml version="1.0"?>
<annotation>
  <filename>2007_000032</filename>
  <size><width>40</width><height>30</height></size>
  <polygon><tag>background</tag>
    <point><X>0</X><Y>5</Y></point><point><X>39</X><Y>5</Y></point></polygon>
  <polygon><tag>plane</tag>
    <point><X>10</X><Y>20</Y></point><point><X>30</X><Y>20</Y></point></polygon>
  <polygon><tag>tvmonitor</tag>
    <point><X>20</X><Y>10</Y></point><point><X>20</X><Y>15</Y></point><point><X>45</X><Y>15</Y></point></polygon>
  <polygon><tag>unicorn</tag>
    <point><X>1</X><Y>1</Y></point><point><X>3</X><Y>1</Y></point></polygon>
  <polygon><tag>monitor</tag><point><X>5</X><Y>27</Y></point></polygon>
</annotation>
"""


def test_xml_is_drawn_three_pixels_wide_with_class_ids(tmp_path):
    (tmp_path / "xml").mkdir()
    (tmp_path / "xml" / "2007_000032.xml").write_text(XML)
    report = convert_scribblesup_folder(tmp_path / "xml", tmp_path / "png")
    assert report.converted == 1 and not report.failed
    assert any("unknown tag 'unicorn'" in w for w in report.warnings)
    assert any("outside the 40x30 image" in w for w in report.warnings)
    out = np.asarray(Image.open(tmp_path / "png" / "2007_000032.png"))
    assert out.shape == (30, 40)
    assert out[4:7, 0].tolist() == [0, 0, 0] and out[3, 0] == 255 and out[7, 0] == 255  # 3 px wide
    assert out[20, 15] == 1 and out[19, 15] == 1 and out[21, 15] == 1 and out[18, 15] == 255
    assert out[12, 20] == 20 and out[15, 39] == 20  # tvmonitor (long name), clipped at the border
    assert out[27, 5] == 20  # single point of 'monitor'
    assert out[1, 2] == 255  # unknown tag skipped
    assert set(np.unique(out)) == {0, 1, 20, 255}


def test_parse_rejects_non_annotation(tmp_path):
    (tmp_path / "x.xml").write_text("<foo/>")
    try:
        parse_scribblesup_xml(tmp_path / "x.xml")
    except Exception as err:  # noqa: BLE001 - checking the type below
        assert type(err).__name__ == "DataError" and "x.xml" in str(err)
    else:
        raise AssertionError("non-annotation XML was accepted")


def test_cli_converts_and_reports_broken_files(tmp_path):
    (tmp_path / "xml").mkdir()
    (tmp_path / "xml" / "a.xml").write_text(XML)
    (tmp_path / "xml" / "broken.xml").write_text("<annotation><size>")
    result = CliRunner().invoke(app, ["data", "convert-scribblesup", str(tmp_path / "xml"), str(tmp_path / "out")])
    assert result.exit_code == 2
    assert "converted 1 file" in result.output and "broken.xml" in result.output and "unicorn" in result.output
    assert (tmp_path / "out" / "a.png").is_file()
