"""The method declaration table: every method family, one line each, and the default method.

Each family is declared once beside its class (:data:`scribbleseg.methods.pce_method.PCE`,
:data:`scribbleseg.pfa.family.PFA`: method class and settings section); the schema (the ``method`` values,
one section per method with settings) and the method factory read this dict.
"""

from __future__ import annotations

from scribbleseg.methods.declarations import MethodFamily
from scribbleseg.methods.pce_method import PCE
from scribbleseg.pfa.family import PFA

METHODS: dict[str, MethodFamily] = {family.name: family for family in (PCE, PFA)}
DEFAULT_METHOD = PFA.name
