"""CVAT "CVAT for images 1.1" XML export -> folder-layout scribbles.

What is read::

    <annotations>
      <meta> ... <labels><label><name>cat</name><type>polyline</type></label> ... </labels> ... </meta>
      <image name="dir/a.jpg" width="640" height="480">
        <polyline label="cat" points="x0,y0;x1,y1;..." z_order="0"/>   stroke, --stroke-width px wide
        <points   label="cat" points="x0,y0;..."/>                       each point a width x width square
        <polygon  label="cat" points="x0,y0;..."/>                       filled
        <mask     label="cat" rle="3, 5, 7" left="10" top="20" width="13" height="15"/>   brush stroke
        <box .../> <ellipse .../> <cuboid .../> <skeleton .../>          skipped, reported
        <tag .../>                                                        image-level, ignored
      </image>
    </annotations>

Coordinates are CVAT's continuous pixel coordinates (pixel ``[j, i]`` covers ``[i, i+1) x [j, j+1)``).
A ``<mask>`` RLE is a list of run lengths over its ``width`` x ``height`` box, row-major, alternating
unlabeled / labeled, starting with unlabeled. Shapes are painted by increasing ``z_order`` and, within
one ``z_order``, in file order (later over earlier). Shapes with ``outside="1"`` (track frames where
the object is not visible) are skipped. Boxes are not scribbles (a filled box labels the background
in its corners as the object; its outline lies on the background), so they are skipped and reported.
Class names default to the labels declared in ``<meta>`` (skeleton / tag labels and skeleton
sub-labels excluded), then labels used but not declared, ``background`` first.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

import numpy as np

from scribbleseg.data.imports.annotation_import import AnnotationExport, ExportItem, write_folder_dataset
from scribbleseg.data.imports.annotation_shapes import BitMask, Dots, FilledPolygon, LabelledShape, Polyline
from scribbleseg.data.imports.conversion_report import ConversionReport
from scribbleseg.data.imports.safe_xml import parse_xml_file
from scribbleseg.errors import DataError

SKIPPED_SHAPES = {"box": "boxes are not scribbles", "ellipse": "not supported", "cuboid": "not supported",
                  "skeleton": "not supported"}
_NOT_CLASSES = {"skeleton", "tag"}
MAX_MASK_PIXELS = 1 << 26  # a <mask> box beyond 8192 x 8192 is refused rather than allocated


class _BadShape(ValueError):
    """A shape element whose attributes cannot be read (reported, the shape skipped)."""


def _parse_points(element: ET.Element) -> np.ndarray:
    """``points="x0,y0;x1,y1"`` -> ``[M, 2]`` float64 (x, y)."""
    text = element.get("points", "").strip()
    try:
        points = np.array([[float(v) for v in pair.split(",")] for pair in text.split(";") if pair.strip()],
                          dtype=np.float64)
    except ValueError:
        raise _BadShape(f"points '{text[:40]}' are not 'x,y;x,y;...' numbers") from None
    if points.size == 0 or points.ndim != 2 or points.shape[1] != 2 or not np.isfinite(points).all():
        raise _BadShape(f"points '{text[:40]}' are not 'x,y;x,y;...' numbers")
    return points


def _int_attribute(element: ET.Element, name: str) -> int:
    try:
        return int(round(float(element.get(name, ""))))
    except (ValueError, OverflowError):
        raise _BadShape(f"attribute {name}='{element.get(name)}' is not a number") from None


def _parse_mask(element: ET.Element) -> BitMask:
    """``<mask rle="..." left top width height>`` -> BitMask (runs alternate unlabeled / labeled)."""
    width, height = _int_attribute(element, "width"), _int_attribute(element, "height")
    if width * height > MAX_MASK_PIXELS:
        raise _BadShape(f"mask box {width}x{height} is larger than {MAX_MASK_PIXELS} pixels")
    try:
        runs = np.array([int(v) for v in element.get("rle", "").split(",")], dtype=np.int64)
    except ValueError:
        raise _BadShape("rle is not a comma-separated list of integers") from None
    if width <= 0 or height <= 0 or (runs < 0).any() or int(runs.sum()) != width * height:
        raise _BadShape(f"rle runs sum to {int(runs.sum())}, not width x height = {width}x{height}")
    pixels = np.repeat(np.arange(runs.size) % 2 == 1, runs).reshape(height, width)
    return BitMask(pixels, _int_attribute(element, "left"), _int_attribute(element, "top"))


def _geometry(element: ET.Element, stroke_width: int):
    if element.tag == "polyline":
        return Polyline(_parse_points(element), stroke_width)
    if element.tag == "points":
        return Dots(_parse_points(element), stroke_width)
    if element.tag == "polygon":
        return FilledPolygon(_parse_points(element))
    return _parse_mask(element)


def _image_shapes(image: ET.Element, where: str, stroke_width: int) -> tuple[list[LabelledShape], list[str]]:
    """Drawable shapes of one ``<image>`` in paint order (z_order, then file order) and warnings."""
    ordered, warnings, skipped = [], [], Counter()
    for number, element in enumerate(image, start=1):
        if element.tag == "tag" or element.get("outside") == "1":
            continue
        if element.tag not in ("polyline", "points", "polygon", "mask"):
            skipped[element.tag] += 1
            continue
        name, label = f"<{element.tag}> #{number}", element.get("label", "").strip()
        if not label:
            warnings.append(f"{where}: {name} has no label, skipped")
            continue
        try:
            geometry = _geometry(element, stroke_width)
            z_order = _int_attribute(element, "z_order") if element.get("z_order") else 0
        except _BadShape as err:
            warnings.append(f"{where}: {name} ('{label}'): {err}, skipped")
            continue
        ordered.append((z_order, number, LabelledShape(label, geometry, name)))
    warnings.extend(f"{where}: {count} <{tag}> shape(s) skipped ({SKIPPED_SHAPES.get(tag, 'not supported')})"
                    for tag, count in skipped.items())
    return [shape for _, _, shape in sorted(ordered, key=lambda entry: entry[:2])], warnings


def _declared_labels(root: ET.Element) -> list[str]:
    """Label names of ``<meta>`` in order, without skeleton / tag labels and skeleton sub-labels."""
    meta, names = root.find("meta"), []
    for labels in (meta.iter("labels") if meta is not None else ()):
        for label in labels.findall("label"):
            name = (label.findtext("name") or "").strip()
            if name and (label.findtext("type") or "").strip() not in _NOT_CLASSES and not label.findtext("parent"):
                names.append(name)
    return names


def _declared_size(image: ET.Element) -> tuple[int, int] | None:
    try:
        size = int(image.get("width", "")), int(image.get("height", ""))
    except ValueError:
        return None
    return size if size[0] > 0 and size[1] > 0 else None


def parse_cvat_xml(path: str | Path, stroke_width: int = 3) -> AnnotationExport:
    """Parse a CVAT for images 1.1 export; DataError when the file is not one."""
    path = Path(path)
    if stroke_width < 1:
        raise DataError(f"stroke width must be >= 1 pixel, got {stroke_width}")
    root = parse_xml_file(path, "CVAT XML")
    if root.tag != "annotations":
        raise DataError(f"{path} is not a CVAT XML export (root <{root.tag}>, expected <annotations>)")
    images = root.findall("image")
    if not images:
        kind = "a 'CVAT for video' export (<track> elements)" if root.find("track") is not None else "without <image>"
        raise DataError(f"{path} is {kind}; export the task as 'CVAT for images 1.1'")
    items, used = [], []
    for image in images:
        name = image.get("name", "")
        where = f"{path.name} image '{name}'"
        shapes, warnings = _image_shapes(image, where, stroke_width)
        used += [shape.label for shape in shapes]
        items.append(ExportItem(image_names=(name, PurePosixPath(name.replace("\\", "/")).name), where=where,
                                build=lambda width, height, shapes=shapes: (shapes, []),
                                declared_size=_declared_size(image), warnings=warnings))
    return AnnotationExport(source=path, items=items, labels=list(dict.fromkeys(_declared_labels(root) + used)))


def import_cvat_xml(xml_path: str | Path, images_dir: str | Path, out_dir: str | Path, split: str = "train",
                    stroke_width: int = 3, dataset_yaml: str | Path | None = None,
                    class_names: Sequence[str] | None = None) -> ConversionReport:
    """Import a CVAT for images 1.1 export into the folder layout at ``out_dir`` (see module doc)."""
    export = parse_cvat_xml(xml_path, stroke_width)
    return write_folder_dataset(export, images_dir, out_dir, split=split, dataset_yaml=dataset_yaml,
                                class_names=class_names)
