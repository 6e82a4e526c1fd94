"""Write a parsed annotation-tool export (CVAT, Label Studio) as a folder-layout data set.

The tool-specific parsers (:mod:`~scribbleseg.data.imports.cvat`, :mod:`~scribbleseg.data.imports.labelstudio`)
turn an export into an :class:`AnnotationExport`: one :class:`ExportItem` per image, with the
shapes as :class:`~scribbleseg.data.imports.annotation_shapes.LabelledShape`. :func:`write_folder_dataset`
then, for every item: finds the image in ``images_dir``, checks its size against the export, maps
each shape's label to a class id, paints the shapes
(:func:`~scribbleseg.data.imports.scribble_drawing.paint_layers`), copies the image unchanged to
``out/images/<split>/`` and writes ``out/scribbles/<split>/<stem>.png``; ``out/dataset.yaml`` is
written last. Problems are collected in a :class:`~scribbleseg.data.imports.conversion_report.ConversionReport`
(see there for what is a warning and what a failure).

Class names (:func:`resolve_import_classes`): an existing ``dataset.yaml``, an explicit list, or the
export's own labels (in the tool's order, a label called ``background`` — any case — moved to id 0).
A label is matched to a class name exactly, else case-insensitively.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from scribbleseg.atomic_files import atomic_write_bytes
from scribbleseg.data.imports.annotation_shapes import LabelledShape
from scribbleseg.data.imports.conversion_report import ConversionReport
from scribbleseg.data.folder_layout import (
    DATASET_YAML,
    FolderDatasetSpec,
    load_dataset_yaml,
    validate_dataset_spec,
    write_dataset_yaml,
)
from scribbleseg.data.image_io import IMAGE_EXTENSIONS, open_decoded_image, write_png_atomic
from scribbleseg.data.imports.scribble_drawing import Layer, paint_layers
from scribbleseg.data.voc_classes import full_palette_bytes, voc_color
from scribbleseg.errors import DataError

ShapeBuilder = Callable[[int, int], tuple[list[LabelledShape], list[str]]]


@dataclass
class ExportItem:
    """One image of an export.

    Attributes:
        image_names: names to look the image up by in the images folder, best first (a relative path
            as the tool wrote it, its base name, ...).
        where: where the item is in the export, for messages (``"annotations.xml image 'a.jpg'"``).
        build: ``(width, height)`` of the image -> (shapes in paint order, warnings).
        declared_size: ``(width, height)`` stated by the export; the image must have it.
        warnings: problems found while parsing.
        problem: why the item cannot be converted at all (``None`` when it can).
    """

    image_names: tuple[str, ...]
    where: str
    build: ShapeBuilder
    declared_size: tuple[int, int] | None = None
    warnings: list[str] = field(default_factory=list)
    problem: str | None = None


@dataclass
class AnnotationExport:
    """A parsed export: its items and every label it declares or uses, in the tool's order."""

    source: Path
    items: list[ExportItem]
    labels: list[str]


def _background_first(labels: Sequence[str]) -> list[str]:
    names = list(dict.fromkeys(labels))
    background = next((name for name in names if name.casefold() == "background"), None)
    return names if background is None else [background] + [name for name in names if name != background]


def resolve_import_classes(export_labels: Sequence[str], dataset_yaml: str | Path | None = None,
                           class_names: Sequence[str] | None = None) -> FolderDatasetSpec:
    """Class names, palette and ignore index of the imported set.

    From ``dataset_yaml`` (a file or a folder-layout root) when given, else from ``class_names``
    (id = position), else the export's labels with ``background`` first; default palette: VOC colours.
    """
    if dataset_yaml is not None and class_names is not None:
        raise DataError("give the classes either as a dataset.yaml or as a list of names, not both")
    if dataset_yaml is not None:
        path = Path(dataset_yaml)
        spec = load_dataset_yaml(path / DATASET_YAML if path.is_dir() else path)
        source = str(path)
    elif class_names is not None:
        spec, source = None, "the class list"
        names = [str(name) for name in class_names]
    else:
        spec, source = None, "the labels of the export"
        names = _background_first(export_labels)
        if not names:
            raise DataError("the export declares and uses no labels; give the class names explicitly")
    if spec is None:
        spec = validate_dataset_spec({"class_names": names}, source)
    if spec.palette is None:
        spec = spec.model_copy(update={"palette": [voc_color(i) for i in range(len(spec.class_names))]})
    return spec


class ClassLookup:
    """Label -> class id: exact name first, else the one name equal to it ignoring case."""

    def __init__(self, class_names: Sequence[str]) -> None:
        self._exact = {name: index for index, name in enumerate(class_names)}
        folded: dict[str, list[int]] = {}
        for index, name in enumerate(class_names):
            folded.setdefault(name.casefold(), []).append(index)
        self._folded = {key: ids[0] for key, ids in folded.items() if len(ids) == 1}

    def __call__(self, label: str) -> int | None:
        found = self._exact.get(label)
        return found if found is not None else self._folded.get(label.casefold())


def find_image(images_dir: Path, names: Sequence[str]) -> Path:
    """The first of ``names`` (relative paths, no ``..``) that is a file under ``images_dir``."""
    for name in names:
        relative = PurePosixPath(name.replace("\\", "/"))
        if not name or relative.is_absolute() or ".." in relative.parts:
            continue
        candidate = images_dir / relative
        if candidate.is_file():
            return candidate
    raise DataError(f"image '{names[0]}' not found in {images_dir}")


def _check_existing_dataset_yaml(out_dir: Path, spec: FolderDatasetSpec) -> bool:
    """True when ``out/dataset.yaml`` already holds these classes; DataError when it holds others."""
    path = out_dir / DATASET_YAML
    if not path.is_file():
        return False
    existing = load_dataset_yaml(path)
    if list(existing.class_names) != list(spec.class_names) or existing.ignore_index != spec.ignore_index:
        raise DataError(f"{path} already exists with classes {existing.class_names} (ignore "
                        f"{existing.ignore_index}), not {spec.class_names} (ignore {spec.ignore_index}); "
                        f"import into another folder or pass that dataset.yaml as the class list")
    return True


class _FolderWriter:
    """Copies images and writes scribbles of one split, refusing two images with the same stem."""

    def __init__(self, out_dir: Path, split: str, spec: FolderDatasetSpec) -> None:
        self.image_dir = out_dir / "images" / split
        self.scribble_dir = out_dir / "scribbles" / split
        self.palette = full_palette_bytes(tuple(tuple(c) for c in spec.palette), spec.ignore_index)
        self.written: dict[str, Path] = {}  # stem -> source image

    def check_target(self, image: Path) -> None:
        if image.suffix.lower() not in IMAGE_EXTENSIONS:
            raise DataError(f"image {image} has an unsupported type (use {', '.join(IMAGE_EXTENSIONS)})")
        if self.written.get(image.stem) == image:
            raise DataError(f"image {image} appears again in the export; only its first entry is imported")
        if image.stem in self.written:
            raise DataError(f"image {image} has the same stem as {self.written[image.stem]}, "
                            f"imported already (scribbles are named <stem>.png)")
        clash = [p.name for p in self.image_dir.iterdir() if p.stem == image.stem and p.name != image.name] \
            if self.image_dir.is_dir() else []
        if clash:
            raise DataError(f"image {image.name} would sit next to {clash[0]} in {self.image_dir} (same stem)")

    def write(self, image: Path, scribble) -> None:
        atomic_write_bytes(self.image_dir / image.name, image.read_bytes())
        write_png_atomic(self.scribble_dir / f"{image.stem}.png", scribble, palette=self.palette)
        self.written[image.stem] = image


def _layers(item: ExportItem, shapes: list[LabelledShape], lookup: ClassLookup, height: int, width: int,
            warnings: list[str]) -> list[Layer]:
    """Rasterise the shapes with a known label; report unknown labels, clipped and empty shapes."""
    layers, unknown = [], Counter()
    for shape in shapes:
        class_id = lookup(shape.label)
        if class_id is None:
            unknown[shape.label] += 1
            continue
        outside = shape.geometry.outside(height, width)
        if outside:
            warnings.append(f"{item.where}: {shape.name} ('{shape.label}') has {outside} point(s) outside "
                            f"the {width}x{height} image, clipped")
        mask = shape.geometry.mask(height, width)
        if not mask.any():
            warnings.append(f"{item.where}: {shape.name} ('{shape.label}') covers no pixel of the image, skipped")
            continue
        layers.append(Layer(class_id, mask, shape.geometry.is_stroke))
    warnings.extend(f"{item.where}: {count} shape(s) with label '{label}', which is not a class name, skipped"
                    for label, count in unknown.items())
    return layers


def write_folder_dataset(export: AnnotationExport, images_dir: str | Path, out_dir: str | Path,
                         split: str = "train", dataset_yaml: str | Path | None = None,
                         class_names: Sequence[str] | None = None) -> ConversionReport:
    """Write ``export`` as ``out_dir/{dataset.yaml, images/<split>/, scribbles/<split>/}``; returns the report."""
    images_dir, out_dir = Path(images_dir), Path(out_dir)
    if not images_dir.is_dir():
        raise DataError(f"image folder {images_dir} not found")
    if not split or "/" in split or "\\" in split or split in (".", ".."):
        raise DataError(f"split name '{split}' must be a plain folder name (train, val, ...)")
    spec = resolve_import_classes(export.labels, dataset_yaml, class_names)
    keep_existing_yaml = _check_existing_dataset_yaml(out_dir, spec)
    lookup, writer = ClassLookup(spec.class_names), _FolderWriter(out_dir, split, spec)
    report, unlabeled = ConversionReport(), []
    for item in export.items:
        try:
            if item.problem is not None:
                raise DataError(item.problem)
            image = find_image(images_dir, item.image_names)
            writer.check_target(image)
            width, height = open_decoded_image(image, "image").size
            if item.declared_size is not None and item.declared_size != (width, height):
                raise DataError(f"image {image} is {width}x{height} but the export says "
                                f"{item.declared_size[0]}x{item.declared_size[1]}")
            shapes, build_warnings = item.build(width, height)
        except DataError as err:
            report.failed.append(f"{item.where}: {err}")
            continue
        report.warnings.extend(item.warnings + build_warnings)
        layers = _layers(item, shapes, lookup, height, width, report.warnings)
        scribble, ambiguous = paint_layers(layers, height, width, spec.ignore_index)
        if ambiguous:
            report.warnings.append(f"{item.where}: {ambiguous} pixel(s) covered by strokes of different classes "
                                   f"set to unlabeled ({spec.ignore_index})")
        if not layers:
            unlabeled.append(image.name)
        writer.write(image, scribble)
        report.converted += 1
    if unlabeled:
        shown = ", ".join(unlabeled[:5]) + (f" and {len(unlabeled) - 5} more" if len(unlabeled) > 5 else "")
        report.warnings.append(f"{len(unlabeled)} image(s) without any scribble, written all unlabeled: {shown}")
    if report.converted and not keep_existing_yaml:
        write_dataset_yaml(out_dir, spec)
    return report
