"""Run folders: the path layout, folder marker and lock, metrics logging, checkpoints (save / load / resume state, the last pair).

May import: engine.config, engine.runtime, engine.build, models, methods, data.
"""
