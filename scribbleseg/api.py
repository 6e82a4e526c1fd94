"""scribbleseg's Python API: train from a config, load a model, predict an image array, evaluate a data set.

An application on top of the engine, like the command line (whose ``eval`` and ``predict`` commands call
these functions): nothing below it imports it. Every function raises
:class:`scribbleseg.errors.ScribblesegError` subclasses for bad input, as the commands do.

>>> from scribbleseg import api
>>> result = api.train("configs/voc_pfa_mit_b1.yaml", work_dir="runs/pfa", overrides=["train.max_iters=100"])
>>> model = api.load_model(result.last_checkpoint)            # or an exported model.onnx
>>> labels = api.predict(model, rgb).labels                   # rgb: [H, W, 3] uint8 -> [H, W] class ids
>>> report = api.evaluate(model, "configs/voc_pfa_mit_b1.yaml")  # head -> EvalResult (mIoU, per class)

* :func:`train`: :func:`~scribbleseg.engine.training.trainer.train` of a config file, mapping or
  :class:`~scribbleseg.engine.config.schema.ExperimentConfig` (``overrides`` as ``--set``).
* :func:`load_model`: a checkpoint (``.safetensors``) or an exported ``.onnx`` model behind the inference
  protocol :class:`~scribbleseg.engine.inference.model.InferenceModel` (``heads()``, ``infer()``,
  ``num_classes``, ``device``, ``class_names``, ``palette``, ``default_head``, ``class_source()``).
* :func:`predict`: one ``[H, W, 3]`` uint8 RGB array -> :class:`Prediction` (``labels [H, W]`` uint8 /
  int32 class ids, optionally ``probabilities [K, H, W]`` float32), whole or tile by tile.
* :func:`predict_files` (``scribbleseg predict``): image files -> label PNGs, overlays, probability maps.
* :func:`evaluate` (``scribbleseg eval``): mIoU per head against dense ground truth of a data set given by
  a config (file, mapping or object) or a data folder.
* :func:`inference_settings`: the test-time options (heads, class source spelling, ``ms_flip``, ``amp``,
  tiling, batch) as the one :class:`~scribbleseg.engine.inference.settings.InferenceSettings`.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch
from torch import Tensor

from scribbleseg.engine.evaluation.eval_settings import eval_settings
from scribbleseg.engine.evaluation.evaluate import evaluate_class_sources
from scribbleseg.engine.evaluation.evaluate import evaluate as _evaluate
from scribbleseg.engine.evaluation.results import EvalReport
from scribbleseg.engine.inference.band_sinks import LabelSink
from scribbleseg.engine.inference.dispatch import infer_images
from scribbleseg.engine.inference.model import InferenceModel
from scribbleseg.engine.inference.probabilities import ImageFacts, resolve_heads
from scribbleseg.engine.inference.settings import InferenceSettings
from scribbleseg.engine.inference.tile_sources import RGBTiles
from scribbleseg.engine.inference.windows import SlideSettings
from scribbleseg.engine.loading.model_loader import CheckpointModel
from scribbleseg.engine.loading.model_loader import load_model as _load_model
from scribbleseg.engine.prediction.predict_files import (
    PredictionOutputs,
    PredictionReport,
    predict_paths,
    prediction_head,
)
from scribbleseg.errors import ConfigError
from scribbleseg.methods.class_sources import ClassSource, parse_class_source

__all__ = ["CheckpointModel", "InferenceModel", "InferenceSettings", "Prediction", "PredictionOutputs", "evaluate",
           "evaluate_class_sources", "inference_settings", "load_model", "predict", "predict_files", "train"]


def train(config: "str | os.PathLike[str] | Mapping[str, Any] | Any",  # type: ignore[no-untyped-def]
          work_dir: str | os.PathLike[str] | None = None, *, overrides: Sequence[str] = (), resume: bool = False,
          overwrite: bool = False):
    """Train a config (a YAML path, a mapping of its sections, or an ``ExperimentConfig``) into ``work_dir``
    (default ``runs/<name>``); ``overrides``: ``["section.key=value", ...]`` as ``--set``. Returns the
    :class:`~scribbleseg.engine.training.trainer.TrainResult` (``last_checkpoint``, ``best_checkpoint``, ...)."""
    from scribbleseg.engine.training.trainer import train as run_training

    cfg = _config(config, overrides)
    return run_training(cfg, Path(work_dir) if work_dir is not None else Path("runs") / cfg.name,
                        resume=resume, overwrite=overwrite)


def load_model(path: str | os.PathLike[str], device: str | torch.device = "cpu", **options: Any) -> InferenceModel:
    """A trained model: a checkpoint (``.safetensors``, a :class:`CheckpointModel`) or an exported ``.onnx``
    model (run by ONNX Runtime), on ``device`` (``auto`` | ``cpu`` | ``cuda[:N]``). ``options``: ``expect``
    (a config the checkpoint must match), ``num_classes``, ``amp`` (see
    :func:`~scribbleseg.engine.loading.model_loader.load_model`)."""
    return _load_model(path, device, **options)


def inference_settings(model: InferenceModel, *, heads: Sequence[str] | None = None,
                       classes: str | ClassSource | None = None, ms_flip: bool = False, amp: bool = False,
                       slide: SlideSettings | None = None, batch_size: int = 1) -> InferenceSettings:
    """Test-time settings for ``model``: ``classes`` (a spelling such as ``"threshold:500"`` or a parsed
    source; ``None``: the model's default) checked against the model; ``slide``: whole / tiled inference
    (default ``auto``)."""
    asked = parse_class_source(classes, model.class_names) if isinstance(classes, str) else classes
    return InferenceSettings.build(heads=heads, class_source=model.class_source(asked), ms_flip=ms_flip, amp=amp,
                                   slide=slide, batch_size=batch_size)


@dataclass
class Prediction:
    """What :func:`predict` returns for one image.

    Attributes:
        labels: ``[H, W]`` class ids (uint8 for up to 256 classes, else int32).
        probabilities: ``[K, H, W]`` float32 softmax probabilities (only when asked for), else ``None``.
        head: the head that was run.
    """

    labels: np.ndarray
    probabilities: np.ndarray | None
    head: str


class _ProbabilitySink:
    """Collects the ``[K, H, W]`` probabilities of a tiled image (asked for by the caller: it is big)."""

    def __init__(self, num_classes: int, height: int, width: int) -> None:
        self.probabilities = torch.empty((num_classes, height, width))

    def write(self, top: int, probabilities: Tensor, labels: Tensor) -> None:
        self.probabilities[:, top:top + probabilities.shape[1]] = probabilities.to("cpu", torch.float32)


@torch.no_grad()
def predict(model: InferenceModel, image: np.ndarray, settings: InferenceSettings | None = None, *,
            probabilities: bool = False, name: str = "image") -> Prediction:
    """Label map of one RGB image ``[H, W, 3]`` uint8 (the same pixels a PNG / JPEG reader gives).

    ``settings``: from :func:`inference_settings` (default: the model's default head and class source,
    single scale, ``auto`` tiling); ``probabilities``: also return the ``[K, H, W]`` float32 map; ``name``:
    the image's name for a ``file:`` class source. The image is normalised as ``predict`` does, and
    predicted whole or tile by tile as the settings say.
    """
    settings = settings if settings is not None else inference_settings(model)
    head = prediction_head(model, settings)
    resolve_heads(model, [head])
    if settings.class_source.needs_ground_truth:
        raise ConfigError("class source 'oracle' needs ground-truth labels, which a plain image does not have")
    tiles = RGBTiles(np.asarray(image))
    run = replace(settings, heads=(head,))
    sinks: dict[str, Any] = {}

    def open_sinks(index: int, height: int, width: int):  # type: ignore[no-untyped-def]
        sinks["labels"] = LabelSink(height, width, model.num_classes)
        sinks["probabilities"] = _ProbabilitySink(model.num_classes, height, width) if probabilities else None
        return contextlib.nullcontext({head: [sink for sink in sinks.values() if sink is not None]})

    with model.eval_mode():
        (output,) = infer_images(model, [tiles], run, ImageFacts(names=[name]), open_sinks).images
    if output.slid:
        labels = sinks["labels"].labels
        probs = sinks["probabilities"].probabilities if probabilities else None
    else:
        probs = output.probabilities[head].float().cpu()  # type: ignore[index]
        labels = probs.argmax(dim=0).to(torch.uint8 if model.num_classes <= 256 else torch.int32)
    return Prediction(labels=labels.numpy(), probabilities=probs.numpy() if probabilities and probs is not None
                      else None, head=head)


def predict_files(model: InferenceModel, images: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
                  out_dir: str | os.PathLike[str], settings: InferenceSettings | None = None,
                  outputs: PredictionOutputs = PredictionOutputs(), **options: Any) -> PredictionReport:
    """``scribbleseg predict``: label PNGs (+ overlays, probability maps) of image files into ``out_dir``
    (``options``: ``progress``, ``skip_bad``; see
    :func:`~scribbleseg.engine.prediction.predict_files.predict_paths`)."""
    return predict_paths(model, images, out_dir, settings if settings is not None else inference_settings(model),
                         outputs, **options)


def evaluate(model: InferenceModel, data: "str | os.PathLike[str] | Mapping[str, Any] | Any", *,
             settings: InferenceSettings | None = None, split: str | None = None, progress: bool = False) -> EvalReport:
    """mIoU per head of ``model`` against the dense ground truth of a data set.

    ``data``: a config (YAML path, mapping or ``ExperimentConfig``) whose ``data`` section names the set, a
    data folder (a VOC / folder layout, ``data.root``), or a data set object (``scribbleseg eval``'s
    :func:`~scribbleseg.engine.build.data_factory.build_eval_dataset` output). ``settings``: default the
    config's ``eval`` section (heads, class source, ``ms_flip``, batch size) checked against the model.
    """
    dataset = data
    if isinstance(data, (str, os.PathLike, Mapping)) or (hasattr(data, "data") and hasattr(data, "eval")):
        from scribbleseg.engine.build.data_factory import build_eval_dataset

        cfg = _data_config(data)
        info, dataset = build_eval_dataset(cfg, split)
        if settings is None:
            settings = eval_settings(cfg.eval, model.class_source(
                None if model.in_graph_classes else parse_class_source(cfg.eval.class_source, info.class_names)))
    if settings is None:
        settings = inference_settings(model)
    return _evaluate(model, dataset, settings, progress=progress)


def _config(config: Any, overrides: Sequence[str] = ()):  # type: ignore[no-untyped-def]
    """An ``ExperimentConfig`` from a YAML path, a mapping of sections or a config object (+ overrides)."""
    from scribbleseg.engine.config.loading import config_from_mapping, load_config

    if isinstance(config, (str, os.PathLike)):
        return load_config(config, list(overrides))
    if isinstance(config, Mapping):
        from scribbleseg.engine.config.loading import apply_overrides

        return config_from_mapping(apply_overrides(dict(config), list(overrides)), where="config",
                                   overrides=list(overrides))
    if overrides:
        return _config(_mapping_of(config), overrides)
    return config


def _mapping_of(config: Any) -> dict[str, Any]:
    """A config object as the plain mapping of its sections."""
    import json

    return json.loads(config.to_json())


def _data_config(data: Any):  # type: ignore[no-untyped-def]
    """The config of an evaluation: ``data`` itself, or (a folder) the default config with that data root."""
    if isinstance(data, (str, os.PathLike)) and Path(data).is_dir():
        return _config({"data": {"root": str(data)}})
    return _config(data)
