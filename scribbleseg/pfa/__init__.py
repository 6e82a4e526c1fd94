"""PFA, prototype-based feature augmentation (Chan et al., ICML 2024), as a method behind the engine's
contract (:mod:`scribbleseg.methods.contract`), declared for the config and the method factory in
:mod:`scribbleseg.pfa.family` (``method: pfa``, section ``pfa``).

Equation map (see docs/pfa.md): eq. (1)-(3) ``extract_local_prototypes``; eq. (4)-(5)
``PrototypeMemoryBank.update``; eq. (6)-(8) ``PrototypeAugmenter``; eq. (9)
``scribbleseg.methods.partial_cross_entropy``; eq. (10) ``consistency_loss``; sections 3.3.3/3.4
``Phase`` / ``phase_for``; appendix A.2 the class sources of ``scribbleseg.methods``.
This package imports only ``scribbleseg.methods``, ``scribbleseg.models`` and ``scribbleseg.errors``.
"""

from scribbleseg.pfa.augmenter import EmbeddedFeatures, PrototypeAugmenter
from scribbleseg.pfa.confidence import confidence_map
from scribbleseg.pfa.local_prototypes import extract_local_prototypes, topk_count
from scribbleseg.pfa.losses import consistency_loss
from scribbleseg.pfa.memory_bank import PrototypeMemoryBank
from scribbleseg.pfa.pfa_method import GLOBAL_HEAD, LOCAL_HEAD, PFAMethod
from scribbleseg.pfa.phases import Phase, phase_for, prototypes_active
from scribbleseg.pfa.settings import PceTargets, PFASettings

__all__ = [
    "EmbeddedFeatures",
    "GLOBAL_HEAD",
    "LOCAL_HEAD",
    "PFAMethod",
    "PFASettings",
    "PceTargets",
    "Phase",
    "PrototypeAugmenter",
    "PrototypeMemoryBank",
    "confidence_map",
    "consistency_loss",
    "extract_local_prototypes",
    "phase_for",
    "prototypes_active",
    "topk_count",
]
