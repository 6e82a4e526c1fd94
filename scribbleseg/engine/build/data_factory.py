"""Build training / evaluation data sets and the resumable training loader from the ``data`` section.

The built-in synthetic set is generated only on request: by ``scribbleseg data synth``, by the demo
(:func:`generate_synthetic_set`), or by training with ``data.synthetic.generate: true``. A ``data.root``
that does not exist is otherwise an error (with the ``data synth`` command when the config describes the
synthetic set); evaluation never generates anything.

Reproducible, resumable data order: the epoch's order comes from ``DistributedSampler`` seeded by
(``train.seed``, epoch) (also with one process), and every sample is augmented with its own seed derived
from (seed, epoch, position), whichever worker loads it. A run resumed at iteration ``s`` therefore
starts the loader of epoch ``s // iters_per_epoch`` at batch ``s % iters_per_epoch`` and sees exactly the
batches the uninterrupted run would have seen.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Sampler

from scribbleseg.data import (
    DatasetInfo,
    EvalDataset,
    ScribbleDataset,
    build_eval_transform,
    build_train_transform,
    make_synthetic_dataset,
    open_dataset,
)
from scribbleseg.engine.config.schema import DataConfig, ExperimentConfig
from scribbleseg.engine.runtime.interrupts import ignore_stop_signals
from scribbleseg.engine.runtime.seeding import isolated_rng, sample_seed
from scribbleseg.errors import ConfigError, DataError

SYNTHETIC_MARKER = "dataset.yaml"  # written last by make_synthetic_dataset: its presence means complete


class PerSampleSeededTransform:
    """Wraps an albumentations ``Compose`` so that each call uses the seed set in ``next_seed``.

    It deliberately has no ``set_random_seed`` method, so the data set's once-per-worker reseeding
    leaves it alone; :class:`SeededSamples` sets ``next_seed`` before loading each sample.
    """

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.next_seed: int | None = None

    def __call__(self, **kwargs: Any) -> dict:
        if self.next_seed is not None:
            self.inner.set_random_seed(self.next_seed)
        return self.inner(**kwargs)


class SeededSamples(Dataset):
    """``dataset[(index, seed)]``: the sample ``index`` augmented with ``seed`` (global RNGs untouched)."""

    def __init__(self, base: Dataset, transform: PerSampleSeededTransform) -> None:
        self.base = base
        self.transform = transform

    def __len__(self) -> int:
        return len(self.base)  # type: ignore[arg-type]

    def __getitem__(self, key: tuple[int, int]) -> Any:
        index, seed = key
        self.transform.next_seed = seed
        with isolated_rng(seed):
            return self.base[index]


class ResumableBatchSampler(Sampler[list[tuple[int, int]]]):
    """Batches of ``(index, sample_seed)`` for one epoch of one rank, starting at batch ``start_batch``.

    The order is ``DistributedSampler(shuffle=True, seed=seed, drop_last=True)`` at ``epoch``; incomplete
    last batches are dropped so that every iteration has the same batch size.
    """

    def __init__(self, dataset: Dataset, batch_size: int, seed: int, epoch: int, start_batch: int = 0,
                 rank: int = 0, world_size: int = 1) -> None:
        self.order = DistributedSampler(dataset, num_replicas=world_size, rank=rank, shuffle=True, seed=seed,
                                        drop_last=True)
        self.order.set_epoch(epoch)
        self.batch_size = batch_size
        self.seed = seed
        self.epoch = epoch
        self.start_batch = start_batch
        self.rank = rank
        self.world_size = world_size

    def batches_per_epoch(self) -> int:
        """Full batches in one epoch of this rank."""
        return len(self.order) // self.batch_size

    def __len__(self) -> int:
        return max(self.batches_per_epoch() - self.start_batch, 0)

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        indices = list(self.order)
        for batch in range(self.start_batch, self.batches_per_epoch()):
            positions = range(batch * self.batch_size, (batch + 1) * self.batch_size)
            yield [(indices[p], sample_seed(self.seed, self.epoch, p * self.world_size + self.rank))
                   for p in positions]


def per_rank_batch_size(data_cfg: DataConfig, world_size: int) -> int:
    """``data.batch_size`` is the global batch; each of ``world_size`` processes loads its share."""
    if data_cfg.batch_size % world_size:
        raise ConfigError(f"data.batch_size={data_cfg.batch_size} must be divisible by the number of "
                          f"processes ({world_size})")
    return data_cfg.batch_size // world_size


def iterations_per_epoch(dataset: Dataset, data_cfg: DataConfig, world_size: int = 1) -> int:
    """Full batches per epoch; DataError when the training set is smaller than one batch."""
    batch = per_rank_batch_size(data_cfg, world_size)
    count = ResumableBatchSampler(dataset, batch, 0, 0, 0, 0, world_size).batches_per_epoch()
    if count < 1:
        raise DataError(f"the training set has {len(dataset)} images, fewer than one batch of "  # type: ignore[arg-type]
                        f"data.batch_size={data_cfg.batch_size}; lower data.batch_size")
    return count


def build_train_loader(dataset: SeededSamples, data_cfg: DataConfig, seed: int, epoch: int, start_batch: int,
                       rank: int = 0, world_size: int = 1, pin_memory: bool = False) -> DataLoader:
    """The training DataLoader of ``epoch`` starting at batch ``start_batch`` (see module docstring)."""
    sampler = ResumableBatchSampler(dataset, per_rank_batch_size(data_cfg, world_size), seed, epoch,
                                    start_batch, rank, world_size)
    # the loader draws its workers' base seed from this generator, not from the global torch RNG,
    # so creating a loader mid-epoch on --resume does not shift the model's dropout stream
    generator = torch.Generator().manual_seed(sample_seed(seed, epoch, 2**32 + rank))
    # workers ignore SIGINT / SIGTERM: the main process finishes the step and stops them (engine.interrupts)
    return DataLoader(dataset, batch_sampler=sampler, num_workers=data_cfg.num_workers, pin_memory=pin_memory,
                      generator=generator, worker_init_fn=ignore_stop_signals if data_cfg.num_workers else None)


def absolute_data_root(root: str) -> str:
    """``root`` with ``~`` expanded, made absolute against the current folder, ``..`` folded (symlinks kept)."""
    return os.path.abspath(os.path.expanduser(root))


def with_absolute_data_root(cfg: ExperimentConfig) -> ExperimentConfig:
    """A copy of ``cfg`` whose ``data.root`` is :func:`absolute_data_root`: what a run stores in
    ``config.yaml`` and its checkpoints, so that they work from any folder."""
    resolved = cfg.model_copy(deep=True)
    resolved.data.root = absolute_data_root(cfg.data.root)
    return resolved


def generate_synthetic_set(data_cfg: DataConfig) -> Path:
    """Write the synthetic set described by ``data.synthetic`` into ``data.root`` unless it is there already."""
    root = Path(data_cfg.root).expanduser()
    syn = data_cfg.synthetic
    if syn is None:
        raise ConfigError("data.synthetic is not set: there is no synthetic set to generate")
    if not (root / SYNTHETIC_MARKER).is_file():
        make_synthetic_dataset(root, seed=syn.seed, num_train=syn.num_train, num_val=syn.num_val, size=syn.size)
    return root


def synth_command_for(data_cfg: DataConfig) -> str:
    """The ``scribbleseg data synth`` command that makes the synthetic set of ``data_cfg``."""
    syn = data_cfg.synthetic
    assert syn is not None
    return (f"scribbleseg data synth {data_cfg.root} --seed {syn.seed} --num-train {syn.num_train} "
            f"--num-val {syn.num_val} --size {syn.size}")


def ensure_data_root(data_cfg: DataConfig, allow_generate: bool = False) -> Path:
    """``data.root`` as a path; with ``allow_generate`` (training) and ``data.synthetic.generate`` the
    synthetic set is generated there when missing.

    Raises DataError naming the folder (and the ``data synth`` command for a synthetic config) when it does
    not exist.
    """
    root = Path(data_cfg.root).expanduser()
    syn = data_cfg.synthetic
    if allow_generate and syn is not None and syn.generate:
        generate_synthetic_set(data_cfg)
    if not root.is_dir():
        hint = "" if syn is None else (
            f"; this config is for the built-in synthetic set: make it with '{synth_command_for(data_cfg)}' "
            "(or train with --set data.synthetic.generate=true), or point data.root at your data")
        raise DataError(f"data.root: data folder {root} does not exist{hint}")
    return root


def build_train_dataset(cfg: ExperimentConfig) -> tuple[DatasetInfo, SeededSamples]:
    """The scribble-labelled training set with the paper's augmentation (scale, rotate, flip, blur, crop).

    Indexed by ``(index, sample_seed)`` (see :class:`SeededSamples`); ``.base`` is the plain
    :class:`ScribbleDataset`.
    """
    data_cfg = cfg.data
    root = ensure_data_root(data_cfg, allow_generate=True)
    info, samples = open_dataset(root, layout=data_cfg.layout, split=data_cfg.train_split)
    transform = PerSampleSeededTransform(build_train_transform(
        crop_size=data_cfg.crop_size, scale=data_cfg.scale_range, rotate=data_cfg.rotation_degrees,
        hflip=data_cfg.hflip, blur=data_cfg.blur, ignore_index=info.ignore_index,
    ))
    return info, SeededSamples(ScribbleDataset(samples, info, transform=transform), transform)


def build_eval_dataset(cfg: ExperimentConfig, split: str | None = None) -> tuple[DatasetInfo, EvalDataset]:
    """The densely labelled evaluation set of ``split`` (default ``data.val_split``).

    Images without a dense mask are a DataError naming the CLI way out (``--set
    eval.require_dense_gt=false`` scores them against their scribbles).
    """
    data_cfg = cfg.data
    root = ensure_data_root(data_cfg)
    name = split or data_cfg.val_split
    info, samples = open_dataset(root, layout=data_cfg.layout, split=name)
    without = [sample for sample in samples if sample.mask is None]
    if without and cfg.eval.require_dense_gt:
        raise DataError(
            f"{len(without)} of {len(samples)} image(s) of split '{name}' in {root} have no dense ground truth "
            f"(e.g. {without[0].image}); add their masks (folder layout: masks/{name}/, VOC: SegmentationClassAug/ "
            "or SegmentationClass/), or score them against their scribbles with --set eval.require_dense_gt=false")
    return info, EvalDataset(samples, info, transform=build_eval_transform(),
                             require_dense_gt=cfg.eval.require_dense_gt)


def build_datasets(cfg: ExperimentConfig) -> tuple[DatasetInfo, SeededSamples, EvalDataset | None]:
    """(info, train set, validation set) from ``cfg.data``; the validation set only when training
    validates (``train.val_interval > 0`` or ``train.val_epochs``), so a data set without a validation split
    trains. With ``train.val_if_present`` a missing or mask-less validation split gives ``None`` too."""
    info, train = build_train_dataset(cfg)
    if not cfg.train.validates():
        return info, train, None
    try:
        _, val = build_eval_dataset(cfg)
    except DataError as err:
        if cfg.train.val_if_present:
            return info, train, None
        raise DataError(f"{err} (train.val_interval={cfg.train.val_interval} validates on data.val_split="
                        f"'{cfg.data.val_split}'; add that split or train with --set train.val_interval=0)") from err
    return info, train, val
