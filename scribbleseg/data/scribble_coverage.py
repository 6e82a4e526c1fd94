"""Find training samples whose scribble has no labelled pixel (every pixel is ``ignore_index``).

Such a sample contributes nothing to the loss; a data set made only of them trains with loss 0.
:func:`find_unscribbled` reads only the scribble PNGs, in a thread pool (PNG decoding releases the
GIL), so it can run before every training start: see ``benchmarks/bench_data_scan.py`` and
docs/data.md for images/s. :func:`describe_unscribbled` is the one message for it, used by
``validate_dataset`` / ``scribbleseg data stats`` and meant for the trainer.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from scribbleseg.data.dataset_info import DatasetInfo, SampleFiles
from scribbleseg.data.image_io import read_label_array

NAMES_SHOWN = 5


def scribble_is_empty(path: Path, ignore_index: int) -> bool:
    """Whether every pixel of the scribble PNG ``path`` is ``ignore_index``; DataError naming a bad file."""
    label = read_label_array(path, "scribble")
    return not bool((label != ignore_index).any())


def find_unscribbled(samples: Sequence[SampleFiles], info: DatasetInfo, workers: int = 4) -> list[SampleFiles]:
    """The samples whose scribble file has no labelled pixel, in the order of ``samples``.

    Args:
        samples: from :func:`open_dataset`; samples with ``scribble=None`` (evaluation splits) are skipped.
        info: gives ``ignore_index``.
        workers: reader threads (``<= 1``: read in this thread).

    Raises:
        DataError: naming the file when a scribble is missing or cannot be decoded.
    """
    scribbled = [s for s in samples if s.scribble is not None]
    paths = [s.scribble for s in scribbled]
    ignore_index = info.ignore_index
    if workers <= 1 or len(paths) <= 1:
        empty = [scribble_is_empty(p, ignore_index) for p in paths]
    else:
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="scribble-scan") as pool:
            empty = list(pool.map(scribble_is_empty, paths, [ignore_index] * len(paths)))
    return [sample for sample, is_empty in zip(scribbled, empty) if is_empty]


def describe_unscribbled(names: Sequence[str], total: int, ignore_index: int = 255) -> str:
    """``"no scribbled pixel in N of M scribbles (all 255): a, b, c, d, e and K more"``."""
    shown = ", ".join(names[:NAMES_SHOWN])
    more = f" and {len(names) - NAMES_SHOWN} more" if len(names) > NAMES_SHOWN else ""
    return f"no scribbled pixel in {len(names)} of {total} scribbles (all {ignore_index}): {shown}{more}"
