"""Build training / evaluation data sets from the ``data`` config section.

When ``data.synthetic`` is set and ``data.root`` holds no data set yet, the built-in synthetic set is
generated there first (so the demo and tests need no download).
"""

from __future__ import annotations

from pathlib import Path

from scribbleseg.data import (
    DatasetInfo,
    EvalDataset,
    ScribbleDataset,
    build_eval_transform,
    build_train_transform,
    make_synthetic_dataset,
    open_dataset,
)
from scribbleseg.engine.config import DataConfig, ExperimentConfig
from scribbleseg.errors import DataError


def ensure_data_root(data_cfg: DataConfig) -> Path:
    """``data.root`` as a path; generates the synthetic set there when configured and missing.

    Raises DataError naming the folder when it does not exist and nothing can generate it.
    """
    root = Path(data_cfg.root).expanduser()
    if data_cfg.synthetic is not None and not (root.is_dir() and any(root.iterdir())):
        syn = data_cfg.synthetic
        make_synthetic_dataset(root, seed=syn.seed, num_train=syn.num_train, num_val=syn.num_val,
                               size=syn.size)
    if not root.is_dir():
        raise DataError(f"data.root: data folder {root} does not exist")
    return root


def build_train_dataset(cfg: ExperimentConfig) -> tuple[DatasetInfo, ScribbleDataset]:
    """The scribble-labelled training set with the paper's augmentation (scale, rotate, flip, blur, crop)."""
    data_cfg = cfg.data
    root = ensure_data_root(data_cfg)
    info, samples = open_dataset(root, layout=data_cfg.layout, split=data_cfg.train_split)
    transform = build_train_transform(
        crop_size=data_cfg.crop_size, scale_range=data_cfg.scale_range,
        rotation_degrees=data_cfg.rotation_degrees, hflip=data_cfg.hflip, blur=data_cfg.blur,
        ignore_index=info.ignore_index,
    )
    return info, ScribbleDataset(samples, info, transform=transform)


def build_eval_dataset(cfg: ExperimentConfig, split: str | None = None) -> tuple[DatasetInfo, EvalDataset]:
    """The densely labelled evaluation set of ``split`` (default ``data.val_split``)."""
    data_cfg = cfg.data
    root = ensure_data_root(data_cfg)
    info, samples = open_dataset(root, layout=data_cfg.layout, split=split or data_cfg.val_split)
    return info, EvalDataset(samples, info, transform=build_eval_transform())


def build_datasets(cfg: ExperimentConfig) -> tuple[DatasetInfo, ScribbleDataset, EvalDataset]:
    """(info, train set, validation set) from ``cfg.data``."""
    info, train = build_train_dataset(cfg)
    _, val = build_eval_dataset(cfg)
    return info, train, val
