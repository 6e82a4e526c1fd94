"""The training schedule of PFA (sections 3.3.3 and 3.4).

``WARMUP``: ``L = L_pce``. ``LOCAL`` (after ``warmup_iters``, bank not yet full): ``L = L_pce + lambda_l L_con-l``.
``GLOBAL`` (bank full): ``L = L_pce + lambda_l L_con-l + lambda_g L_con-g``. The phase is a pure function of
the iteration count and the bank state, so a resumed run lands in the same phase.
"""

from __future__ import annotations

from enum import Enum

from scribbleseg.pfa.settings import PFASettings


class Phase(str, Enum):
    """Training phase; the value is the key used in :attr:`PFASettings.pce_target`."""

    WARMUP = "warmup"
    LOCAL = "local"
    GLOBAL = "global"


def phase_for(iteration: int, bank_full: bool, settings: PFASettings) -> Phase:
    """Phase at 0-based ``iteration`` given whether the prototype bank is full.

    With ``use_local = use_global = False`` (Tab. 2 baseline) the schedule never leaves ``WARMUP``. With
    ``use_global`` only, the phase is ``LOCAL`` until the bank is full: the bank fills from local
    prototypes, but no local augmentation or local loss is computed.
    """
    if iteration < settings.warmup_iters or not (settings.use_local or settings.use_global):
        return Phase.WARMUP
    if settings.use_global and bank_full:
        return Phase.GLOBAL
    return Phase.LOCAL


def prototypes_active(iteration: int, settings: PFASettings) -> bool:
    """Whether local prototypes are extracted (and the bank updated) at ``iteration`` (after warm-up)."""
    return iteration >= settings.warmup_iters and (settings.use_local or settings.use_global)
