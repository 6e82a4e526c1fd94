"""The PFA family's declaration: the method (``method: pfa``) and its settings section (``pfa``), in :data:`PFA`
(listed in :mod:`scribbleseg.engine.config.method_table`)."""

from __future__ import annotations

from scribbleseg.methods.declarations import MethodFamily
from scribbleseg.pfa.pfa_method import PFAMethod
from scribbleseg.pfa.settings import PFASettings

PFA = MethodFamily(PFAMethod, PFASettings)
