"""The declaration tables: every backbone and decoder family, one line each (the first is the default).

Each family is declared once in its own folder (:mod:`scribbleseg.models.mit.family`, ...: settings class,
builder, weight layouts); the settings unions (:mod:`~scribbleseg.models.network_settings`), the builders
(:mod:`~scribbleseg.models.network_builders`), weight loading and ``scribbleseg info`` read these dicts.
"""

from __future__ import annotations

from scribbleseg.models.declarations import BackboneFamily, DecoderFamily
from scribbleseg.models.heads.deeplabv2_family import DEEPLABV2
from scribbleseg.models.heads.deeplabv3plus_family import DEEPLABV3PLUS
from scribbleseg.models.heads.segformer_family import SEGFORMER
from scribbleseg.models.mit.family import MIT
from scribbleseg.models.resnet.family import RESNET

BACKBONES: dict[str, BackboneFamily] = {family.type: family for family in (MIT, RESNET)}
DECODERS: dict[str, DecoderFamily] = {family.type: family for family in (SEGFORMER, DEEPLABV2, DEEPLABV3PLUS)}
