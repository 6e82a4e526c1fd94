"""scribbleseg.models: MiT and ResNet encoders, SegFormer / DeepLabV2 / DeepLabV3+ decoders, weight
loading and complexity counts.

>>> enc = MixTransformer.from_name("mit_b1", strides=(4, 2, 2, 1))
>>> head = SegFormerHead(enc.out_channels, num_classes=21, in_strides=enc.output_strides)
>>> logits = head.classify(head.fuse(enc(images)))   # [N, 21, H/4, W/4]
>>> load_encoder_weights(enc, "pretrained/mit_b1.pth")   # NVlabs, Hugging Face or scribbleseg weights
>>> enc = ResNet.from_name("resnet101", output_stride=8)
>>> head = DeepLabV2Head(enc.out_channels, num_classes=21, in_strides=enc.output_strides)  # logits at H/8
>>> load_encoder_weights(enc, "pretrained/resnet101-63fe2227.pth")   # torchvision or Hugging Face weights
"""

from scribbleseg.models.complexity import FlopReport, count_flops, count_parameters
from scribbleseg.models.heads.deeplabv2 import DeepLabV2Head
from scribbleseg.models.heads.deeplabv3plus import DeepLabV3PlusHead
from scribbleseg.models.mit.variants import MIT_VARIANTS, MitVariant, resolve_variant
from scribbleseg.models.mit.mix_transformer import MixTransformer
from scribbleseg.models.resnet.encoder import ResNet
from scribbleseg.models.resnet.variants import RESNET_VARIANTS, ResNetVariant, resolve_resnet_variant
from scribbleseg.models.heads.segformer import SegFormerHead
from scribbleseg.models.weights.files import read_state_dict
from scribbleseg.models.weights.loading import WeightLoadReport, load_encoder_weights

__all__ = [
    "MIT_VARIANTS",
    "RESNET_VARIANTS",
    "DeepLabV2Head",
    "DeepLabV3PlusHead",
    "FlopReport",
    "MitVariant",
    "MixTransformer",
    "ResNet",
    "ResNetVariant",
    "SegFormerHead",
    "WeightLoadReport",
    "count_flops",
    "count_parameters",
    "load_encoder_weights",
    "read_state_dict",
    "resolve_resnet_variant",
    "resolve_variant",
]
