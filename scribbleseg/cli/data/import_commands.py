"""``scribbleseg data import-cvat`` / ``import-labelstudio`` and the report printing shared with ``convert-scribblesup``.

The commands are registered on the ``data`` group by :mod:`scribbleseg.cli.data.data_commands`. A report's
warnings are printed, the summary line follows, and items that could not be converted are listed and
make the command exit with code 2 after everything else was written.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.markup import escape

from scribbleseg.errors import DataError

if TYPE_CHECKING:
    from scribbleseg.data import ConversionReport

FAILED_ITEMS_EXIT_CODE = 2  # same code as the root app's USER_ERROR_EXIT_CODE


def print_conversion_report(report: ConversionReport, summary: str) -> None:
    """Print warnings, ``summary`` (+ warning count) and failures; exit with code 2 if any item failed."""
    console = Console(highlight=False, soft_wrap=True)
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    for warning in report.warnings:
        err.print(f"[yellow]warning:[/] {escape(warning)}")
    console.print(escape(summary) + (f", {len(report.warnings)} warning(s)" if report.warnings else ""))
    if report.failed:
        for failure in report.failed:
            err.print(f"[bold red]failed:[/] {escape(failure)}")
        raise typer.Exit(FAILED_ITEMS_EXIT_CODE)


def _class_names(classes: str | None) -> list[str] | None:
    if classes is None:
        return None
    names = [name.strip() for name in classes.split(",")]
    if not all(names):
        raise DataError(f"--classes '{classes}' has an empty name (expected e.g. 'background,cat,dog')")
    return names


_SPLIT_HELP = "Split to write (images/<split>/, scribbles/<split>/)."
_DATASET_YAML_HELP = "dataset.yaml (or its folder) whose class names give the ids (default: the export's labels)."
_CLASSES_HELP = "Comma-separated class names, id = position, e.g. 'background,cat,dog' (instead of --dataset-yaml)."


def import_cvat_command(
    xml_file: Path = typer.Argument(..., help="CVAT 'for images 1.1' annotations.xml."),
    images: Path = typer.Argument(..., help="Folder with the task's images."),
    out: Path = typer.Argument(..., help="Output folder (folder layout)."),
    split: str = typer.Option("train", help=_SPLIT_HELP),
    stroke_width: int = typer.Option(3, help="Width in pixels of polylines and points."),
    dataset_yaml: Path = typer.Option(None, help=_DATASET_YAML_HELP),
    classes: str = typer.Option(None, help=_CLASSES_HELP),
) -> None:
    """Import CVAT polylines / points / masks (strokes) and polygons (filled) as scribble PNGs."""
    from scribbleseg.data import import_cvat_xml

    report = import_cvat_xml(xml_file, images, out, split=split, stroke_width=stroke_width,
                             dataset_yaml=dataset_yaml, class_names=_class_names(classes))
    print_conversion_report(report, f"imported {report.converted} image(s) into {out} (split '{split}')")


def import_labelstudio_command(
    json_file: Path = typer.Argument(..., help="Label Studio 'JSON' export."),
    images: Path = typer.Argument(..., help="Folder with the project's images."),
    out: Path = typer.Argument(..., help="Output folder (folder layout)."),
    split: str = typer.Option("train", help=_SPLIT_HELP),
    point_radius: float = typer.Option(1.5, help="Radius in pixels of the disc drawn for a keypoint."),
    dataset_yaml: Path = typer.Option(None, help=_DATASET_YAML_HELP),
    classes: str = typer.Option(None, help=_CLASSES_HELP),
) -> None:
    """Import Label Studio brushes and keypoints (strokes) and polygons (filled) as scribble PNGs."""
    from scribbleseg.data import import_labelstudio_json

    report = import_labelstudio_json(json_file, images, out, split=split, point_radius=point_radius,
                                     dataset_yaml=dataset_yaml, class_names=_class_names(classes))
    print_conversion_report(report, f"imported {report.converted} image(s) into {out} (split '{split}')")
