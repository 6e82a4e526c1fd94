"""Export a trained method to ONNX: one graph from the normalised image to the logits of a head.

The graph is the method's own inference path, traced by torch's dynamo-based exporter::

    with method.traceable():                     # static shapes, head table read once (method contract)
        method.infer(images, ("basic", head), classes=chooser)

so whatever the method keeps in its state (PFA's prototype bank, an image-level classifier) is baked into
the graph as constants and the graph needs nothing but the image. Batch, height and width are dynamic.

Outputs (names in :mod:`scribbleseg.deploy.onnx.metadata`): ``logits_basic [N, K, h, w]`` always;
``logits_<head>`` and ``present [N, K]`` bool (the class set the head used) when ``head`` is not basic;
``image_logits [N, K]`` when the method has an image-level classifier. ``h, w`` = input size / output stride.

A class-dependent head needs its class set inside the graph, so only class sources that can be computed
from the image itself qualify (:data:`IN_GRAPH_CLASS_SOURCES`): ``head[:TAU]`` thresholds the built-in
image classifier's probabilities (the graph holds the classifier); ``threshold:N`` counts the argmax
pixels of the basic prediction upsampled to the *input* size (the whole input, padding included; the
PyTorch path counts the image's own pixels; ``threshold`` without N is stored as ``threshold:500``, a fixed
count, where the PyTorch path scales its default to the image's area). ``oracle`` (ground truth) and ``file:`` (per-image lists) are refused.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
from torch import Tensor, nn

import scribbleseg
from scribbleseg.atomic_files import atomic_write_bytes
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
from scribbleseg.deploy.onnx.packages import EXPORT_PACKAGES, require_packages
from scribbleseg.errors import ConfigError
from scribbleseg.methods import (
    BASIC_HEAD,
    ClassChooser,
    ClassSource,
    HeadClassSource,
    NoClassSource,
    PredictionThresholdClassSource,
    check_source_fits,
    SegmentationMethod,
    parse_class_source,
)
from scribbleseg.methods.class_sources import class_source_kind

DEFAULT_OPSET = 18
#: the traced example: batch 2 and sizes > 32 that differ, so no dimension is specialised to 1 or tied
EXAMPLE_SHAPE = (2, 3, 64, 96)
#: a second input checked after the export (another batch and a size that is no multiple of 32)
CHECK_SHAPE = (1, 3, 75, 53)
PROTOBUF_LIMIT = 2**31 - 1

ChooserFactory = Callable[[ClassSource, Tensor], ClassChooser]


def _at_input_size(source: ClassSource, images: Tensor) -> ClassChooser:
    """The source asked with the evidence of the basic pass and the input's own ``(H, W)``."""
    size = images.shape[-2:]
    return lambda evidence: source.classes(evidence, size)


@dataclass(frozen=True)
class GraphChooserEntry:
    """How a class source runs inside the graph: its spelling (for messages) and its chooser factory."""

    spec: str
    chooser: ChooserFactory


#: class sources that can run inside the graph, by source type (one entry per source)
IN_GRAPH_CLASS_SOURCES: dict[type[ClassSource], GraphChooserEntry] = {
    PredictionThresholdClassSource: GraphChooserEntry("threshold:N", _at_input_size),
    HeadClassSource: GraphChooserEntry("head[:TAU]", _at_input_size),  # the image classifier's own output
}


@dataclass(frozen=True)
class ExportReport:
    """What :func:`export_onnx` wrote.

    Attributes:
        path: the ``.onnx`` file.
        size_bytes: its size.
        opset: the ONNX opset of the graph.
        outputs: graph output names, in order.
        metadata: the stored :class:`OnnxModelMetadata`.
        max_abs_difference: largest ``|ONNX Runtime - PyTorch|`` over the float outputs on a
            :data:`CHECK_SHAPE` input (``None`` when not checked).
    """

    path: Path
    size_bytes: int
    opset: int
    outputs: list[str]
    metadata: OnnxModelMetadata
    max_abs_difference: float | None


class InferenceGraph(nn.Module):
    """``images [N, 3, H, W] -> (logits_basic, [logits_<head>, present], [image_logits])``: what is exported.

    ``forward`` is the method's own ``infer`` with a chooser built from the input by ``make_chooser``
    (``None`` for the basic head).
    """

    def __init__(self, method: SegmentationMethod, head: str, source: ClassSource,
                 make_chooser: ChooserFactory | None) -> None:
        super().__init__()
        self.method = method
        self.head = head
        self.source = source
        self.make_chooser = make_chooser

    def named_outputs(self, images: Tensor) -> dict[str, Tensor]:
        """The outputs by graph name (see the module docstring)."""
        heads = (BASIC_HEAD,) if self.head == BASIC_HEAD else (BASIC_HEAD, self.head)
        chooser = self.make_chooser(self.source, images) if self.make_chooser is not None else None
        prediction = self.method.infer(images, heads, classes=chooser)
        outputs = {BASIC_OUTPUT: prediction.logits[BASIC_HEAD]}
        if self.head != BASIC_HEAD:
            if self.head not in prediction.logits or prediction.present is None:
                raise ConfigError(f"the class source gave no class set, so head {self.head!r} was not computed")
            outputs[logits_output(self.head)] = prediction.logits[self.head]
            outputs[PRESENT_OUTPUT] = prediction.present
        if prediction.image_logits is not None:
            outputs[IMAGE_LOGITS_OUTPUT] = prediction.image_logits
        return outputs

    def forward(self, images: Tensor) -> tuple[Tensor, ...]:
        return tuple(self.named_outputs(images).values())


def graph_chooser_factory(method: SegmentationMethod, head: str, spec: str) -> tuple[ClassSource, ChooserFactory | None]:
    """(class source, how the graph builds its chooser) for exporting ``head`` with class source ``spec``.

    The source is the one the graph computes (:func:`~scribbleseg.deploy.onnx.metadata.graph_class_source`:
    ``threshold`` -> ``threshold:500``); its ``spec`` is what the metadata stores. Raises ConfigError for an unknown / unavailable head and for a class source that cannot be computed
    inside the graph (the message says which ones can).
    """
    infos = method.heads()
    if head not in infos:
        raise ConfigError(f"unknown head {head!r}; this model's heads are {', '.join(infos)}")
    if infos[head].unavailable:
        raise ConfigError(f"head {head!r} cannot be exported: {infos[head].unavailable}")
    if not infos[head].uses_classes:
        return NoClassSource(), None
    in_graph = ", ".join(entry.spec for entry in IN_GRAPH_CLASS_SOURCES.values())
    if class_source_kind(spec) == "file":  # refused before parse_class_source reads the file
        raise ConfigError(f"class source {spec!r} reads per-image class lists from a file, which cannot be part "
                          f"of a graph; export head {head!r} with a class source computed in the graph: {in_graph}")
    source = graph_class_source(parse_class_source(spec))
    if source.needs_ground_truth:
        raise ConfigError(f"class source {spec!r} needs ground-truth labels, which a deployed model does not "
                          f"have; export head {head!r} with a class source computed in the graph: {in_graph}")
    if isinstance(source, NoClassSource):
        raise ConfigError(f"class source 'none' gives head {head!r} no class set, so it would equal the basic "
                          f"prediction; export --head basic, or a class source computed in the graph: {in_graph}")
    check_source_fits(source, method)
    entry = IN_GRAPH_CLASS_SOURCES.get(type(source))
    if entry is None:
        raise ConfigError(f"class source {spec!r} cannot be computed inside the graph; use one of: {in_graph}")
    return source, entry.chooser


@contextlib.contextmanager
def _quiet_exporter():
    """Silence the exporter's progress lines, optional-op warnings and deprecation notices (the outcome is
    checked by the caller: opset, ONNX Runtime vs PyTorch)."""
    loggers = [logging.getLogger(name) for name in ("torch.onnx", "onnxscript")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.CRITICAL)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


def _trace(graph: InferenceGraph, example: Tensor, output_names: list[str], opset: int):  # type: ignore[no-untyped-def]
    """The ``onnx.ModelProto`` of ``graph`` traced on ``example`` with dynamic batch / height / width."""
    dynamic = torch.export.Dim.DYNAMIC
    try:
        with _quiet_exporter():
            program = torch.onnx.export(
                graph, (example,), dynamo=True, verbose=False, opset_version=opset,
                input_names=[INPUT_NAME], output_names=output_names,
                dynamic_shapes=({0: dynamic, 2: dynamic, 3: dynamic},))
    except Exception as err:  # the exporter raises many types; this is a model it cannot trace
        raise ConfigError(f"torch.onnx.export could not export this model ({type(err).__name__}: "
                          f"{str(err).splitlines()[0] if str(err) else ''})") from err
    proto = program.model_proto
    got = next((entry.version for entry in proto.opset_import if entry.domain in ("", "ai.onnx")), None)
    if got != opset:
        raise ConfigError(f"the exporter could not convert this model to opset {opset} (it is at opset {got}); "
                          f"use --opset {DEFAULT_OPSET} or higher")
    return proto


def _check_with_runtime(data: bytes, graph: InferenceGraph, output_names: list[str], threads: int | None) -> float:
    """Largest ``|ONNX Runtime - PyTorch|`` of the float outputs on a random :data:`CHECK_SHAPE` input."""
    ort = require_packages(("onnxruntime",), "checking an ONNX export")["onnxruntime"]
    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    session = ort.InferenceSession(data, sess_options=options, providers=["CPUExecutionProvider"])
    images = torch.randn(CHECK_SHAPE, generator=torch.Generator().manual_seed(0))
    expected = graph.named_outputs(images)
    got = dict(zip(output_names, session.run(output_names, {INPUT_NAME: images.numpy()})))
    worst = 0.0
    for name, reference in expected.items():
        value = torch.from_numpy(got[name])
        if reference.dtype == torch.bool:
            worst = max(worst, math.inf if not torch.equal(value, reference) else 0.0)
        else:
            worst = max(worst, float((value.float() - reference.float()).abs().max()))
    return worst


def export_onnx(
    method: SegmentationMethod,
    path: str | os.PathLike[str],
    *,
    head: str = BASIC_HEAD,
    class_source: str = "none",
    class_names: Sequence[str] | None = None,
    palette: Sequence[Sequence[int]],
    model: dict[str, Any] | None = None,
    opset: int = DEFAULT_OPSET,
    check: bool = True,
    threads: int | None = None,
) -> ExportReport:
    """Export ``method``'s inference of ``head`` to ``path`` (written atomically) and check it.

    Args:
        method: the trained method (traced on the CPU in float32 and eval mode; device, dtype and mode
            are restored afterwards).
        path: the ``.onnx`` file to write.
        head: one of ``method.heads()`` that can run.
        class_source: for a class-dependent head, a source computed inside the graph (``threshold:N``);
            ignored (stored as ``none``) for the basic head.
        class_names / palette / model: stored in the metadata (``K`` names or ``None``, ``K`` colours,
            the checkpoint's model descriptor).
        opset: ONNX opset of the graph.
        check: run the written graph with ONNX Runtime on a second input size and report the difference.
        threads: ONNX Runtime threads for the check (default: its own choice).

    Raises:
        MissingExtraError: onnx / onnxscript / onnxruntime not installed (names the ``[onnx]`` extra).
        ConfigError: unknown or unavailable head, a class source that cannot be in a graph, a bad opset,
            a model the exporter cannot trace.
    """
    require_packages(EXPORT_PACKAGES, "ONNX export")
    if not 7 <= int(opset) <= 30:
        raise ConfigError(f"--opset must be an ONNX opset between 7 and 30 (default {DEFAULT_OPSET}), got {opset}")
    num_classes = int(method.num_classes)
    if len(palette) < num_classes:
        raise ConfigError(f"the palette has {len(palette)} colours for {num_classes} classes")
    if class_names is not None and len(class_names) != num_classes:
        raise ConfigError(f"{len(class_names)} class names for {num_classes} classes")
    was_training = method.training
    first = next(method.parameters(), None)
    device, dtype = (first.device, first.dtype) if first is not None else (torch.device("cpu"), torch.float32)
    method.to(device="cpu", dtype=torch.float32).eval()
    try:
        # the spelling stored in the metadata is what the graph computes (``threshold`` -> a fixed 500 px:
        # the image-size default of the PyTorch path would make the count a function of traced shapes)
        source, factory = graph_chooser_factory(method, head, class_source)
        graph = InferenceGraph(method, head, source, factory)
        example = torch.randn(EXAMPLE_SHAPE, generator=torch.Generator().manual_seed(0))
        with torch.no_grad(), method.traceable():
            output_names = list(graph.named_outputs(example))
            proto = _trace(graph, example, output_names, int(opset))
        metadata = OnnxModelMetadata(
            num_classes=num_classes, class_names=list(class_names) if class_names is not None else None,
            palette=[tuple(int(c) for c in colour[:3]) for colour in palette[:num_classes]],  # type: ignore[misc]
            mean=tuple(IMAGENET_MEAN), std=tuple(IMAGENET_STD), head=head,  # type: ignore[arg-type]
            class_source=source.spec if factory is not None else "none",
            output_stride=int(method.head.output_stride), outputs=_describe_outputs(output_names),
            model=dict(model or {}), version=scribbleseg.__version__)
        for key, value in metadata.to_props().items():
            entry = proto.metadata_props.add()
            entry.key, entry.value = key, value
        if proto.ByteSize() > PROTOBUF_LIMIT:
            raise ConfigError("the exported model is over 2 GB, more than one ONNX protobuf file can hold")
        data = proto.SerializeToString()
        with torch.no_grad():
            difference = _check_with_runtime(data, graph, output_names, threads) if check else None
    finally:
        method.to(device=device, dtype=dtype).train(was_training)
    written = atomic_write_bytes(path, data)
    return ExportReport(path=written, size_bytes=len(data), opset=int(opset), outputs=output_names,
                        metadata=metadata, max_abs_difference=difference)


def _describe_outputs(names: Sequence[str]) -> dict[str, str]:
    """Graph output name -> what it holds (for the metadata)."""
    described = {PRESENT_OUTPUT: "[N, K] bool, the class set the exported head used",
                 IMAGE_LOGITS_OUTPUT: "[N, K] image-level class logits"}
    return {name: described.get(name, f"[N, K, H/stride, W/stride] logits of head {name.removeprefix('logits_')!r}")
            for name in names}
