"""The PASCAL VOC 2012 / PASCAL-Scribble layout.

::

    VOC2012/                             (root; VOCdevkit/ or VOCdevkit/VOC2012 are found too)
      JPEGImages/x.jpg
      pascal_2012_scribble/x.png         scribbles: class ids 0..20, 255 = unlabeled (--scribble-dir)
      SegmentationClassAug/x.png         optional dense GT (ids; preferred when present)
      SegmentationClass/x.png            optional dense GT ("P" palette PNGs: the index is the id)
      ImageSets/Segmentation/train.txt   split lists: train, val, train_aug, ... (or root/<split>.txt)

A split list line is a stem (``2007_000032``) or DeepLab's ``/JPEGImages/x.jpg /SegmentationClassAug/x.png``
form; the first token's stem is used. The dense GT is optional per sample: VOC's SegmentationClass
covers only the segmentation subset, so ``SampleFiles.mask`` is set only where the file exists.
A split none of whose images has a scribble file is an evaluation split (``scribble=None``).
"""

from __future__ import annotations

import os
from pathlib import Path

from scribbleseg.data.dataset_info import DatasetInfo, SampleFiles
from scribbleseg.data.voc_classes import VOC_CLASS_NAMES, VOC_PALETTE
from scribbleseg.errors import DataError

DEFAULT_SCRIBBLE_DIR = "pascal_2012_scribble"
DENSE_GT_DIRS = ("SegmentationClassAug", "SegmentationClass")


def find_voc_root(root: Path) -> Path:
    """The folder holding ``JPEGImages``: ``root`` itself, ``root/VOC2012`` or ``root/VOCdevkit/VOC2012``."""
    for candidate in (root, root / "VOC2012", root / "VOCdevkit" / "VOC2012"):
        if (candidate / "JPEGImages").is_dir():
            return candidate
    raise DataError(f"{root} is not a VOC2012 root: no JPEGImages/ folder in it (nor in VOC2012/ or VOCdevkit/VOC2012/)")


def _split_list_path(root: Path, split: str) -> Path:
    if split.endswith(".txt") and Path(split).is_file():
        return Path(split)
    candidates = [root / "ImageSets" / "Segmentation" / f"{split}.txt",
                  root / "ImageSets" / "SegmentationAug" / f"{split}.txt",
                  root / f"{split}.txt", root.parent / f"{split}.txt"]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise DataError(f"split list for '{split}' not found; looked at: " + ", ".join(str(c) for c in candidates))


def read_split_list(path: Path) -> list[str]:
    """Stems listed in a split file (one per line; DeepLab's two-path lines accepted)."""
    stems = []
    for line in path.read_text(encoding="utf-8").splitlines():
        token = line.strip().split()[0] if line.strip() else ""
        if token and not token.startswith("#"):
            stems.append(Path(token).stem)
    if not stems:
        raise DataError(f"split list {path} is empty")
    return stems


def _png_stems(folder: Path) -> set[str]:
    """Stems of the PNG files directly in ``folder`` (one directory listing, fast for 10k files)."""
    with os.scandir(folder) as entries:
        return {entry.name[:-4] for entry in entries if entry.name.lower().endswith(".png")}


def _resolve_folder(root: Path, folder: str | Path) -> Path:
    folder = Path(folder)
    if folder.is_absolute():
        return folder
    if (root / folder).is_dir() or not (root.parent / folder).is_dir():
        return root / folder
    return root.parent / folder


def open_voc_dataset(root: str | Path, split: str = "train", scribble_dir: str | Path | None = None,
                     mask_dir: str | Path | None = None) -> tuple[DatasetInfo, list[SampleFiles]]:
    """List the samples of a VOC split with their scribble and (where present) dense GT files.

    Args:
        scribble_dir: folder of scribble PNGs, relative to the root (or its parent) or absolute;
            default ``pascal_2012_scribble``. When it does not exist or holds no scribble of this
            split (e.g. ``val``: images + dense GT only), samples get ``scribble=None``; when it holds
            some, every sample's scribble path is listed and missing ones are reported.
        mask_dir: dense GT folder; default: the first of SegmentationClassAug, SegmentationClass found.
    """
    root = find_voc_root(Path(root))
    stems = read_split_list(_split_list_path(root, split))
    scribble_folder = _resolve_folder(root, scribble_dir or DEFAULT_SCRIBBLE_DIR)
    if scribble_dir is not None and not scribble_folder.is_dir():
        raise DataError(f"scribble folder {scribble_folder} not found")
    if mask_dir is not None:
        mask_folder: Path | None = _resolve_folder(root, mask_dir)
        if not mask_folder.is_dir():
            raise DataError(f"dense ground-truth folder {mask_folder} not found")
    else:
        mask_folder = next((root / d for d in DENSE_GT_DIRS if (root / d).is_dir()), None)
    info = DatasetInfo(class_names=VOC_CLASS_NAMES, palette=VOC_PALETTE, ignore_index=255, root=root,
                       layout="voc", split=split)
    split_has_scribbles = scribble_folder.is_dir() and not _png_stems(scribble_folder).isdisjoint(stems)
    samples = []
    for stem in stems:
        mask = mask_folder / f"{stem}.png" if mask_folder is not None else None
        samples.append(SampleFiles(
            name=stem,
            image=root / "JPEGImages" / f"{stem}.jpg",
            scribble=scribble_folder / f"{stem}.png" if split_has_scribbles else None,
            mask=mask if mask is not None and mask.is_file() else None,
        ))
    return info, samples
