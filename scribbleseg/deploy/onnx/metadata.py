"""What an exported ``.onnx`` model says about itself, in the ONNX model's ``metadata_props``.

Every key starts with ``scribbleseg.``; values are JSON. Any ONNX tool shows them (e.g. Netron's model
properties, ``onnxruntime.InferenceSession(...).get_modelmeta().custom_metadata_map``):

==============================  ===========================================================================
``scribbleseg.format``          ``1``
``scribbleseg.version``         the scribbleseg version that exported the model
``scribbleseg.num_classes``     ``K``
``scribbleseg.class_names``     ``K`` names, or ``null``
``scribbleseg.palette``         ``K`` RGB triples (the colours of the label PNGs)
``scribbleseg.mean`` / ``std``  per-channel normalisation: ``input = (rgb / 255 - mean) / std``
``scribbleseg.input``           the input's layout, in words
``scribbleseg.head``            the exported head (``basic``, or e.g. PFA's ``local`` / ``global``)
``scribbleseg.class_source``    how the head's class set is chosen inside the graph (``none``, ``threshold:N``)
``scribbleseg.output_stride``   input size / logit size (4 for SegFormer, 8 for DeepLabV2 at OS 8)
``scribbleseg.outputs``         graph output name -> what it holds (see :data:`OUTPUT_ROLES`)
``scribbleseg.model``           the model descriptor of the checkpoint (method, backbone, decoder)
==============================  ===========================================================================
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Mapping

from scribbleseg.errors import CheckpointError
from scribbleseg.methods.class_sources import DEFAULT_MIN_PIXELS, ClassSource, PredictionThresholdClassSource

PREFIX = "scribbleseg."
FORMAT = 1
INPUT_NAME = "images"
INPUT_LAYOUT = "images [N, 3, H, W] float32, RGB, (rgb / 255 - mean) / std; any N, H, W"

#: graph output name of each role: the logits of a head (``logits_<head>``), the class set, image logits
BASIC_OUTPUT = "logits_basic"
PRESENT_OUTPUT = "present"
IMAGE_LOGITS_OUTPUT = "image_logits"


def logits_output(head: str) -> str:
    """Graph output name of ``head``'s logits ``[N, K, H / stride, W / stride]``."""
    return f"logits_{head}"


def graph_class_source(source: ClassSource) -> ClassSource:
    """``source`` as a graph computes it, whose ``spec`` is what the metadata stores: ``threshold`` without
    a count becomes ``threshold:500`` (a fixed count: the PyTorch path's image-size default would make the
    count a function of the traced shapes); every other source is itself."""
    if isinstance(source, PredictionThresholdClassSource) and source.min_pixels is None:
        return PredictionThresholdClassSource(DEFAULT_MIN_PIXELS)
    return source


@dataclass(frozen=True)
class OnnxModelMetadata:
    """The ``scribbleseg.*`` metadata of an exported model (see the module docstring)."""

    num_classes: int
    class_names: list[str] | None
    palette: list[tuple[int, int, int]]
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    head: str
    class_source: str
    output_stride: int
    outputs: dict[str, str]
    model: dict[str, Any] = field(default_factory=dict)
    version: str = ""

    def to_props(self) -> dict[str, str]:
        """``metadata_props`` entries (key -> JSON text)."""
        values = {"format": FORMAT, "version": self.version, "num_classes": self.num_classes,
                  "class_names": self.class_names, "palette": [list(c) for c in self.palette],
                  "mean": list(self.mean), "std": list(self.std), "input": INPUT_LAYOUT, "head": self.head,
                  "class_source": self.class_source, "output_stride": self.output_stride,
                  "outputs": self.outputs, "model": self.model}
        return {PREFIX + key: json.dumps(value) for key, value in values.items()}

    @classmethod
    def from_props(cls, props: Mapping[str, str], where: str) -> "OnnxModelMetadata":
        """Read the entries back; CheckpointError naming ``where`` and the key when one is missing or bad."""
        if PREFIX + "format" not in props:
            raise CheckpointError(f"{where} has no scribbleseg metadata: not a model exported by 'scribbleseg export'")

        def value(key: str) -> Any:
            try:
                return json.loads(props[PREFIX + key])
            except KeyError:
                raise CheckpointError(f"{where}: metadata {PREFIX}{key} is missing") from None
            except json.JSONDecodeError as err:
                raise CheckpointError(f"{where}: metadata {PREFIX}{key} is not valid JSON ({err})") from None

        if value("format") != FORMAT:
            raise CheckpointError(f"{where}: metadata format {value('format')!r} is not {FORMAT} "
                                  "(exported by another scribbleseg version)")
        try:
            num_classes = int(value("num_classes"))
            names = value("class_names")
            palette = [tuple(int(c) for c in colour) for colour in value("palette")]
            metadata = cls(
                num_classes=num_classes, class_names=None if names is None else [str(n) for n in names],
                palette=palette,  # type: ignore[arg-type]
                mean=tuple(float(v) for v in value("mean")),  # type: ignore[arg-type]
                std=tuple(float(v) for v in value("std")),  # type: ignore[arg-type]
                head=str(value("head")), class_source=str(value("class_source")),
                output_stride=int(value("output_stride")),
                outputs={str(k): str(v) for k, v in dict(value("outputs")).items()},
                model=dict(value("model")), version=str(value("version")))
        except (TypeError, ValueError) as err:
            raise CheckpointError(f"{where}: scribbleseg metadata has a value of the wrong type ({err})") from None
        if num_classes < 1 or len(palette) < num_classes or (names is not None and len(names) != num_classes):
            raise CheckpointError(f"{where}: metadata has {num_classes} classes but "
                                  f"{len(palette)} palette colours and {len(names or [])} class names")
        if len(metadata.mean) != 3 or len(metadata.std) != 3:
            raise CheckpointError(f"{where}: metadata mean / std must have 3 values each")
        return metadata
