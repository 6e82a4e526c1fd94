"""One entry point for every layout: :func:`open_dataset` -> ``(DatasetInfo, list[SampleFiles])``;
:func:`list_splits` names the splits a data set has."""

from __future__ import annotations

from pathlib import Path

from scribbleseg.data.dataset_info import DatasetInfo, SampleFiles
from scribbleseg.data.folder_layout import DATASET_YAML, open_folder_dataset
from scribbleseg.data.voc_layout import find_voc_root, open_voc_dataset
from scribbleseg.errors import DataError

LAYOUTS = ("folder", "voc", "auto")


def detect_layout(root: str | Path) -> str:
    """``"folder"`` when ``root/dataset.yaml`` exists, ``"voc"`` when a JPEGImages folder is found."""
    root = Path(root)
    if (root / DATASET_YAML).is_file():
        return "folder"
    try:
        find_voc_root(root)
    except DataError:
        raise DataError(f"cannot tell the layout of {root}: neither {DATASET_YAML} (folder layout) "
                        "nor JPEGImages/ (VOC layout) found") from None
    return "voc"


def missing_files(samples: list[SampleFiles]) -> list[str]:
    """Human-readable lines for every listed image / scribble / mask file that does not exist."""
    lines = []
    for sample in samples:
        for kind, path in (("image", sample.image), ("scribble", sample.scribble), ("mask", sample.mask)):
            if path is not None and not path.is_file():
                lines.append(f"{kind} of '{sample.name}' not found: {path}")
    return lines


def open_dataset(root: str | Path, layout: str = "folder", split: str = "train",
                 scribble_dir: str | Path | None = None, mask_dir: str | Path | None = None,
                 check_files: bool = True) -> tuple[DatasetInfo, list[SampleFiles]]:
    """Open a data set and list the files of ``split``.

    Args:
        root: data set root.
        layout: ``"folder"`` (``dataset.yaml`` + images/scribbles/masks), ``"voc"`` (VOC2012 /
            PASCAL-Scribble) or ``"auto"``.
        split: split name (``train``, ``val``, ``train_aug`` ...); for VOC also a path to a list file.
        scribble_dir: VOC only: scribble folder (default ``pascal_2012_scribble``).
        mask_dir: VOC only: dense GT folder (default SegmentationClassAug, else SegmentationClass).
        check_files: raise :class:`DataError` listing every missing image/scribble/mask file
            (cheap existence check; :func:`validate_dataset` decodes and checks contents).

    Returns:
        ``(info, samples)``.
    """
    if layout not in LAYOUTS:
        raise DataError(f"unknown data set layout '{layout}' (choose from {', '.join(LAYOUTS)})")
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"data set root {root} not found")
    if layout == "auto":
        layout = detect_layout(root)
    if layout == "folder":
        if scribble_dir is not None or mask_dir is not None:
            raise DataError("scribble_dir / mask_dir apply to the VOC layout only; the folder layout uses "
                            "scribbles/<split>/ and masks/<split>/")
        info, samples = open_folder_dataset(root, split)
    else:
        info, samples = open_voc_dataset(root, split, scribble_dir=scribble_dir, mask_dir=mask_dir)
    if not samples:
        raise DataError(f"split '{split}' of {root} has no images")
    if check_files:
        problems = missing_files(samples)
        if problems:
            shown = "\n  ".join(problems[:10])
            more = f"\n  ... and {len(problems) - 10} more" if len(problems) > 10 else ""
            raise DataError(f"{len(problems)} missing file(s) in split '{split}' of {root}:\n  {shown}{more}")
    return info, samples


def _split_order(names: set[str]) -> list[str]:
    """``train``-like splits first, then ``val``, then the rest, each group alphabetical."""
    return sorted(names, key=lambda name: (0 if name.startswith("train") else 1 if name.startswith("val") else 2, name))


def list_splits(root: str | Path, layout: str = "auto") -> tuple[str, list[str]]:
    """(layout, split names) of the data set at ``root``: the folder layout's ``images/<split>/`` folders;
    VOC's split lists in ``ImageSets/Segmentation/`` and ``ImageSets/SegmentationAug/``. DataError when
    there is none."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"data set root {root} not found")
    if layout not in LAYOUTS:
        raise DataError(f"unknown data set layout '{layout}' (choose from {', '.join(LAYOUTS)})")
    if layout == "auto":
        layout = detect_layout(root)
    if layout == "folder":
        folder = root / "images"
        names = {p.name for p in folder.iterdir() if p.is_dir()} if folder.is_dir() else set()
        where = f"{folder}/<split>/"
    else:
        voc = find_voc_root(root)
        lists = [voc / "ImageSets" / kind for kind in ("Segmentation", "SegmentationAug")]
        names = {p.stem for folder in lists if folder.is_dir() for p in folder.glob("*.txt")}
        where = " or ".join(f"{folder}/<split>.txt" for folder in lists)
    if not names:
        raise DataError(f"{root} has no splits: expected {where}")
    return layout, _split_order(names)
