"""ScribbleSup XML annotations -> scribble PNGs (class ids, 255 = unlabeled).

The original PASCAL-Scribble files look like::

    <annotation>
      <filename>2007_000032</filename>
      <size><width>500</width><height>281</height></size>
      <polygon>
        <tag>plane</tag>
        <point><X>104</X><Y>78</Y></point>
        <point><X>110</X><Y>80</Y></point>
      </polygon>
      ...
    </annotation>

Each ``<polygon>`` is one open polyline (0-based pixel coordinates) drawn ``thickness`` (3) pixels
wide (a 1-pixel polyline dilated by a ``thickness`` square) with the id of its tag; background
strokes are drawn first so object strokes stay on top.
Tags: background plane bike bird boat bottle bus car cat chair cow table dog horse motorbike
person plant sheep sofa train monitor, and the VOC long names (aeroplane, bicycle, diningtable,
pottedplant, tvmonitor). Unknown tags are skipped and points outside the image are clipped by the
drawing; both are reported and the file is still converted.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from scribbleseg.data.imports.conversion_report import ConversionReport
from scribbleseg.data.image_io import write_png_atomic
from scribbleseg.data.imports.safe_xml import parse_xml_file
from scribbleseg.data.imports.scribble_drawing import stroke_mask
from scribbleseg.data.voc_classes import VOC_PALETTE, full_palette_bytes, scribblesup_tag_to_id
from scribbleseg.errors import DataError


@dataclass
class ScribbleAnnotation:
    """One parsed XML file: image size, strokes ``(class id, [M, 2] int32 (x, y) points)`` and warnings."""

    path: Path
    width: int
    height: int
    strokes: list[tuple[int, np.ndarray]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def _int_child(element: ET.Element, name: str, path: Path) -> int:
    node = element.find(name)
    if node is None or node.text is None:
        raise DataError(f"{path}: <{element.tag}> has no <{name}>")
    try:
        return int(round(float(node.text.strip())))
    except ValueError:
        raise DataError(f"{path}: <{name}> is not a number: {node.text!r}") from None


def parse_scribblesup_xml(path: str | Path) -> ScribbleAnnotation:
    """Parse one ScribbleSup XML file; DataError when it is not one (unknown tags are warnings)."""
    path = Path(path)
    root = parse_xml_file(path, "ScribbleSup XML")
    size = root.find("size")
    if root.tag != "annotation" or size is None:
        raise DataError(f"{path} is not a ScribbleSup annotation (needs <annotation> with <size>)")
    annotation = ScribbleAnnotation(path, _int_child(size, "width", path), _int_child(size, "height", path))
    if annotation.width <= 0 or annotation.height <= 0:
        raise DataError(f"{path}: image size {annotation.width}x{annotation.height} is not positive")
    tag_ids = scribblesup_tag_to_id()
    for number, polygon in enumerate(root.iter("polygon"), start=1):
        tag = (polygon.findtext("tag") or "").strip()
        points = np.array([(_int_child(p, "X", path), _int_child(p, "Y", path)) for p in polygon.iter("point")],
                          dtype=np.int32).reshape(-1, 2)
        if tag.lower() not in tag_ids:
            annotation.warnings.append(f"{path}: scribble {number} has unknown tag '{tag}', skipped")
            continue
        if points.shape[0] == 0:
            annotation.warnings.append(f"{path}: scribble {number} ('{tag}') has no points, skipped")
            continue
        outside = (points[:, 0] < 0) | (points[:, 0] >= annotation.width) | (points[:, 1] < 0) | (points[:, 1] >= annotation.height)
        if outside.any():
            annotation.warnings.append(f"{path}: scribble {number} ('{tag}') has {int(outside.sum())} point(s) "
                                       f"outside the {annotation.width}x{annotation.height} image, clipped")
        annotation.strokes.append((tag_ids[tag.lower()], points))
    return annotation


def render_annotation(annotation: ScribbleAnnotation, thickness: int = 3, ignore_index: int = 255) -> np.ndarray:
    """``[H, W]`` uint8 scribble: polylines of class ids, ``ignore_index`` elsewhere (background drawn first)."""
    canvas = np.full((annotation.height, annotation.width), ignore_index, dtype=np.uint8)
    for class_id, points in sorted(annotation.strokes, key=lambda stroke: stroke[0] != 0):
        canvas[stroke_mask(points, thickness, annotation.height, annotation.width)] = class_id
    return canvas


def convert_scribblesup_folder(xml_dir: str | Path, out_dir: str | Path, thickness: int = 3) -> ConversionReport:
    """Convert every ``*.xml`` in ``xml_dir`` to ``out_dir/<stem>.png`` (atomic writes, VOC palette)."""
    xml_dir, out_dir = Path(xml_dir), Path(out_dir)
    if not xml_dir.is_dir():
        raise DataError(f"XML folder {xml_dir} not found")
    paths = sorted(xml_dir.glob("*.xml"))
    if not paths:
        raise DataError(f"no .xml files in {xml_dir}")
    palette = full_palette_bytes(VOC_PALETTE)
    report = ConversionReport()
    for path in paths:
        try:
            annotation = parse_scribblesup_xml(path)
        except DataError as err:
            report.failed.append(str(err))
            continue
        report.warnings.extend(annotation.warnings)
        write_png_atomic(out_dir / f"{path.stem}.png", render_annotation(annotation, thickness), palette=palette)
        report.converted += 1
    return report
