"""Factories: a method (network + method modules + regularisers) and the data sets from a config.

May import: engine.config, engine.runtime, models, methods, pfa, data.
"""
