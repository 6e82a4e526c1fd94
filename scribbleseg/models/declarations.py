"""What a backbone or decoder family declares, once, in its own folder: :class:`BackboneFamily`,
:class:`DecoderFamily` (plain frozen records; the tables of :mod:`scribbleseg.models.families` list them).

A family's config name is the default of its settings class's ``type`` field (``Literal["mit"] = "mit"``):
written once, read by the settings unions, the builders, weight loading and ``scribbleseg info``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

from torch import nn

from scribbleseg.models.settings_base import StrictSettings
from scribbleseg.models.weights.layouts import KeyLayout


def type_name(settings: type[StrictSettings]) -> str:
    """The ``type`` tag of a settings class (the default of its ``type`` field)."""
    return str(settings.model_fields["type"].default)


def _bare(name: str) -> str:
    return name.strip().lower().replace("-", "").replace("_", "")


@dataclass(frozen=True)
class BackboneFamily:
    """One encoder family.

    Attributes:
        settings: its settings class (section ``model.backbone``, a ``type`` field and ``architecture()``).
        build: ``settings -> encoder`` (forward -> 4 stage maps, ``out_channels``, ``output_strides``).
        encoder: the encoder class, how :func:`~scribbleseg.models.weights.loading.load_encoder_weights`
            recognises the family.
        display_name: the family in weight-loading messages (``"MiT"``).
        weight_layouts: the key layouts of the pretrained-weight files it accepts, tried in order.
    """

    settings: type[StrictSettings]
    build: Callable[[Any], nn.Module]
    encoder: type[nn.Module]
    display_name: str
    weight_layouts: tuple[KeyLayout, ...]

    @property
    def type(self) -> str:
        """The config name (``model.backbone.type``)."""
        return type_name(self.settings)

    def claims(self, variant: str) -> bool:
        """Whether a variant name (``scribbleseg info --backbone``) is one of this family's: it starts with
        the type, ignoring case, ``-`` and ``_`` (``ResNet-101`` -> resnet)."""
        return _bare(variant).startswith(_bare(self.type))


@dataclass(frozen=True)
class DecoderFamily:
    """One decoder family.

    Attributes:
        settings: its settings class (section ``model.decoder``, a ``type`` field and ``architecture()``).
        build: ``(settings, in_channels, in_strides, num_classes) -> decoder`` with ``fuse(stage_maps) -> F``,
            ``classify(F) -> logits``, ``feature_channels``, ``output_stride``.
    """

    settings: type[StrictSettings]
    build: Callable[[Any, Sequence[int], Sequence[int], int], nn.Module]

    @property
    def type(self) -> str:
        """The config name (``model.decoder.type``, ``scribbleseg info --head``)."""
        return type_name(self.settings)
