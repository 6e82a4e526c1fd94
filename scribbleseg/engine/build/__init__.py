"""Factories: a method (network + method modules + regularisers) and the data sets from a config, and the
data check of a run's splits before its first step (cached in the run folder).

May import: engine.config, engine.runtime, models, methods, pfa, data.
"""
