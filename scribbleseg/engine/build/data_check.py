"""The data check before step 0: every file of the splits a run uses, checked once, cached.

:func:`check_run_data` decodes and checks each sample of the training split and, when the run validates,
of the validation split (:func:`scribbleseg.data.validation.scan_sample`: the image decodes, its scribble /
dense mask decodes, has the image's size and holds class ids in ``[0, K)`` or the ignore index), in a
few reader threads (PNG / JPEG decoding releases the GIL), with a progress bar. Bad files are one
:class:`~scribbleseg.errors.DataError` listing the first :data:`SHOWN` and their count, raised before
anything is trained or written; with ``skip_bad`` the samples that own them are left out of the run
instead (named in a warning and, by the trainer, in ``run.json``). Scribbles that label no pixel are a
warning (all of them: a DataError, nothing to train on).

The verdict of each sample is cached in the run folder's ``data_check.json``, keyed by path + size +
modification time of its files (and the class count and ignore index it was checked against), so a rerun
or ``--resume`` rechecks only files that changed. The cache is written only when the check passes; a
cache that is unreadable, too large or of another format is ignored. Nothing is written into the data
folder.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scribbleseg.atomic_files import atomic_write_text
from scribbleseg.data import DatasetInfo, describe_unscribbled
from scribbleseg.data.dataset_info import SampleFiles
from scribbleseg.data.validation import Problem, scan_sample
from scribbleseg.engine.runtime.progress import progress_bar
from scribbleseg.errors import DataError

CACHE_FORMAT = 1
CACHE_MAX_BYTES = 64 * 1024 * 1024  # a larger file is not ours: ignored, not parsed
SHOWN = 10  # bad files named in the error
WORKERS = 4


@dataclass(frozen=True)
class Verdict:
    """One sample's check: its problems (``"path: reason"``) and the labelled pixels of its scribble."""

    problems: tuple[str, ...]
    labelled: int | None


@dataclass
class DataCheck:
    """What :func:`check_run_data` found: how many samples it decoded now / took from the cache, the
    samples it left out (``split/name``) and warnings for the user."""

    decoded: int = 0
    cached: int = 0
    skipped: list[str] = field(default_factory=list)
    skipped_files: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def _signature(path: Path | None) -> list[Any] | None:
    """``[path, size, mtime_ns]`` (``[path]`` for a file that cannot be stat'ed, ``None`` for no file)."""
    if path is None:
        return None
    try:
        stat = os.stat(path)
    except OSError:
        return [str(path)]
    return [str(path), stat.st_size, stat.st_mtime_ns]


def sample_key(sample: SampleFiles) -> str:
    """The cache key of a sample: the signatures of its image, scribble and dense mask."""
    return json.dumps([_signature(sample.image), _signature(sample.scribble), _signature(sample.mask)])


def _judge(sample: SampleFiles, info: DatasetInfo) -> Verdict:
    problems: list[Problem] = []
    scan = scan_sample(sample, info, problems)
    counts = None if scan is None else scan.scribble_counts
    return Verdict(tuple(str(problem) for problem in problems), None if counts is None else int(counts.sum()))


def _cache_header(info: DatasetInfo) -> dict[str, Any]:
    return {"format": CACHE_FORMAT, "num_classes": info.num_classes, "ignore_index": info.ignore_index}


def read_cache(path: Path | None, info: DatasetInfo) -> dict[str, Verdict]:
    """The cached verdicts in ``path`` for checks against ``info``'s classes (``{}`` when none fit)."""
    try:
        if path is None or not path.is_file() or path.stat().st_size > CACHE_MAX_BYTES:
            return {}
        raw = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(raw, dict) or raw.get("header") != _cache_header(info):
            return {}
        return {key: Verdict(tuple(map(str, value["problems"])), value["labelled"])
                for key, value in raw["samples"].items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return {}


def write_cache(path: Path, verdicts: dict[str, Verdict], info: DatasetInfo) -> None:
    """``verdicts`` into ``path`` (atomically)."""
    samples = {key: {"problems": list(v.problems), "labelled": v.labelled} for key, v in verdicts.items()}
    atomic_write_text(path, json.dumps({"header": _cache_header(info), "samples": samples}) + "\n")


def _verdicts(samples: Sequence[SampleFiles], info: DatasetInfo, cached: dict[str, Verdict], show: bool,
              report: DataCheck) -> list[Verdict]:
    """The verdict of every sample (from the cache where its files did not change), with a progress bar."""
    keys = [sample_key(sample) for sample in samples]
    todo = [index for index, key in enumerate(keys) if key not in cached]
    found: dict[int, Verdict] = {}
    if todo:
        with progress_bar(total=len(todo), desc="checking data", unit="sample", enabled=show, leave=False) as bar, \
                ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="data-check") as pool:
            for index, verdict in zip(todo, pool.map(lambda i: _judge(samples[i], info), todo)):
                found[index] = verdict
                bar.update(1)
    report.decoded += len(todo)
    report.cached += len(samples) - len(todo)
    return [found[index] if index in found else cached[keys[index]] for index in range(len(samples))]


def _bad_files_error(bad: list[str], splits: str) -> DataError:
    shown = "; ".join(bad[:SHOWN])
    more = f"; and {len(bad) - SHOWN} more" if len(bad) > SHOWN else ""
    return DataError(f"{len(bad)} bad file(s) in {splits}, found before training: {shown}{more}. Fix or remove "
                     "them (scribbleseg data stats ROOT lists them all), or train without them with --skip-bad")


def _unscribbled(names: list[str], total: int, info: DatasetInfo, where: str) -> str:
    """The warning for scribbles that label nothing; DataError when that is every one of them."""
    message = describe_unscribbled(names, total, info.ignore_index)
    if len(names) == total:
        raise DataError(f"{message} ({where}): nothing to train on; scribbles must hold class ids where "
                        f"something is labelled, {info.ignore_index} elsewhere")
    return f"{message} ({where}): these images add nothing to the loss"


def check_run_data(splits: Sequence[tuple[str, Any]], info: DatasetInfo, where: str, cache_path: Path | None,
                   skip_bad: bool = False, show: bool = True, write: bool = True) -> DataCheck:
    """Check the data sets of a run before its first step (see the module docstring).

    Args:
        splits: ``(split name, data set)`` pairs, the training split first; each data set has a
            ``samples`` list (:class:`~scribbleseg.data.ScribbleDataset`, :class:`~scribbleseg.data.EvalDataset`),
            which ``skip_bad`` shortens in place.
        info: the data set's classes (label values are checked against them).
        where: the data root, for messages.
        cache_path: ``data_check.json`` of the run folder (``None``: no cache).
        skip_bad: leave out the samples with bad files instead of raising.
        show: draw the progress bar (rank 0).
        write: write the cache (rank 0).
    """
    report = DataCheck()
    cached = read_cache(cache_path, info)
    fresh: dict[str, Verdict] = {}
    bad: list[str] = []
    kept_by_split: list[list[SampleFiles]] = []
    for name, dataset in splits:
        samples = list(dataset.samples)
        verdicts = _verdicts(samples, info, cached, show, report)
        fresh.update({sample_key(s): v for s, v in zip(samples, verdicts)})
        kept = [s for s, v in zip(samples, verdicts) if not v.problems]
        bad += [problem for v in verdicts for problem in v.problems]
        report.skipped += [f"{name}/{s.name}" for s, v in zip(samples, verdicts) if v.problems]
        kept_by_split.append(kept)
    split_names = " and ".join(f"split '{name}'" for name, _ in splits) + f" of {where}"
    if bad and not skip_bad:
        raise _bad_files_error(bad, split_names)
    for (name, dataset), kept in zip(splits, kept_by_split):
        if not kept:
            raise DataError(f"every sample of split '{name}' of {where} has a bad file: nothing left to "
                            f"{'train on' if dataset is splits[0][1] else 'validate on'}")
        dataset.samples = kept
    if bad:
        report.skipped_files = bad
        report.warnings.append(f"--skip-bad: left out {len(report.skipped)} sample(s) with bad files "
                               f"({', '.join(report.skipped[:SHOWN])}{' ...' if len(report.skipped) > SHOWN else ''})"
                               f"; they are listed in run.json")
    train_name, train_set = splits[0]
    train_verdicts = [fresh[sample_key(s)] for s in train_set.samples]
    empty = [s.name for s, v in zip(train_set.samples, train_verdicts) if v.labelled == 0]
    if empty:
        report.warnings.append(_unscribbled(empty, len(train_set.samples), info, f"split '{train_name}' of {where}"))
    if write and cache_path is not None:
        write_cache(cache_path, fresh, info)
    return report
