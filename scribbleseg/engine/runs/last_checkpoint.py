"""The ``last`` checkpoint pair of a run: written as one consistent save, checked and repaired on resume.

``checkpoints/last.safetensors`` (weights + config + meta: what ``predict`` / ``eval`` read) and
``checkpoints/last.state.pt`` (what ``--resume`` needs) come from one save:

* both carry the same random ``save_id`` (in the safetensors meta and in the state);
* the state also holds a copy of the weights (``model``) and the safetensors metadata
  (``checkpoint_metadata``), so it alone is a complete resume point and the weights file can be rebuilt
  from it byte for byte;
* both are written to temporary files first and renamed state first, weights second
  (:func:`scribbleseg.atomic_files.atomic_write_files`): a failed write (disk full) changes neither.

A process killed between the two renames leaves the new state beside the previous weights. On resume the
state is read first; when the weights file is missing, unreadable or from another save it is rewritten
from the state and the caller gets a message saying so. Older state files (no ``save_id``, no weights
inside) resume only when their step equals the weights' step; otherwise resume is refused with a message
naming both steps.
"""

from __future__ import annotations

import io
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save as safetensors_save

from scribbleseg.atomic_files import atomic_write_bytes, atomic_write_files
from scribbleseg.engine.runs.checkpoint import (
    check_checkpoint_compatible,
    checkpoint_payload,
    header_from_metadata,
    load_training_state,
    read_checkpoint_header,
    read_checkpoint_tensors,
    require_compatible,
    require_finite,
)
from scribbleseg.engine.config.schema import ExperimentConfig
from scribbleseg.engine.runs.layout import state_path_for
from scribbleseg.errors import CheckpointError

SAVE_ID_KEY = "save_id"
MODEL_KEY = "model"
METADATA_KEY = "checkpoint_metadata"


@dataclass
class ResumePoint:
    """What ``--resume`` continues from.

    Attributes:
        tensors: every parameter and buffer of the method (``state_dict`` names).
        state: optimiser, scaler, RNG states, ``step``, ``skipped_nonfinite``, ``best_value``, ...
        repaired: a message when ``last.safetensors`` was rewritten from the state, else ``None``.
    """

    tensors: dict[str, torch.Tensor]
    state: dict[str, Any]
    repaired: str | None = None

    @property
    def step(self) -> int:
        return int(self.state["step"])


def save_last_checkpoint(path: str | Path, method: torch.nn.Module, cfg: ExperimentConfig, meta: dict[str, Any],
                         state: dict[str, Any]) -> Path:
    """Write ``path`` (weights + config + ``meta``) and its ``.state.pt`` (``state`` + a copy of the weights)
    as one save with a shared random save id (see the module docstring). Returns ``path``."""
    save_id = secrets.token_hex(8)
    weights = Path(path)
    tensors, metadata = checkpoint_payload(method, cfg, {**meta, SAVE_ID_KEY: save_id}, weights)
    buffer = io.BytesIO()
    torch.save({**state, SAVE_ID_KEY: save_id, MODEL_KEY: tensors, METADATA_KEY: metadata}, buffer)
    atomic_write_files([(state_path_for(weights), buffer.getvalue()),
                        (weights, safetensors_save(tensors, metadata=metadata))])
    return weights


def _stored_save_id(path: Path) -> str | None:
    """The save id in the header of ``path``; ``None`` when it has none or cannot be read."""
    try:
        return read_checkpoint_header(path)[1].get(SAVE_ID_KEY)
    except CheckpointError:
        return None


def load_resume_point(path: str | Path, expect: ExperimentConfig | None = None, num_classes: int | None = None,
                      repair: bool = True) -> ResumePoint:
    """The resume point of the ``last`` pair at ``path`` (``.../last.safetensors``).

    Args:
        path: the weights file; its state file is ``state_path_for(path)``.
        expect, num_classes: the run's config and class count, checked against the stored ones.
        repair: rewrite ``path`` from the state when it is missing or from another save (rank 0 only).

    Raises:
        CheckpointError: missing / corrupt state, incompatible with ``expect`` / ``num_classes``, or an
            old-format pair whose two files are from different saves.
    """
    weights = Path(path)
    state_file = state_path_for(weights)
    state = load_training_state(state_file)
    if MODEL_KEY not in state:
        return _load_old_format_pair(weights, state_file, state, expect, num_classes)
    metadata = state.get(METADATA_KEY)
    if not isinstance(metadata, dict) or not isinstance(state[MODEL_KEY], dict):
        raise CheckpointError(f"{state_file} is not a scribbleseg training state (bad '{METADATA_KEY}')")
    require_compatible(state_file, header_from_metadata(metadata, state_file), expect, num_classes)
    tensors = require_finite(dict(state.pop(MODEL_KEY)), state_file)
    repaired = None
    if repair and _stored_save_id(weights) != state.get(SAVE_ID_KEY):
        why = "is missing" if not weights.is_file() else "is from another save than the training state"
        atomic_write_bytes(weights, safetensors_save(tensors, metadata=metadata))
        repaired = (f"{weights} {why} (the previous run was stopped while saving); rewritten from "
                    f"{state_file.name} (step {int(state['step'])})")
    return ResumePoint(tensors, state, repaired)


def _load_old_format_pair(weights: Path, state_file: Path, state: dict[str, Any], expect: ExperimentConfig | None,
                          num_classes: int | None) -> ResumePoint:
    """A pair written before save ids: usable only when both files are of the same step."""
    _, meta = check_checkpoint_compatible(weights, expect, num_classes)
    if meta.get("step") != state["step"]:
        raise CheckpointError(
            f"{weights} (step {meta.get('step')}) and {state_file} (step {state['step']}) are from different "
            "saves (the run was stopped while saving); they cannot be resumed exactly. Start afresh with "
            "--overwrite, or move the folder away and train into a new --work-dir")
    return ResumePoint(read_checkpoint_tensors(weights), state)
