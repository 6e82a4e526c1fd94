"""scribbleseg.methods: the contract between the engine and a training method (the base class in
``contract``, its records in ``training_types`` / ``inference_types``), and the pieces every method shares
(partial cross-entropy, regularisers such as the Gated CRF loss, the image classifier, class sources).

Layer: imports ``scribbleseg.models`` (and ``errors`` / ``atomic_files``) only; ``scribbleseg.pfa``
builds PFA on top of it and the engine drives every method through it (docs/ARCHITECTURE.md).
"""

from scribbleseg.methods.class_sources import (
    DEFAULT_HEAD_THRESHOLD,
    ClassSource,
    FileClassSource,
    HeadClassSource,
    NoClassSource,
    OracleClassSource,
    PredictionThresholdClassSource,
    check_source_fits,
    default_class_source,
    default_min_pixels,
    parse_class_source,
)
from scribbleseg.methods.contract import SegmentationMethod
from scribbleseg.methods.gated_crf import GatedCRFKernel, GatedCRFSettings, default_kernels, gated_crf_loss
from scribbleseg.methods.gated_crf_regulariser import GatedCRFRegulariser
from scribbleseg.methods.image_classification import CLASSIFIER_LOSS, ImageClassification, ImageClassifierSettings
from scribbleseg.methods.inference_types import BASIC_HEAD, ClassChooser, Evidence, HeadInfo, Prediction
from scribbleseg.methods.logit_resizing import upsample_logits
from scribbleseg.methods.partial_ce import partial_cross_entropy
from scribbleseg.methods.pce_method import PartialCEMethod
from scribbleseg.methods.regularisers import Regulariser, add_regularisers
from scribbleseg.methods.training_types import TOTAL_LOSS, NetworkOutput, StateSnapshot, StepResult, TrainBatch

__all__ = [
    "BASIC_HEAD",
    "CLASSIFIER_LOSS",
    "DEFAULT_HEAD_THRESHOLD",
    "TOTAL_LOSS",
    "ClassChooser",
    "ClassSource",
    "Evidence",
    "FileClassSource",
    "GatedCRFKernel",
    "GatedCRFRegulariser",
    "GatedCRFSettings",
    "HeadClassSource",
    "HeadInfo",
    "ImageClassification",
    "ImageClassifierSettings",
    "NetworkOutput",
    "NoClassSource",
    "OracleClassSource",
    "PartialCEMethod",
    "Prediction",
    "PredictionThresholdClassSource",
    "Regulariser",
    "SegmentationMethod",
    "StateSnapshot",
    "StepResult",
    "TrainBatch",
    "add_regularisers",
    "check_source_fits",
    "default_class_source",
    "default_min_pixels",
    "default_kernels",
    "gated_crf_loss",
    "parse_class_source",
    "partial_cross_entropy",
    "upsample_logits",
]
