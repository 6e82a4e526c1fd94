"""PFA, prototype-based feature augmentation (Chan et al., ICML 2024): the method layer.

Equation map (see docs/pfa.md): eq. (1)-(3) ``extract_local_prototypes``; eq. (4)-(5)
``PrototypeMemoryBank.update``; eq. (6)-(8) ``PrototypeAugmenter``; eq. (9) ``partial_cross_entropy``;
eq. (10) ``consistency_loss``; sections 3.3.3/3.4 ``Phase`` / ``phase_for``; appendix A.2 ``ClassSource``.
This package imports only ``scribbleseg.models`` and ``scribbleseg.errors``.
"""

from scribbleseg.pfa.augmenter import EmbeddedFeatures, PrototypeAugmenter
from scribbleseg.pfa.class_sources import (
    ClassSource,
    FileClassSource,
    NoClassSource,
    OracleClassSource,
    PredictionThresholdClassSource,
    parse_class_source,
)
from scribbleseg.pfa.confidence import confidence_map
from scribbleseg.pfa.local_prototypes import extract_local_prototypes, topk_count
from scribbleseg.pfa.losses import consistency_loss, partial_cross_entropy, upsample_logits
from scribbleseg.pfa.memory_bank import PrototypeMemoryBank
from scribbleseg.pfa.phases import Phase, phase_for, prototypes_active
from scribbleseg.pfa.segmentor import PFASegmentor, SegmentorOutput, TrainingStepResult
from scribbleseg.pfa.settings import PFASettings

__all__ = [
    "ClassSource",
    "EmbeddedFeatures",
    "FileClassSource",
    "NoClassSource",
    "OracleClassSource",
    "PFASegmentor",
    "PFASettings",
    "Phase",
    "PredictionThresholdClassSource",
    "PrototypeAugmenter",
    "PrototypeMemoryBank",
    "SegmentorOutput",
    "TrainingStepResult",
    "confidence_map",
    "consistency_loss",
    "extract_local_prototypes",
    "parse_class_source",
    "partial_cross_entropy",
    "phase_for",
    "prototypes_active",
    "topk_count",
    "upsample_logits",
]
