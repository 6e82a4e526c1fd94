"""Checkpoints: method weights as safetensors (+ config in the metadata), training state beside them.

``<name>.safetensors``
    Every parameter and buffer of the method (e.g. PFA's prototype bank) and, in the safetensors
    metadata, the resolved config (``scribbleseg_config``, JSON) and a meta record (``scribbleseg_meta``:
    number of classes, class names, palette, the model descriptor, step, metrics). One file is enough to
    rebuild the model and predict.
``<name>.state.pt``
    What ``--resume`` needs besides the weights: optimiser state, schedule step, RNG states (torch, numpy,
    python, cuda), the count of skipped steps and the best metric so far. Only tensors, numbers, strings
    and plain containers, read back with ``torch.load(..., weights_only=True)``: nothing is unpickled.

Both files are written atomically (the ``last`` pair of a run as one consistent save:
:mod:`scribbleseg.engine.runs.last_checkpoint`). A model with NaN / inf tensors is never written. Any problem
reading them raises :class:`CheckpointError` naming the file and, for an incompatible checkpoint, what
differs; a load also refuses NaN / inf tensors and a header whose config does not describe the stored
tensor shapes (checked on the ``meta`` device before anything is allocated). Checkpoints of format 1 (scribbleseg 0.1) load:
their config is migrated first (:mod:`scribbleseg.engine.config.migration`).
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load as safetensors_load
from safetensors.torch import save as safetensors_save

from scribbleseg.atomic_files import atomic_write_bytes
from scribbleseg.engine.config.loading import config_from_mapping
from scribbleseg.engine.config.migration import migrate_format_1
from scribbleseg.engine.config.schema import ExperimentConfig
from scribbleseg.engine.runtime.distributed import unwrap_model
from scribbleseg.engine.build.method_factory import build_method, model_descriptor
from scribbleseg.data.voc_classes import voc_color
from scribbleseg.errors import CheckpointError, ConfigError
from scribbleseg.methods import SegmentationMethod
from scribbleseg.models.weights.state_dict_check import describe_mismatch

CONFIG_KEY = "scribbleseg_config"
META_KEY = "scribbleseg_meta"
FORMAT_KEY = "scribbleseg_format"
FORMAT_VERSION = "2"


NAMES_SHOWN = 5


def non_finite_tensors(tensors: dict[str, torch.Tensor]) -> list[str]:
    """Names of the floating-point tensors holding a NaN or an infinity (one reduction per tensor)."""
    return [name for name, value in tensors.items()
            if value.is_floating_point() and not bool(torch.isfinite(value).all())]


def describe_names(names: list[str]) -> str:
    """``"a, b, c, d, e and 3 more"``."""
    more = f" and {len(names) - NAMES_SHOWN} more" if len(names) > NAMES_SHOWN else ""
    return ", ".join(names[:NAMES_SHOWN]) + more


def checkpoint_payload(method: torch.nn.Module, cfg: ExperimentConfig, meta: dict[str, Any],
                       path: str | os.PathLike[str] = "checkpoint") -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """(tensors on the CPU, safetensors metadata) of a checkpoint of ``method``: what
    :func:`save_model_checkpoint` writes. ``num_classes`` and ``model`` (the descriptor) join ``meta``.

    Raises:
        CheckpointError: some tensor holds NaN / inf (named, with ``path``): such a file is never written.
    """
    model = unwrap_model(method)
    tensors = {name: value.detach().to("cpu").contiguous().clone()
               for name, value in model.state_dict().items()}
    bad = non_finite_tensors(tensors)
    if bad:
        raise CheckpointError(f"refusing to write {path}: {len(bad)} tensor(s) of the model hold non-finite "
                              f"values (NaN/inf): {describe_names(bad)}; the training diverged (lower optim.lr or "
                              "set optim.grad_clip)")
    record = dict(meta)
    record.setdefault("num_classes", int(getattr(model, "num_classes")))
    record["model"] = model_descriptor(cfg)
    return tensors, {CONFIG_KEY: cfg.to_json(), META_KEY: json.dumps(record), FORMAT_KEY: FORMAT_VERSION}


def save_model_checkpoint(path: str | os.PathLike[str], method: torch.nn.Module, cfg: ExperimentConfig,
                          meta: dict[str, Any]) -> Path:
    """Write the method's weights + config + ``meta`` to ``path`` (.safetensors) atomically.

    ``meta`` must be JSON-serialisable; ``num_classes`` and ``model`` (the descriptor) are added. A model
    with NaN / inf tensors is refused (:class:`CheckpointError` naming them).
    """
    tensors, metadata = checkpoint_payload(method, cfg, meta, path)
    return atomic_write_bytes(path, safetensors_save(tensors, metadata=metadata))


def _stored_config(metadata: dict[str, str], file: Path) -> ExperimentConfig:
    try:
        raw = json.loads(metadata[CONFIG_KEY])
    except json.JSONDecodeError as err:
        raise CheckpointError(f"{file}: stored config is not valid JSON ({err})") from err
    if not isinstance(raw, dict):
        raise CheckpointError(f"{file}: stored config is not a mapping")
    if metadata.get(FORMAT_KEY, "1") == "1":
        raw = migrate_format_1(raw)
    return config_from_mapping(raw, where=str(file))


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
    return header_from_metadata(metadata, file)


def header_from_metadata(metadata: dict[str, str], file: Path) -> tuple[ExperimentConfig, dict[str, Any]]:
    """(config, meta) from a checkpoint's safetensors metadata (CheckpointError naming ``file``)."""
    if CONFIG_KEY not in metadata or META_KEY not in metadata:
        raise CheckpointError(f"{file} has no scribbleseg config/meta: not a checkpoint written by scribbleseg")
    try:
        cfg = _stored_config(metadata, file)
        meta = json.loads(metadata[META_KEY])
    except (ConfigError, json.JSONDecodeError) as err:
        raise CheckpointError(f"{file}: stored config/meta is unreadable ({err})") from err
    if not isinstance(meta, dict) or not isinstance(meta.get("num_classes"), int) or meta["num_classes"] < 1:
        raise CheckpointError(f"{file}: meta has no valid num_classes")
    return cfg, meta


def _compatibility_problems(cfg: ExperimentConfig, meta: dict[str, Any], expect: ExperimentConfig | None,
                            num_classes: int | None) -> list[str]:
    """Human-readable differences between a checkpoint and what the caller expects."""
    problems = []
    if num_classes is not None and int(meta["num_classes"]) != int(num_classes):
        problems.append(f"it has {meta['num_classes']} classes, the data set has {num_classes}")
    if expect is not None:
        have, want = model_descriptor(cfg), model_descriptor(expect)
        for key in dict.fromkeys([*have, *want]):
            problems += _differences(key, have.get(key), want.get(key))
    return problems


def _differences(key: str, have: Any, want: Any) -> list[str]:
    """``its pfa.slots is 5, the config asks for 10`` for each leaf that differs (the config's key names,
    YAML-style values; a section one side lacks is named once)."""
    if have == want:
        return []
    if isinstance(have, dict) and isinstance(want, dict):
        if have.get("type") != want.get("type"):  # another kind of network: its fields do not compare
            return _differences(f"{key}.type", have.get("type"), want.get("type"))
        return [line for sub in dict.fromkeys([*have, *want])
                for line in _differences(f"{key}.{sub}", have.get(sub), want.get(sub))]
    if want is None:
        return [f"its {key} is {_shown(have)}, the config does not set it"]
    return [f"its {key} is {_shown(have)}, the config asks for {_shown(want)}"]


def _shown(value: Any) -> str:
    """A descriptor value as a user writes it in YAML (``not set`` for absent)."""
    if value is None:
        return "not set"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_shown(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_shown(item) for item in value) + "]"
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def require_compatible(file: Path, header: tuple[ExperimentConfig, dict[str, Any]],
                       expect: ExperimentConfig | None = None, num_classes: int | None = None) -> None:
    """CheckpointError naming ``file`` and what differs when its (config, meta) do not fit the request."""
    problems = _compatibility_problems(*header, expect, num_classes)
    if problems:
        raise CheckpointError(f"checkpoint {file} is incompatible: " + "; ".join(problems))


def check_checkpoint_compatible(path: str | os.PathLike[str], expect: ExperimentConfig | None = None,
                                num_classes: int | None = None) -> tuple[ExperimentConfig, dict[str, Any]]:
    """(config, meta) of ``path``; CheckpointError naming the file and what differs when incompatible."""
    file = Path(path)
    header = read_checkpoint_header(file)
    require_compatible(file, header, expect, num_classes)
    return header


def require_finite(tensors: dict[str, torch.Tensor], file: Path) -> dict[str, torch.Tensor]:
    """``tensors``, or CheckpointError naming ``file`` and the tensors that hold NaN / inf."""
    bad = non_finite_tensors(tensors)
    if bad:
        raise CheckpointError(f"{file}: {len(bad)} tensor(s) hold non-finite values (NaN/inf): "
                              f"{describe_names(bad)}; the run that wrote it diverged, use an earlier checkpoint")
    return tensors


def read_checkpoint_tensors(path: str | os.PathLike[str], device: str | torch.device = "cpu") -> dict[str, torch.Tensor]:
    """Every tensor of a checkpoint file (CheckpointError naming it when corrupt, truncated, or when a
    tensor holds NaN / inf)."""
    file = Path(path)
    try:
        tensors = safetensors_load(file.read_bytes())
    except (SafetensorError, OSError, ValueError) as err:
        raise CheckpointError(f"{file} is corrupt or truncated ({err})") from err
    return {name: value.to(device) for name, value in require_finite(tensors, file).items()}


def load_model_checkpoint(path: str | os.PathLike[str], map_location: str | torch.device = "cpu",
                          expect: ExperimentConfig | None = None, num_classes: int | None = None,
                          ) -> tuple[SegmentationMethod, ExperimentConfig, dict[str, Any]]:
    """Rebuild the method stored in ``path`` and load its weights.

    Args:
        path: a ``.safetensors`` file written by :func:`save_model_checkpoint`.
        map_location: device the model is moved to.
        expect: if given, the checkpoint must match its method, backbone, decoder and method sizes.
        num_classes: if given, the checkpoint must have this many classes.

    Returns:
        (method in eval mode, stored config, stored meta).

    Raises:
        CheckpointError: missing / corrupt file, NaN / inf tensors, or incompatible with ``expect`` /
            ``num_classes`` (the message names the file and what differs).
    """
    file = Path(path)
    cfg, meta = check_checkpoint_compatible(file, expect, num_classes)
    require_header_fits_tensors(file, cfg, meta)  # before anything is allocated
    tensors = read_checkpoint_tensors(file)
    method = build_method(cfg, int(meta["num_classes"]), load_pretrained=False,
                          ignore_index=int(meta.get("ignore_index", 255)))
    load_weights_into(method, tensors, file)
    return method.to(map_location).eval(), cfg, meta


def require_header_fits_tensors(file: Path, cfg: ExperimentConfig, meta: dict[str, Any]) -> None:
    """CheckpointError unless the model that the stored config and class count describe has exactly the
    tensor names and shapes in the file's header.

    The model is built on the ``meta`` device (shapes only, no memory), so an edited header (a huge
    ``embed_dim`` or class count) is an error instead of an attempt to allocate its weights.
    """
    with torch.device("meta"):
        skeleton = build_method(cfg, int(meta["num_classes"]), load_pretrained=False,
                                ignore_index=int(meta.get("ignore_index", 255)))
    try:
        with safe_open(str(file), framework="pt") as handle:
            stored = {name: torch.empty(handle.get_slice(name).get_shape(), device="meta") for name in handle.keys()}
    except (SafetensorError, OSError, ValueError) as err:
        raise CheckpointError(f"{file} is corrupt or truncated ({err})") from err
    problem = describe_mismatch(skeleton.state_dict(), stored)
    if problem:
        raise CheckpointError(f"checkpoint {file} does not fit the model its own header describes (edited or "
                              f"damaged header?): {problem}")


def load_weights_into(model: torch.nn.Module, tensors: dict[str, torch.Tensor], file: Path) -> None:
    """``model.load_state_dict(tensors)`` with a CheckpointError that lists missing / odd / misshaped keys."""
    problem = describe_mismatch(model.state_dict(), tensors)
    if problem:
        raise CheckpointError(f"checkpoint {file} does not fit the model: {problem}")
    model.load_state_dict(tensors, strict=True)


def save_training_state(path: str | os.PathLike[str], state: dict[str, Any]) -> Path:
    """Write the resume state atomically: only plain containers of tensors / numbers / strings, so that
    the file reads back with ``torch.load(..., weights_only=True)``."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return atomic_write_bytes(path, buffer.getvalue())


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


def checkpoint_palette(meta: dict, num_classes: int) -> list[tuple[int, int, int]]:
    """The palette stored in the checkpoint meta, else VOC-style colours for ``num_classes`` classes."""
    stored = meta.get("palette")
    if isinstance(stored, list) and len(stored) >= num_classes:
        return [tuple(int(c) for c in colour) for colour in stored]
    return [voc_color(index) for index in range(num_classes)]


def untrained_head_warning(method: SegmentationMethod, head: str, meta: dict[str, Any]) -> str | None:
    """Why ``head`` of a checkpoint (``meta`` from its header) never trained, or ``None``: a line for
    ``export`` / ``predict`` (a run stopped inside PFA's warm-up has an untrained ``local`` head)."""
    step = meta.get("step")
    if not isinstance(step, int):
        return None
    why = method.untrained_heads(step).get(head)
    return None if why is None else f"head '{head}' of this checkpoint is untrained ({why}); its predictions are noise"
