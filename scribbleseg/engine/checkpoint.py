"""Checkpoints: model weights as safetensors (+ config in the metadata), training state beside them.

``<name>.safetensors``
    Every parameter and buffer of the :class:`PFASegmentor` (the prototype bank included) and, in the
    safetensors metadata, the resolved config (``scribbleseg_config``, JSON) and a small meta record
    (``scribbleseg_meta``: number of classes, class names, backbone, step, metrics). One file is enough
    to rebuild the model and predict.
``<name>.state.pt``
    What ``--resume`` needs besides the weights: optimiser state, schedule step, RNG states (torch, numpy,
    python, cuda), the count of skipped steps and the best metric so far. Only tensors, numbers, strings
    and plain containers, read back with ``torch.load(..., weights_only=True)``: nothing is unpickled.

Both files are written atomically. Any problem reading them raises :class:`CheckpointError` naming
the file and, for an incompatible checkpoint, what differs.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load as safetensors_load
from safetensors.torch import save as safetensors_save

from scribbleseg.engine.atomic_io import atomic_save, atomic_write_bytes
from scribbleseg.engine.config import ExperimentConfig, config_from_json
from scribbleseg.engine.model_factory import backbone_label, build_segmentor
from scribbleseg.errors import CheckpointError, ConfigError

CONFIG_KEY = "scribbleseg_config"
META_KEY = "scribbleseg_meta"
FORMAT_KEY = "scribbleseg_format"
FORMAT_VERSION = "1"


def unwrap_model(module: torch.nn.Module) -> torch.nn.Module:
    """The bare model inside a DistributedDataParallel wrapper (or the module itself)."""
    return getattr(module, "module", module)


def state_path_for(weights_path: str | os.PathLike[str]) -> Path:
    """``runs/x/checkpoints/last.safetensors`` -> ``runs/x/checkpoints/last.state.pt``."""
    path = Path(weights_path)
    return path.with_name(path.name.removesuffix(".safetensors") + ".state.pt")


def save_model_checkpoint(path: str | os.PathLike[str], segmentor: torch.nn.Module,
                          cfg: ExperimentConfig, meta: dict[str, Any]) -> Path:
    """Write the segmentor's weights + config + ``meta`` to ``path`` (.safetensors) atomically.

    ``meta`` must be JSON-serialisable; ``num_classes`` and ``backbone`` are added when absent.
    """
    model = unwrap_model(segmentor)
    tensors = {name: value.detach().to("cpu").contiguous().clone()
               for name, value in model.state_dict().items()}
    record = dict(meta)
    record.setdefault("num_classes", int(getattr(model, "num_classes")))
    record.setdefault("backbone", backbone_label(cfg.model))
    metadata = {CONFIG_KEY: cfg.to_json(), META_KEY: json.dumps(record), FORMAT_KEY: FORMAT_VERSION}
    return atomic_write_bytes(path, safetensors_save(tensors, metadata=metadata))


def read_checkpoint_header(path: str | os.PathLike[str]) -> tuple[ExperimentConfig, dict[str, Any]]:
    """(config, meta) stored in a checkpoint, without loading the weights."""
    file = Path(path)
    if not file.is_file():
        raise CheckpointError(f"checkpoint not found: {file}")
    try:
        with safe_open(str(file), framework="pt") as handle:
            metadata = handle.metadata() or {}
    except (SafetensorError, OSError, ValueError) as err:
        raise CheckpointError(f"{file} is not a readable safetensors checkpoint ({err})") from err
    if CONFIG_KEY not in metadata or META_KEY not in metadata:
        raise CheckpointError(f"{file} has no scribbleseg config/meta: not a checkpoint written by scribbleseg")
    try:
        cfg = config_from_json(metadata[CONFIG_KEY], where=str(file))
        meta = json.loads(metadata[META_KEY])
    except (ConfigError, json.JSONDecodeError) as err:
        raise CheckpointError(f"{file}: stored config/meta is unreadable ({err})") from err
    return cfg, meta


def _compatibility_problems(cfg: ExperimentConfig, meta: dict[str, Any], expect: ExperimentConfig | None,
                            num_classes: int | None) -> list[str]:
    """Human-readable differences between a checkpoint and what the caller expects."""
    problems = []
    if num_classes is not None and int(meta["num_classes"]) != int(num_classes):
        problems.append(f"it has {meta['num_classes']} classes, the data set has {num_classes}")
    if expect is not None:
        have, want = backbone_label(cfg.model), backbone_label(expect.model)
        if have != want:
            problems.append(f"its backbone is {have}, the config asks for {want}")
        if cfg.model.embed_dim != expect.model.embed_dim:
            problems.append(f"its decoder embed_dim is {cfg.model.embed_dim}, the config asks for "
                            f"{expect.model.embed_dim}")
        if cfg.pfa.slots != expect.pfa.slots:
            problems.append(f"its prototype bank has {cfg.pfa.slots} slots per class, the config asks "
                            f"for {expect.pfa.slots}")
    return problems


def check_checkpoint_compatible(path: str | os.PathLike[str], expect: ExperimentConfig | None = None,
                                num_classes: int | None = None) -> tuple[ExperimentConfig, dict[str, Any]]:
    """(config, meta) of ``path``; CheckpointError naming the file and what differs when incompatible."""
    file = Path(path)
    cfg, meta = read_checkpoint_header(file)
    if "num_classes" not in meta:
        raise CheckpointError(f"{file}: meta has no num_classes")
    problems = _compatibility_problems(cfg, meta, expect, num_classes)
    if problems:
        raise CheckpointError(f"checkpoint {file} is incompatible: " + "; ".join(problems))
    return cfg, meta


def load_model_checkpoint(path: str | os.PathLike[str], map_location: str | torch.device = "cpu",
                          expect: ExperimentConfig | None = None, num_classes: int | None = None,
                          ) -> tuple[torch.nn.Module, ExperimentConfig, dict[str, Any]]:
    """Rebuild the segmentor stored in ``path`` and load its weights.

    Args:
        path: a ``.safetensors`` file written by :func:`save_model_checkpoint`.
        map_location: device the model is moved to.
        expect: if given, the checkpoint must match its backbone, decoder width and bank size.
        num_classes: if given, the checkpoint must have this many classes.

    Returns:
        (segmentor in eval mode, stored config, stored meta).

    Raises:
        CheckpointError: missing / corrupt file, or incompatible with ``expect`` / ``num_classes``
            (the message names the file and what differs).
    """
    file = Path(path)
    cfg, meta = check_checkpoint_compatible(file, expect, num_classes)
    try:
        tensors = safetensors_load(file.read_bytes())
    except (SafetensorError, OSError, ValueError) as err:
        raise CheckpointError(f"{file} is corrupt or truncated ({err})") from err
    segmentor = build_segmentor(cfg, int(meta["num_classes"]), load_pretrained=False)
    load_weights_into(segmentor, tensors, file)
    return segmentor.to(map_location).eval(), cfg, meta


def load_weights_into(model: torch.nn.Module, tensors: dict[str, torch.Tensor], file: Path) -> None:
    """``model.load_state_dict(tensors)`` with a CheckpointError that lists missing / odd / misshaped keys."""
    own = model.state_dict()
    missing = sorted(set(own) - set(tensors))
    unexpected = sorted(set(tensors) - set(own))
    misshaped = [f"{k} {tuple(tensors[k].shape)} vs {tuple(own[k].shape)}"
                 for k in own if k in tensors and tensors[k].shape != own[k].shape]
    if missing or unexpected or misshaped:
        parts = []
        if missing:
            parts.append(f"missing {len(missing)} tensors (e.g. {', '.join(missing[:3])})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected tensors (e.g. {', '.join(unexpected[:3])})")
        if misshaped:
            parts.append(f"shape mismatch (checkpoint vs model): {'; '.join(misshaped[:3])}")
        raise CheckpointError(f"checkpoint {file} does not fit the model: " + "; ".join(parts))
    model.load_state_dict(tensors, strict=True)


def save_training_state(path: str | os.PathLike[str], state: dict[str, Any]) -> Path:
    """Write the resume state (plain containers of tensors / numbers / strings) atomically."""
    return atomic_save(state, path)


def load_training_state(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a ``.state.pt`` written by :func:`save_training_state` (``weights_only=True``)."""
    file = Path(path)
    if not file.is_file():
        raise CheckpointError(f"training state not found: {file} (needed by --resume)")
    try:
        state = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises several types for corrupt / unsafe files
        raise CheckpointError(f"{file} is corrupt or not a scribbleseg training state ({err})") from err
    if not isinstance(state, dict) or "step" not in state:
        raise CheckpointError(f"{file} is not a scribbleseg training state (no 'step')")
    return state
