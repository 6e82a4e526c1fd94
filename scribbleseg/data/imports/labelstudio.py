"""Label Studio "JSON" export -> folder-layout scribbles.

What is read (everything else is ignored)::

    [ { "id": 3,
        "data": {"image": "/data/upload/1/8c3f2a1b-cat.jpg"},
        "annotations": [ { "was_cancelled": false,
            "result": [
              {"type": "brushlabels", "original_width": 640, "original_height": 480,
               "value": {"format": "rle", "rle": [0, 0, 4, ...], "brushlabels": ["cat"]}},
              {"type": "keypointlabels", "value": {"x": 12.5, "y": 40.0, "keypointlabels": ["dog"]}},
              {"type": "polygonlabels", "value": {"points": [[10, 10], [30, 10], [20, 25]],
                                                  "polygonlabels": ["background"]}} ] } ] } ]

* The image: ``data.image`` (else the one string in ``data`` naming an image file), looked up in the
  images folder by the ``d=`` path of a local-files URL, by its base name, then by its base name
  without the ``<8 hex>-`` prefix Label Studio puts on uploaded files.
* The annotation: the first one that is not ``was_cancelled`` (others are reported and ignored);
  ``predictions`` are ignored (model output, not scribbles). A task without annotation gets an
  all-unlabeled scribble.
* ``brushlabels`` (``value.format == "rle"``): decoded with
  :func:`~scribbleseg.data.imports.labelstudio_rle.decode_brush_mask`; ``original_width`` x
  ``original_height`` must be the image size. ``keypointlabels``: a disc of ``point_radius`` pixels
  around ``(x, y)``. ``polygonlabels``: ``points`` filled. ``x``, ``y`` and ``points`` are percent of
  the image width / height. Other result types are reported and skipped; a result needs exactly
  one label.
* Results are painted in the order of the ``result`` list (later over earlier). Class names default
  to the labels used, sorted, ``background`` first.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Sequence
from pathlib import Path, PurePosixPath
from urllib.parse import parse_qs, unquote, urlsplit

import numpy as np

from scribbleseg.data.imports.annotation_import import AnnotationExport, ExportItem, write_folder_dataset
from scribbleseg.data.imports.annotation_shapes import BitMask, Disc, FilledPolygon, LabelledShape
from scribbleseg.data.imports.conversion_report import ConversionReport
from scribbleseg.data.image_io import IMAGE_EXTENSIONS
from scribbleseg.data.imports.labelstudio_rle import decode_brush_mask
from scribbleseg.errors import DataError

SUPPORTED_RESULTS = ("brushlabels", "keypointlabels", "polygonlabels")
_UPLOAD_PREFIX = re.compile(r"^[0-9a-f]{8}-(.+)$")


def image_reference(data: dict) -> str | None:
    """The task's image URL / path: ``data["image"]``, else the only string naming an image file."""
    if isinstance(data.get("image"), str):
        return data["image"]
    candidates = [v for v in data.values() if isinstance(v, str)
                  and PurePosixPath(urlsplit(v).path).suffix.lower() in IMAGE_EXTENSIONS]
    return candidates[0] if len(candidates) == 1 else None


def image_names(reference: str) -> tuple[str, ...]:
    """Names to look ``reference`` up by: local-files ``d=`` path, base name, base name without upload prefix."""
    parts = urlsplit(reference)
    local_path = unquote(parse_qs(parts.query).get("d", [""])[0]).lstrip("/")
    base = PurePosixPath(local_path or unquote(parts.path)).name
    names = [local_path, base]
    match = _UPLOAD_PREFIX.match(base)
    if match:
        names.append(match.group(1))
    return tuple(dict.fromkeys(name for name in names if name)) or (reference,)


class _BadResult(ValueError):
    """A result whose value cannot be read (reported, the result skipped)."""


def _percent_points(value: dict) -> np.ndarray:
    try:
        points = np.asarray(value["points"], dtype=np.float64) if isinstance(value.get("points"), list) else None
    except (TypeError, ValueError):
        points = None
    if points is None or points.ndim != 2 or points.shape[0] < 3 or points.shape[1] != 2 or not np.isfinite(points).all():
        raise _BadResult("'points' is not a list of at least 3 [x, y] percentages")
    return points / 100.0


def _percent_xy(value: dict) -> np.ndarray:
    try:
        xy = np.array([float(value["x"]), float(value["y"])], dtype=np.float64)
    except (KeyError, TypeError, ValueError):
        raise _BadResult("'x' / 'y' are missing or not numbers") from None
    if not np.isfinite(xy).all():
        raise _BadResult("'x' / 'y' are not finite")
    return xy / 100.0


def _result_geometry(result: dict, value: dict, width: int, height: int, point_radius: float):
    """Geometry of one supported result on a ``width`` x ``height`` image."""
    scale = np.array([width, height], dtype=np.float64)
    kind = result["type"]
    if kind == "keypointlabels":
        return Disc(tuple(_percent_xy(value) * scale), point_radius)
    if kind == "polygonlabels":
        return FilledPolygon(_percent_points(value) * scale)
    if value.get("format", "rle") != "rle" or not isinstance(value.get("rle"), list):
        raise _BadResult(f"brush format '{value.get('format')}' is not 'rle' with an 'rle' list")
    size = (result.get("original_width"), result.get("original_height"))
    if size != (width, height):
        raise _BadResult(f"brush mask is {size[0]}x{size[1]} but the image is {width}x{height}")
    try:
        return BitMask(decode_brush_mask(value["rle"], height, width))
    except DataError as err:
        raise _BadResult(str(err)) from None


def _single_label(result: dict, value: dict) -> str:
    labels = value.get(result["type"])
    if not isinstance(labels, list) or len(labels) != 1 or not isinstance(labels[0], str) or not labels[0]:
        raise _BadResult(f"needs exactly one label in '{result['type']}', has {labels!r}")
    return labels[0]


def _task_results(task: dict, where: str) -> tuple[list[tuple[str, dict, dict]], list[str]]:
    """Supported results ``(label, result, value)`` of the task's first usable annotation, and warnings."""
    listed = task.get("annotations") or task.get("completions") or []  # "completions": Label Studio < 1.0
    annotations = [a for a in (listed if isinstance(listed, list) else [])
                   if isinstance(a, dict) and not a.get("was_cancelled")]
    warnings = []
    if len(annotations) > 1:
        warnings.append(f"{where}: {len(annotations)} annotations, using the first (id {annotations[0].get('id')})")
    results = annotations[0].get("result") if annotations else []
    kept, skipped = [], Counter()
    for number, result in enumerate(results if isinstance(results, list) else [], start=1):
        kind = result.get("type") if isinstance(result, dict) else None
        if kind not in SUPPORTED_RESULTS or not isinstance(result.get("value"), dict):
            skipped[str(kind)] += 1
            continue
        try:
            kept.append((_single_label(result, result["value"]), result, result["value"]))
        except _BadResult as err:
            warnings.append(f"{where}: result #{number} ({kind}) {err}, skipped")
        if result.get("image_rotation"):
            warnings.append(f"{where}: result #{number} has image_rotation {result['image_rotation']}, ignored")
    warnings.extend(f"{where}: {count} '{kind}' result(s) skipped (supported: {', '.join(SUPPORTED_RESULTS)})"
                    for kind, count in skipped.items())
    return kept, warnings


def _builder(results: list[tuple[str, dict, dict]], where: str, point_radius: float):
    def build(width: int, height: int) -> tuple[list[LabelledShape], list[str]]:
        shapes, warnings = [], []
        for number, (label, result, value) in enumerate(results, start=1):
            name = f"{result['type']} result {result.get('id', number)}"
            try:
                shapes.append(LabelledShape(label, _result_geometry(result, value, width, height, point_radius), name))
            except _BadResult as err:
                warnings.append(f"{where}: {name} ('{label}') {err}, skipped")
        return shapes, warnings
    return build


def _load_tasks(path: Path) -> list[dict]:
    try:
        content = json.loads(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise DataError(f"cannot read Label Studio JSON {path}: {err.strerror or err}") from err
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise DataError(f"cannot read Label Studio JSON {path}: not JSON ({err})") from None
    tasks = [content] if isinstance(content, dict) and "data" in content else content
    if not isinstance(tasks, list) or not all(isinstance(t, dict) and isinstance(t.get("data"), dict) for t in tasks):
        raise DataError(f"{path} is not a Label Studio JSON export (expected a list of tasks with 'data' and "
                        f"'annotations'; export with 'JSON', not 'JSON-MIN' or CSV)")
    if not tasks:
        raise DataError(f"{path} holds no tasks")
    return tasks


def parse_labelstudio_json(path: str | Path, point_radius: float = 1.5) -> AnnotationExport:
    """Parse a Label Studio JSON export; DataError when the file is not one."""
    path = Path(path)
    if not point_radius > 0:
        raise DataError(f"point radius must be > 0 pixels, got {point_radius}")
    items, labels = [], set()
    for index, task in enumerate(_load_tasks(path)):
        reference = image_reference(task["data"])
        where = f"{path.name} task {task.get('id', index)}" + (f" ('{reference}')" if reference else "")
        results, warnings = _task_results(task, where)
        labels.update(label for label, _, _ in results)
        problem = None if reference else f"no image in 'data' (keys: {', '.join(map(str, task['data']))})"
        items.append(ExportItem(image_names=image_names(reference) if reference else ("",), where=where,
                                build=_builder(results, where, point_radius), warnings=warnings, problem=problem))
    return AnnotationExport(source=path, items=items, labels=sorted(labels, key=lambda s: (s.casefold(), s)))


def import_labelstudio_json(json_path: str | Path, images_dir: str | Path, out_dir: str | Path,
                            split: str = "train", point_radius: float = 1.5,
                            dataset_yaml: str | Path | None = None,
                            class_names: Sequence[str] | None = None) -> ConversionReport:
    """Import a Label Studio JSON export into the folder layout at ``out_dir`` (see module doc)."""
    export = parse_labelstudio_json(json_path, point_radius)
    return write_folder_dataset(export, images_dir, out_dir, split=split, dataset_yaml=dataset_yaml,
                                class_names=class_names)
