"""Folder-level commands name a missing or empty label folder instead of doing nothing."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from scribbleseg.data import convert_palette_folder, simulate_scribble_folder
from scribbleseg.data.image_io import list_label_pngs
from scribbleseg.errors import DataError


def test_missing_and_empty_folders_are_named(tmp_path):
    with pytest.raises(DataError, match=r"mask folder .*nowhere not found"):
        simulate_scribble_folder(tmp_path / "nowhere", tmp_path / "out")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("not a label")
    with pytest.raises(DataError, match=r"no PNG label files in .*empty"):
        convert_palette_folder(tmp_path / "empty", tmp_path / "out", palette=[(0, 0, 0), (255, 0, 0)])


def test_lists_only_visible_pngs_sorted(tmp_path):
    for name in ("b.png", "a.PNG", ".hidden.png", "c.jpg"):
        Image.fromarray(np.zeros((2, 2), np.uint8)).save(tmp_path / name, format="PNG")
    assert [p.name for p in list_label_pngs(tmp_path)] == ["a.PNG", "b.png"]
