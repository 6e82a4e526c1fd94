"""The run's length and intervals in iterations, from a config that may give them in epochs.

``train.epochs`` x full batches per epoch is the run's length (else ``train.max_iters``);
``train.val_epochs`` / ``train.checkpoint_epochs`` become ``val_interval`` / ``checkpoint_interval``; a
run without a validation set (``train.val_if_present`` and no ``masks/<val_split>``) validates never; the
method's own schedule is fitted to the length (:func:`~scribbleseg.engine.build.method_factory.settings_for_run`:
PFA's ``warmup_fraction``, and its warm-up must end before the run does). The resolved values go into the
run's ``config.yaml``; the ``*_epochs`` keys stay there, so a resumed run resolves them again to the same
numbers.
"""

from __future__ import annotations

from scribbleseg.engine.build.method_factory import settings_for_run
from scribbleseg.engine.config.schema import ExperimentConfig


def _epochs_to_iterations(epochs: float | None, iterations_per_epoch: int, fallback: int) -> int:
    return fallback if epochs is None else max(1, int(round(epochs * iterations_per_epoch)))


def resolve_run(cfg: ExperimentConfig, iterations_per_epoch: int,
                has_val_set: bool) -> tuple[ExperimentConfig, int, str | None]:
    """(config with concrete intervals and method schedule, total iterations, a note for the user or None);
    see the module docstring."""
    train = cfg.train
    if train.max_iters is not None:
        total, length = train.max_iters, f"train.max_iters={train.max_iters}"
    else:
        total = int(train.epochs) * iterations_per_epoch  # type: ignore[arg-type]
        length = f"train.epochs={train.epochs} x {iterations_per_epoch} iterations per epoch"
    resolved = settings_for_run(cfg, total, length).model_copy(deep=True)
    resolved.train.val_interval = _epochs_to_iterations(train.val_epochs, iterations_per_epoch, train.val_interval) \
        if has_val_set else 0
    resolved.train.checkpoint_interval = _epochs_to_iterations(train.checkpoint_epochs, iterations_per_epoch,
                                                               train.checkpoint_interval)
    note = None
    if train.validates() and not has_val_set:
        note = (f"no validation: split '{cfg.data.val_split}' of {cfg.data.root} has no images with dense masks "
                f"(train.val_if_present); training without it, so no best.safetensors is written")
    return resolved, total, note
