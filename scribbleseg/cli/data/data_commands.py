"""``scribbleseg data ...``: inspect, validate, convert and generate data sets.

Commands: ``stats`` (validates every file, exits 2 listing the bad ones), ``synth`` (built-in
synthetic set), ``simulate-scribbles`` (scribbles from dense masks, drop/shrink variants),
``convert-scribblesup`` (ScribbleSup XML -> PNG), ``import-cvat`` / ``import-labelstudio`` (annotation-tool
exports -> folder layout, :mod:`scribbleseg.cli.data.import_commands`) and ``convert-palette`` (RGB-coloured labels -> ids).
A :class:`~scribbleseg.errors.ScribblesegError` raised here is printed as one line with exit code 2 by the
root app's error group (``scribbleseg.cli.app.UserErrorGroup``).
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from scribbleseg.cli.data.import_commands import import_cvat_command, import_labelstudio_command, print_conversion_report
from scribbleseg.errors import DataError

data_app = typer.Typer(help="Inspect, validate, convert and generate data sets.", no_args_is_help=True)
BAD_DATA_EXIT_CODE = 2  # same code as the root app's USER_ERROR_EXIT_CODE


def _console(stderr: bool = False) -> Console:
    return Console(stderr=stderr, highlight=False, soft_wrap=True)


NOT_APPLICABLE = "\u2013"  # en dash: a column that does not apply to a split (no masks, no scribbles)


def _percent(value: float, applies: bool, digits: int = 1) -> str:
    return f"{100 * value:.{digits}f}" if applies else NOT_APPLICABLE


@data_app.command("stats")
def stats_command(
    root: Path = typer.Argument(..., help="Data set root."),
    layout: str = typer.Option("auto", help="folder | voc | auto"),
    split: str = typer.Option(None, help="One split (train, val, train_aug, ...); default: every split."),
    scribble_dir: str = typer.Option(None, help="VOC: scribble folder (default pascal_2012_scribble)."),
    mask_dir: str = typer.Option(None, help="VOC: dense ground-truth folder."),
) -> None:
    """Validate every file of every split (or of --split) and print images, classes per image and
    labelled pixels per class."""
    from scribbleseg.data import list_splits

    layout, splits = (layout, [split]) if split is not None else list_splits(root, layout)
    problems = []
    for name in splits:
        problems += _split_stats(root, layout, name, scribble_dir, mask_dir)
    if problems:
        err = _console(stderr=True)
        err.print(f"[bold red]{len(problems)} problem(s) found:[/]")
        for problem in problems:
            err.print(f"  {problem}")
        raise typer.Exit(BAD_DATA_EXIT_CODE)
    _console().print(f"[green]all files OK[/] ({len(splits)} split(s): {', '.join(splits)})")


def _split_stats(root: Path, layout: str, split: str, scribble_dir: str | None, mask_dir: str | None) -> list:
    """Check one split and print its statistics; returns its problems."""
    from scribbleseg.data import compute_stats, open_dataset, scan_dataset

    info, samples = open_dataset(root, layout=layout, split=split, scribble_dir=scribble_dir,
                                 mask_dir=mask_dir, check_files=False)
    with Progress(transient=True, console=_console(stderr=True)) as progress:
        task = progress.add_task(f"checking {len(samples)} samples of '{split}'", total=len(samples))
        scan = scan_dataset(info, samples, progress=lambda done: progress.update(task, completed=done))
    stats = compute_stats(scan, info)
    scribbled = any(s.scribble is not None for s in samples)
    masked = any(s.mask is not None for s in samples)
    console = _console()
    per_image = f"{stats.classes_per_image_mean:.2f}" if scribbled else NOT_APPLICABLE
    without = f"{stats.images_without_scribble}" if scribbled else NOT_APPLICABLE
    console.print(f"[bold]{info.root}[/] layout={info.layout} split={split}: {stats.num_images} readable images "
                  f"of {len(samples)}, {info.num_classes} classes, {per_image} classes per image (scribbles), "
                  f"{without} image(s) without any scribbled pixel; scribbles: {'yes' if scribbled else 'none'}, "
                  f"dense masks: {'yes' if masked else 'none'}")
    table = Table(title=f"'{split}': scribbled pixels per class ({NOT_APPLICABLE} = no such labels)")
    for column in ("id", "class", "images", "scribbled px", "% of all pixels", "% of scribbles", "dense GT %"):
        table.add_column(column, justify="left" if column == "class" else "right")
    total_scribbled = max(int(stats.class_scribbled_pixels.sum()), 1)
    for class_id, name in enumerate(info.class_names):
        count = int(stats.class_scribbled_pixels[class_id])
        table.add_row(str(class_id), name,
                      str(int(stats.class_images[class_id])) if scribbled else NOT_APPLICABLE,
                      str(count) if scribbled else NOT_APPLICABLE,
                      _percent(stats.scribbled_fraction[class_id], scribbled, 3),
                      _percent(count / total_scribbled, scribbled),
                      _percent(stats.class_mask_pixels[class_id] / max(stats.total_pixels, 1), masked))
    console.print(table)
    for warning in scan.warnings:
        _console(stderr=True).print(f"[yellow]warning:[/] {warning}")
    return scan.problems


@data_app.command("synth")
def synth_command(
    out: Path = typer.Argument(..., help="Output folder (folder layout)."),
    seed: int = typer.Option(0, help="Random seed (the set is deterministic given it)."),
    num_train: int = typer.Option(200, help="Training images."),
    num_val: int = typer.Option(50, help="Validation images."),
    size: int = typer.Option(128, help="Image side in pixels."),
    scribble_shrink: float = typer.Option(0.5, help="Shrink ratio of the simulated scribbles (0 = full skeleton)."),
) -> None:
    """Generate the built-in synthetic texture data set (images, dense masks, simulated scribbles)."""
    from scribbleseg.data import make_synthetic_dataset
    from scribbleseg.data.folder_layout import DATASET_YAML

    make_synthetic_dataset(out, seed=seed, num_train=num_train, num_val=num_val, size=size,
                           scribble_shrink=scribble_shrink)
    _console().print(f"wrote {num_train} train + {num_val} val images to {out} ({DATASET_YAML} included)")


@data_app.command("simulate-scribbles")
def simulate_command(
    masks: Path = typer.Argument(..., help="Folder of dense mask PNGs (class ids, 255 ignore)."),
    out: Path = typer.Argument(..., help="Output folder for scribble PNGs (same names)."),
    thickness: int = typer.Option(3, help="Stroke width in pixels."),
    drop: float = typer.Option(0.0, help="Scribble-drop ratio in [0, 1] (one stroke per class is kept)."),
    shrink: float = typer.Option(0.0, help="Scribble-shrink ratio in [0, 1] (1 = single points)."),
    seed: int = typer.Option(0, help="Random seed for drop."),
    ignore_index: int = typer.Option(255, help="Ignore value in the masks (never scribbled)."),
    remove_class: int = typer.Option(None, help="Class id whose strokes are removed (a rare / unscribbled class)."),
    remove_fraction: float = typer.Option(1.0, help="Share of the files that lose --remove-class (1 = all)."),
) -> None:
    """Simulate skeleton scribbles from dense masks (PFA appendix B.1 drop / shrink variants)."""
    from scribbleseg.data import simulate_scribble_folder

    count = simulate_scribble_folder(masks, out, thickness=thickness, drop=drop, shrink=shrink, seed=seed,
                                     ignore_index=ignore_index, remove_class=remove_class,
                                     remove_fraction=remove_fraction)
    _console().print(f"wrote {count} scribble PNG(s) to {out}")


@data_app.command("convert-scribblesup")
def convert_scribblesup_command(
    xml_dir: Path = typer.Argument(..., help="Folder of ScribbleSup *.xml files."),
    out_dir: Path = typer.Argument(..., help="Output folder for scribble PNGs."),
    thickness: int = typer.Option(3, help="Stroke width in pixels."),
) -> None:
    """Convert ScribbleSup XML annotations to scribble PNGs (VOC ids, 255 = unlabeled)."""
    from scribbleseg.data import convert_scribblesup_folder

    report = convert_scribblesup_folder(xml_dir, out_dir, thickness=thickness)
    print_conversion_report(report, f"converted {report.converted} file(s) to {out_dir}")


data_app.command("import-cvat")(import_cvat_command)
data_app.command("import-labelstudio")(import_labelstudio_command)


@data_app.command("convert-palette")
def convert_palette_command(
    in_dir: Path = typer.Argument(..., help="Folder of RGB colour-coded label PNGs."),
    out_dir: Path = typer.Argument(..., help="Output folder for class-id PNGs (same names)."),
    dataset: Path = typer.Option(None, help="Folder-layout root whose dataset.yaml palette to use "
                                            "(default: the VOC palette)."),
    unknown_as_ignore: bool = typer.Option(False, help="Map colours not in the palette to 255 instead of failing."),
) -> None:
    """Map palette colours to class ids (ignore colours: VOC's (224,224,192) and white -> 255)."""
    from scribbleseg.data import VOC_PALETTE, convert_palette_folder
    from scribbleseg.data.folder_layout import DATASET_YAML, load_dataset_yaml

    palette, ignore_index = VOC_PALETTE, 255
    if dataset is not None:
        spec = load_dataset_yaml(dataset / DATASET_YAML)
        if spec.palette is None:
            raise DataError(f"{dataset / DATASET_YAML} has no 'palette' to convert colours with")
        palette, ignore_index = tuple(tuple(c) for c in spec.palette), spec.ignore_index
    count = convert_palette_folder(in_dir, out_dir, palette, ignore_index, unknown_as_ignore)
    _console().print(f"wrote {count} id PNG(s) to {out_dir}")


def register(app: typer.Typer) -> None:
    """Add the ``data`` command group to ``app``."""
    app.add_typer(data_app, name="data")
