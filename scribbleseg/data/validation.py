"""Check every file of a data set before a long run: :func:`validate_dataset` -> ``list[Problem]``.

Each image is decoded, each scribble / dense mask is decoded and checked: present, readable, same
size as its image, single-channel ids (an RGB-coloured label is reported with the conversion
command), values in ``[0, K)`` or the ignore index. A scribble without any labelled pixel is a
warning (names and count in :attr:`DatasetScan.warnings`); when *every* scribble is empty it is a
problem (nothing to train on). A split without scribbles (``scribble=None``: images + dense
masks, an evaluation split) is not an error; :attr:`DatasetScan.warnings` says so. :func:`scan_dataset` also returns per-image class counts used by
``scribbleseg data stats``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from scribbleseg.data.class_labels import class_pixel_counts
from scribbleseg.data.dataset_info import DatasetInfo, SampleFiles
from scribbleseg.data.image_io import label_value_problem, read_label_array, read_rgb_image
from scribbleseg.data.scribble_coverage import describe_unscribbled
from scribbleseg.errors import DataError


@dataclass(frozen=True)
class Problem:
    """One bad file and why."""

    path: Path
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


@dataclass
class SampleScan:
    """What was read from one sample: size and ``[K]`` pixel counts per class (``None`` if no label)."""

    name: str
    height: int
    width: int
    scribble_counts: np.ndarray | None = None
    mask_counts: np.ndarray | None = None


@dataclass
class DatasetScan:
    """Problems found (errors), warnings (the data is usable, but worth knowing) and per-sample scans."""

    problems: list[Problem] = field(default_factory=list)
    samples: list[SampleScan] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def _strip_path(message: str, path: Path) -> str:
    return message.replace(f" {path}", "").replace(str(path), "").strip(" :") or message


def _check_label(path: Path | None, kind: str, image_shape: tuple[int, int] | None, info: DatasetInfo,
                 problems: list[Problem]) -> np.ndarray | None:
    """Counts ``[K]`` of a valid label file; appends a Problem and returns None otherwise."""
    if path is None:
        return None
    if not path.is_file():
        problems.append(Problem(path, f"{kind} missing"))
        return None
    try:
        label = read_label_array(path, kind)
    except DataError as err:
        problems.append(Problem(path, _strip_path(str(err), path)))
        return None
    reason = label_value_problem(label, info.num_classes, info.ignore_index)
    if reason is not None:
        problems.append(Problem(path, f"{kind} has {reason}"))
        return None
    if image_shape is not None and label.shape[:2] != image_shape:
        problems.append(Problem(path, f"{kind} is {label.shape[1]}x{label.shape[0]} (WxH) but the image is "
                                      f"{image_shape[1]}x{image_shape[0]}"))
        return None
    return class_pixel_counts(label, info.num_classes)


def scan_sample(sample: SampleFiles, info: DatasetInfo, problems: list[Problem]) -> SampleScan | None:
    """Decode and check the files of one sample; problems are appended; None when the image is bad."""
    image_shape: tuple[int, int] | None = None
    if not sample.image.is_file():
        problems.append(Problem(sample.image, f"image missing for '{sample.name}'"))
    else:
        try:
            image_shape = tuple(read_rgb_image(sample.image).shape[:2])
        except DataError as err:
            problems.append(Problem(sample.image, _strip_path(str(err), sample.image)))
    scribble_counts = _check_label(sample.scribble, "scribble", image_shape, info, problems)
    mask_counts = _check_label(sample.mask, "dense mask", image_shape, info, problems)
    if image_shape is None:
        return None
    return SampleScan(sample.name, image_shape[0], image_shape[1], scribble_counts, mask_counts)


def scan_dataset(info: DatasetInfo, samples: Sequence[SampleFiles],
                 progress: Callable[[int], None] | None = None) -> DatasetScan:
    """Check every sample (``progress(i)`` is called after each one)."""
    scan = DatasetScan()
    for index, sample in enumerate(samples):
        result = scan_sample(sample, info, scan.problems)
        if result is not None:
            scan.samples.append(result)
        if progress is not None:
            progress(index + 1)
    scan.warnings += split_warnings(info, samples)
    _report_unscribbled(scan, info, samples)
    return scan


def _report_unscribbled(scan: DatasetScan, info: DatasetInfo, samples: Sequence[SampleFiles]) -> None:
    """Scribbles without any labelled pixel: a warning when some are, a problem when all are
    (training on them would run with loss 0)."""
    empty = [s.name for s in scan.samples if s.scribble_counts is not None and int(s.scribble_counts.sum()) == 0]
    scribbled = [s for s in samples if s.scribble is not None]
    if not empty:
        return
    message = describe_unscribbled(empty, len(scribbled), info.ignore_index)
    if len(empty) < len(scribbled):
        scan.warnings.append(message)
        return
    scan.problems.append(Problem(scribbled[0].scribble.parent, f"{message}; nothing to train on"))


def split_warnings(info: DatasetInfo, samples: Sequence[SampleFiles]) -> list[str]:
    """What a split cannot be used for: no scribbles (evaluation only), nor dense masks (prediction only)."""
    if not samples or any(s.scribble is not None for s in samples):
        return []
    if any(s.mask is not None for s in samples):
        return [f"split '{info.split}' has no scribbles: it can be evaluated (images + dense masks) "
                "but not trained on"]
    return [f"split '{info.split}' has no scribbles and no dense masks: neither training nor evaluation "
            "can use it (only prediction on its images)"]


def validate_dataset(info: DatasetInfo, samples: Sequence[SampleFiles]) -> list[Problem]:
    """Every problem of every file of ``samples`` (empty list: the data set is fine)."""
    return scan_dataset(info, samples).problems
