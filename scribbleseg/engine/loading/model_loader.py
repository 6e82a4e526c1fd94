"""``load_model(path, device=...)``: the one loader of a trained model, for every command and the API.

* a checkpoint (``.safetensors``, :func:`~scribbleseg.engine.runs.checkpoint.load_model_checkpoint`) becomes a
  :class:`CheckpointModel`: the rebuilt method behind the inference protocol (a
  :class:`~scribbleseg.engine.inference.model.MethodModel`) with its class names and palette, plus the
  stored ``config`` and ``meta``;
* an exported model (``.onnx``, recognised by its suffix) becomes an
  :class:`~scribbleseg.deploy.onnx.runtime_model.OnnxRuntimeModel` (ONNX Runtime).

Both implement :class:`~scribbleseg.engine.inference.model.InferenceModel`, so ``predict``, ``eval`` and
the Python API run the same code on either.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from scribbleseg.deploy.onnx.runtime_model import OnnxRuntimeModel, is_onnx_model
from scribbleseg.engine.inference.model import InferenceModel, MethodModel
from scribbleseg.engine.runs.checkpoint import checkpoint_palette, load_model_checkpoint
from scribbleseg.engine.runtime.devices import resolve_device
from scribbleseg.errors import CheckpointError, ConfigError
from scribbleseg.methods import SegmentationMethod

__all__ = ["CheckpointModel", "load_model"]


class CheckpointModel(MethodModel):
    """A checkpoint's method behind the inference protocol, with what the checkpoint stores.

    Attributes:
        method: the rebuilt :class:`~scribbleseg.methods.SegmentationMethod` (in eval mode).
        config: the stored (resolved) :class:`~scribbleseg.engine.config.schema.ExperimentConfig`.
        meta: the stored meta record (step, class names, palette, metrics, ...).
        path: the checkpoint file.
    """

    def __init__(self, method: SegmentationMethod, config: Any, meta: dict[str, Any], path: Path) -> None:
        super().__init__(method, meta.get("class_names"), checkpoint_palette(meta, int(method.num_classes)))
        self.config, self.meta, self.path = config, meta, path


def load_model(path: str | os.PathLike[str], device: str | torch.device = "cpu", *, expect: Any = None,
               num_classes: int | None = None, amp: bool = False) -> InferenceModel:
    """The trained model in ``path`` (a ``.safetensors`` checkpoint or an exported ``.onnx`` model).

    Args:
        path: the file.
        device: ``auto`` | ``cpu`` | ``cuda`` | ``cuda:N`` (a checkpoint is loaded there; an ONNX model
            picks its ONNX Runtime provider from it and takes CPU tensors).
        expect: a config the checkpoint must match (method, backbone, decoder, sizes); not compared for
            an ``.onnx`` model, whose class count is still checked.
        num_classes: if given, the model must have this many classes.
        amp: the caller will autocast the network; refused for an ``.onnx`` model (it runs in the
            precision it was exported in).

    Raises:
        CheckpointError: missing / corrupt / incompatible file; ConfigError: ``amp`` with an ONNX model,
        a bad device; MissingExtraError: an ``.onnx`` model without onnxruntime installed.
    """
    file = Path(path)
    if is_onnx_model(file):
        if amp:
            raise ConfigError("--amp applies to PyTorch checkpoints; an ONNX model runs in the precision it was "
                              "exported in")
        model = OnnxRuntimeModel(file, device=str(device))
        if num_classes is not None and model.num_classes != num_classes:
            raise CheckpointError(f"{file} predicts {model.num_classes} classes, {num_classes} are needed")
        return model
    target = resolve_device(device) if isinstance(device, str) else device
    method, config, meta = load_model_checkpoint(file, map_location=target, expect=expect, num_classes=num_classes)
    return CheckpointModel(method, config, meta, file)
