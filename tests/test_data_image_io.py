"""Robust image / label reading: odd image modes are converted, bad files raise DataError naming them."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from scribbleseg.data.image_io import (
    RGBLabelError,
    list_image_files,
    read_label_map,
    read_rgb_image,
    write_png_atomic,
)
from scribbleseg.errors import DataError


def test_grayscale_rgba_and_palette_images_become_rgb_uint8(tmp_path):
    gray = np.arange(12, dtype=np.uint8).reshape(3, 4) * 20
    Image.fromarray(gray).save(tmp_path / "g.png")
    rgba = np.zeros((3, 4, 4), np.uint8)
    rgba[..., 0], rgba[..., 3] = 200, 10
    Image.fromarray(rgba).save(tmp_path / "a.png")
    for name in ("g.png", "a.png"):
        out = read_rgb_image(tmp_path / name)
        assert out.shape == (3, 4, 3) and out.dtype == np.uint8
    assert np.array_equal(read_rgb_image(tmp_path / "g.png")[..., 1], gray)
    assert (read_rgb_image(tmp_path / "a.png")[..., 0] == 200).all()


def test_16bit_image_scaled_to_8bit(tmp_path):
    deep = np.array([[0, 65535], [257 * 100, 257 * 200]], dtype=np.uint16)
    Image.fromarray(deep).save(tmp_path / "d.png")
    out = read_rgb_image(tmp_path / "d.png")
    assert out.dtype == np.uint8 and out.shape == (2, 2, 3)
    assert out[..., 0].tolist() == [[0, 255], [100, 200]]


def test_exif_orientation_is_applied(tmp_path):
    array = np.zeros((10, 20, 3), np.uint8)  # H=10, W=20; left half red, right half blue
    array[:, :10, 0] = 255
    array[:, 10:, 2] = 255
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    Image.fromarray(array).save(tmp_path / "r.jpg", exif=exif, quality=95)
    out = read_rgb_image(tmp_path / "r.jpg")
    assert out.shape == (20, 10, 3)
    assert out[2, 5, 0] > 200 and out[2, 5, 2] < 60  # red is now on top
    assert out[17, 5, 2] > 200 and out[17, 5, 0] < 60


def test_missing_and_corrupt_images_name_the_file(tmp_path):
    with pytest.raises(DataError, match="nope.jpg"):
        read_rgb_image(tmp_path / "nope.jpg")
    (tmp_path / "bad.jpg").write_bytes(b"\xff\xd8\xff\xe0 definitely not a jpeg")
    with pytest.raises(DataError, match=r"bad\.jpg.*corrupt"):
        read_rgb_image(tmp_path / "bad.jpg")
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(tmp_path / "t.png")
    (tmp_path / "t.png").write_bytes((tmp_path / "t.png").read_bytes()[:60])  # truncated
    with pytest.raises(DataError, match=r"t\.png"):
        read_rgb_image(tmp_path / "t.png")


def test_palette_label_is_read_by_index_not_colour(tmp_path):
    ids = np.array([[0, 1], [15, 255]], np.uint8)
    image = Image.fromarray(ids)
    image.putpalette([0, 0, 0, 128, 0, 0] + [9] * 750 + [224, 224, 192])
    image.save(tmp_path / "p.png")
    assert Image.open(tmp_path / "p.png").mode == "P"
    assert read_label_map(tmp_path / "p.png", num_classes=21).tolist() == ids.tolist()


def test_rgb_label_is_refused_with_conversion_hint(tmp_path):
    rgb = np.zeros((4, 4, 3), np.uint8)
    rgb[0, 0] = (128, 0, 0)
    Image.fromarray(rgb).save(tmp_path / "c.png")
    with pytest.raises(RGBLabelError, match=r"c\.png.*RGB-coloured.*convert-palette"):
        read_label_map(tmp_path / "c.png", num_classes=21)
    gray_as_rgb = np.repeat(np.array([[1, 2]], np.uint8)[..., None], 3, axis=2)
    Image.fromarray(gray_as_rgb).save(tmp_path / "g.png")
    assert read_label_map(tmp_path / "g.png", num_classes=3).tolist() == [[1, 2]]


def test_label_values_out_of_range_are_reported(tmp_path):
    Image.fromarray(np.array([[0, 3, 7, 255]], np.uint8)).save(tmp_path / "s.png")
    with pytest.raises(DataError, match=r"s\.png.*3 \(1 px\), 7 \(1 px\)"):
        read_label_map(tmp_path / "s.png", num_classes=3)
    assert read_label_map(tmp_path / "s.png", num_classes=8).tolist() == [[0, 3, 7, 255]]


def test_atomic_png_write_leaves_no_temp_files(tmp_path):
    write_png_atomic(tmp_path / "sub" / "x.png", np.full((5, 6), 3, np.uint8), palette=[0] * 768)
    assert [p.name for p in (tmp_path / "sub").iterdir()] == ["x.png"]
    assert np.asarray(Image.open(tmp_path / "sub" / "x.png")).max() == 3


def test_list_image_files_accepts_all_formats(tmp_path):
    for name in ("a.JPG", "b.png", "c.bmp", "d.tif", "e.txt", ".hidden.png"):
        (tmp_path / name).write_bytes(b"")
    assert [p.name for p in list_image_files(tmp_path)] == ["a.JPG", "b.png", "c.bmp", "d.tif"]
