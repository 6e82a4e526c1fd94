"""scribbleseg.models: the MiT encoder, SegFormer's MLP decoder, weight loading and complexity counts.

>>> enc = MixTransformer.from_name("mit_b1", strides=(4, 2, 2, 1))
>>> head = SegFormerHead(enc.embed_dims, num_classes=21)
>>> logits = head.classify(head.fuse(enc(images)))   # [N, 21, H/4, W/4]
>>> load_encoder_weights(enc, "pretrained/mit_b1.pth")   # NVlabs, Hugging Face or scribbleseg weights
"""

from scribbleseg.models.complexity import FlopReport, count_flops, count_parameters
from scribbleseg.models.mit_variants import MIT_VARIANTS, MitVariant, resolve_variant
from scribbleseg.models.mix_transformer import MixTransformer
from scribbleseg.models.segformer_head import SegFormerHead
from scribbleseg.models.weight_loading import WeightLoadReport, load_encoder_weights, read_state_dict

__all__ = [
    "MIT_VARIANTS",
    "FlopReport",
    "MitVariant",
    "MixTransformer",
    "SegFormerHead",
    "WeightLoadReport",
    "count_flops",
    "count_parameters",
    "load_encoder_weights",
    "read_state_dict",
    "resolve_variant",
]
