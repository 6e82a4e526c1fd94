"""Run an exported ``.onnx`` model with ONNX Runtime behind the engine's inference protocol.

:class:`OnnxRuntimeModel` implements :class:`scribbleseg.engine.inference.model.InferenceModel` (structurally:
the deploy layer imports no engine): ``heads()``, ``infer(images, heads, classes) -> Prediction``,
``num_classes``, ``device``, ``class_names``, ``palette``, ``has_image_classifier``, ``default_head`` (the
exported head), ``class_source(asked)``, ``in_graph_classes`` and ``eval_mode()`` (nothing to switch). It is
no ``torch.nn.Module``: it has no parameters, no training mode and nothing to move. So ``predict`` and
``eval`` run on it unchanged: padding to a multiple of 32, batches of mixed sizes, crop-back,
``--ms-flip``, sliding windows, label PNGs, overlays, probability maps, mIoU.

Heads: ``basic`` and the exported head. The exported head's class set is computed inside the graph by
the class source it was exported with (``scribbleseg.class_source`` in the metadata); the ``classes``
given to :meth:`OnnxRuntimeModel.infer` only says whether to report that head (``None``: no, as the
contract wants), its value is not read. With several test views each view chooses its classes itself
(the PyTorch path chooses them once from the views' average). :class:`InGraphClassSource` is the class
source the engine is given for such a model.

Providers: CUDA when ONNX Runtime has it and the device asks for it (``auto`` / ``cuda[:N]``), else CPU.
Inputs and outputs are CPU tensors (``device`` is CPU whatever the provider).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Iterator, Sequence

import torch
from torch import Tensor

from scribbleseg.data import IMAGENET_MEAN, IMAGENET_STD
from scribbleseg.deploy.onnx.metadata import (
    BASIC_OUTPUT,
    IMAGE_LOGITS_OUTPUT,
    INPUT_NAME,
    PRESENT_OUTPUT,
    OnnxModelMetadata,
    graph_class_source,
    logits_output,
)
from scribbleseg.deploy.onnx.packages import RUNTIME_PACKAGES, require_packages
from scribbleseg.errors import CheckpointError, ConfigError
from scribbleseg.methods import BASIC_HEAD, ClassChooser, HeadInfo, Prediction
from scribbleseg.methods.class_sources import ClassSource, NoClassSource, class_source_kind

ONNX_SUFFIX = ".onnx"
CPU_PROVIDER = "CPUExecutionProvider"
CUDA_PROVIDER = "CUDAExecutionProvider"


def is_onnx_model(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` names an exported ONNX model (by its suffix)."""
    return Path(path).suffix.lower() == ONNX_SUFFIX


def runtime_providers(available: Sequence[str], device: str) -> list:
    """ONNX Runtime providers for ``device`` (``auto`` | ``cpu`` | ``cuda`` | ``cuda:N``) given ``available``."""
    text = str(device).strip().lower()
    kind, _, index = text.partition(":")
    if kind not in ("auto", "cpu", "cuda") or (index and (kind != "cuda" or not index.isdigit())):
        raise ConfigError(f"--device must be auto, cpu, cuda or cuda:N, got {device!r}")
    has_cuda = CUDA_PROVIDER in available
    if kind == "cpu" or (kind == "auto" and not has_cuda):
        return [CPU_PROVIDER]
    if not has_cuda:
        raise ConfigError(f"--device {device!r} asks for CUDA but this onnxruntime has no CUDA provider "
                          f"(providers: {', '.join(available)}); install onnxruntime-gpu or use cpu")
    return [(CUDA_PROVIDER, {"device_id": int(index or 0)}), CPU_PROVIDER]


class InGraphClassSource(ClassSource):
    """The class source of an exported head: the graph chooses the classes, so this only says "some".

    :meth:`classes` returns all-True ``[N, K]``; :class:`OnnxRuntimeModel` does not read it. Its ``spec``
    is the stored spelling (``scribbleseg.class_source``), its ``kind`` that spelling's kind.
    """

    def __init__(self, spec: str) -> None:
        self.kind = class_source_kind(spec)
        self._spelling = spec

    def classes(self, evidence, image_size, names=None, given=None):  # type: ignore[no-untyped-def]
        basic = evidence.basic
        return torch.ones(basic.shape[:2], dtype=torch.bool, device=basic.device)


class OnnxRuntimeModel:
    """An exported model run by an ``onnxruntime.InferenceSession`` (see the module docstring).

    Args:
        path: the ``.onnx`` file written by ``scribbleseg export``.
        device: ``auto`` | ``cpu`` | ``cuda`` | ``cuda:N`` (chooses the provider).
        threads: ONNX Runtime intra-op threads (default: its own choice, all cores).

    Raises:
        MissingExtraError: onnxruntime is not installed.
        CheckpointError: missing / unreadable file, or no (valid) scribbleseg metadata.
        ConfigError: bad device, or a CUDA device the runtime cannot use.
    """

    in_graph_classes: bool

    def __init__(self, path: str | os.PathLike[str], device: str = "cpu", threads: int | None = None) -> None:
        ort = require_packages(RUNTIME_PACKAGES, "ONNX Runtime inference")["onnxruntime"]
        file = Path(path)
        if not file.is_file():
            raise CheckpointError(f"ONNX model not found: {file}")
        providers = runtime_providers(ort.get_available_providers(), device)
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = int(threads)
        try:
            self.session = ort.InferenceSession(str(file), sess_options=options, providers=providers)
        except Exception as err:  # onnxruntime raises its own pybind types for unreadable models
            raise CheckpointError(f"{file} is not a readable ONNX model ({str(err).strip()[:300]})") from err
        self.path = file
        self.metadata = OnnxModelMetadata.from_props(self.session.get_modelmeta().custom_metadata_map, str(file))
        if (tuple(self.metadata.mean), tuple(self.metadata.std)) != (tuple(IMAGENET_MEAN), tuple(IMAGENET_STD)):
            raise CheckpointError(f"{file} expects inputs normalised with mean {self.metadata.mean} / std "
                                  f"{self.metadata.std}; scribbleseg's image reader uses the ImageNet values")
        self.num_classes = self.metadata.num_classes
        self.class_names = tuple(self.metadata.class_names) if self.metadata.class_names is not None else None
        self.palette = [tuple(colour) for colour in self.metadata.palette[:self.num_classes]]
        self.device = torch.device("cpu")
        self.in_graph_classes = self.exported_head != BASIC_HEAD
        self._outputs = [output.name for output in self.session.get_outputs()]
        needed = [BASIC_OUTPUT] + ([] if self.exported_head == BASIC_HEAD
                                   else [logits_output(self.exported_head), PRESENT_OUTPUT])
        missing = [name for name in needed if name not in self._outputs]
        if missing or [i.name for i in self.session.get_inputs()] != [INPUT_NAME]:
            raise CheckpointError(f"{file}: graph outputs {self._outputs} / inputs do not match its metadata "
                                  f"(missing {', '.join(missing) or 'input ' + INPUT_NAME})")

    @property
    def exported_head(self) -> str:
        """The head the model was exported with."""
        return self.metadata.head

    @property
    def default_head(self) -> str:
        """What ``predict`` runs without ``--head``: the exported head."""
        return self.metadata.head

    @property
    def has_image_classifier(self) -> bool:
        """Whether the graph returns image-level logits."""
        return IMAGE_LOGITS_OUTPUT in self._outputs

    @contextlib.contextmanager
    def eval_mode(self) -> Iterator[None]:
        """Nothing to switch: the graph always predicts."""
        yield

    @property
    def providers(self) -> list[str]:
        """The ONNX Runtime providers the session runs on, preferred first."""
        return list(self.session.get_providers())

    def heads(self) -> dict[str, HeadInfo]:
        """``basic`` and the exported head (its classes come from the graph)."""
        infos = {BASIC_HEAD: HeadInfo(BASIC_HEAD, "the decoder's prediction")}
        if self.exported_head != BASIC_HEAD:
            infos[self.exported_head] = HeadInfo(
                self.exported_head, f"exported head, classes from {self.metadata.class_source} inside the graph",
                uses_classes=True)
        return infos

    def class_source(self, asked: ClassSource | None = None) -> ClassSource:
        """The engine's class source for this model (``asked``: the user's ``--classes``, if any).

        ConfigError when a class-dependent head was exported and ``asked`` differs from its class source.
        """
        exported = self.metadata.class_source
        if self.exported_head == BASIC_HEAD:
            return NoClassSource()
        if asked is not None and graph_class_source(asked).spec != exported:
            raise ConfigError(f"{self.path} computes its classes inside the graph with class source {exported!r}; "
                              f"--classes {asked.spec!r} cannot change that (re-export with --classes {asked.spec})")
        return InGraphClassSource(exported)

    def infer(self, images: Tensor, heads: Sequence[str] = (BASIC_HEAD,),
              classes: Tensor | ClassChooser | None = None) -> Prediction:
        """Logits of ``heads`` for ``images [N, 3, H, W]`` (normalised): one session run.

        Returns ``logits[head] [N, K, H / stride, W / stride]`` float32 CPU tensors (``basic`` always,
        the exported head unless ``classes`` is ``None``), ``present`` and ``image_logits`` when the
        graph has them.
        """
        infos = self.heads()
        unknown = [head for head in heads if head not in infos]
        if unknown:
            raise ConfigError(f"unknown head {unknown[0]!r}; {self.path.name} has {', '.join(infos)}")
        wanted = self.exported_head in heads and self.exported_head != BASIC_HEAD and classes is not None
        names = [BASIC_OUTPUT] + ([logits_output(self.exported_head), PRESENT_OUTPUT] if wanted else [])
        if IMAGE_LOGITS_OUTPUT in self._outputs:
            names.append(IMAGE_LOGITS_OUTPUT)
        feed = images.detach().to(device="cpu", dtype=torch.float32).contiguous().numpy()
        values = dict(zip(names, (torch.from_numpy(value) for value in self.session.run(names, {INPUT_NAME: feed}))))
        prediction = Prediction(logits={BASIC_HEAD: values[BASIC_OUTPUT]}, image_logits=values.get(IMAGE_LOGITS_OUTPUT))
        if wanted:
            prediction.logits[self.exported_head] = values[logits_output(self.exported_head)]
            prediction.present = values[PRESENT_OUTPUT].to(torch.bool)
        return prediction
