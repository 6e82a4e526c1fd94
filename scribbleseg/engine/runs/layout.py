"""The one place that knows the files of a run folder.

::

    runs/<name>/
      run.json                        marks a scribbleseg run folder (written when training starts)
      train.lock                      held (flock) by the train process writing into the folder
      config.yaml                     resolved config (after --set)
      data_check.json                 the data check's verdicts by path + size + mtime (a cache)
      metrics.jsonl                   one JSON row per log interval and per validation
      tensorboard/                    the same scalars for TensorBoard
      checkpoints/last.safetensors    weights + method state + config (header)
      checkpoints/last.state.pt       resume state (optimiser, RNG, step)
      checkpoints/best.safetensors    best weights by train.best_metric
      figures/                        curves and prediction grids
      eval/                           results of ``scribbleseg eval`` (JSON)

Trainer, evaluation, figures and the CLI all take their paths from :class:`RunLayout`.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from scribbleseg.methods.class_sources import ClassSource

CHECKPOINT_SUFFIX = ".safetensors"
STATE_SUFFIX = ".state.pt"


@dataclass(frozen=True)
class RunLayout:
    """Paths inside the run folder ``root``."""

    root: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))

    @classmethod
    def of_checkpoint(cls, checkpoint: str | Path) -> "RunLayout":
        """The run a checkpoint file belongs to (``<run>/checkpoints/x.safetensors``), else its folder."""
        path = Path(checkpoint)
        folder = path.parent.parent if path.parent.name == "checkpoints" else path.parent
        return cls(folder)

    @property
    def marker(self) -> Path:
        return self.root / "run.json"

    @property
    def lock(self) -> Path:
        return self.root / "train.lock"

    @property
    def config(self) -> Path:
        return self.root / "config.yaml"

    @property
    def data_check(self) -> Path:
        return self.root / "data_check.json"

    @property
    def metrics(self) -> Path:
        return self.root / "metrics.jsonl"

    @property
    def tensorboard(self) -> Path:
        return self.root / "tensorboard"

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    def checkpoint(self, name: str) -> Path:
        """``checkpoints/<name>.safetensors`` (``name`` = ``last``, ``best``, ...)."""
        return self.checkpoints / f"{name}{CHECKPOINT_SUFFIX}"

    @property
    def last(self) -> Path:
        return self.checkpoint("last")

    @property
    def best(self) -> Path:
        return self.checkpoint("best")

    @property
    def figures(self) -> Path:
        return self.root / "figures"

    @property
    def eval(self) -> Path:
        return self.root / "eval"

    @property
    def last_state(self) -> Path:
        return state_path_for(self.last)

    def is_run_folder(self) -> bool:
        """Whether ``root`` is a run folder: it has ``run.json``, or (runs made before the marker) a
        ``last`` checkpoint."""
        return self.marker.is_file() or self.last.is_file() or self.last_state.is_file()

    def previous_run_files(self) -> list[Path]:
        """What ``train --overwrite`` deletes of an earlier run: its checkpoints, metrics, TensorBoard logs
        and figures (``eval/`` results are kept)."""
        checkpoints = [path for name in ("last", "best") for path in (self.checkpoint(name),
                                                                      state_path_for(self.checkpoint(name)))]
        return [*checkpoints, self.metrics, self.tensorboard, self.figures]

    def best_or_last(self) -> Path | None:
        """The best checkpoint if there is one, else the last one, else ``None``."""
        for path in (self.best, self.last):
            if path.is_file():
                return path
        return None


def state_path_for(weights_path: str | Path) -> Path:
    """``runs/x/checkpoints/last.safetensors`` -> ``runs/x/checkpoints/last.state.pt``."""
    path = Path(weights_path)
    return path.with_name(path.name.removesuffix(CHECKPOINT_SUFFIX) + STATE_SUFFIX)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.-]+", "-", text).strip("-")


def dataset_slug(data_root: str) -> str:
    """``/data/VOC2012`` -> ``VOC2012-1a2b3c``: the folder's name and a hash of its absolute path, so two
    data sets in folders of the same name get different names."""
    from scribbleseg.engine.build.data_factory import absolute_data_root

    absolute = absolute_data_root(data_root)
    return f"{_slug(Path(absolute).name) or 'data'}-{hashlib.sha1(absolute.encode()).hexdigest()[:6]}"


def eval_results_path(checkpoint: Path, class_source: "ClassSource", split: str, data_root: str) -> Path:
    """``runs/x/checkpoints/best.safetensors`` -> ``runs/x/eval/best_<data set>_<split>_<classes>.json``
    (``<classes>``: the class source's spelling, ``file-<stem>`` for a ``file:`` source), so evaluations of
    different data sets, splits or class sources never overwrite each other."""
    folder = RunLayout.of_checkpoint(checkpoint).eval
    classes = _slug("file-" + Path(class_source.path).stem if class_source.kind == "file" else class_source.spec)
    return folder / f"{Path(checkpoint).stem}_{dataset_slug(data_root)}_{split}_{classes}.json"
